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
import { ConfigError } from '../protocol/errors.js';
import type { NamespaceConfig } from './config.js';
import { CACHE_PAGE_BYTES, PageCache } from './page-cache.js';

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

export class Namespace {
  private closed = false;
  /** I/O in progress; `close()` waits for it. */
  private readonly inflight = new Set<Promise<unknown>>();

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

  get blockCount(): number {
    return this.sizeBytes / this.blockSize;
  }

  get lbads(): number {
    return this.blockSize === 4096 ? 12 : 9;
  }

  static async open(cfg: NamespaceConfig, subsystemNqn: string, field: string, cacheBytes = 0): Promise<Namespace> {
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
    const cache = cacheBytes >= CACHE_PAGE_BYTES ? new PageCache(Math.floor(cacheBytes / CACHE_PAGE_BYTES)) : undefined;
    return new Namespace(cfg.nsid, cfg.path, cfg.blockSize, sizeBytes, namespaceIds(subsystemNqn, cfg.nsid), fh, cache);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Read `bytes` at byte `offset` into a new buffer; bytes past the end of a shrunken file read as zeros. */
  read(offset: number, bytes: number): Promise<Buffer> {
    const cached = this.cache?.read(offset, bytes);
    if (cached) return Promise.resolve(cached);
    const cache = this.cache;
    if (cache && bytes <= MAX_CACHED_READ_BYTES) {
      // Read whole pages so they can be kept; return the part asked for.
      const start = offset - (offset % CACHE_PAGE_BYTES);
      const end = Math.min(this.sizeBytes, Math.ceil((offset + bytes) / CACHE_PAGE_BYTES) * CACHE_PAGE_BYTES);
      const generation = cache.generation;
      return this.readFile(start, end - start).then((pages) => {
        cache.fill(start, pages, generation);
        return pages.subarray(offset - start, offset - start + bytes);
      });
    }
    return this.readFile(offset, bytes);
  }

  private readFile(offset: number, bytes: number): Promise<Buffer> {
    return this.track(
      (async () => {
        const buf = Buffer.allocUnsafe(bytes);
        let done = 0;
        while (done < bytes) {
          const bytesRead = await readAt(this.fh.fd, buf, done, bytes - done, offset + done);
          if (bytesRead === 0) {
            buf.fill(0, done);
            break;
          }
          done += bytesRead;
        }
        return buf;
      })(),
    );
  }

  /** Write all of `data` at `offset`; resolves after every byte went through write(). */
  write(offset: number, data: Buffer): Promise<void> {
    this.cache?.bump();
    return this.track(
      (async () => {
        try {
          let done = 0;
          while (done < data.length) {
            const bytesWritten = await writeAt(this.fh.fd, data, done, data.length - done, offset + done);
            done += bytesWritten;
          }
          this.cache?.written(offset, data);
        } finally {
          this.cache?.bump();
        }
      })(),
    );
  }

  writeZeroes(offset: number, bytes: number): Promise<void> {
    return this.track(
      (async () => {
        for (let done = 0; done < bytes; ) {
          const n = Math.min(ZERO_CHUNK_BYTES, bytes - done);
          await this.write(offset + done, n === ZERO_CHUNK_BYTES ? zeros() : zeros().subarray(0, n));
          done += n;
        }
      })(),
    );
  }

  flush(): Promise<void> {
    return this.track(this.fh.datasync());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
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

// The callback forms of read/write on the handle's descriptor: measured at about half the cost of
// FileHandle.read/write per call (the promise API adds its own bookkeeping on every I/O).
function readAt(fd: number, buf: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fsRead(fd, buf, at, length, position, (e, n) => (e ? reject(e) : resolve(n))));
}

function writeAt(fd: number, buf: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fsWrite(fd, buf, at, length, position, (e, n) => (e ? reject(e) : resolve(n))));
}
