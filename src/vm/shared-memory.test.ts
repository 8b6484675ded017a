/**
 * Programs of one shared sandbox running on several threads at once: eBPF atomics must be atomic
 * across threads (Wasm atomic instructions), plain stores stay plain, and each thread's stack is its own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { assemble } from '../isa/index.js';
import { createSandbox } from './engine.js';
import { helperTable } from './helpers.js';
import { JitEngine, JitProgram } from './jit/engine.js';
import { COUNTING_PROGRAM, REGIONS, COUNTING_ROUNDS as ROUNDS } from './shared-memory-fixture.js';

describe('shared sandbox memory across threads', () => {
  for (const compiledOnce of [false, true]) {
    it(`the JIT over a shared memory keeps eBPF atomics atomic between threads (${compiledOnce ? 'compiled once, the module posted to the threads' : 'each thread compiles'})`, async () => {
      const sandbox = createSandbox(REGIONS, { shared: true });
      assert.ok(sandbox.shared);
      const counters = sandbox.address(3);
      const jit = compiledOnce
        ? (
            await JitProgram.compileAsync(COUNTING_PROGRAM, { helpers: helperTable([]), memory: sandbox, memoryMode: 'verified' })
          ).shareable()
        : undefined;
      const moduleUrl = new URL('./shared-memory-fixture.js', import.meta.url).href;
      const runner = `
        const { workerData, parentPort } = require('node:worker_threads');
        import(${JSON.stringify(moduleUrl)}).then((m) => parentPort.postMessage(m.runCounting(workerData)), (e) => parentPort.postMessage(String(e)));
      `;
      const results = await Promise.all(
        [1, 2].map(
          (stackRegionId) =>
            new Promise<unknown>((resolve, reject) => {
              const w = new Worker(runner, { eval: true, workerData: { memory: sandbox.memory, stackRegionId, counters, jit } });
              w.once('message', resolve);
              w.once('error', reject);
            }),
        ),
      );
      assert.deepEqual(results, [String(ROUNDS), String(ROUNDS)]);
      const view = new DataView(sandbox.memory.buffer, counters, 64);
      assert.equal(view.getBigUint64(0, true), BigInt(2 * ROUNDS), 'u64 counter');
      assert.equal(view.getUint32(8, true), 2 * ROUNDS, 'u32 counter');
      // Each thread's last plain store landed in its own slot.
      assert.equal(view.getBigUint64(16, true), BigInt(ROUNDS - 1));
      assert.equal(view.getBigUint64(24, true), BigInt(ROUNDS - 1));
    });
  }

  it('a misaligned atomic on a shared memory behaves as on an unshared one (plain sequence)', () => {
    const run = (shared: boolean) => {
      const sandbox = createSandbox(REGIONS, { shared });
      const engine = new JitEngine(assemble('mov %r4, 5\nlock fetch add [%r1+3], %r4\nmov %r0, %r4\nexit'), {
        helpers: helperTable([]),
        memory: sandbox,
      });
      sandbox.bytes(3).set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      const { r0 } = engine.run([BigInt(sandbox.address(3))], { fuel: 100 });
      return [r0, [...sandbox.bytes(3).subarray(0, 12)]];
    };
    assert.deepEqual(run(true), run(false));
  });
});
