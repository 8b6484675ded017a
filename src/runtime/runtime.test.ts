import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryAccessError } from '../errors.js';
import { assemble } from '../isa/index.js';
import { LIST_WALK_ASM, SCAN_SUM_ASM } from '../testing/storage-programs.js';
import { DEFAULT_TENANT_LIMITS, type ExecutionBudget } from './budget.js';
import { BudgetExceededError, StorageAccessError } from './errors.js';
import { executeStorageFunction, type NamespaceReader } from './execution.js';
import { MemoryNamespace } from './namespace.js';
import { FairScheduler } from './scheduler.js';
import { StorageFunction } from './storage-function.js';

const LIST_WALK = LIST_WALK_ASM;

const SCAN_SUM = SCAN_SUM_ASM;

function listNamespace(values: number[]): { ns: MemoryNamespace; head: bigint } {
  const bytes = new Uint8Array(4096 + values.length * 64);
  const view = new DataView(bytes.buffer);
  // Nodes at scattered offsets, linked in order.
  const offsets = values.map((_, i) => 4096 + ((i * 37) % values.length) * 64);
  values.forEach((v, i) => {
    view.setBigUint64(offsets[i], BigInt(v), true);
    view.setBigUint64(offsets[i] + 8, i + 1 < values.length ? BigInt(offsets[i + 1]) : 0n, true);
  });
  return { ns: new MemoryNamespace(bytes), head: BigInt(offsets[0]) };
}

const budget = (overrides: Partial<ExecutionBudget> = {}): ExecutionBudget => ({ ...DEFAULT_TENANT_LIMITS, ...overrides });

function load(source: string, slots = 4): StorageFunction {
  return new StorageFunction({ name: 'test', program: assemble(source), slots });
}

describe('storage functions', () => {
  it('walks a linked list in one execution, one step per node', async () => {
    const values = Array.from({ length: 20 }, (_, i) => i * 3 + 1);
    const { ns, head } = listNamespace(values);
    const fn = load(LIST_WALK);
    const result = await executeStorageFunction(
      fn,
      { reader: ns, params: [head, 0n], tenant: 'a' },
      budget(),
      new FairScheduler(),
    );
    assert.equal(result.returnValue, BigInt(values.reduce((a, b) => a + b)));
    assert.equal(result.stats.steps, 21);
    assert.equal(result.stats.reads, 20);
    assert.equal(result.stats.bytesRead, 320);
  });

  it('streams a range through the program in scan mode, with output', async () => {
    const bytes = new Uint8Array(1 << 20);
    const view = new DataView(bytes.buffer);
    let expected = 0n;
    for (let i = 0; i < bytes.length / 8; i++) {
      view.setBigUint64(i * 8, BigInt(i), true);
      if (i * 8 >= 4096 && i * 8 < 4096 + 600_000) expected += BigInt(i);
    }
    const fn = load(SCAN_SUM);
    const result = await executeStorageFunction(
      fn,
      {
        reader: new MemoryNamespace(bytes),
        params: [0n, 0n],
        tenant: 'a',
        mode: { kind: 'scan', offsetBytes: 4096, lengthBytes: 600_000, chunkBytes: 65536 },
      },
      budget(),
      new FairScheduler(),
    );
    assert.equal(result.returnValue, expected);
    assert.equal(new DataView(result.output.buffer).getBigUint64(0, true), expected);
    assert.equal(result.stats.steps, Math.ceil(600_000 / 65536) + 1);
  });

  it('fans out: several reads in one step arrive concatenated in request order', async () => {
    const bytes = new Uint8Array(8192);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i & 0xff;
    // Step 0 asks for 16 one-byte reads at offsets 0, 100, 200, ...; step 1 sums the data bytes.
    const reads = Array.from({ length: 16 }, (_, k) => `mov %r1, ${k * 100}\nmov %r2, 1\ncall 100`).join('\n');
    const fn = load(`
        mov %r6, %r1
        ldxdw %r7, [%r6+56]
        jne %r7, 0, sum
        ${reads}
        mov %r0, 0
        exit
      sum:
        ldxdw %r2, [%r6+0]
        ldxdw %r3, [%r6+8]
        ldxdw %r8, [%r6+64]    # nr_reads
        mov %r0, 0
      loop:
        mov %r4, %r2
        add %r4, 1
        jgt %r4, %r3, done
        ldxb %r5, [%r2]
        add %r0, %r5
        mov %r2, %r4
        ja loop
      done:
        lsh %r8, 32
        or %r0, %r8
        exit`);
    const result = await executeStorageFunction(
      fn,
      { reader: new MemoryNamespace(bytes), params: [0n, 0n], tenant: 'a' },
      budget(),
      new FairScheduler(),
    );
    const expected = Array.from({ length: 16 }, (_, k) => (k * 100) & 0xff).reduce((a, b) => a + b);
    assert.equal(result.returnValue, (16n << 32n) | BigInt(expected));
  });

  describe('budgets end only the offending execution', () => {
    const { ns, head } = listNamespace(Array.from({ length: 50 }, (_, i) => i));
    const cases: [string, string, Partial<ExecutionBudget>, string][] = [
      ['steps', LIST_WALK, { maxSteps: 10 }, 'steps'],
      ['bytes read', LIST_WALK, { maxBytesRead: 100 }, 'bytesRead'],
      ['instructions per step', 'loop: ja loop', { maxInstructionsPerStep: 10_000 }, 'instructionsPerStep'],
      ['instructions per execution', LIST_WALK, { maxInstructionsPerExecution: 200 }, 'instructionsPerExecution'],
      ['reads per step', 'mov %r1, 0\nmov %r2, 1\ncall 100\ncall 100\ncall 100\nexit', { maxReadsPerStep: 2 }, 'readsPerStep'],
      ['output bytes', `mov %r6, %r1\nldxdw %r1, [%r6+16]\nmov %r2, 64\ncall 101\nexit`, { maxOutputBytes: 32 }, 'outputBytes'],
    ];
    for (const [name, source, limits, which] of cases) {
      it(name, async () => {
        const fn = load(source);
        await assert.rejects(
          executeStorageFunction(fn, { reader: ns, params: [head, 0n], tenant: 'a' }, budget(limits), new FairScheduler()),
          (e: unknown) => e instanceof BudgetExceededError && e.budget === which,
        );
        // The function stays usable: its slot came back.
        assert.equal(fn.busySlots, 0);
      });
    }

    it('deadline, while waiting for a slow read', async () => {
      const slow: NamespaceReader = { sizeBytes: ns.sizeBytes, read: () => new Promise(() => {}) };
      await assert.rejects(
        executeStorageFunction(
          load(LIST_WALK),
          { reader: slow, params: [head, 0n], tenant: 'a' },
          budget({ deadlineMs: 50 }),
          new FairScheduler(),
        ),
        (e: unknown) => e instanceof BudgetExceededError && e.budget === 'deadline',
      );
    });

    it('concurrent executions beyond the slots', async () => {
      const fn = load(LIST_WALK, 1);
      const scheduler = new FairScheduler();
      const first = executeStorageFunction(fn, { reader: ns, params: [head, 0n], tenant: 'a' }, budget(), scheduler);
      await assert.rejects(
        executeStorageFunction(fn, { reader: ns, params: [head, 0n], tenant: 'a' }, budget(), scheduler),
        (e: unknown) => e instanceof BudgetExceededError && e.budget === 'concurrentExecutions',
      );
      await first;
    });
  });

  it('holds as many execution slots as the configuration allows (32)', () => {
    const fn = load(LIST_WALK, 32);
    assert.equal(fn.slotCount, 32);
  });

  it('rejects reads outside the namespace and memory faults, typed', async () => {
    const ns = new MemoryNamespace(new Uint8Array(4096));
    await assert.rejects(
      executeStorageFunction(
        load('mov %r1, 4000\nmov %r2, 200\ncall 100\nexit'),
        { reader: ns, params: [0n, 0n], tenant: 'a' },
        budget(),
        new FairScheduler(),
      ),
      StorageAccessError,
    );
    await assert.rejects(
      executeStorageFunction(
        load('lddw %r1, 0x100000000\nldxdw %r0, [%r1+96]\nexit'),
        { reader: ns, params: [0n, 0n], tenant: 'a' },
        budget(),
        new FairScheduler(),
      ),
      MemoryAccessError,
    );
  });

  it('shares turns fairly between tenants', async () => {
    const { ns, head } = listNamespace(Array.from({ length: 30 }, (_, i) => i));
    // One step per turn (every step exceeds the 1-instruction bound): pure round-robin.
    const scheduler = new FairScheduler({ maxTurnInstructions: 1 });
    const greedy = load(LIST_WALK, 8);
    const modest = load(LIST_WALK, 1);
    const order: string[] = [];
    const run = (fn: StorageFunction, tenant: string) =>
      executeStorageFunction(fn, { reader: ns, params: [head, 0n], tenant }, budget(), scheduler).then(() => order.push(tenant));
    await Promise.all([...Array.from({ length: 8 }, () => run(greedy, 'greedy')), run(modest, 'modest')]);
    // The modest tenant's single execution (31 steps) finishes long before the greedy tenant's 8 x 31 steps.
    assert.ok(order.indexOf('modest') < 4, `modest finished at position ${order.indexOf('modest')}`);
    assert.equal(scheduler.turnsGranted.get('modest'), 31);
  });

  it('splits an execution into time running steps and time waiting for turns (disjoint, within its duration)', async () => {
    const { ns, head } = listNamespace(Array.from({ length: 30 }, (_, i) => i));
    const scheduler = new FairScheduler({ maxTurnInstructions: 1 });
    const fn = load(LIST_WALK, 8);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        executeStorageFunction(fn, { reader: ns, params: [head, 0n], tenant: `t${i % 3}` }, budget(), scheduler),
      ),
    );
    for (const { stats } of results) {
      assert.ok(stats.runMs > 0, 'steps take time');
      assert.ok(stats.queuedMs >= 0);
      assert.ok(stats.runMs + stats.queuedMs <= stats.durationMs + 0.01, JSON.stringify(stats));
    }
    // Six executions one step per turn: all but the first wait for turns.
    assert.ok(results.filter((r) => r.stats.queuedMs > 0).length >= 5);
  });

  it('runs steps whose reads are in memory back to back, within a bounded turn', async () => {
    const { ns, head } = listNamespace(Array.from({ length: 400 }, (_, i) => i));
    const fn = load(LIST_WALK, 2);
    // Generous bounds: the whole chain (401 steps) in one turn.
    const wide = new FairScheduler({ maxTurnInstructions: 1_000_000, maxTurnMicros: 10_000_000 });
    const r = await executeStorageFunction(fn, { reader: ns, params: [head, 0n], tenant: 'a' }, budget(), wide);
    assert.equal(r.returnValue, BigInt((399 * 400) / 2));
    assert.equal(r.stats.steps, 401);
    assert.equal(wide.turnsGranted.get('a'), 1);
    // Tight instruction bound: the same chain yields (queues again) even with nobody else waiting,
    // and the event loop runs in between.
    const tight = new FairScheduler({ maxTurnInstructions: 200, maxTurnMicros: 10_000_000 });
    let loopTurns = 0;
    let ticking = true;
    const tick = () => {
      loopTurns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const r2 = await executeStorageFunction(fn, { reader: ns, params: [head, 0n], tenant: 'a' }, budget(), tight);
    ticking = false;
    assert.equal(r2.returnValue, r.returnValue);
    const turns = tight.turnsGranted.get('a') ?? 0;
    assert.ok(turns > 20 && turns < 401, `${turns} turns`);
    assert.equal(tight.turnsCutShort, turns - 1);
    assert.ok(loopTurns >= turns - 1, `event loop ran ${loopTurns} times across ${turns} turns`);
  });

  it('yields a long synchronous chain to another tenant waiting for a turn', async () => {
    const { ns, head } = listNamespace(Array.from({ length: 300 }, (_, i) => i));
    const short = listNamespace([1, 2, 3]);
    const scheduler = new FairScheduler({ maxTurnInstructions: 500, maxTurnMicros: 10_000_000 });
    const long = load(LIST_WALK, 1);
    const other = load(LIST_WALK, 1);
    const done: string[] = [];
    const a = executeStorageFunction(long, { reader: ns, params: [head, 0n], tenant: 'long' }, budget(), scheduler).then(() =>
      done.push('long'),
    );
    const b = executeStorageFunction(
      other,
      { reader: short.ns, params: [short.head, 0n], tenant: 'short' },
      budget(),
      scheduler,
    ).then(() => done.push('short'));
    await Promise.all([a, b]);
    assert.deepEqual(done, ['short', 'long'], 'the short execution is not stuck behind the long chain');
    assert.ok((scheduler.turnsGranted.get('long') ?? 0) > 10);
  });
});
