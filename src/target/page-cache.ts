/**
 * A bounded, write-through cache of a namespace's 4 KiB pages. Storage functions read small
 * pieces (a 512-byte node, a 64-byte value) one dependent step after another; served from memory,
 * a step costs microseconds instead of a trip through the thread pool. Writes go to the file first
 * and then update the pages they overlap, so the cache never holds data the file does not.
 *
 * A read that missed fills the cache only if no write started or finished while it was in flight
 * (a generation counter bumped at both ends of every write): otherwise its data may predate the
 * write and is returned to its caller but not kept.
 */

export const CACHE_PAGE_BYTES = 4096;

export class PageCache {
  /** Insertion order is recency: a hit moves the page to the end, eviction takes the first. */
  private readonly pages = new Map<number, Buffer>();
  private gen = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxPages: number) {}

  get generation(): number {
    return this.gen;
  }

  get size(): number {
    return this.pages.size;
  }

  /** The bytes of `[offset, offset + length)` if every page is cached, else undefined. */
  read(offset: number, length: number): Buffer | undefined {
    const first = Math.floor(offset / CACHE_PAGE_BYTES);
    const last = Math.floor((offset + length - 1) / CACHE_PAGE_BYTES);
    if (length <= 0 || last - first >= this.maxPages) return undefined;
    for (let p = first; p <= last; p++) {
      if (!this.pages.has(p)) {
        this.misses++;
        return undefined;
      }
    }
    const out = Buffer.allocUnsafe(length);
    for (let p = first; p <= last; p++) {
      const page = this.pages.get(p) as Buffer;
      this.pages.delete(p);
      this.pages.set(p, page);
      const pageStart = p * CACHE_PAGE_BYTES;
      const from = Math.max(offset, pageStart);
      const to = Math.min(offset + length, pageStart + CACHE_PAGE_BYTES);
      page.copy(out, from - offset, from - pageStart, to - pageStart);
    }
    this.hits++;
    return out;
  }

  /** Keep the whole pages of `data`, read at page-aligned `offset`, if no write overlapped the read. */
  fill(offset: number, data: Buffer, generationAtStart: number): void {
    if (generationAtStart !== this.gen || offset % CACHE_PAGE_BYTES !== 0) return;
    for (let at = 0; at + CACHE_PAGE_BYTES <= data.length; at += CACHE_PAGE_BYTES) {
      const p = (offset + at) / CACHE_PAGE_BYTES;
      this.pages.delete(p);
      this.pages.set(p, Buffer.from(data.subarray(at, at + CACHE_PAGE_BYTES)));
      if (this.pages.size > this.maxPages) this.pages.delete(this.pages.keys().next().value as number);
    }
  }

  /** A write is about to start, or has finished: reads in flight must not fill. */
  bump(): void {
    this.gen++;
  }

  /** `data` now lies at `offset` in the file: update the cached pages it overlaps. */
  written(offset: number, data: Buffer): void {
    const first = Math.floor(offset / CACHE_PAGE_BYTES);
    const last = Math.floor((offset + data.length - 1) / CACHE_PAGE_BYTES);
    for (let p = first; p <= last && data.length > 0; p++) {
      const page = this.pages.get(p);
      if (!page) continue;
      const pageStart = p * CACHE_PAGE_BYTES;
      const from = Math.max(offset, pageStart);
      const to = Math.min(offset + data.length, pageStart + CACHE_PAGE_BYTES);
      data.copy(page, from - pageStart, from - offset, to - offset);
    }
  }
}
