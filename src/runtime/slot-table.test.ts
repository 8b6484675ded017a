/**
 * The shared slot table: a function's slots taken from several threads at once are never held by
 * two at the same time, none is lost, and the limit holds over all threads together.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { assemble } from '../isa/index.js';
import { releaseSlotOf, StorageFunction, takeSlot } from './storage-function.js';

const SLOTS = 3;

describe('shared slot table', () => {
  it('takes and releases slots in one thread, up to the limit', () => {
    const fn = new StorageFunction({ name: 't', program: assemble('mov %r0, 0\nexit'), slots: SLOTS, threads: 2 });
    const taken = [fn.acquireSlot(), fn.acquireSlot(), fn.acquireSlot()];
    assert.deepEqual(
      taken.map((s) => s?.index),
      [0, 1, 2],
    );
    assert.equal(fn.acquireSlot(), undefined);
    assert.equal(fn.busySlots, SLOTS);
    // Another thread's view of the same table sees them taken.
    const table = new Int32Array(fn.shareable().slotTable);
    assert.equal(takeSlot(table, SLOTS), -1);
    fn.releaseSlot(taken[1] as NonNullable<(typeof taken)[1]>);
    assert.equal(takeSlot(table, SLOTS), 1);
    assert.equal(fn.busySlots, SLOTS);
    assert.equal(table.length, SLOTS + 1, 'one word after the slots for the caller');
  });

  it('names who took a slot, and frees it on their behalf only while they hold it', () => {
    const fn = new StorageFunction({ name: 't', program: assemble('mov %r0, 0\nexit'), slots: SLOTS, threads: 2 });
    const table = new Int32Array(fn.shareable().slotTable);
    const [a, b] = [0x40000101, 0x40000202];
    assert.equal(takeSlot(table, SLOTS, a), 0);
    assert.equal(takeSlot(table, SLOTS, b), 1);
    assert.equal(fn.acquireSlot()?.index, 2);
    assert.deepEqual([...table.subarray(0, SLOTS)], [a, b, 1]);
    assert.equal(fn.busySlots, SLOTS, 'any non-zero word is taken');
    assert.equal(releaseSlotOf(table, 0, b), false, "not b's slot");
    assert.equal(releaseSlotOf(table, 0, a), true);
    assert.equal(releaseSlotOf(table, 0, a), false, 'already free');
    // Taken again by someone else: a late release for a must not free it.
    assert.equal(takeSlot(table, SLOTS, b), 0);
    assert.equal(releaseSlotOf(table, 0, a), false);
    assert.equal(Atomics.load(table, 0), b);
    assert.equal(fn.busySlots, SLOTS);
  });

  it('never gives one slot to two threads at once', async () => {
    const table = new Int32Array(new SharedArrayBuffer(4 * (SLOTS + 1)));
    // holders[i]: threads holding slot i now (must stay 0 or 1); taken: successful takes per thread.
    const holders = new Int32Array(new SharedArrayBuffer(4 * SLOTS));
    const violations = new Int32Array(new SharedArrayBuffer(4));
    const moduleUrl = new URL('./storage-function.js', import.meta.url).href;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(moduleUrl)}).then(({ takeSlot }) => {
        const { table, holders, violations, slots, rounds } = workerData;
        const t = new Int32Array(table), h = new Int32Array(holders), v = new Int32Array(violations);
        let taken = 0;
        for (let r = 0; r < rounds; r++) {
          const i = takeSlot(t, slots);
          if (i < 0) continue;
          taken++;
          if (Atomics.add(h, i, 1) !== 0) Atomics.add(v, 0, 1);
          Atomics.sub(h, i, 1);
          Atomics.store(t, i, 0);
        }
        parentPort.postMessage(taken);
      });`;
    const takes = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<number>((resolve, reject) => {
            const w = new Worker(code, {
              eval: true,
              workerData: {
                table: table.buffer,
                holders: holders.buffer,
                violations: violations.buffer,
                slots: SLOTS,
                rounds: 100_000,
              },
            });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    assert.equal(violations[0], 0, 'a slot held by two threads at once');
    assert.ok(takes.every((n) => n > 0));
    assert.deepEqual([...table], [0, 0, 0, 0], 'every slot given back');
  });
});
