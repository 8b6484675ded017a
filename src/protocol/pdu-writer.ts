/**
 * Outgoing PDUs of one connection, batched per event-loop turn. Headers (and small data) are encoded
 * straight into a reused arena; `flush()` hands everything produced since the last flush to the
 * socket in one write (one writev when large data rides along as buffers of its own). The arena is
 * reused as soon as the socket has taken its bytes, which on an unclogged socket is by the next
 * turn, so a steady stream of small responses allocates nothing.
 *
 * Ownership: data passed to `dataPdu` is copied when small (the caller may reuse it at once); large
 * data is written from the caller's buffer, which must stay untouched until the flush that carries
 * it has been written: pass `release` to get it back then (pooled buffers).
 */
import { DIGEST_BYTES, PDU_HEADER_BYTES, PduFlags, PduType } from './constants.js';
import { crc32c } from './crc32c.js';
import { type DigestOptions, encodePdu, type Pdu } from './pdu.js';
import { encodeSqe, type Sqe } from './sqe.js';

/** Data up to this size is copied into the arena; larger data is written from its own buffer. */
export const COPY_DATA_MAX_BYTES = 64 * 1024;
const ARENA_BYTES = 256 * 1024;
const DATA_HEADER_BYTES = 24;
const CAPSULE_RESP_HEADER_BYTES = 24;

/** What the writer writes to: a net.Socket (or anything with its write/cork semantics). */
export interface PduSink {
  readonly destroyed: boolean;
  readonly writable: boolean;
  /** `done` runs once the bytes were handed to the kernel (or the write failed), never synchronously. */
  write(chunk: Buffer, done?: (error?: Error | null) => void): boolean;
  cork(): void;
  uncork(): void;
}

/** Where a buffer goes once the socket has written it. */
export type ReleaseFn = (buf: Buffer) => void;

interface Arena {
  readonly buf: Buffer;
  /** Flushes in flight that carry bytes of this arena. */
  refs: number;
}

interface Flushed {
  arenas: Arena[];
  /** Large buffers carried by this flush, with their release functions. */
  owned: Buffer[] | null;
  releases: ReleaseFn[] | null;
}

/** Writers with output this turn: flushed once, at the end of the turn. */
const dirty: PduWriter[] = [];
let flushScheduled = false;
function flushDirty(): void {
  flushScheduled = false;
  // A flush may queue more (a write callback completing a command synchronously): loop by index.
  for (let i = 0; i < dirty.length; i++) dirty[i].flush();
  dirty.length = 0;
}

const newArena = (bytes: number): Arena => ({ buf: Buffer.allocUnsafeSlow(Math.max(bytes, ARENA_BYTES)), refs: 0 });
const MAX_SPARE_ARENAS = 2;

export class PduWriter {
  private arena: Arena = newArena(ARENA_BYTES);
  /** Bytes of the current arena before `start` belong to earlier flushes (or earlier parts of this turn). */
  private start = 0;
  private used = 0;
  /** This turn's output so far when it is more than the current arena's tail, in wire order. */
  private parts: Buffer[] | null = null;
  private partArenas: Arena[] | null = null;
  private owned: Buffer[] | null = null;
  private releases: ReleaseFn[] | null = null;
  private readonly inFlight: Flushed[] = [];
  private readonly spare: Arena[] = [];
  private scheduled = false;
  private readonly onWritten = () => this.completeFlush();
  digests: DigestOptions = { headerDigest: false, dataDigest: false };

  /** `onFlushed` runs each time the socket has taken a flush (backpressure bookkeeping). */
  constructor(
    private readonly socket: PduSink,
    private readonly onFlushed?: () => void,
  ) {}

  /** Bytes queued this turn and not yet handed to the socket. */
  get unflushedBytes(): number {
    let n = this.used - this.start;
    if (this.parts !== null) for (let i = 0; i < this.parts.length; i++) n += this.parts[i].length;
    return n;
  }

  /** Make sure `n` contiguous bytes fit at `used` in the current arena. */
  private room(n: number): void {
    if (this.used + n <= this.arena.buf.length) return;
    if (this.used > this.start) this.cutPart();
    const cur = this.arena;
    let next: Arena;
    if (cur.refs === 0 && this.partArenas?.includes(cur) !== true) next = cur;
    else next = this.spare.pop() ?? newArena(n);
    if (next.buf.length < n) next = newArena(n);
    this.arena = next;
    this.start = 0;
    this.used = 0;
  }

  /** The current arena's unflushed bytes become a part of this turn. */
  private cutPart(): void {
    (this.parts ??= []).push(this.arena.buf.subarray(this.start, this.used));
    const arenas = (this.partArenas ??= []);
    if (!arenas.includes(this.arena)) arenas.push(this.arena);
    this.start = this.used;
  }

  /**
   * Write a common header at `used` (room must be reserved); returns the header's offset and
   * advances past header, header digest and PDO padding.
   */
  private header(type: number, flags: number, hlen: number, dataBytes: number): number {
    const d = this.digests;
    const digestable = hasDigests(type);
    const hdgst = d.headerDigest && digestable;
    const ddgst = d.dataDigest && digestable && dataBytes > 0;
    const headerEnd = hlen + (hdgst ? DIGEST_BYTES : 0);
    const align = d.pdoAlignBytes ?? 0;
    const pdo = dataBytes === 0 ? 0 : align > 4 ? Math.ceil(headerEnd / align) * align : headerEnd;
    const end = dataBytes === 0 ? headerEnd : pdo;
    const b = this.arena.buf;
    const at = this.used;
    b.fill(0, at, at + end);
    b[at] = type;
    b[at + 1] = flags | (hdgst ? PduFlags.HDGSTF : 0) | (ddgst ? PduFlags.DDGSTF : 0);
    b[at + 2] = hlen;
    b[at + 3] = pdo;
    b.writeUInt32LE(end + dataBytes + (ddgst ? DIGEST_BYTES : 0), at + 4);
    this.used = at + end;
    return at;
  }

  /** Bytes a header takes with its digest and padding (an upper bound for room()). */
  private static headerRoom(hlen: number): number {
    return hlen + DIGEST_BYTES + MAX_PDO_PAD_BYTES;
  }

  /** Once every field is written: the header digest, and a flush at the end of the turn. */
  private sealHeader(at: number, hlen: number): void {
    const b = this.arena.buf;
    if (this.digests.headerDigest && hasDigests(b[at])) b.writeUInt32LE(crc32c(b, 0, at, at + hlen), at + hlen);
    this.schedule();
  }

  /** CapsuleResp with the CQE's fields. */
  capsuleResp(cid: number, status: number, dw0: number, dw1: number, sqhd: number, sqid: number): void {
    this.room(PduWriter.headerRoom(CAPSULE_RESP_HEADER_BYTES));
    const at = this.header(PduType.CapsuleResp, 0, CAPSULE_RESP_HEADER_BYTES, 0);
    const b = this.arena.buf;
    b.writeUInt32LE(dw0 >>> 0, at + 8);
    b.writeUInt32LE(dw1 >>> 0, at + 12);
    b.writeUInt16LE(sqhd, at + 16);
    b.writeUInt16LE(sqid, at + 18);
    b.writeUInt16LE(cid, at + 20);
    b.writeUInt16LE(status, at + 22);
    this.sealHeader(at, CAPSULE_RESP_HEADER_BYTES);
  }

  /** R2T for `[r2to, r2to + r2tl)` of command `cccid`. */
  r2t(cccid: number, ttag: number, r2to: number, r2tl: number): void {
    this.room(PduWriter.headerRoom(DATA_HEADER_BYTES));
    const at = this.header(PduType.R2T, 0, DATA_HEADER_BYTES, 0);
    this.dataFields(at, cccid, ttag, r2to, r2tl);
    this.sealHeader(at, DATA_HEADER_BYTES);
  }

  private dataFields(at: number, cccid: number, ttag: number, offset: number, length: number): void {
    const b = this.arena.buf;
    b.writeUInt16LE(cccid, at + 8);
    b.writeUInt16LE(ttag, at + 10);
    b.writeUInt32LE(offset >>> 0, at + 12);
    b.writeUInt32LE(length >>> 0, at + 16);
  }

  private pendingHeaderAt = -1;
  private pendingMark = 0;

  /**
   * Start a C2HData/H2CData PDU of `length` (<= COPY_DATA_MAX_BYTES) data bytes that the caller
   * writes into `buffer` at the returned offset, then `endData()` (or `cancelData()` when it cannot
   * produce them): a cache hit is copied from the cache straight into the arena.
   */
  beginData(type: number, cccid: number, ttag: number, datao: number, length: number, flags: number): number {
    this.room(PduWriter.headerRoom(DATA_HEADER_BYTES) + length + DIGEST_BYTES);
    this.pendingMark = this.used;
    const at = this.header(type, flags, DATA_HEADER_BYTES, length);
    this.dataFields(at, cccid, ttag, datao, length);
    this.pendingHeaderAt = at;
    return this.used;
  }

  /** The buffer `beginData`'s offset refers to (valid until the next call on this writer). */
  get buffer(): Buffer {
    return this.arena.buf;
  }

  endData(length: number): void {
    const b = this.arena.buf;
    const at = this.used;
    this.used = at + length;
    if (this.digests.dataDigest) {
      b.writeUInt32LE(crc32c(b, 0, at, at + length), this.used);
      this.used += DIGEST_BYTES;
    }
    this.sealHeader(this.pendingHeaderAt, DATA_HEADER_BYTES);
    this.pendingHeaderAt = -1;
  }

  cancelData(): void {
    this.used = this.pendingMark;
    this.pendingHeaderAt = -1;
  }

  /**
   * A data PDU carrying `data`: copied when small (then `release`, if given, runs at once), else
   * written from `data` itself, which goes to `release` once the socket has taken it.
   */
  dataPdu(type: number, cccid: number, ttag: number, datao: number, data: Buffer, flags: number, release?: ReleaseFn): void {
    const length = data.length;
    if (length <= COPY_DATA_MAX_BYTES) {
      const off = this.beginData(type, cccid, ttag, datao, length, flags);
      this.arena.buf.set(data, off);
      this.endData(length);
      release?.(data);
      return;
    }
    this.room(PduWriter.headerRoom(DATA_HEADER_BYTES));
    const at = this.header(type, flags, DATA_HEADER_BYTES, length);
    this.dataFields(at, cccid, ttag, datao, length);
    this.sealHeader(at, DATA_HEADER_BYTES);
    this.appendLarge(data, release);
  }

  private appendLarge(data: Buffer, release: ReleaseFn | undefined): void {
    if (this.used > this.start) this.cutPart();
    (this.parts ??= []).push(data);
    if (release) {
      (this.owned ??= []).push(data);
      (this.releases ??= []).push(release);
    }
    if (this.digests.dataDigest) {
      this.room(DIGEST_BYTES);
      this.arena.buf.writeUInt32LE(crc32c(data), this.used);
      this.used += DIGEST_BYTES;
    }
  }

  /** CapsuleCmd with `data` in the capsule if any (the data is copied when small). */
  capsuleCmd(sqe: Sqe, data: Buffer | null): void {
    const length = data?.length ?? 0;
    const hlen = PDU_HEADER_BYTES[PduType.CapsuleCmd];
    const small = length <= COPY_DATA_MAX_BYTES;
    this.room(PduWriter.headerRoom(hlen) + (small ? length + DIGEST_BYTES : 0));
    const at = this.header(PduType.CapsuleCmd, 0, hlen, length);
    encodeSqe(sqe, this.arena.buf, at + 8);
    this.sealHeader(at, hlen);
    if (data === null || length === 0) return;
    if (!small) {
      this.appendLarge(data, undefined);
      return;
    }
    const b = this.arena.buf;
    b.set(data, this.used);
    this.used += length;
    if (this.digests.dataDigest) {
      b.writeUInt32LE(crc32c(data), this.used);
      this.used += DIGEST_BYTES;
    }
  }

  /** Any other PDU (ICReq/ICResp, TermReq: rare), through the generic encoder. */
  pdu(pdu: Pdu, digests: DigestOptions = this.digests): void {
    for (const part of encodePdu(pdu, digests)) {
      this.room(part.length);
      this.arena.buf.set(part, this.used);
      this.used += part.length;
    }
    this.schedule();
  }

  /** Flush at the end of this event-loop turn (once, however many PDUs are queued). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    dirty.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushDirty);
    }
  }

  /** Hand everything queued so far to the socket: one write (one writev when large data rides along). */
  flush(): void {
    this.scheduled = false;
    if (this.used > this.start) this.cutPart();
    const parts = this.parts;
    if (parts === null) return;
    const record: Flushed = { arenas: this.partArenas as Arena[], owned: this.owned, releases: this.releases };
    this.parts = null;
    this.partArenas = null;
    this.owned = null;
    this.releases = null;
    if (this.socket.destroyed || !this.socket.writable) {
      this.release(record);
      return;
    }
    for (const a of record.arenas) a.refs++;
    this.inFlight.push(record);
    if (parts.length === 1) {
      this.socket.write(parts[0], this.onWritten);
      return;
    }
    this.socket.cork();
    for (let i = 0; i < parts.length; i++) this.socket.write(parts[i], i === parts.length - 1 ? this.onWritten : undefined);
    this.socket.uncork();
  }

  /** The socket took (or failed) the oldest flush: its buffers and arenas are free again. */
  private completeFlush(): void {
    const f = this.inFlight.shift();
    if (f === undefined) return;
    for (const a of f.arenas) a.refs--;
    this.release(f);
    this.onFlushed?.();
  }

  private release(f: Flushed): void {
    if (f.owned !== null && f.releases !== null) for (let i = 0; i < f.owned.length; i++) f.releases[i](f.owned[i]);
    for (const a of f.arenas) {
      if (a.refs !== 0) continue;
      if (a === this.arena) {
        // Nothing of the current arena is being written or waiting: start it over.
        if (this.start === this.used && this.parts === null) {
          this.start = 0;
          this.used = 0;
        }
      } else if (this.partArenas?.includes(a) !== true && this.spare.length < MAX_SPARE_ARENAS && !this.spare.includes(a)) {
        this.spare.push(a);
      }
    }
  }
}

/** HPDA is at most 31: (31 + 1) * 4 = 128 bytes of alignment, so at most 127 bytes of padding. */
const MAX_PDO_PAD_BYTES = 128;

function hasDigests(type: number): boolean {
  return type !== PduType.ICReq && type !== PduType.ICResp && type !== PduType.C2HTermReq && type !== PduType.H2CTermReq;
}
