/**
 * A bounded, write-through cache of a namespace's 4 KiB pages. Storage functions read small
 * pieces (a 512-byte node, a 64-byte value) one dependent step after another, and hosts re-read hot
 * blocks; served from memory, a read is answered in the same event-loop turn instead of after a trip
 * through the thread pool. Writes go to the file first and then update the pages they overlap, so the
 * cache never holds data the file does not.
 *
 * Layout: every page lives in one slab allocated up front (`maxPages` x 4 KiB, committed by the OS
 * only as it is touched); a Map from page number to slot is the index, and eviction is CLOCK over
 * the slots (a referenced bit per slot, set by hits, cleared as the hand passes). A hit costs one Map
 * lookup per page and a copy, never an allocation or a reordering.
 *
 * A read that missed fills the cache only if no write started or finished while it was in flight
 * (a generation counter bumped at both ends of every write): otherwise its data may predate the
 * write and is returned to its caller but not kept.
 */

export const CACHE_PAGE_BYTES = 4096;
const EMPTY = -1;

export class PageCache {
  /** Page `slot` occupies bytes [slot * 4096, (slot + 1) * 4096). */
  readonly slab: Buffer;
  private readonly index = new Map<number, number>();
  /** Page number held by each slot (EMPTY if none). Float64: page numbers beyond 2^31 are valid. */
  private readonly pageOfSlot: Float64Array;
  private readonly referenced: Uint8Array;
  private hand = 0;
  private used = 0;
  private gen = 0;
  /** Reused for hits spanning pages that are not adjacent in the slab (see `view`). */
  private scratch: Buffer | null = null;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(readonly maxPages: number) {
    if (!Number.isSafeInteger(maxPages) || maxPages < 1) throw new RangeError(`maxPages must be >= 1, got ${maxPages}`);
    this.slab = Buffer.allocUnsafeSlow(maxPages * CACHE_PAGE_BYTES);
    this.pageOfSlot = new Float64Array(maxPages).fill(EMPTY);
    this.referenced = new Uint8Array(maxPages);
  }

  get generation(): number {
    return this.gen;
  }

  get size(): number {
    return this.used;
  }

  /** Whether every page of `[offset, offset + length)` is cached (counts neither hit nor miss). */
  covers(offset: number, length: number): boolean {
    if (length <= 0) return false;
    const last = Math.floor((offset + length - 1) / CACHE_PAGE_BYTES);
    for (let p = Math.floor(offset / CACHE_PAGE_BYTES); p <= last; p++) if (!this.index.has(p)) return false;
    return true;
  }

  /**
   * Copy `[offset, offset + length)` into `dest` at `destOffset` if every page is cached; false (and
   * nothing copied) otherwise.
   */
  readInto(offset: number, length: number, dest: Uint8Array, destOffset: number): boolean {
    const first = Math.floor(offset / CACHE_PAGE_BYTES);
    const last = Math.floor((offset + length - 1) / CACHE_PAGE_BYTES);
    if (length <= 0 || last - first >= this.maxPages) return false;
    const slotOfFirst = this.index.get(first);
    if (slotOfFirst === undefined) {
      this.misses++;
      return false;
    }
    if (first === last) {
      // The common case: within one page.
      this.referenced[slotOfFirst] = 1;
      const from = slotOfFirst * CACHE_PAGE_BYTES + (offset - first * CACHE_PAGE_BYTES);
      dest.set(this.slab.subarray(from, from + length), destOffset);
      this.hits++;
      return true;
    }
    for (let p = first + 1; p <= last; p++) {
      if (!this.index.has(p)) {
        this.misses++;
        return false;
      }
    }
    for (let p = first; p <= last; p++) {
      const slot = this.index.get(p) as number;
      this.referenced[slot] = 1;
      const pageStart = p * CACHE_PAGE_BYTES;
      const from = Math.max(offset, pageStart);
      const to = Math.min(offset + length, pageStart + CACHE_PAGE_BYTES);
      const at = slot * CACHE_PAGE_BYTES + (from - pageStart);
      dest.set(this.slab.subarray(at, at + (to - from)), destOffset + (from - offset));
    }
    this.hits++;
    return true;
  }

  /**
   * The cached bytes of `[offset, offset + length)` as a view that is valid only until the cache is
   * next used (the caller copies it before returning to the event loop), or undefined on a miss.
   * Within one page the view is the slab itself; otherwise a reused scratch buffer.
   */
  view(offset: number, length: number): Buffer | undefined {
    const first = Math.floor(offset / CACHE_PAGE_BYTES);
    if (length > 0 && Math.floor((offset + length - 1) / CACHE_PAGE_BYTES) === first) {
      const slot = this.index.get(first);
      if (slot === undefined) {
        this.misses++;
        return undefined;
      }
      this.referenced[slot] = 1;
      this.hits++;
      const from = slot * CACHE_PAGE_BYTES + (offset - first * CACHE_PAGE_BYTES);
      return this.slab.subarray(from, from + length);
    }
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
    if (generationAtStart !== this.gen || offset % CACHE_PAGE_BYTES !== 0) return;
    for (let at = 0; at + CACHE_PAGE_BYTES <= data.length; at += CACHE_PAGE_BYTES) {
      const p = (offset + at) / CACHE_PAGE_BYTES;
      let slot = this.index.get(p);
      if (slot === undefined) {
        slot = this.victim();
        this.index.set(p, slot);
        this.pageOfSlot[slot] = p;
        this.referenced[slot] = 0;
      }
      this.slab.set(data.subarray(at, at + CACHE_PAGE_BYTES), slot * CACHE_PAGE_BYTES);
    }
  }

  /** A free slot, or the first unreferenced one under the clock hand (evicting its page). */
  private victim(): number {
    if (this.used < this.maxPages) return this.used++;
    for (;;) {
      const slot = this.hand;
      this.hand = slot + 1 === this.maxPages ? 0 : slot + 1;
      if (this.referenced[slot] === 1) {
        this.referenced[slot] = 0;
        continue;
      }
      this.index.delete(this.pageOfSlot[slot]);
      this.pageOfSlot[slot] = EMPTY;
      this.evictions++;
      return slot;
    }
  }

  /** A write is about to start, or has finished: reads in flight must not fill. */
  bump(): void {
    this.gen++;
  }

  /** `data` now lies at `offset` in the file: update the cached pages it overlaps. */
  written(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const first = Math.floor(offset / CACHE_PAGE_BYTES);
    const last = Math.floor((offset + data.length - 1) / CACHE_PAGE_BYTES);
    // A large write over a sparse cache: walk the cached pages, not the written ones.
    if (last - first > this.used) {
      for (const [p, slot] of this.index) if (p >= first && p <= last) this.copyIn(p, slot, offset, data);
      return;
    }
    for (let p = first; p <= last; p++) {
      const slot = this.index.get(p);
      if (slot !== undefined) this.copyIn(p, slot, offset, data);
    }
  }

  private copyIn(p: number, slot: number, offset: number, data: Uint8Array): void {
    const pageStart = p * CACHE_PAGE_BYTES;
    const from = Math.max(offset, pageStart);
    const to = Math.min(offset + data.length, pageStart + CACHE_PAGE_BYTES);
    this.slab.set(data.subarray(from - offset, to - offset), slot * CACHE_PAGE_BYTES + (from - pageStart));
  }
}
