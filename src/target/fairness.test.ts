/**
 * Fairness of the data path: a tenant running long synchronous storage-function chains (thousands
 * of steps, every read in the page cache) must not hold the event loop long enough to hurt another
 * tenant's plain reads. Without bounded turns each chain would hold it for milliseconds at a time;
 * with them the other tenant's read latency stays close to what it is alone. The bounds here are generous
 * (the machine is shared and the figure noisy): `bench:pushdown` reports the exact ratio, whose
 * target is 1.5x. Alone and shared samples alternate in blocks so load drift hits both alike.
 *
 * Run twice: with the steps on the I/O thread (`executionWorkers: 0`), where the turn bounds are
 * what keeps plain reads flowing, and on the default execution workers, where the I/O thread only
 * hands executions off (and the workers run below its priority: thread-priority.test.ts checks that
 * with the kernel). The chains' tenant is a client process of its own (`NoisyTenant`). On a loaded
 * machine the p99 of a few hundred samples is mostly the kernel's preemption, so the median and the
 * p90 are checked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { NoisyTenant } from '../testing/noisy-tenant.js';
import { LIST_WALK_ASM } from '../testing/storage-programs.js';
import { SUBNQN, startTestTarget, type TestTarget } from './test-helpers.js';

const CHAIN_TENANT = 'nqn.2014-08.org.nvmexpress:uuid:fa1r0000-0000-4000-8000-0000000000a1';
const READ_TENANT = 'nqn.2014-08.org.nvmexpress:uuid:fa1r0000-0000-4000-8000-0000000000b2';
const NODES = 4000;
const LIST_AT = 1 << 20;

for (const [mode, workers] of [
  ['steps on the I/O thread', 0],
  ['steps on execution workers', undefined],
] as const) {
  describe(`fairness between tenants (${mode})`, () => {
    let target: TestTarget;
    let reads: NvmeTcpHost;

    before(async () => {
      target = await startTestTarget({
        programs: { ...(workers === undefined ? {} : { executionWorkers: workers }), defaults: { maxSteps: NODES + 10 } },
      });
      reads = await NvmeTcpHost.connect({
        host: '127.0.0.1',
        port: target.address.port,
        subsystemNqn: SUBNQN,
        hostNqn: READ_TENANT,
        ioQueues: 1,
      });
    });
    after(async () => {
      await reads?.close();
      await target?.cleanup();
    });

    it("keeps another tenant's plain-read latency near its value alone while long synchronous chains run", async (t) => {
      // A list of 16-byte nodes {value, next}, contiguous, then read once so the cache holds it.
      const list = Buffer.alloc(NODES * 16);
      for (let i = 0; i < NODES; i++) {
        list.writeBigUInt64LE(BigInt(i), i * 16);
        list.writeBigUInt64LE(i + 1 < NODES ? BigInt(LIST_AT + (i + 1) * 16) : 0n, i * 16 + 8);
      }
      await reads.write(1, LIST_AT / 512, list);
      await reads.read(1, LIST_AT / 512, list.length / 512);
      // The chains' tenant is a client process of its own: the reads' latency is then not this
      // process's work on the chains' completions too (the target still shares this process).
      const chains = await NoisyTenant.start({
        host: '127.0.0.1',
        port: target.address.port,
        subsystemNqn: SUBNQN,
        hostNqn: CHAIN_TENANT,
        image: encodeProgram(assemble(LIST_WALK_ASM)),
        name: 'walk',
        nsid: 1,
        params: [BigInt(LIST_AT), 0n],
        maxOutputBytes: 8,
        outstanding: 4,
        expectReturn: BigInt((NODES * (NODES - 1)) / 2),
      });
      try {
        const sample = async (n: number, into: number[]) => {
          for (let i = 0; i < n; i++) {
            const t0 = performance.now();
            await reads.read(1, 4096 + ((i * 7) % 1024), 8);
            into.push(performance.now() - t0);
          }
        };
        const alone: number[] = [];
        const shared: number[] = [];
        let executions = 0;
        for (let block = 0; block < 4; block++) {
          await sample(100, alone);
          await chains.run();
          await sample(100, shared);
          executions += (await chains.pause()).executions;
        }
        const at = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)];
        const [aloneP50, sharedP50] = [at(alone, 0.5), at(shared, 0.5)];
        const [aloneP90, sharedP90] = [at(alone, 0.9), at(shared, 0.9)];
        const [aloneP99, sharedP99] = [at(alone, 0.99), at(shared, 0.99)];
        const figures = `p50 ${sharedP50.toFixed(2)} ms next to the chains, ${aloneP50.toFixed(2)} ms alone; p90 ${sharedP90.toFixed(2)} vs ${aloneP90.toFixed(2)} ms; p99 ${sharedP99.toFixed(2)} vs ${aloneP99.toFixed(2)} ms; ${executions} executions`;
        t.diagnostic(figures);
        assert.ok(executions >= 4, `the chains ran (${executions} executions of ${NODES + 1} steps)`);
        // Generous, for a loaded machine; the p90, not the p99: at load 7-12 the p99 of 400 reads is
        // another process's burst as often as not (4-22 ms alone), while the p90 separates the cases
        // by far. With unbounded turns (maxTurnMicros 1 s) on the I/O thread, a 4000-step chain holds
        // the loop for milliseconds: p90 28-61 ms against 0.25-1.0 ms alone (5 of 5 runs fail, load 7); bounded
        // turns give 2.1-4.4 ms against 0.6-1.8 ms. bench:pushdown reports the p99 ratios.
        assert.ok(sharedP50 <= 4 * aloneP50 + 1, figures);
        assert.ok(sharedP90 <= 3 * aloneP90 + 8, figures);
      } finally {
        await chains.close();
      }
    });
  });
}
