/**
 * The state of a slot is reused execution after execution (execution.ts): these tests hold it to
 * what a fresh one guaranteed. Nothing one execution left in the slot (input, scratch, stack,
 * context, output) is visible to the next; a late read of an execution that already failed never
 * reaches the next one; budgets fire the same on a reused slot; results stay the caller's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_INPUT_BYTES, SCRATCH_SIZE_BYTES } from '../abi/storage.js';
import { assemble } from '../isa/index.js';
import { LIST_WALK_ASM, SCAN_SUM_ASM } from '../testing/storage-programs.js';
import { DEFAULT_TENANT_LIMITS, type ExecutionBudget } from './budget.js';
import { BudgetExceededError } from './errors.js';
import {
  type ExecutionResult,
  type ExecutionStats,
  executeStorageFunction,
  type NamespaceReader,
  runStorageFunction,
  startExecution,
} from './execution.js';
import { MemoryNamespace } from './namespace.js';
import { FairScheduler } from './scheduler.js';
import { StorageFunction } from './storage-function.js';

const budget = (overrides: Partial<ExecutionBudget> = {}): ExecutionBudget => ({ ...DEFAULT_TENANT_LIMITS, ...overrides });

/**
 * Emits, in this order: the whole input region, the whole scratch region, 256 bytes of stack below
 * r10, and the context (96 bytes); then fills scratch and that stack with 0xff bytes and returns
 * param0. A checked program (no verifier), so it may read what a verified one could not.
 */
const SNOOP = `
    mov %r6, %r1
    ldxdw %r1, [%r6+24]
    mov %r2, ${MAX_INPUT_BYTES}
    call 101
    ldxdw %r1, [%r6+16]
    mov %r2, ${SCRATCH_SIZE_BYTES}
    call 101
    mov %r1, %r10
    add %r1, -256
    mov %r2, 256
    call 101
    mov %r1, %r6
    mov %r2, 96
    call 101
    ldxdw %r7, [%r6+16]
    mov %r8, 0
  fill_scratch:
    mov %r3, %r7
    add %r3, %r8
    stdw [%r3], -1
    add %r8, 8
    jlt %r8, ${SCRATCH_SIZE_BYTES}, fill_scratch
    mov %r8, -256
  fill_stack:
    mov %r3, %r10
    add %r3, %r8
    stdw [%r3], -1
    add %r8, 8
    jlt %r8, 0, fill_stack
    ldxdw %r0, [%r6+40]
    exit`;

const OUT_INPUT = 0;
const OUT_SCRATCH = MAX_INPUT_BYTES;
const OUT_STACK = OUT_SCRATCH + SCRATCH_SIZE_BYTES;
const OUT_CTX = OUT_STACK + 256;

const allZero = (b: Uint8Array) => b.every((x) => x === 0);

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setImmediate(r));
}

function run(fn: StorageFunction, reader: NamespaceReader, params: [bigint, bigint], input?: Uint8Array, b = budget()) {
  return executeStorageFunction(fn, { reader, params, input, tenant: 't' }, b, new FairScheduler());
}

describe('reused execution slots', () => {
  it('never show an earlier execution’s input, scratch, stack or context to the next one', async () => {
    // One slot, so every execution reuses it.
    const fn = new StorageFunction({ name: 'snoop', program: assemble(SNOOP), slots: 1 });
    const ns = new MemoryNamespace(new Uint8Array(4096));
    const sizes = [MAX_INPUT_BYTES, 17, 0, 300, 299, MAX_INPUT_BYTES, 1];
    for (let k = 0; k < sizes.length; k++) {
      const input = new Uint8Array(sizes[k]).fill(0xa0 + k);
      const r = await run(fn, ns, [BigInt(k + 1), 99n], input);
      assert.equal(r.returnValue, BigInt(k + 1));
      const out = r.output;
      assert.deepEqual(out.subarray(OUT_INPUT, OUT_INPUT + input.length), input, `execution ${k}: its own input`);
      assert.ok(
        allZero(out.subarray(OUT_INPUT + input.length, OUT_SCRATCH)),
        `execution ${k}: input region past its input is zero`,
      );
      assert.ok(allZero(out.subarray(OUT_SCRATCH, OUT_STACK)), `execution ${k}: scratch starts zeroed`);
      assert.ok(allZero(out.subarray(OUT_STACK, OUT_CTX)), `execution ${k}: stack starts zeroed (checked program)`);
      const ctx = new DataView(out.buffer, out.byteOffset + OUT_CTX, 96);
      assert.equal(ctx.getBigUint64(32, true), BigInt(input.length), 'input_len');
      assert.equal(ctx.getBigUint64(40, true), BigInt(k + 1), 'param0');
      assert.equal(ctx.getBigUint64(48, true), 99n, 'param1');
      assert.equal(ctx.getBigUint64(56, true), 0n, 'step');
      assert.equal(ctx.getBigUint64(64, true), 0n, 'nr_reads');
      assert.equal(ctx.getBigUint64(88, true), 4096n, 'namespace size');
    }
  });

  it('clears what another thread’s execution left in the same slot (a shared sandbox)', async () => {
    // Two copies of one function over one shared memory, as two execution workers run it: each
    // keeps its own state per slot, and slot 0 runs on both in turn.
    const owner = new StorageFunction({ name: 'snoop', program: assemble(SNOOP), slots: 1, threads: 2 });
    const [a, b] = [0, 1].map(
      (threadIndex) =>
        new StorageFunction({ name: 'snoop', program: assemble(SNOOP), slots: 1, attach: { ...owner.shareable(), threadIndex } }),
    );
    const ns = new MemoryNamespace(new Uint8Array(4096));
    const inSlot = (fn: StorageFunction, input: Uint8Array) =>
      new Promise<ExecutionResult>((resolve, reject) =>
        startExecution(
          fn,
          fn.slotAt(0),
          { reader: ns, params: [1n, 0n], input, tenant: 't' },
          budget(),
          new FairScheduler(),
          (e, r) => (e === null && r !== undefined ? resolve(r) : reject(e)),
        ),
      );
    await inSlot(a, new Uint8Array(10).fill(1));
    await inSlot(b, new Uint8Array(MAX_INPUT_BYTES).fill(2));
    const r = await inSlot(a, new Uint8Array(5).fill(3));
    assert.deepEqual(r.output.subarray(0, 5), new Uint8Array(5).fill(3));
    assert.ok(allZero(r.output.subarray(5, OUT_SCRATCH)), 'input region past this input');
    assert.ok(allZero(r.output.subarray(OUT_SCRATCH, OUT_STACK)), 'scratch');
  });

  it('hands the observer the run time of an execution that ended in its first turn (metrics)', async () => {
    const fn = new StorageFunction({ name: 'walk', program: assemble(LIST_WALK_ASM), slots: 1 });
    const bytes = new Uint8Array(4096 + 64);
    new DataView(bytes.buffer).setBigUint64(4096, 5n, true);
    const seen: { runMs: number; durationMs: number; queuedMs: number }[] = [];
    const observer = {
      executed: (_t: string, _p: string, s: Readonly<ExecutionStats>) =>
        seen.push({ runMs: s.runMs, durationMs: s.durationMs, queuedMs: s.queuedMs }),
    };
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) =>
        runStorageFunction(
          fn,
          { reader: new MemoryNamespace(bytes), params: [4096n, 0n], tenant: 't' },
          budget(),
          new FairScheduler(),
          observer,
          undefined,
          (e) => (e === null ? resolve() : reject(e)),
        ),
      );
    }
    assert.equal(seen.length, 3);
    for (const s of seen) {
      // Read when the observer was told (as metrics are), not later.
      assert.ok(s.runMs > 0, `runMs ${s.runMs}`);
      assert.ok(s.runMs + s.queuedMs <= s.durationMs + 1e-9, JSON.stringify(s));
    }
  });

  it('keeps each result’s output its own (the next execution in the slot writes elsewhere)', async () => {
    const fn = new StorageFunction({ name: 'snoop', program: assemble(SNOOP), slots: 1 });
    const ns = new MemoryNamespace(new Uint8Array(4096));
    const first = await run(fn, ns, [1n, 0n], new Uint8Array(100).fill(1));
    const copy = first.output.slice();
    const second = await run(fn, ns, [2n, 0n], new Uint8Array(100).fill(2));
    assert.deepEqual(first.output, copy);
    assert.notDeepEqual(second.output, first.output);
    assert.equal(second.output.length, OUT_CTX + 96);
  });

  it('drops a late read of a failed execution instead of handing it to the next one in the slot', async () => {
    // A list of 4 nodes; the walk's result is the sum of their values.
    const bytes = new Uint8Array(4096 + 4 * 64);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 4; i++) {
      view.setBigUint64(4096 + i * 64, BigInt(10 + i), true);
      view.setBigUint64(4096 + i * 64 + 8, i < 3 ? BigInt(4096 + (i + 1) * 64) : 0n, true);
    }
    // Reads through promises the test settles (no readNow: every read goes to "storage").
    const pending: { offset: number; length: number; resolve: (b: Uint8Array) => void }[] = [];
    const slow: NamespaceReader = {
      sizeBytes: bytes.length,
      read: (offset, length) => new Promise((resolve) => pending.push({ offset, length, resolve })),
    };
    const fn = new StorageFunction({ name: 'walk', program: assemble(LIST_WALK_ASM), slots: 1 });
    // The first execution fails on its deadline while its first read is outstanding.
    await assert.rejects(run(fn, slow, [4096n, 0n], undefined, budget({ deadlineMs: 1 })), (e: unknown) => {
      assert.ok(e instanceof BudgetExceededError);
      assert.equal(e.budget, 'deadline');
      return true;
    });
    assert.equal(pending.length, 1);
    const stale = pending.shift();
    // The second one, in the same slot, waits for its first read too.
    const second = run(fn, slow, [4096n, 0n]);
    await until(() => pending.length > 0);
    // The stale read arrives first, with bytes that would send the walk elsewhere.
    const garbage = new Uint8Array(16);
    new DataView(garbage.buffer).setBigUint64(0, 1_000_000n, true);
    stale?.resolve(garbage);
    await new Promise((r) => setImmediate(r));
    // Then the second execution's reads, each from the list.
    let result: ExecutionResult | undefined;
    second.then((r) => {
      result = r;
    });
    while (result === undefined) {
      const p = pending.shift();
      if (p !== undefined) p.resolve(bytes.slice(p.offset, p.offset + p.length));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(result.returnValue, 10n + 11n + 12n + 13n);
    assert.equal(result.stats.reads, 4);
  });

  it('fires every budget the same on a reused slot, between successful executions', async () => {
    const fn = new StorageFunction({ name: 'snoop', program: assemble(SNOOP), slots: 1 });
    const ns = new MemoryNamespace(new Uint8Array(4096));
    const cases: [Partial<ExecutionBudget>, string][] = [
      [{ maxOutputBytes: 1000 }, 'outputBytes'],
      [{ maxInstructionsPerStep: 100 }, 'instructionsPerStep'],
      [{ maxInstructionsPerExecution: 100 }, 'instructionsPerExecution'],
      [{ maxSteps: 0 }, 'steps'],
    ];
    for (const [limits, name] of cases) {
      const ok = await run(fn, ns, [5n, 0n], new Uint8Array(8).fill(5));
      assert.equal(ok.returnValue, 5n);
      await assert.rejects(run(fn, ns, [6n, 0n], new Uint8Array(8).fill(6), budget(limits)), (e: unknown) => {
        assert.ok(e instanceof BudgetExceededError, String(e));
        assert.equal(e.budget, name);
        return true;
      });
    }
    const after = await run(fn, ns, [7n, 0n], new Uint8Array(3).fill(7));
    assert.ok(allZero(after.output.subarray(3, OUT_SCRATCH)));
    assert.ok(allZero(after.output.subarray(OUT_SCRATCH, OUT_CTX)));
    assert.equal(fn.busySlots, 0);
  });

  it('refuses an input larger than the region without touching the slot', async () => {
    const fn = new StorageFunction({ name: 'snoop', program: assemble(SNOOP), slots: 1 });
    const ns = new MemoryNamespace(new Uint8Array(4096));
    await run(fn, ns, [1n, 0n], new Uint8Array(64).fill(9));
    await assert.rejects(run(fn, ns, [1n, 0n], new Uint8Array(MAX_INPUT_BYTES + 1)), /exceeds the 4096-byte limit/);
    const r = await run(fn, ns, [1n, 0n], new Uint8Array(2).fill(3));
    assert.deepEqual(r.output.subarray(0, 2), new Uint8Array([3, 3]));
    assert.ok(allZero(r.output.subarray(2, OUT_SCRATCH)));
  });
});

describe('scan mode, whatever the reader', () => {
  const bytes = new Uint8Array(1 << 20);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < bytes.length / 8; i++) view.setBigUint64(i * 8, BigInt(i), true);
  const SCAN_SUM = SCAN_SUM_ASM;
  const memory = new MemoryNamespace(bytes);
  const readers: [string, NamespaceReader][] = [
    ['in memory (readNow)', memory],
    ['through promises only (readahead)', { sizeBytes: bytes.length, read: (o, n) => memory.read(o, n) }],
    ['readNow that misses, then promises', { sizeBytes: bytes.length, readNow: () => false, read: (o, n) => memory.read(o, n) }],
  ];
  for (const [name, reader] of readers) {
    it(`sums the range and counts reads and bytes the same: ${name}`, async () => {
      const fn = new StorageFunction({ name: 'sum', program: assemble(SCAN_SUM), slots: 1 });
      let expected = 0n;
      for (let at = 8192; at < 8192 + 700_000; at += 8) expected += BigInt(at / 8);
      for (let round = 0; round < 2; round++) {
        const r = await executeStorageFunction(
          fn,
          {
            reader,
            params: [0n, 0n],
            tenant: 't',
            mode: { kind: 'scan', offsetBytes: 8192, lengthBytes: 700_000, chunkBytes: 65536 },
          },
          budget(),
          new FairScheduler(),
        );
        assert.equal(r.returnValue, expected);
        assert.equal(r.stats.reads, Math.ceil(700_000 / 65536));
        assert.equal(r.stats.bytesRead, 700_000);
        assert.equal(r.stats.steps, Math.ceil(700_000 / 65536) + 1);
      }
    });
  }

  it('charges a scan against maxBytesRead whatever the reader', async () => {
    for (const [, reader] of readers) {
      const fn = new StorageFunction({ name: 'sum', program: assemble(SCAN_SUM), slots: 1 });
      await assert.rejects(
        executeStorageFunction(
          fn,
          {
            reader,
            params: [0n, 0n],
            tenant: 't',
            mode: { kind: 'scan', offsetBytes: 0, lengthBytes: 500_000, chunkBytes: 65536 },
          },
          budget({ maxBytesRead: 200_000 }),
          new FairScheduler(),
        ),
        (e: unknown) => e instanceof BudgetExceededError && e.budget === 'bytesRead',
      );
    }
  });
});
