/**
 * One hash map hammered by several threads at once (workers and this one): lookups never see a torn
 * or foreign value, every result is one Linux allows, and afterwards the index is intact (no entry
 * lost or duplicated, no slot leaked).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  badValue,
  HAMMER_KEYS,
  HAMMER_SPEC,
  type HammerResult,
  hammer,
  hammerSandbox,
  hammerValue,
} from './concurrency-fixture.js';
import { BPF_NOEXIST, E2BIG, MapSet } from './map.js';

const WORKERS = 3;
const OPS = 60_000;

describe('hash map under concurrent updates from several threads', () => {
  it('keeps lookups consistent and the index intact', async () => {
    const sandbox = hammerSandbox();
    const maps = new MapSet(sandbox, [HAMMER_SPEC], 2);
    const map = maps.maps[0];
    const fixture = new URL('./concurrency-fixture.js', import.meta.url).href;
    const runner = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(fixture)}).then((m) => parentPort.postMessage(m.hammer(workerData)), (e) => parentPort.postMessage({ errors: [String(e)], ops: {} }));
    `;
    const workers = Array.from(
      { length: WORKERS },
      (_, i) =>
        new Promise<HammerResult>((resolve, reject) => {
          const w = new Worker(runner, {
            eval: true,
            workerData: { memory: sandbox.memory, shared: maps.shareable(), seed: 1000 * (i + 1), ops: OPS },
          });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    // This thread takes part too, in slices so the workers' messages are not held up.
    const mine: HammerResult[] = [];
    for (let slice = 0; slice < 20; slice++) {
      mine.push(hammer({ memory: sandbox.memory, shared: maps.shareable(), seed: 7 + slice, ops: OPS / 20 }));
      await new Promise((r) => setImmediate(r));
    }
    const results = [...(await Promise.all(workers)), ...mine];
    assert.deepEqual(
      results.flatMap((r) => r.errors),
      [],
    );
    const total = (name: string) => results.reduce((n, r) => n + (r.ops[name] ?? 0), 0);
    assert.ok(
      total('hit') > 1000 && total('update') > 1000 && total('delete') > 1000 && total('e2big') > 0,
      JSON.stringify(results.map((r) => r.ops)),
    );

    const keys = map.keys().map((k) => new DataView(k.buffer).getUint32(0, true));
    assert.equal(new Set(keys).size, keys.length, 'no key twice');
    assert.ok(keys.length <= HAMMER_SPEC.maxEntries);
    for (const k of keys) {
      const key = new Uint8Array(new Uint32Array([k]).buffer);
      const v = map.lookup(key);
      assert.ok(v !== undefined, `key ${k} listed but not found`);
      assert.equal(badValue(k, v), null);
    }
    // No slot leaked: empty the map, then exactly maxEntries inserts fit.
    for (let k = 0; k < HAMMER_KEYS; k++) map.delete(new Uint8Array(new Uint32Array([k]).buffer));
    for (let k = 0; k < HAMMER_SPEC.maxEntries; k++) {
      assert.equal(map.update(new Uint8Array(new Uint32Array([k]).buffer), hammerValue(k, 1), BPF_NOEXIST), 0, `insert ${k}`);
    }
    assert.equal(map.update(new Uint8Array(new Uint32Array([999]).buffer), hammerValue(999, 1)), -E2BIG);
  });
});
