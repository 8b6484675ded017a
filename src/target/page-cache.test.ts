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

  it('keeps no more than its page budget, evicting the least recently used', () => {
    const cache = new PageCache(2);
    for (let p = 0; p < 3; p++) cache.fill(p * CACHE_PAGE_BYTES, Buffer.alloc(CACHE_PAGE_BYTES, p), cache.generation);
    assert.equal(cache.size, 2);
    assert.equal(cache.read(0, 1), undefined);
    assert.deepEqual(cache.read(2 * CACHE_PAGE_BYTES, 1), Buffer.from([2]));
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
});
