import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Namespace } from './namespace.js';
import { CACHE_PAGE_BYTES, PageCache } from './page-cache.js';

describe('page cache', () => {
  it('serves reads spanning cached pages and misses otherwise', () => {
    const cache = new PageCache(4);
    const data = randomBytes(2 * CACHE_PAGE_BYTES);
    assert.equal(cache.read(100, 10), undefined);
    cache.fill(0, data, cache.generation);
    assert.deepEqual(cache.read(4000, 200), data.subarray(4000, 4200));
    assert.equal(cache.read(8000, 200), undefined, 'page 2 was never read');
  });

  it('keeps no more than its page budget, evicting by CLOCK: a page hit since the hand passed survives', () => {
    const cache = new PageCache(2);
    for (let p = 0; p < 3; p++) cache.fill(p * CACHE_PAGE_BYTES, Buffer.alloc(CACHE_PAGE_BYTES, p), cache.generation);
    assert.equal(cache.size, 2);
    assert.equal(cache.read(0, 1), undefined);
    assert.deepEqual(cache.read(2 * CACHE_PAGE_BYTES, 1), Buffer.from([2]));
    // Pages 1 and 2 cached, page 2 just referenced: filling page 3 evicts page 1, not page 2.
    cache.fill(3 * CACHE_PAGE_BYTES, Buffer.alloc(CACHE_PAGE_BYTES, 3), cache.generation);
    assert.equal(cache.read(CACHE_PAGE_BYTES, 1), undefined);
    assert.deepEqual(cache.read(2 * CACHE_PAGE_BYTES, 1), Buffer.from([2]));
    assert.deepEqual(cache.read(3 * CACHE_PAGE_BYTES, 1), Buffer.from([3]));
  });

  it('matches a model under random fills, writes and reads (views, copies, page-crossing ranges)', () => {
    const pages = 12;
    const cache = new PageCache(8);
    const model = Buffer.alloc(pages * CACHE_PAGE_BYTES);
    let seed = 99;
    const next = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let i = 0; i < 3000; i++) {
      const op = next(3);
      if (op === 0) {
        const p = next(pages - 2);
        const n = 1 + next(2);
        cache.fill(p * CACHE_PAGE_BYTES, model.subarray(p * CACHE_PAGE_BYTES, (p + n) * CACHE_PAGE_BYTES), cache.generation);
      } else if (op === 1) {
        const data = randomBytes(1 + next(9000));
        const at = next(model.length - data.length);
        data.copy(model, at);
        cache.written(at, data);
      } else {
        const length = 1 + next(next(4) === 0 ? 20000 : 5000);
        const at = next(model.length - length);
        const view = cache.view(at, length);
        if (view) assert.ok(view.equals(model.subarray(at, at + length)), `view at ${at}+${length}`);
        const dest = Buffer.alloc(length + 3);
        if (cache.readInto(at, length, dest, 3)) assert.ok(dest.subarray(3).equals(model.subarray(at, at + length)));
        assert.equal(view !== undefined, cache.covers(at, length));
      }
      assert.ok(cache.size <= 8);
    }
    assert.ok(cache.hits > 100 && cache.misses > 100, `hits ${cache.hits} misses ${cache.misses}`);
  });

  it('does not keep a read that a write overlapped, and updates pages on write', () => {
    const cache = new PageCache(4);
    const before = cache.generation;
    cache.bump(); // a write started while the read was in flight
    cache.fill(0, Buffer.alloc(CACHE_PAGE_BYTES, 1), before);
    assert.equal(cache.size, 0);
    cache.fill(0, Buffer.alloc(CACHE_PAGE_BYTES, 1), cache.generation);
    cache.written(10, Buffer.from([9, 9]));
    assert.deepEqual(cache.read(9, 4), Buffer.from([1, 9, 9, 1]));
  });
});

describe('namespace with a page cache', () => {
  let dir: string;
  let ns: Namespace;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearbpf-cache-'));
    ns = await Namespace.open(
      { nsid: 1, path: join(dir, 'ns.img'), sizeBytes: 1 << 20, blockSize: 512 },
      'nqn.test',
      'ns',
      64 * 1024,
    );
  });
  after(async () => {
    await ns.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads what was written, cached or not, under concurrent reads and writes', async () => {
    const model = Buffer.alloc(1 << 20);
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    for (let round = 0; round < 300; round++) {
      const ops: Promise<void>[] = [];
      for (let k = 0; k < 8; k++) {
        // The k-th operation of a round stays in blocks 8k..8k+7: concurrent writes never overlap
        // each other (their order on disk would be undefined), while reads race with them.
        const offset = (k * 8 + (next() % 4)) * 512;
        const length = 512 * (1 + (next() % 4));
        if (next() % 3 === 0) {
          const data = randomBytes(length);
          data.copy(model, offset);
          ops.push(ns.write(offset, data));
        } else {
          // Reads racing with writes to the same pages may see either version; they are checked below.
          ops.push(ns.read((next() % 60) * 512, length).then(() => undefined));
        }
      }
      await Promise.all(ops);
      // With no write in flight, every read must match what was last written.
      for (let k = 0; k < 4; k++) {
        const offset = (next() % 64) * 512;
        assert.deepEqual(await ns.read(offset, 1024), model.subarray(offset, offset + 1024), `round ${round} offset ${offset}`);
      }
    }
    assert.ok(ns.cache && ns.cache.hits > 0, 'the cache served some reads');
  });

  it('reads adjacent misses of one turn with one call, each caller getting its own bytes', async () => {
    const base = 512 * 1024;
    const data = randomBytes(64 * 1024);
    await ns.write(base, data);
    const before = ns.missReads;
    // Out of order, unaligned, adjacent or overlapping: one read of the pages they cover.
    const asks = [
      [base + 8192, 4096],
      [base, 100],
      [base + 4096 + 7, 3000],
      [base + 12288, 8192],
      [base + 2000, 5000],
    ];
    const got = await Promise.all(asks.map(([at, n]) => ns.read(at, n)));
    for (const [i, [at, n]] of asks.entries()) assert.ok(got[i].equals(data.subarray(at - base, at - base + n)), `read ${i}`);
    assert.equal(ns.missReads - before, 1);
    // A far-away miss in the same turn is a read of its own.
    await Promise.all([ns.read(base + 40960, 512), ns.read(base + 49152 + 4096, 512)]);
    assert.equal(ns.missReads - before, 3);
  });
});
