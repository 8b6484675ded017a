/**
 * Executions started on I/O threads go straight to the execution workers (no hop through the main
 * thread), with every rule the main thread applies: a tenant's programs only, its concurrency limit
 * over all paths together, its budget, statuses and Get Message as on the main thread, statistics
 * and unloads seen from every path, and a worker that dies failing only its own executions.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient, ProgramCommandError } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { SPIN_STEPS_ASM } from '../testing/storage-programs.js';
import { SUBNQN, startTestTarget, type TestTarget, waitFor } from './test-helpers.js';

const REPO_ROOT = join(new URL('.', import.meta.url).pathname, '..', '..');
const TENANT = 'nqn.2014-08.org.nvmexpress:uuid:10e40000-0000-4000-8000-0000000000a1';
const OTHER = 'nqn.2014-08.org.nvmexpress:uuid:10e40000-0000-4000-8000-0000000000b2';
const MAX_CONCURRENT = 2;

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => (e instanceof ProgramCommandError ? e.status : String(e)),
  );

describe('executions started on I/O threads', () => {
  let t: TestTarget;
  let paths: NvmeTcpHost[];
  let programs: ProgramClient[];

  before(async () => {
    t = await startTestTarget({
      ioThreads: 2,
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: 0 },
      ],
      programs: { executionWorkers: 2, defaults: { maxSteps: 2000, maxConcurrentExecutions: MAX_CONCURRENT } },
    });
    // One host, one association per port: a path on each I/O thread.
    paths = await Promise.all(
      t.addresses.map((a) =>
        NvmeTcpHost.connect({ host: '127.0.0.1', port: a.port, subsystemNqn: SUBNQN, hostNqn: TENANT, ioQueues: 2 }),
      ),
    );
    programs = paths.map((p) => new ProgramClient(p));
  });
  after(async () => {
    for (const p of paths ?? []) await p.close();
    await t?.cleanup();
  });

  it('run on the workers without the main thread, and every path sees the same program, map and statistics', async () => {
    const pool = t.target.programs.pool;
    assert.ok(pool !== undefined);
    const handle = await programs[0].load(readFileSync(join(REPO_ROOT, 'examples', 'build', 'counter.o')), { name: 'counter' });
    const before = pool.completed().reduce((a, b) => a + b, 0);
    const key = 77n;
    for (let i = 0; i < 10; i++) {
      const r = await programs[i % 2].execute(handle, { nsid: 1, params: [key, 0n] });
      assert.equal(r.returnValue, BigInt(i + 1));
    }
    // The main thread's own producer completed none of them: each I/O thread submitted its own.
    assert.equal(
      pool.completed().reduce((a, b) => a + b, 0),
      before,
    );
    for (const p of programs) {
      const [entry] = await p.mapEntries(handle, 0);
      assert.equal(entry.value.readBigUInt64LE(), 10n);
      const listed = (await p.list()).find((e) => e.handle === handle);
      assert.equal(listed?.executions, 10, 'statistics of executions started on either I/O thread');
    }
    await programs[1].unload(handle);
    await assert.rejects(programs[0].execute(handle, { nsid: 1, params: [key, 0n] }), (e: unknown) => {
      assert.ok(e instanceof ProgramCommandError);
      assert.equal(e.status, 'UnknownProgram');
      return true;
    });
  });

  it("hold the tenant's concurrency limit over all paths together", async () => {
    const spin = await programs[0].load(encodeProgram(assemble(SPIN_STEPS_ASM)), { name: 'spin-limit' });
    // Long executions (1500 steps of ~80,000 instructions): all six are in before any ends.
    const running = Array.from({ length: 6 }, (_, i) => outcome(programs[i % 2].execute(spin, { nsid: 1, params: [1500n, 0n] })));
    const outcomes = await Promise.all(running);
    const ok = outcomes.filter((o) => o === 'ok').length;
    assert.ok(ok >= 1 && ok <= MAX_CONCURRENT, outcomes.join(', '));
    assert.ok(
      outcomes.every((o) => o === 'ok' || o === 'BudgetConcurrentExecutions'),
      outcomes.join(', '),
    );
    await programs[0].unload(spin);
  });

  it('answer a failure with the status and message the main thread gives, counted on every path', async () => {
    const spin = await programs[1].load(encodeProgram(assemble(SPIN_STEPS_ASM)), { name: 'spin-fail' });
    // 3000 steps against a budget of 2000.
    const e = await programs[1].execute(spin, { nsid: 1, params: [3000n, 0n] }).then(
      () => assert.fail('the step budget'),
      (e: unknown) => e,
    );
    assert.ok(e instanceof ProgramCommandError);
    assert.equal(e.status, 'BudgetSteps');
    assert.equal(e.targetCode, 'ERR_BUDGET_EXCEEDED', 'Get Message has what the I/O thread reported');
    const listed = (await programs[0].list()).find((x) => x.handle === spin);
    assert.equal(listed?.failures, 1);
    await programs[1].unload(spin);
  });

  it("refuse another tenant's program on any path", async () => {
    const handle = await programs[0].load(readFileSync(join(REPO_ROOT, 'examples', 'build', 'counter.o')), { name: 'mine' });
    for (const a of t.addresses) {
      const other = await NvmeTcpHost.connect({ host: '127.0.0.1', port: a.port, subsystemNqn: SUBNQN, hostNqn: OTHER });
      try {
        const status = await outcome(new ProgramClient(other).execute(handle, { nsid: 1, params: [1n, 0n] }));
        assert.equal(status, 'UnknownProgram');
      } finally {
        await other.close();
      }
    }
    await programs[0].unload(handle);
  });

  it('fail with ExecutionWorkerFailed when their worker dies, and run again on its replacement', async () => {
    const pool = t.target.programs.pool;
    assert.ok(pool !== undefined);
    const spin = await programs[0].load(encodeProgram(assemble(SPIN_STEPS_ASM)), { name: 'spin-crash' });
    const replaced = pool.replaced;
    const running = [0, 1].map((i) => outcome(programs[i].execute(spin, { nsid: 1, params: [1500n, 0n] })));
    await waitFor(() => pool.inflight().some((n) => n > 0), 'an execution on a worker');
    const busy = pool.inflight().findIndex((n) => n > 0);
    await pool.crashForTest(busy);
    const outcomes = await Promise.all(running);
    assert.ok(outcomes.includes('ExecutionWorkerFailed'), outcomes.join(', '));
    assert.ok(
      outcomes.every((o) => o === 'ok' || o === 'ExecutionWorkerFailed'),
      outcomes.join(', '),
    );
    await waitFor(() => pool.replaced === replaced + 1, 'the replacement');
    // The failed executions gave their slots back (the limit is 2), and the workers run what both
    // I/O threads submit.
    for (let round = 0; round < 3; round++) {
      const again = await Promise.all([0, 1].map((i) => programs[i].execute(spin, { nsid: 1, params: [2n, 0n] })));
      assert.equal(again.length, 2);
    }
    await programs[1].unload(spin);
  });

  // Last: it ends the first I/O thread.
  it('give back the slots of an I/O thread that dies with executions in flight', async () => {
    const pool = t.target.programs.pool;
    assert.ok(pool !== undefined);
    const spin = await programs[1].load(encodeProgram(assemble(SPIN_STEPS_ASM)), { name: 'spin-orphan' });
    const fn = t.target.programs.runtime.functionOf(TENANT, 'spin-orphan');
    assert.ok(fn !== undefined);
    // Both slots taken by executions the first I/O thread started.
    const running = [0, 1].map(() => outcome(programs[0].execute(spin, { nsid: 1, params: [1500n, 0n] })));
    await waitFor(() => fn.busySlots === MAX_CONCURRENT, 'both slots taken');
    const threads = (t.target as unknown as { ioThreads: { workers: { terminate(): Promise<number> }[] } }).ioThreads;
    await threads.workers[0].terminate();
    await Promise.all(running);
    // The workers give the slots back as those executions end (or the pool does, for those ended).
    await waitFor(() => fn.busySlots === 0, "the dead thread's slots given back", 6000);
    const again = await Promise.all([0, 1].map(() => programs[1].execute(spin, { nsid: 1, params: [2n, 0n] })));
    assert.equal(again.length, MAX_CONCURRENT);
    await programs[1].unload(spin);
  });

  // Last: it ends the second I/O thread and both workers.
  it('give back the slots of executions whose I/O thread and worker die together', async () => {
    const pool = t.target.programs.pool;
    assert.ok(pool !== undefined);
    const spin = await programs[1].load(encodeProgram(assemble(SPIN_STEPS_ASM)), { name: 'spin-both' });
    const fn = t.target.programs.runtime.functionOf(TENANT, 'spin-both');
    assert.ok(fn !== undefined);
    const running = [0, 1].map(() => outcome(programs[1].execute(spin, { nsid: 1, params: [1500n, 0n] })));
    await waitFor(() => fn.busySlots === MAX_CONCURRENT, 'both slots taken');
    await waitFor(() => pool.inflight().reduce((a, b) => a + b, 0) === MAX_CONCURRENT, 'both on the workers');
    const replaced = pool.replaced;
    // Only the I/O thread knew which of its executions ran where, and only the workers ran them:
    // with both gone, the pool must find the slots by their owner words.
    const threads = (t.target as unknown as { ioThreads: { workers: { terminate(): Promise<number> }[] } }).ioThreads;
    await Promise.all([threads.workers[1].terminate(), pool.crashForTest(0), pool.crashForTest(1)]);
    await Promise.all(running);
    await waitFor(() => pool.replaced === replaced + 2, 'both workers replaced');
    await waitFor(() => fn.busySlots === 0, 'the slots given back', 600);
  });
});
