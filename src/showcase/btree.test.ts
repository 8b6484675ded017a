import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findProgram, loadObject } from '../loader/index.js';
import { DEFAULT_TENANT_LIMITS } from '../runtime/budget.js';
import { executeStorageFunction } from '../runtime/execution.js';
import { MemoryNamespace } from '../runtime/namespace.js';
import { FairScheduler } from '../runtime/scheduler.js';
import { StorageFunction } from '../runtime/storage-function.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import {
  type BtreeLayout,
  batchAtClient,
  buildBtree,
  decodeHeader,
  keyAt,
  lookupAtClient,
  planBtree,
  rangeAtClient,
  VALUE_SIZE_BYTES,
  valueForKey,
} from './btree.js';

const object = loadObject(readFileSync(join(REPO_ROOT, 'examples', 'build', 'btree.o')));
const storageFunction = (name: string) => {
  const program = findProgram(object, name);
  assert.ok(program, name);
  return new StorageFunction({ name, program: program.instructions, slots: 2 });
};

async function treeIn(keyCount: number, depth: number): Promise<{ ns: MemoryNamespace; layout: BtreeLayout }> {
  const { layout } = planBtree(keyCount, depth);
  const bytes = new Uint8Array(layout.totalBytes);
  const built = await buildBtree(keyCount, depth, async (offset, chunk) => bytes.set(chunk, offset), { chunkBytes: 8192 });
  assert.deepEqual(built, layout);
  assert.deepEqual(decodeHeader(bytes.subarray(0, 512)), layout);
  return { ns: new MemoryNamespace(bytes), layout };
}

const scheduler = new FairScheduler();
const limits = DEFAULT_TENANT_LIMITS;

describe('B+-tree', () => {
  it('plans trees of every depth and refuses impossible ones', () => {
    assert.equal(planBtree(31, 1).layout.depth, 1);
    assert.equal(planBtree(1000, 3).layout.depth, 3);
    assert.equal(planBtree(5000, 6).layout.depth, 6);
    assert.throws(() => planBtree(32, 1), /at most 31 keys/);
    assert.throws(() => planBtree(100_000, 2), /more than 2 levels/);
  });

  for (const [keys, depth] of [
    [20, 1],
    [500, 2],
    [3000, 3],
    [3000, 6],
  ] as const) {
    it(`lookups agree with the client-side walk (${keys} keys, depth ${depth})`, async () => {
      const { ns, layout } = await treeIn(keys, depth);
      const read = (o: number, n: number) => ns.read(o, n);
      const lookup = storageFunction('btree_lookup');
      for (const i of [0, 1, Math.floor(keys / 2), keys - 1]) {
        const key = keyAt(i);
        const pushed = await executeStorageFunction(
          lookup,
          { reader: ns, params: [key, BigInt(layout.rootOffset)], tenant: 't' },
          limits,
          scheduler,
        );
        assert.equal(pushed.returnValue, 1n);
        assert.deepEqual(pushed.output, valueForKey(key));
        assert.equal(pushed.stats.steps, depth + 2);
        assert.deepEqual(await lookupAtClient(read, layout, key), valueForKey(key));
      }
      for (const miss of [0n, 2n, keyAt(keys - 1) + 1n]) {
        const pushed = await executeStorageFunction(
          lookup,
          { reader: ns, params: [miss, BigInt(layout.rootOffset)], tenant: 't' },
          limits,
          scheduler,
        );
        assert.equal(pushed.returnValue, 0n);
        assert.equal(await lookupAtClient(read, layout, miss), undefined);
      }
    });
  }

  it('range queries return the pairs of the client-side walk', async () => {
    const { ns, layout } = await treeIn(3000, 3);
    const read = (o: number, n: number) => ns.read(o, n);
    const range = storageFunction('btree_range');
    for (const [lo, hi] of [
      [0n, 20n],
      [101n, 180n],
      [1000n, 5000n],
      [5990n, 7000n],
      [7000n, 8000n],
    ] as const) {
      const input = new Uint8Array(16);
      new DataView(input.buffer).setBigUint64(0, hi, true);
      new DataView(input.buffer).setBigUint64(8, BigInt(layout.leavesEnd), true);
      const pushed = await executeStorageFunction(
        range,
        { reader: ns, params: [lo, BigInt(layout.rootOffset)], input, tenant: 't' },
        limits,
        scheduler,
      );
      const expected = await rangeAtClient(read, layout, lo, hi);
      assert.equal(pushed.returnValue, BigInt(expected.length), `[${lo}, ${hi})`);
      const view = new DataView(pushed.output.buffer);
      expected.forEach((pair, k) => {
        const at = k * (8 + VALUE_SIZE_BYTES);
        assert.equal(view.getBigUint64(at, true), pair.key);
        assert.deepEqual(pushed.output.subarray(at + 8, at + 8 + VALUE_SIZE_BYTES), pair.value);
      });
    }
  });

  it('batches of lookups fan out, one step per level', async () => {
    const { ns, layout } = await treeIn(3000, 4);
    const read = (o: number, n: number) => ns.read(o, n);
    const keys = Array.from({ length: 32 }, (_, i) => (i % 5 === 0 ? BigInt(i * 40) : keyAt(i * 90)));
    const input = new Uint8Array(keys.length * 8);
    keys.forEach((k, i) => {
      new DataView(input.buffer).setBigUint64(i * 8, k, true);
    });
    const pushed = await executeStorageFunction(
      storageFunction('btree_batch'),
      { reader: ns, params: [0n, BigInt(layout.rootOffset)], input, tenant: 't' },
      limits,
      scheduler,
    );
    const expected = await batchAtClient(read, layout, keys);
    assert.equal(pushed.returnValue, BigInt(expected.filter(Boolean).length));
    assert.equal(pushed.stats.steps, layout.depth + 2);
    const view = new DataView(pushed.output.buffer);
    expected.forEach((value, k) => {
      const at = k * (16 + VALUE_SIZE_BYTES);
      assert.equal(view.getBigUint64(at, true), keys[k]);
      assert.equal(view.getBigUint64(at + 8, true), value ? 1n : 0n);
      if (value) assert.deepEqual(pushed.output.subarray(at + 16, at + 16 + VALUE_SIZE_BYTES), value);
    });
  });
});
