/**
 * Incremental PDU framer: bytes in, whole PDUs out. Checks everything that can be checked from the
 * common header (type, hlen, pdo, plen, digest flags) and the header digest, verifies the data digest,
 * and enforces a maximum PDU size so a peer cannot make us buffer an unbounded PDU.
 */
import {
  COMMON_HEADER_BYTES,
  DIGEST_BYTES,
  FatalErrorStatus,
  MAX_TERM_REQ_ERROR_HEADER_BYTES,
  PDU_HEADER_BYTES,
  PduFlags,
  PduType,
} from './constants.js';
import { crc32c } from './crc32c.js';
import { PduError } from './errors.js';
import { pduTypeHasDigests, type RawPdu } from './pdu.js';

export interface FramerOptions {
  /** Largest plen accepted, digests and padding included. */
  maxPduBytes: number;
  /** PDU types this side may receive (e.g. a target never receives ICResp). Default: all. */
  acceptedTypes?: readonly number[];
}

const FIELD_FLAGS = 1;
const FIELD_HLEN = 2;
const FIELD_PDO = 3;
const FIELD_PLEN = 4;

/** Types whose PDUs carry data after the header (TermReq's error header is handled separately). */
const DATA_TYPES = new Set<number>([PduType.CapsuleCmd, PduType.H2CData, PduType.C2HData]);

export class PduFramer {
  private readonly chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private headerDigest = false;
  private dataDigest = false;
  private failure: PduError | null = null;
  private readonly accepted: ReadonlySet<number>;

  constructor(private readonly options: FramerOptions) {
    this.accepted = new Set(options.acceptedTypes ?? Object.values(PduType));
  }

  /** Turn digests on for every PDU after the ICReq/ICResp exchange. */
  setDigests(headerDigest: boolean, dataDigest: boolean): void {
    this.headerDigest = headerDigest;
    this.dataDigest = dataDigest;
  }

  /** Bytes received but not yet returned as PDUs. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  /** A copy of up to `maxBytes` buffered bytes (the header of a PDU being rejected, for a TermReq). */
  pendingHeader(maxBytes: number): Buffer {
    const n = Math.min(maxBytes, this.bufferedBytes);
    if (n === 0) return Buffer.alloc(0);
    const hlen = Math.min(n, Math.max(this.peek(Math.min(3, n))[2] ?? 0, 8));
    return Buffer.from(this.peek(hlen).subarray(0, hlen));
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /** The next whole PDU, or null if more bytes are needed. Throws `PduError` (and keeps throwing it). */
  next(): RawPdu | null {
    if (this.failure) throw this.failure;
    try {
      return this.tryNext();
    } catch (e) {
      if (e instanceof PduError) this.failure = e;
      throw e;
    }
  }

  private tryNext(): RawPdu | null {
    if (this.bufferedBytes < COMMON_HEADER_BYTES) return null;
    const ch = this.peek(COMMON_HEADER_BYTES);
    const type = ch[0];
    const flags = ch[1];
    const hlen = ch[2];
    const pdo = ch[3];
    const plen = ch.readUInt32LE(4);
    const bad = (
      field: string,
      reason: string,
      fei: number,
      value: number,
      fes: number = FatalErrorStatus.InvalidPduHeaderField,
    ) => new PduError(field, reason, fes, fei, value);

    if (!this.accepted.has(type)) throw bad('type', 'unexpected PDU type', 0, type);
    const expectedHlen = PDU_HEADER_BYTES[type as keyof typeof PDU_HEADER_BYTES];
    if (hlen !== expectedHlen) throw bad('hlen', `must be ${expectedHlen}`, FIELD_HLEN, hlen);
    const digests = pduTypeHasDigests(type);
    const hasHdgst = (flags & PduFlags.HDGSTF) !== 0;
    const hasDdgst = (flags & PduFlags.DDGSTF) !== 0;
    if (hasHdgst !== (digests && this.headerDigest))
      throw bad('flags', 'HDGSTF does not match the negotiated header digest', FIELD_FLAGS, flags);
    if (hasDdgst && !(digests && this.dataDigest))
      throw bad('flags', 'DDGSTF set but data digest not negotiated', FIELD_FLAGS, flags);
    const headerEnd = hlen + (hasHdgst ? DIGEST_BYTES : 0);
    if (plen < headerEnd) throw bad('plen', `shorter than the ${headerEnd}-byte header`, FIELD_PLEN, plen);
    if (plen > this.options.maxPduBytes) {
      throw bad(
        'plen',
        `exceeds the ${this.options.maxPduBytes}-byte PDU limit`,
        FIELD_PLEN,
        plen,
        FatalErrorStatus.DataTransferLimitExceeded,
      );
    }
    const isTerm = type === PduType.H2CTermReq || type === PduType.C2HTermReq;
    if (isTerm && plen > hlen + MAX_TERM_REQ_ERROR_HEADER_BYTES)
      throw bad('plen', 'TermReq longer than 152 bytes', FIELD_PLEN, plen);
    const hasData = plen > headerEnd;
    if (hasData && !isTerm) {
      if (!DATA_TYPES.has(type)) throw bad('plen', `must be ${headerEnd} for this PDU type`, FIELD_PLEN, plen);
      if (pdo < headerEnd || pdo >= plen) throw bad('pdo', `must be within [${headerEnd}, plen)`, FIELD_PDO, pdo);
      if (this.dataDigest !== hasDdgst)
        throw bad('flags', 'DDGSTF does not match the negotiated data digest', FIELD_FLAGS, flags);
      if (plen - pdo <= (hasDdgst ? DIGEST_BYTES : 0))
        throw bad('plen', 'no room for data before the data digest', FIELD_PLEN, plen);
    } else if (hasDdgst) {
      throw bad('flags', 'DDGSTF set on a PDU without data', FIELD_FLAGS, flags);
    }
    if (this.bufferedBytes < plen) return null;

    const bytes = this.take(plen);
    const header = bytes.subarray(0, hlen);
    if (hasHdgst) {
      const expected = bytes.readUInt32LE(hlen);
      const actual = crc32c(header);
      if (expected !== actual) throw bad('hdgst', 'header digest mismatch', hlen, expected, FatalErrorStatus.HeaderDigestError);
    }
    let data: Buffer | null = null;
    let dataDigestOk = true;
    if (isTerm) {
      data = bytes.subarray(hlen, plen);
    } else if (hasData) {
      const dataEnd = plen - (hasDdgst ? DIGEST_BYTES : 0);
      data = bytes.subarray(pdo, dataEnd);
      if (hasDdgst) dataDigestOk = bytes.readUInt32LE(dataEnd) === crc32c(data);
    }
    return { type, flags, hlen, pdo: hasData && !isTerm ? pdo : 0, plen, header, data, dataDigestOk };
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length >= n) return first;
    return Buffer.concat(this.chunks, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      // The PDU spans chunks: copy once into a buffer of its own.
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0];
        const want = n - filled;
        if (c.length <= want) {
          c.copy(out, filled);
          filled += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, filled, 0, want);
          filled += want;
          this.chunks[0] = c.subarray(want);
        }
      }
    }
    this.bufferedBytes -= n;
    return out;
  }
}
