/**
 * Storage functions on execution workers: steps run off the I/O thread on several workers over
 * shared maps, a worker that dies is replaced (its executions fail with their own status, the
 * target goes on), the hand-off is measured, and a CPU-heavy tenant does not take a victim
 * tenant's plain reads or lookups with it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient, ProgramCommandError } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { NoisyTenant } from '../testing/noisy-tenant.js';
import { LIST_WALK_ASM, SPIN_STEPS_ASM } from '../testing/storage-programs.js';
import { MAX_INLINE_INPUT_BYTES, MAX_INLINE_OUTPUT_BYTES } from './execution-channel.js';
import { SUBNQN, startTestTarget, type TestTarget, waitFor } from './test-helpers.js';

const REPO_ROOT = join(new URL('.', import.meta.url).pathname, '..', '..');
const NOISY = 'nqn.2014-08.org.nvmexpress:uuid:n0150000-0000-4000-8000-0000000000a1';
const VICTIM = 'nqn.2014-08.org.nvmexpress:uuid:v1c70000-0000-4000-8000-0000000000b2';
const ECHO_INPUT_ASM = `
    mov %r6, %r1
    ldxdw %r2, [%r6+48]      # ctx->param1: bytes to emit
    and %r2, 4095
    jeq %r2, 0, none
    ldxdw %r1, [%r6+24]      # ctx->input
    call 101                 # nb_emit(input, r2)
  none:
    ldxdw %r0, [%r6+32]      # ctx->input_len
    exit`;
const u64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};

describe('execution workers', () => {
  let target: TestTarget;
  let host: NvmeTcpHost;
  let programs: ProgramClient;

  before(async () => {
    target = await startTestTarget({ programs: { executionWorkers: 2, defaults: { maxSteps: 2000 } } });
    host = await NvmeTcpHost.connect({
      host: '127.0.0.1',
      port: target.address.port,
      subsystemNqn: SUBNQN,
      hostNqn: NOISY,
      ioQueues: 2,
    });
    programs = new ProgramClient(host);
  });
  after(async () => {
    await host?.close();
    await target?.cleanup();
  });

  it('runs steps on two workers over one map that the host reads and writes', async () => {
    const pool = target.target.programs.pool;
    assert.ok(pool !== undefined);
    const handle = await programs.load(readFileSync(join(REPO_ROOT, 'examples', 'build', 'counter.o')), { name: 'counter' });
    assert.equal(pool.started, 2);
    const before = pool.completed();
    // Distinct keys, 4 at a time: each count is 1 whichever worker ran it.
    const keys = Array.from({ length: 64 }, (_, i) => BigInt(1000 + i));
    for (let i = 0; i < keys.length; i += 4) {
      const rs = await Promise.all(keys.slice(i, i + 4).map((k) => programs.execute(handle, { nsid: 1, params: [k, 0n] })));
      for (const r of rs) assert.equal(r.returnValue, 1n);
    }
    const after = pool.completed();
    assert.ok(after[0] > before[0] && after[1] > before[1], `both workers ran executions: ${before} -> ${after}`);
    const entries = await programs.mapEntries(handle, 0);
    assert.equal(entries.length, keys.length);
    for (const e of entries) assert.equal(e.value.readBigUInt64LE(), 1n);
    // A host update is what the next execution, on any worker, sees.
    await programs.mapUpdate(handle, 0, u64(1000n), u64(41n));
    const rs = await Promise.all([0, 1, 2, 3].map(() => programs.execute(handle, { nsid: 1, params: [1000n, 0n] })));
    // `*v += 1` is a plain read-modify-write: concurrent executions may each see 41 (as in Linux).
    assert.ok(
      rs.every((r) => r.returnValue > 41n && r.returnValue <= 45n),
      rs.map((r) => r.returnValue).join(', '),
    );
    await programs.unload(handle);
  });

  it('replaces a worker that dies: its executions fail with ExecutionWorkerFailed, the target goes on', async () => {
    const pool = target.target.programs.pool;
    assert.ok(pool !== undefined);
    const spin = await programs.load(encodeProgram(assemble(SPIN_STEPS_ASM)), { name: 'spin' });
    const replacedBefore = pool.replaced;
    const running = Array.from({ length: 4 }, () =>
      programs.execute(spin, { nsid: 1, params: [1500n, 0n] }).then(
        () => 'ok',
        (e) => (e instanceof ProgramCommandError ? e.status : String(e)),
      ),
    );
    await waitFor(() => pool.inflight()[0] > 0, 'an execution on worker 0');
    await pool.crashForTest(0);
    const outcomes = await Promise.all(running);
    assert.ok(outcomes.includes('ExecutionWorkerFailed'), outcomes.join(', '));
    assert.ok(
      outcomes.every((o) => o === 'ok' || o === 'ExecutionWorkerFailed'),
      outcomes.join(', '),
    );
    assert.equal(pool.replaced, replacedBefore + 1);
    // The replacement has every program: executions on both workers succeed again.
    const again = await Promise.all(Array.from({ length: 4 }, () => programs.execute(spin, { nsid: 1, params: [2n, 0n] })));
    assert.equal(again.length, 4);
    await programs.unload(spin);
  });

  it('inputs and outputs of every size cross to the worker and back (in ring slots, or by message when larger)', async () => {
    const pool = target.target.programs.pool;
    assert.ok(pool !== undefined);
    // Emits param1 & 4095 bytes of its input region (the input, then zeros) and returns the input's length.
    const echo = await programs.load(encodeProgram(assemble(ECHO_INPUT_ASM)), { name: 'echo' });
    const viaRingBefore = pool.ringCompletions;
    const cases: [number, number][] = [];
    for (const inputBytes of [0, 1, MAX_INLINE_INPUT_BYTES, MAX_INLINE_INPUT_BYTES + 1, 4096]) {
      for (const outputBytes of [0, 8, MAX_INLINE_OUTPUT_BYTES, MAX_INLINE_OUTPUT_BYTES + 1, 4095])
        cases.push([inputBytes, outputBytes]);
    }
    const run = async ([inputBytes, outputBytes]: [number, number]) => {
      const input = Buffer.from(Array.from({ length: inputBytes }, (_, i) => (i * 13 + inputBytes) & 255));
      const r = await programs.execute(echo, { nsid: 1, params: [0n, BigInt(outputBytes)], input, maxOutputBytes: 4096 });
      const what = `${inputBytes}-byte input, ${outputBytes}-byte output`;
      assert.equal(r.returnValue, BigInt(inputBytes), what);
      const expected = Buffer.alloc(outputBytes);
      input.copy(expected, 0, 0, Math.min(inputBytes, outputBytes));
      assert.deepEqual(Buffer.from(r.output), expected, what);
    };
    // Five at a time (the tenant's slots are 8): both paths in flight together.
    for (let i = 0; i < cases.length; i += 5) await Promise.all(cases.slice(i, i + 5).map(run));
    // Small inputs and outputs took the rings.
    assert.ok(pool.ringCompletions - viaRingBefore >= 9, `${pool.ringCompletions - viaRingBefore} completions through the rings`);
    await programs.unload(echo);
  });

  it('measures the hand-off to a worker and back', async (t) => {
    const pool = target.target.programs.pool;
    assert.ok(pool !== undefined);
    for (const via of ['ring', 'message'] as const) {
      const rtts: number[] = [];
      for (let i = 0; i < 200; i++) rtts.push(await pool.pingRoundTrip(i % 2, via));
      rtts.sort((a, b) => a - b);
      t.diagnostic(`hand-off round trip (${via}): p50 ${rtts[100].toFixed(1)} µs, p90 ${rtts[180].toFixed(1)} µs`);
      assert.ok(rtts.every((x) => Number.isFinite(x) && x > 0));
    }
  });

  it('keeps the process alive while a worker has work outstanding, and lets it exit when idle', () => {
    // Nothing but the ping on the event loop: an unref'd worker would let the process exit first.
    const script = `import { ExecutionPool } from ${JSON.stringify(new URL('./execution-pool.js', import.meta.url).href)};
      const pool = new ExecutionPool({ workers: 1 });
      const us = await pool.pingRoundTrip(0);
      console.log(us > 0 ? 'pong' : 'no pong');`;
    const dir = mkdtempSync(join(tmpdir(), 'nearbpf-pool-'));
    const file = join(dir, 'ping.mjs');
    writeFileSync(file, script);
    const child = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'pong', 'and it exits once idle, without close()');
  });

  it("keeps a victim's plain-read and lookup p99 near their values alone next to a CPU-heavy tenant", async (t) => {
    // The default worker count (one per core beyond the first): more busy threads than cores would
    // put the I/O thread itself in the operating system's run queue behind them.
    const target = await startTestTarget({ programs: { defaults: { maxSteps: 2000 } } });
    const victim = await NvmeTcpHost.connect({
      host: '127.0.0.1',
      port: target.address.port,
      subsystemNqn: SUBNQN,
      hostNqn: VICTIM,
      ioQueues: 1,
    });
    // The noisy tenant runs from a client process of its own, so the victim's latency is not this
    // process's work on the noisy completions.
    const noisy = await NoisyTenant.start({
      host: '127.0.0.1',
      port: target.address.port,
      subsystemNqn: SUBNQN,
      hostNqn: NOISY,
      image: encodeProgram(assemble(SPIN_STEPS_ASM)),
      name: 'spin2',
      nsid: 1,
      params: [40n, 0n],
      outstanding: 8,
      ioQueues: 2,
    });
    try {
      const victimPrograms = new ProgramClient(victim);
      // The victim's lookup: a 3-node list walk, cached.
      const LIST_AT = 2 << 20;
      const list = Buffer.alloc(512);
      for (let i = 0; i < 3; i++) {
        list.writeBigUInt64LE(BigInt(i + 1), i * 16);
        list.writeBigUInt64LE(i < 2 ? BigInt(LIST_AT + (i + 1) * 16) : 0n, i * 16 + 8);
      }
      await victim.write(1, LIST_AT / 512, list);
      await victim.read(1, LIST_AT / 512, 1);
      const walk = await victimPrograms.load(encodeProgram(assemble(LIST_WALK_ASM)), { name: 'walk' });
      const sample = async (n: number, reads: number[], lookups: number[]) => {
        for (let i = 0; i < n; i++) {
          let t0 = performance.now();
          await victim.read(1, 4096 + ((i * 7) % 1024), 8);
          reads.push(performance.now() - t0);
          t0 = performance.now();
          const r = await victimPrograms.execute(walk, { nsid: 1, params: [BigInt(LIST_AT), 0n], maxOutputBytes: 8 });
          lookups.push(performance.now() - t0);
          assert.equal(r.returnValue, 6n);
        }
      };
      const alone = { reads: [] as number[], lookups: [] as number[] };
      const shared = { reads: [] as number[], lookups: [] as number[] };
      let executions = 0;
      for (let block = 0; block < 3; block++) {
        await sample(60, alone.reads, alone.lookups);
        await noisy.run();
        await sample(60, shared.reads, shared.lookups);
        executions += (await noisy.pause()).executions;
      }
      const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];
      const figures = {
        readAlone: p99(alone.reads),
        readNoisy: p99(shared.reads),
        lookupAlone: p99(alone.lookups),
        lookupNoisy: p99(shared.lookups),
      };
      t.diagnostic(
        `victim p99 alone/noisy: read ${figures.readAlone.toFixed(2)}/${figures.readNoisy.toFixed(2)} ms, lookup ${figures.lookupAlone.toFixed(2)}/${figures.lookupNoisy.toFixed(2)} ms; ${executions} noisy executions`,
      );
      assert.ok(executions >= 8, `the noisy tenant ran (${executions} executions)`);
      // Generous bounds for a shared, loaded machine (bench:pushdown reports the exact ratios; the
      // targets are 1.5x and 2x). Plain reads never wait for steps (they run on the worker); the
      // victim's lookup waits at most about one noisy turn on the worker, but that worker is a busy
      // thread the operating system time-slices with every other process of a loaded machine.
      // The noisy worker also takes one of two cores from the I/O thread and this test's own client.
      assert.ok(figures.readNoisy <= 5 * figures.readAlone + 10, JSON.stringify(figures));
      assert.ok(figures.lookupNoisy <= 10 * figures.lookupAlone + 20, JSON.stringify(figures));
      await victimPrograms.unload(walk);
    } finally {
      await noisy.close();
      await victim.close();
      await target.cleanup();
    }
  });
});
