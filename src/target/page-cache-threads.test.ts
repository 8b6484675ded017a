/**
 * One page cache used by several threads at once: worker threads read (and fill) while this
 * thread writes whole pages through it; no read may ever return a torn page, and once the writes
 * stop every thread reads the last version.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CACHE_PAGE_BYTES, PageCache } from './page-cache.js';

const PAGES = 32;

describe('page cache shared between threads', () => {
  it('never returns a torn page to a reader on another thread while pages are written and evicted', async () => {
    // Fewer slots than pages: fills evict, so slots are reused under the readers.
    const cache = new PageCache(12);
    const file = Buffer.alloc(PAGES * CACHE_PAGE_BYTES);
    const pageCacheUrl = new URL('./page-cache.js', import.meta.url).href;
    const reader = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(pageCacheUrl)}).then(({ PageCache, CACHE_PAGE_BYTES }) => {
        const cache = PageCache.attach(workerData.shared);
        const file = Buffer.from(workerData.file);
        const flag = new Int32Array(workerData.stop);
        const dest = Buffer.alloc(CACHE_PAGE_BYTES);
        let hits = 0, fills = 0, torn = 0, x = workerData.seed;
        Atomics.add(flag, 1, 1);
        while (Atomics.load(flag, 0) === 0) {
          x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
          const p = (x >>> 0) % ${PAGES};
          if (cache.readInto(p * CACHE_PAGE_BYTES, CACHE_PAGE_BYTES, dest, 0)) {
            hits++;
            if (dest.some((b) => b !== dest[0])) torn++;
          } else {
            // A miss, as a worker serves it: read the "file", then fill if no write overlapped.
            const g = cache.generation;
            const page = Buffer.from(file.subarray(p * CACHE_PAGE_BYTES, (p + 1) * CACHE_PAGE_BYTES));
            if (page.every((b) => b === page[0])) { cache.fill(p * CACHE_PAGE_BYTES, page, g); fills++; }
          }
        }
        parentPort.postMessage({ hits, fills, torn });
      });
    `;
    const fileShared = new SharedArrayBuffer(file.length);
    const fileView = Buffer.from(fileShared);
    const stop = new SharedArrayBuffer(8);
    const flags = new Int32Array(stop);
    const workers = [1, 2].map(
      (seed) =>
        new Promise<{ hits: number; fills: number; torn: number }>((resolve, reject) => {
          const w = new Worker(reader, { eval: true, workerData: { shared: cache.shareable(), file: fileShared, stop, seed } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    // The writer: whole pages with a new version byte, through the file then the cache (as namespace.ts).
    while (Atomics.load(flags, 1) < 2) await new Promise((r) => setTimeout(r, 5));
    const until = performance.now() + 800;
    for (let version = 1; version <= 3000 || performance.now() < until; version++) {
      const p = version % PAGES;
      const page = Buffer.alloc(CACHE_PAGE_BYTES, version & 0xff);
      cache.bump();
      page.copy(fileView, p * CACHE_PAGE_BYTES);
      cache.written(p * CACHE_PAGE_BYTES, page);
      if (version % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    Atomics.store(flags, 0, 1);
    const results = await Promise.all(workers);
    for (const r of results) assert.equal(r.torn, 0, JSON.stringify(results));
    assert.ok(
      results.every((r) => r.hits > 100 && r.fills > 10),
      JSON.stringify(results),
    );
    // Coherent afterwards: every cached page is the file's.
    const dest = Buffer.alloc(CACHE_PAGE_BYTES);
    for (let p = 0; p < PAGES; p++) {
      if (cache.readInto(p * CACHE_PAGE_BYTES, CACHE_PAGE_BYTES, dest, 0)) {
        assert.ok(dest.equals(fileView.subarray(p * CACHE_PAGE_BYTES, (p + 1) * CACHE_PAGE_BYTES)), `page ${p}`);
      }
    }
  });
});
