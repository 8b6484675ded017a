/**
 * A bounded, write-through cache of a namespace's 4 KiB pages, shared by every thread that serves
 * the namespace (I/O threads, execution workers). Storage functions read small pieces (a 512-byte
 * node, a 64-byte value) one dependent step after another, and hosts re-read hot blocks; served
 * from memory, a read is answered in the same turn instead of after a trip through the thread pool.
 * Writes go to the file first and then update the pages they overlap, so the cache never holds data
 * the file does not.
 *
 * Layout, all in SharedArrayBuffers (`shareable()` / `PageCache.attach` in another thread):
 *
 *     slab      maxPages x 4 KiB (committed by the OS only as pages are touched)
 *     words     [lock, seq, gen, hand, used, owner, hits, misses, evictions] then
 *               buckets (head slot per bucket, -1 empty) and next (chain per slot)
 *     pages     page number held by each slot (Float64: page numbers beyond 2^31 are valid; -1 none)
 *     ref       CLOCK referenced bit per slot
 *
 * Writers (fill, written, eviction) take the cache's lock and publish every change of the index or
 * of a cached page between two increments of `seq`. Readers take no lock: they find the slots, copy,
 * and retry if `seq` moved meanwhile (a seqlock), so a copy is never torn by a concurrent writer.
 *
 * A read that missed fills the cache only if no write started or finished while it was in flight
 * (`gen`, bumped when a write starts and, under the lock, together with the update of the pages it
 * wrote): otherwise its data may predate the write and is returned to its caller but not kept.
 */
import { threadId } from 'node:worker_threads';

export const CACHE_PAGE_BYTES = 4096;
const EMPTY = -1;

const W_LOCK = 0;
const W_SEQ = 1;
const W_GEN = 2;
const W_HAND = 3;
const W_USED = 4;
const W_OWNER = 5;
const W_HITS = 6;
const W_MISSES = 7;
const W_EVICTIONS = 8;
const HEADER_WORDS = 16;
const LOCK_SPINS = 64;
/** Lock-free read attempts before a reader reports a miss (writers kept changing the cache). */
const READ_RETRIES = 16;

/** What another thread needs to attach to a page cache. */
export interface SharedPageCache {
  readonly maxPages: number;
  readonly slab: SharedArrayBuffer;
  readonly words: SharedArrayBuffer;
  readonly pages: SharedArrayBuffer;
  readonly referenced: SharedArrayBuffer;
}

export class PageCache {
  /** Page `slot` occupies bytes [slot * 4096, (slot + 1) * 4096). */
  readonly slab: Buffer;
  readonly maxPages: number;
  private readonly words: Int32Array;
  private readonly bucketMask: number;
  private readonly nextAt: number;
  /** Page number held by each slot (EMPTY if none). */
  private readonly pageOfSlot: Float64Array;
  private readonly referenced: Uint8Array;
  private readonly shared: SharedPageCache;
  /** Reused for hits `view` serves (see there). */
  private scratch: Buffer | null = null;
  /** Reused for the slots of a multi-page read. */
  private readonly slotsOfRead = new Int32Array(MAX_PAGES_PER_READ);

  constructor(maxPagesOrShared: number | SharedPageCache) {
    let shared: SharedPageCache;
    if (typeof maxPagesOrShared === 'number') {
      const maxPages = maxPagesOrShared;
      if (!Number.isSafeInteger(maxPages) || maxPages < 1) throw new RangeError(`maxPages must be >= 1, got ${maxPages}`);
      shared = {
        maxPages,
        slab: new SharedArrayBuffer(maxPages * CACHE_PAGE_BYTES),
        words: new SharedArrayBuffer((HEADER_WORDS + bucketCount(maxPages) + maxPages) * 4),
        pages: new SharedArrayBuffer(maxPages * 8),
        referenced: new SharedArrayBuffer(maxPages),
      };
    } else {
      shared = maxPagesOrShared;
    }
    this.shared = shared;
    this.maxPages = shared.maxPages;
    this.slab = Buffer.from(shared.slab);
    this.words = new Int32Array(shared.words);
    const buckets = bucketCount(this.maxPages);
    this.bucketMask = buckets - 1;
    this.nextAt = HEADER_WORDS + buckets;
    this.pageOfSlot = new Float64Array(shared.pages);
    this.referenced = new Uint8Array(shared.referenced);
    if (typeof maxPagesOrShared === 'number') {
      this.words.fill(EMPTY, HEADER_WORDS);
      this.pageOfSlot.fill(EMPTY);
    }
  }

  /** Attach to a cache another thread created (the same pages, index and counters). */
  static attach(shared: SharedPageCache): PageCache {
    return new PageCache(shared);
  }

  /** What `PageCache.attach` needs in another thread (structured-clonable). */
  shareable(): SharedPageCache {
    return this.shared;
  }

  get generation(): number {
    return Atomics.load(this.words, W_GEN);
  }

  get size(): number {
    return Atomics.load(this.words, W_USED);
  }

  /** Counters of every thread together (unsigned 32-bit: they wrap, which Prometheus takes as a reset). */
  get hits(): number {
    return Atomics.load(this.words, W_HITS) >>> 0;
  }

  get misses(): number {
    return Atomics.load(this.words, W_MISSES) >>> 0;
  }

  get evictions(): number {
    return Atomics.load(this.words, W_EVICTIONS) >>> 0;
  }

  private bucketOf(page: number): number {
    // Pages are integers below 2^53: mix both halves.
    const lo = page >>> 0;
    const hi = (page / 0x1_0000_0000) >>> 0;
    return HEADER_WORDS + ((Math.imul(lo ^ Math.imul(hi, 0x27d4eb2d), 0x9e3779b1) >>> 0) & this.bucketMask);
  }

  /** Slot of `page`, or -1; bounded and checked, so a walk racing a writer (then retried) cannot loop or stray. */
  private slotOf(page: number): number {
    const w = this.words;
    let slot = w[this.bucketOf(page)];
    for (let steps = 0; slot >= 0 && slot < this.maxPages && steps <= this.maxPages; steps++) {
      if (this.pageOfSlot[slot] === page) return slot;
      slot = w[this.nextAt + slot];
    }
    return -1;
  }

  /** Whether every page of `[offset, offset + length)` is cached (counts neither hit nor miss). */
  covers(offset: number, length: number): boolean {
    if (length <= 0) return false;
    const last = Math.floor((offset + length - 1) / CACHE_PAGE_BYTES);
    for (let p = Math.floor(offset / CACHE_PAGE_BYTES); p <= last; p++) if (this.slotOf(p) < 0) return false;
    return true;
  }

  /**
   * Copy `[offset, offset + length)` into `dest` at `destOffset` if every page is cached; false (and
   * `dest` unspecified in that range) otherwise.
   */
  readInto(offset: number, length: number, dest: Uint8Array, destOffset: number): boolean {
    const first = Math.floor(offset / CACHE_PAGE_BYTES);
    const last = Math.floor((offset + length - 1) / CACHE_PAGE_BYTES);
    if (length <= 0 || last - first >= this.maxPages || last - first >= MAX_PAGES_PER_READ) return false;
    const w = this.words;
    const slab = this.slab;
    for (let attempt = 0; attempt < READ_RETRIES; attempt++) {
      const before = Atomics.load(w, W_SEQ);
      if ((before & 1) !== 0) continue;
      if (first === last) {
        // The common case: within one page.
        const slot = this.slotOf(first);
        if (slot < 0) break;
        const from = slot * CACHE_PAGE_BYTES + (offset - first * CACHE_PAGE_BYTES);
        dest.set(slab.subarray(from, from + length), destOffset);
        if (Atomics.load(w, W_SEQ) !== before) continue;
        this.referenced[slot] = 1;
        Atomics.add(w, W_HITS, 1);
        return true;
      }
      const slots = this.slotsOfRead;
      let missing = false;
      for (let p = first; p <= last; p++) {
        const slot = this.slotOf(p);
        if (slot < 0) {
          missing = true;
          break;
        }
        slots[p - first] = slot;
      }
      if (missing) break;
      for (let p = first; p <= last; p++) {
        const slot = slots[p - first];
        const pageStart = p * CACHE_PAGE_BYTES;
        const from = Math.max(offset, pageStart);
        const to = Math.min(offset + length, pageStart + CACHE_PAGE_BYTES);
        const at = slot * CACHE_PAGE_BYTES + (from - pageStart);
        dest.set(slab.subarray(at, at + (to - from)), destOffset + (from - offset));
      }
      if (Atomics.load(w, W_SEQ) !== before) continue;
      for (let p = first; p <= last; p++) this.referenced[slots[p - first]] = 1;
      Atomics.add(w, W_HITS, 1);
      return true;
    }
    Atomics.add(w, W_MISSES, 1);
    return false;
  }

  /**
   * The cached bytes of `[offset, offset + length)` as a view valid only until this thread next calls
   * `view` (the caller copies it before returning to the event loop), or undefined on a miss. A copy
   * into a reused buffer: other threads may change the slab at any time, so no view of it is lent.
   */
  view(offset: number, length: number): Buffer | undefined {
    if (this.scratch === null || this.scratch.length < length) {
      if (length > 16 * CACHE_PAGE_BYTES) {
        const out = Buffer.allocUnsafe(length);
        return this.readInto(offset, length, out, 0) ? out : undefined;
      }
      this.scratch = Buffer.allocUnsafeSlow(16 * CACHE_PAGE_BYTES);
    }
    return this.readInto(offset, length, this.scratch, 0) ? this.scratch.subarray(0, length) : undefined;
  }

  /** The bytes as a buffer of their own if every page is cached (tests and callers that keep the bytes). */
  read(offset: number, length: number): Buffer | undefined {
    const out = Buffer.allocUnsafe(Math.max(0, length));
    return this.readInto(offset, length, out, 0) ? out : undefined;
  }

  /** Keep the whole pages of `data`, read at page-aligned `offset`, if no write overlapped the read. */
  fill(offset: number, data: Uint8Array, generationAtStart: number): void {
    if (offset % CACHE_PAGE_BYTES !== 0 || data.length < CACHE_PAGE_BYTES) return;
    const w = this.words;
    this.lock();
    try {
      for (let at = 0; at + CACHE_PAGE_BYTES <= data.length; at += CACHE_PAGE_BYTES) {
        if (Atomics.load(w, W_GEN) !== generationAtStart) return;
        const p = (offset + at) / CACHE_PAGE_BYTES;
        if (this.slotOf(p) >= 0) continue; // cached meanwhile, and kept current by writes since
        const slot = this.victim();
        // The slot is unlinked: nobody reads it while its page is written.
        this.slab.set(data.subarray(at, at + CACHE_PAGE_BYTES), slot * CACHE_PAGE_BYTES);
        this.referenced[slot] = 0;
        const bucket = this.bucketOf(p);
        Atomics.add(w, W_SEQ, 1);
        this.pageOfSlot[slot] = p;
        w[this.nextAt + slot] = w[bucket];
        w[bucket] = slot;
        Atomics.add(w, W_SEQ, 1);
      }
    } finally {
      this.unlock();
    }
  }

  /** Under the lock: a free slot, or the first unreferenced one under the clock hand, unlinked. */
  private victim(): number {
    const w = this.words;
    const used = w[W_USED];
    if (used < this.maxPages) {
      w[W_USED] = used + 1;
      return used;
    }
    for (;;) {
      const slot = w[W_HAND];
      w[W_HAND] = slot + 1 === this.maxPages ? 0 : slot + 1;
      if (this.referenced[slot] === 1) {
        this.referenced[slot] = 0;
        continue;
      }
      const page = this.pageOfSlot[slot];
      if (page !== EMPTY) {
        const bucket = this.bucketOf(page);
        Atomics.add(w, W_SEQ, 1);
        if (w[bucket] === slot) w[bucket] = w[this.nextAt + slot];
        else {
          let s = w[bucket];
          while (s >= 0 && w[this.nextAt + s] !== slot) s = w[this.nextAt + s];
          if (s >= 0) w[this.nextAt + s] = w[this.nextAt + slot];
        }
        this.pageOfSlot[slot] = EMPTY;
        Atomics.add(w, W_SEQ, 1);
        Atomics.add(w, W_EVICTIONS, 1);
      }
      return slot;
    }
  }

  /** A write is about to start (or ended without `written`): reads in flight must not fill. */
  bump(): void {
    Atomics.add(this.words, W_GEN, 1);
  }

  /**
   * `data` now lies at `offset` in the file: update the cached pages it overlaps and bump the
   * generation, both under the lock, so no fill of older data can slip in between.
   */
  written(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const w = this.words;
    const first = Math.floor(offset / CACHE_PAGE_BYTES);
    const last = Math.floor((offset + data.length - 1) / CACHE_PAGE_BYTES);
    this.lock();
    try {
      Atomics.add(w, W_SEQ, 1);
      // A large write over a sparse cache: walk the cached pages, not the written ones.
      if (last - first > w[W_USED]) {
        for (let slot = 0; slot < w[W_USED]; slot++) {
          const p = this.pageOfSlot[slot];
          if (p !== EMPTY && p >= first && p <= last) this.copyIn(p, slot, offset, data);
        }
      } else {
        for (let p = first; p <= last; p++) {
          const slot = this.slotOf(p);
          if (slot >= 0) this.copyIn(p, slot, offset, data);
        }
      }
      Atomics.add(w, W_SEQ, 1);
      Atomics.add(w, W_GEN, 1);
    } finally {
      this.unlock();
    }
  }

  private copyIn(p: number, slot: number, offset: number, data: Uint8Array): void {
    const pageStart = p * CACHE_PAGE_BYTES;
    const from = Math.max(offset, pageStart);
    const to = Math.min(offset + data.length, pageStart + CACHE_PAGE_BYTES);
    this.slab.set(data.subarray(from - offset, to - offset), slot * CACHE_PAGE_BYTES + (from - pageStart));
  }

  private lock(): void {
    const w = this.words;
    let c = Atomics.compareExchange(w, W_LOCK, 0, 1);
    if (c !== 0) {
      for (let spin = 0; spin < LOCK_SPINS && c !== 0; spin++) c = Atomics.compareExchange(w, W_LOCK, 0, 1);
      while (c !== 0) {
        if (c === 2 || Atomics.compareExchange(w, W_LOCK, 1, 2) !== 0) Atomics.wait(w, W_LOCK, 2, 10);
        c = Atomics.compareExchange(w, W_LOCK, 0, 2);
      }
    }
    w[W_OWNER] = threadId + 1;
  }

  private unlock(): void {
    const w = this.words;
    w[W_OWNER] = 0;
    if (Atomics.sub(w, W_LOCK, 1) !== 1) {
      Atomics.store(w, W_LOCK, 0);
      Atomics.notify(w, W_LOCK, 1);
    }
  }

  /** A thread died, perhaps holding the lock: take it back (see HashMap.recoverLockOf). */
  recoverLockOf(deadThreadId: number): boolean {
    const w = this.words;
    if (Atomics.load(w, W_LOCK) === 0 || w[W_OWNER] !== deadThreadId + 1) return false;
    w[W_OWNER] = 0;
    if ((Atomics.load(w, W_SEQ) & 1) !== 0) Atomics.add(w, W_SEQ, 1);
    Atomics.add(w, W_GEN, 1);
    Atomics.store(w, W_LOCK, 0);
    Atomics.notify(w, W_LOCK);
    return true;
  }
}

/** Pages one cached read may span (reads through the cache are small: see namespace.ts). */
const MAX_PAGES_PER_READ = 64;

function bucketCount(maxPages: number): number {
  let b = 1;
  while (b < maxPages) b *= 2;
  return b;
}
