/**
 * A namespace's backing store: a regular file (created sparse if missing) or a block device, accessed
 * with positioned reads and writes through a FileHandle. A write resolves only once `write()` returned
 * for every byte; `flush()` is fdatasync.
 *
 * Deallocate (Dataset Management) writes zeros: Node has no fallocate(PUNCH_HOLE), so holes are not
 * punched and a deallocated range of a sparse file becomes allocated. Reads of it return zeros either way,
 * which is what DLFEAT advertises.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, read as fsRead, write as fsWrite } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { BufferPool } from '../protocol/buffer-pool.js';
import { ConfigError } from '../protocol/errors.js';
import type { NamespaceConfig } from './config.js';
import type { ShareableNamespace } from './execution-pool.js';
import { CACHE_PAGE_BYTES, PageCache } from './page-cache.js';

/** Largest read made of several adjacent misses. */
const MAX_COALESCED_BYTES = 1 << 20;
const pageFloor = (offset: number) => offset - (offset % CACHE_PAGE_BYTES);
const pageCeil = (offset: number) => Math.ceil(offset / CACHE_PAGE_BYTES) * CACHE_PAGE_BYTES;

/** Completion of a callback-style read or write: the token the caller passed, and the error if any. */
export type IoDone<T> = (token: T, error: NodeJS.ErrnoException | null) => void;

interface PendingMiss {
  offset: number;
  dest: Buffer;
  done: IoDone<unknown>;
  token: unknown;
}

/** Zero-filled buffer shared by write-zeroes and deallocate. */
const ZERO_CHUNK_BYTES = 1 << 20;
/** Reads up to this size go through the page cache; larger ones (scans, big transfers) bypass it. */
const MAX_CACHED_READ_BYTES = 64 * 1024;
let zeroChunk: Buffer | null = null;
const zeros = () => (zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES));

export interface NamespaceIds {
  nguid: Buffer;
  uuid: Buffer;
}

let nextShareId = 1;

export class Namespace {
  private closed = false;
  /** Flushes in progress; `close()` waits for them. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Reads and writes in progress (callback style); `close()` waits for them too. */
  private ioInFlight = 0;
  private ioIdle: (() => void) | null = null;
  private pendingMisses: PendingMiss[] = [];
  /** Reads issued to the file for cache misses (several coalesced misses count once). */
  missReads = 0;
  /** Buffers of coalesced miss reads. */
  private readonly pool = new BufferPool();
  /** Identity of this namespace for execution workers (see `shareable`). */
  private readonly shareId = nextShareId++;

  private constructor(
    readonly nsid: number,
    readonly path: string,
    readonly blockSize: number,
    readonly sizeBytes: number,
    readonly ids: NamespaceIds,
    private readonly fh: FileHandle,
    /** Write-through page cache (see page-cache.ts); undefined when disabled. */
    readonly cache?: PageCache,
  ) {}

  /** What an execution worker needs to read this namespace itself: the file and the shared page cache. */
  shareable(): ShareableNamespace {
    // Built once: the pool asks for it on every execution.
    this.shared ??= {
      shared: { id: this.shareId, path: this.path, sizeBytes: this.sizeBytes, cache: this.cache?.shareable() },
      cache: this.cache,
    };
    return this.shared;
  }
  private shared: ShareableNamespace | undefined;

  get blockCount(): number {
    return this.sizeBytes / this.blockSize;
  }

  get lbads(): number {
    return this.blockSize === 4096 ? 12 : 9;
  }

  /** `cache`: another thread's page cache for the same file (attached), instead of one of `cacheBytes`. */
  static async open(
    cfg: NamespaceConfig,
    subsystemNqn: string,
    field: string,
    cacheBytes = 0,
    attached?: PageCache,
  ): Promise<Namespace> {
    let st = await stat(cfg.path).catch(() => null);
    let sizeBytes: number;
    let fh: FileHandle;
    if (st?.isBlockDevice()) {
      const deviceBytes = await blockDeviceBytes(cfg.path);
      sizeBytes = cfg.sizeBytes ?? deviceBytes - (deviceBytes % cfg.blockSize);
      if (sizeBytes > deviceBytes) throw new ConfigError(`${field}.sizeBytes`, `larger than the ${deviceBytes}-byte device`);
      fh = await open(cfg.path, fsConstants.O_RDWR);
    } else {
      if (st && !st.isFile()) throw new ConfigError(`${field}.path`, 'neither a regular file nor a block device');
      if (cfg.sizeBytes === undefined) {
        if (!st) throw new ConfigError(`${field}.sizeBytes`, 'required to create a missing file');
        sizeBytes = st.size - (st.size % cfg.blockSize);
        if (sizeBytes === 0) throw new ConfigError(`${field}.sizeBytes`, 'existing file is smaller than one block');
      } else {
        sizeBytes = cfg.sizeBytes;
      }
      await mkdir(dirname(cfg.path), { recursive: true });
      fh = await open(cfg.path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644);
      st = await fh.stat();
      // Extending with truncate keeps the file sparse.
      if (st.size < sizeBytes) await fh.truncate(sizeBytes);
    }
    // The slab never exceeds the namespace (nor the largest Buffer Node can allocate).
    const cachePages = Math.floor(
      Math.min(cacheBytes, sizeBytes + CACHE_PAGE_BYTES, 2 ** 32 - CACHE_PAGE_BYTES) / CACHE_PAGE_BYTES,
    );
    const cache = attached ?? (cachePages >= 1 ? new PageCache(cachePages) : undefined);
    return new Namespace(cfg.nsid, cfg.path, cfg.blockSize, sizeBytes, namespaceIds(subsystemNqn, cfg.nsid), fh, cache);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * The bytes of `[offset, offset + bytes)` if the page cache holds them all, as a view valid only
   * until the cache is next used (copy it before returning to the event loop); else undefined.
   */
  cachedView(offset: number, bytes: number): Buffer | undefined {
    return bytes <= MAX_CACHED_READ_BYTES ? this.cache?.view(offset, bytes) : undefined;
  }

  /**
   * Copy `[offset, offset + bytes)` into `dest` at `destOffset` if the page cache holds it all (a
   * storage function's step reads straight into its sandbox this way); false otherwise.
   */
  readNow(offset: number, bytes: number, dest: Uint8Array, destOffset: number): boolean {
    return this.cache !== undefined && bytes <= MAX_CACHED_READ_BYTES && this.cache.readInto(offset, bytes, dest, destOffset);
  }

  /**
   * Read `[offset, offset + dest.length)` into `dest`, from the cache if it holds every page (then
   * `done` runs before this returns), else through the thread pool: misses issued in the same turn
   * are sorted and adjacent ones read with one call. `done(token, error)`; bytes past the end of a
   * shrunken file read as zeros.
   */
  readInto<T>(offset: number, dest: Buffer, done: IoDone<T>, token: T): void {
    const bytes = dest.length;
    const cache = this.cache;
    if (cache !== undefined && bytes <= MAX_CACHED_READ_BYTES) {
      if (cache.readInto(offset, bytes, dest, 0)) {
        done(token, null);
        return;
      }
      this.pendingMisses.push({ offset, dest, done: done as IoDone<unknown>, token });
      if (this.pendingMisses.length === 1) process.nextTick(this.issueMisses);
      return;
    }
    this.ioStarted();
    this.readFileInto(dest, offset, (e) => {
      this.ioEnded();
      done(token, e);
    });
  }

  /** Misses of one turn: whole pages, adjacent ones merged into one read of at most MAX_COALESCED_BYTES. */
  private readonly issueMisses = (): void => {
    const misses = this.pendingMisses;
    this.pendingMisses = [];
    if (misses.length > 1) misses.sort((a, b) => a.offset - b.offset);
    let i = 0;
    while (i < misses.length) {
      const start = pageFloor(misses[i].offset);
      let end = Math.min(this.sizeBytes, pageCeil(misses[i].offset + misses[i].dest.length));
      let j = i + 1;
      while (j < misses.length) {
        const m = misses[j];
        const mEnd = Math.min(this.sizeBytes, pageCeil(m.offset + m.dest.length));
        if (pageFloor(m.offset) > end || Math.max(end, mEnd) - start > MAX_COALESCED_BYTES) break;
        end = Math.max(end, mEnd);
        j++;
      }
      this.readGroup(start, end, misses.slice(i, j));
      i = j;
    }
  };

  private readGroup(start: number, end: number, group: PendingMiss[]): void {
    const cache = this.cache as PageCache;
    const generation = cache.generation;
    const pages = this.pool.take(end - start);
    this.missReads++;
    this.ioStarted();
    this.readFileInto(pages, start, (e) => {
      this.ioEnded();
      if (e === null) cache.fill(start, pages, generation);
      for (const m of group) {
        if (e === null) pages.copy(m.dest, 0, m.offset - start, m.offset - start + m.dest.length);
        m.done(m.token, e);
      }
      this.pool.give(pages);
    });
  }

  /** Positioned reads until `buf` is full; zeros past the end of the file. */
  private readFileInto(buf: Buffer, offset: number, done: (e: NodeJS.ErrnoException | null) => void): void {
    const fd = this.fh.fd;
    let filled = 0;
    const step = (e: NodeJS.ErrnoException | null, n: number): void => {
      if (e) {
        done(e);
        return;
      }
      if (n === 0) {
        buf.fill(0, filled);
        done(null);
        return;
      }
      filled += n;
      if (filled >= buf.length) {
        done(null);
        return;
      }
      fsRead(fd, buf, filled, buf.length - filled, offset + filled, step);
    };
    fsRead(fd, buf, 0, buf.length, offset, step);
  }

  /** Read `bytes` at byte `offset` into a new buffer; bytes past the end of a shrunken file read as zeros. */
  read(offset: number, bytes: number): Promise<Buffer> {
    const cached = bytes <= MAX_CACHED_READ_BYTES ? this.cache?.read(offset, bytes) : undefined;
    if (cached) return Promise.resolve(cached);
    const buf = Buffer.allocUnsafe(bytes);
    return new Promise((resolve, reject) => this.readInto(offset, buf, (_t, e) => (e ? reject(e) : resolve(buf)), null));
  }

  /**
   * Write all of `data` at `offset`: `done(token, error)` runs after every byte went through write()
   * and the cached pages it overlaps were updated.
   */
  writeFrom<T>(offset: number, data: Uint8Array, done: IoDone<T>, token: T): void {
    const cache = this.cache;
    cache?.bump();
    this.ioStarted();
    const fd = this.fh.fd;
    let written = 0;
    const step = (e: NodeJS.ErrnoException | null, n: number): void => {
      if (e === null) {
        written += n;
        if (written < data.length) {
          fsWrite(fd, data, written, data.length - written, offset + written, step);
          return;
        }
        cache?.written(offset, data);
      }
      cache?.bump();
      this.ioEnded();
      done(token, e);
    };
    fsWrite(fd, data, 0, data.length, offset, step);
  }

  /** Write all of `data` at `offset`; resolves after every byte went through write(). */
  write(offset: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.writeFrom(offset, data, (_t, e) => (e ? reject(e) : resolve()), null));
  }

  /** Zeros over `[offset, offset + bytes)`, written in 1 MiB pieces from one shared buffer. */
  writeZeroesThen<T>(offset: number, bytes: number, done: IoDone<T>, token: T): void {
    let at = 0;
    const next = (_t: null, e: NodeJS.ErrnoException | null): void => {
      if (e !== null || at >= bytes) {
        done(token, e);
        return;
      }
      const n = Math.min(ZERO_CHUNK_BYTES, bytes - at);
      const piece = n === ZERO_CHUNK_BYTES ? zeros() : zeros().subarray(0, n);
      const pieceOffset = offset + at;
      at += n;
      this.writeFrom(pieceOffset, piece, next, null);
    };
    next(null, null);
  }

  writeZeroes(offset: number, bytes: number): Promise<void> {
    return new Promise((resolve, reject) => this.writeZeroesThen(offset, bytes, (_t, e) => (e ? reject(e) : resolve()), null));
  }

  private ioStarted(): void {
    this.ioInFlight++;
  }

  private ioEnded(): void {
    if (--this.ioInFlight === 0 && this.ioIdle !== null) {
      const wake = this.ioIdle;
      this.ioIdle = null;
      wake();
    }
  }

  flush(): Promise<void> {
    return this.track(this.fh.datasync());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    while (this.ioInFlight > 0) await new Promise<void>((resolve) => (this.ioIdle = resolve));
    await this.fh.close();
  }
}

/** Size of a block device from sysfs (Node has no BLKGETSIZE64); `size` there counts 512-byte sectors. */
async function blockDeviceBytes(path: string): Promise<number> {
  const name = basename(await realpath(path));
  const sectors = Number((await readFile(`/sys/class/block/${name}/size`, 'utf8')).trim());
  if (!Number.isSafeInteger(sectors)) throw new ConfigError('namespaces.path', `cannot read the size of block device ${path}`);
  return sectors * 512;
}

/** Stable NGUID and UUID derived from the subsystem NQN and NSID, so they survive restarts. */
export function namespaceIds(subsystemNqn: string, nsid: number): NamespaceIds {
  const h = (label: string) => createHash('sha256').update(`${subsystemNqn}\0${nsid}\0${label}`).digest().subarray(0, 16);
  const uuid = Buffer.from(h('uuid'));
  uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4 layout
  uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
  return { nguid: Buffer.from(h('nguid')), uuid };
}
