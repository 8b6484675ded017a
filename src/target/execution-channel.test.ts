/**
 * The shared-memory hand-off, both ends on this thread (the worker's end is driven by hand): slots
 * carry every field, a full ring backs up into the producer's backlog in order, a worker takes only
 * what its completion ring has room for, a dead worker's executions fail, and a random interleaving
 * of submissions, takes and completions loses, duplicates and mixes up nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_TENANT_LIMITS, type ExecutionBudget } from '../runtime/budget.js';
import type { ExecutionResult, ExecutionStats } from '../runtime/execution.js';
import {
  createLink,
  ExecutionProducer,
  MAX_BACKLOG,
  MAX_INLINE_INPUT_BYTES,
  MAX_INLINE_OUTPUT_BYTES,
  RING_SLOTS,
  type Submission,
  type TakenSubmission,
  WorkerLink,
} from './execution-channel.js';
import { SlotRing, WakeWord } from './slot-ring.js';

const stats = (n: number): ExecutionStats => ({
  steps: n,
  reads: n + 1,
  bytesRead: n * 512,
  instructions: n * 1000,
  durationMs: n / 8,
  runMs: n / 16,
  queuedMs: n / 32,
});

function pair(workers = 1) {
  const producerWake = new SharedArrayBuffer(WakeWord.BYTES);
  const links = Array.from({ length: workers }, () => createLink(producerWake));
  const wakes = links.map(() => new WakeWord());
  const inflight = new Int32Array(new SharedArrayBuffer(4 * workers));
  const large: Submission[] = [];
  const producer = new ExecutionProducer(links, wakes, inflight, (_w, s) => large.push(s));
  const workerEnds = links.map((l) => new WorkerLink(l));
  return { producer, workerEnds, inflight, large, wakes, links };
}

const { maxConcurrentExecutions: _c, maxLoadedPrograms: _l, maxMapMemoryBytes: _m, ...BUDGET } = DEFAULT_TENANT_LIMITS;
const budgetOf = (b: Partial<ExecutionBudget>): ExecutionBudget => ({ ...BUDGET, ...b });

type Outcome = { error: unknown; result: ExecutionResult | undefined; stats: ExecutionStats };

function submission(id: number, extra: Partial<Submission> = {}): Submission {
  return {
    id,
    program: 7,
    slot: id % 32,
    namespace: 3,
    params: [BigInt(id) * 0x1_0000_0001n, -1n],
    input: undefined,
    mode: { kind: 'chain' },
    budget: BUDGET,
    ...extra,
  };
}

describe('SlotRing', () => {
  it('refuses sizes it cannot hold', () => {
    for (const [slots, bytes] of [
      [3, 64],
      [0, 64],
      [1 << 20, 64],
      [4, 60],
      [4, 1 << 20],
    ]) {
      assert.throws(() => SlotRing.create(slots, bytes), RangeError, `${slots} x ${bytes}`);
    }
    assert.throws(() => SlotRing.attach({ buffer: new SharedArrayBuffer(100), slots: 4, slotBytes: 64 }), RangeError);
  });

  it('is full at its size, empty when all are released, and keeps order across the 32-bit wrap', () => {
    const ring = SlotRing.create(4, 64);
    // Start the counters just below the wrap of an Int32.
    new Int32Array(ring.buffer, 0, 2).fill(0x7fff_fffe);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 4; i++) {
        const at = ring.reserve();
        assert.ok(at >= 0);
        ring.u32[at >>> 2] = round * 10 + i;
        ring.publish();
      }
      assert.equal(ring.reserve(), -1, 'full');
      assert.equal(ring.size, 4);
      for (let i = 0; i < 4; i++) {
        const at = ring.peek();
        assert.equal(ring.u32[at >>> 2], round * 10 + i);
        ring.release();
      }
      assert.equal(ring.peek(), -1, 'empty');
      assert.equal(ring.free, 4);
    }
  });
});

describe('execution hand-off rings', () => {
  it('carries every field of a submission and of a completion', async () => {
    const { producer, workerEnds } = pair();
    const input = Uint8Array.from({ length: MAX_INLINE_INPUT_BYTES }, (_, i) => i * 7);
    const scan = { kind: 'scan' as const, offsetBytes: 2 ** 40 + 512, lengthBytes: 3 << 20, chunkBytes: 128 << 10 };
    const budget = budgetOf({ maxSteps: 77, deadlineMs: 1234 });
    const sent = [
      submission(1),
      submission(2, { input, mode: scan, budget }),
      submission(3, { input: new Uint8Array(0), params: [0n, 2n ** 64n - 1n] }),
    ];
    const outcomes = new Map<number, Outcome>();
    for (const s of sent) producer.submit(0, s, (error, result, st) => outcomes.set(s.id, { error, result, stats: st }));
    const taken: TakenSubmission[] = [];
    workerEnds[0].takeAll((t) => taken.push({ ...t, input: t.input?.slice() }));
    assert.equal(taken.length, 3);
    for (const [i, t] of taken.entries()) {
      const s = sent[i];
      assert.equal(t.id, s.id);
      assert.equal(t.program, 7);
      assert.equal(t.slot, s.slot);
      assert.equal(t.namespace, 3);
      assert.deepEqual(
        t.params,
        s.params.map((p) => BigInt.asUintN(64, p)),
      );
      assert.deepEqual(t.input, s.input);
      assert.deepEqual(t.mode, s.mode);
      assert.deepEqual(t.budget, s.budget);
    }
    const output = Uint8Array.from({ length: MAX_INLINE_OUTPUT_BYTES }, (_, i) => 255 - (i & 255));
    workerEnds[0].completed(1, 7, 0, 2n ** 64n - 5n, output, stats(3));
    workerEnds[0].completed(3, 7, 0, 0n, new Uint8Array(0), stats(0));
    producer.drain();
    assert.equal(outcomes.get(1)?.error, null);
    assert.equal(outcomes.get(1)?.result?.returnValue, 2n ** 64n - 5n);
    assert.deepEqual(outcomes.get(1)?.result?.output, output);
    assert.deepEqual(outcomes.get(1)?.stats, stats(3));
    assert.equal(outcomes.get(3)?.result?.output.byteLength, 0);
    assert.equal(outcomes.has(2), false);
    assert.equal(WorkerLink.fits(new Uint8Array(MAX_INLINE_OUTPUT_BYTES + 1)), false);
  });

  it('posts an input too large for a slot by message', () => {
    const { producer, workerEnds, large } = pair();
    producer.submit(0, submission(1, { input: new Uint8Array(MAX_INLINE_INPUT_BYTES + 1) }), () => {});
    assert.equal(large.length, 1);
    assert.equal(workerEnds[0].waiting, 0);
  });

  it('a full ring backs up into the backlog in order; a worker takes only what it has completion room for', () => {
    const { producer, workerEnds, inflight } = pair();
    const order: number[] = [];
    const total = RING_SLOTS * 3;
    for (let id = 1; id <= total; id++) producer.submit(0, submission(id), () => order.push(id));
    assert.equal(workerEnds[0].waiting, RING_SLOTS, 'the ring is full, the rest waits in the backlog');
    assert.equal(Atomics.load(inflight, 0), total);
    const running: number[] = [];
    workerEnds[0].takeAll((t) => running.push(t.id));
    assert.equal(running.length, RING_SLOTS, 'room for one completion ring');
    assert.equal(
      workerEnds[0].takeAll(() => assert.fail('no completion room left')),
      0,
    );
    // Complete the first half; once the producer drained them there is room for as many more.
    for (const id of running.splice(0, RING_SLOTS / 2)) workerEnds[0].completed(id, 7, 0, 0n, new Uint8Array(0), stats(1));
    assert.equal(
      workerEnds[0].takeAll(() => assert.fail('completions not drained yet')),
      0,
    );
    producer.drain();
    // Draining moved backlog into the ring (the worker had taken all it held).
    workerEnds[0].takeAll((t) => running.push(t.id));
    assert.equal(running.length, RING_SLOTS);
    while (running.length > 0 || workerEnds[0].waiting > 0) {
      for (const id of running.splice(0)) workerEnds[0].completed(id, 7, 0, 0n, new Uint8Array(0), stats(1));
      producer.drain();
      workerEnds[0].takeAll((t) => running.push(t.id));
    }
    assert.deepEqual(
      order,
      Array.from({ length: total }, (_, i) => i + 1),
    );
    assert.equal(Atomics.load(inflight, 0), 0);
    assert.equal(producer.outstanding(0), 0);
  });

  it('a worker wakes its producer after taking only when the ring was full (a backlog may wait for the room)', () => {
    const { producer, workerEnds, links } = pair();
    const producerWake = new WakeWord(links[0].producerWake);
    const running: number[] = [];
    producer.submit(0, submission(1), () => {});
    let bumps = producerWake.seen();
    workerEnds[0].takeAll((t) => running.push(t.id));
    assert.equal(producerWake.seen(), bumps, 'a take from a ring with room wakes nobody: the completion will');
    workerEnds[0].completed(1, 7, 0, 0n, new Uint8Array(0), stats(1));
    assert.equal(producerWake.seen(), bumps + 1, 'a completion wakes the producer');
    producer.drain();
    running.length = 0;
    for (let id = 2; id <= RING_SLOTS + 5; id++) producer.submit(0, submission(id), () => {});
    bumps = producerWake.seen();
    workerEnds[0].takeAll((t) => running.push(t.id));
    assert.equal(producerWake.seen(), bumps + 1, 'room made in a full ring wakes the producer to move its backlog');
  });

  it(`fails an execution at once past ${MAX_BACKLOG} waiting (nothing waits unboundedly)`, () => {
    const { producer } = pair();
    let failures = 0;
    for (let id = 1; id <= RING_SLOTS + MAX_BACKLOG + 3; id++) {
      producer.submit(0, submission(id), (error) => {
        assert.match(String(error), /overloaded/);
        failures++;
      });
    }
    assert.equal(failures, 3);
  });

  it('a dead worker: its executions and pings fail, other workers are untouched, a new link starts empty', async () => {
    const { producer, workerEnds, inflight } = pair(2);
    const outcomes = new Map<number, unknown>();
    for (let id = 1; id <= 6; id++) producer.submit(id % 2, submission(id), (error) => outcomes.set(id, error));
    const ping = producer.ping(1, 100);
    const dead = new Error('worker 1 died');
    producer.failWorker(1, dead);
    await assert.rejects(ping, /died/);
    assert.deepEqual(
      [...outcomes.entries()].sort((a, b) => a[0] - b[0]),
      [
        [1, dead],
        [3, dead],
        [5, dead],
      ],
    );
    assert.equal(Atomics.load(inflight, 1), 0);
    assert.equal(Atomics.load(inflight, 0), 3);
    const fresh = createLink(new SharedArrayBuffer(WakeWord.BYTES));
    producer.replaceLink(1, fresh);
    assert.equal(new WorkerLink(fresh).waiting, 0);
    const taken: number[] = [];
    workerEnds[0].takeAll((t) => taken.push(t.id));
    assert.deepEqual(taken, [2, 4, 6]);
  });

  it('random interleavings of submit, take, complete and drain lose, duplicate and mix up nothing', () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (let trial = 0; trial < 20; trial++) {
      const { producer, workerEnds } = pair(2);
      const results = new Map<number, bigint>();
      const running: TakenSubmission[][] = [[], []];
      let nextId = 1;
      for (let op = 0; op < 3000; op++) {
        const r = random();
        const w = random() < 0.5 ? 0 : 1;
        if (r < 0.4) {
          const id = nextId++;
          const input = random() < 0.5 ? Uint8Array.of(id & 255, (id >> 8) & 255) : undefined;
          producer.submit(w, submission(id, { input }), (error, result) => {
            assert.equal(error, null);
            assert.ok(!results.has(id), `completed twice: ${id}`);
            results.set(id, result?.returnValue ?? -1n);
          });
        } else if (r < 0.6) {
          workerEnds[w].takeAll((t) => running[w].push({ ...t, input: t.input?.slice() }));
        } else if (r < 0.85 && running[w].length > 0) {
          const k = Math.floor(random() * running[w].length);
          const [t] = running[w].splice(k, 1);
          const value = t.params[0] + BigInt(t.input?.[0] ?? 0);
          workerEnds[w].completed(t.id, 7, 0, value, Uint8Array.of(t.id & 255), stats(1));
        } else {
          producer.drain();
        }
      }
      // Finish everything.
      while (producer.outstandingTotal > 0) {
        for (const w of [0, 1]) {
          workerEnds[w].takeAll((t) => running[w].push({ ...t, input: t.input?.slice() }));
          for (const t of running[w].splice(0)) {
            workerEnds[w].completed(t.id, 7, 0, t.params[0] + BigInt(t.input?.[0] ?? 0), Uint8Array.of(t.id & 255), stats(1));
          }
        }
        producer.drain();
      }
      assert.equal(results.size, nextId - 1);
      for (const [id, value] of results) {
        const hasInput = value !== BigInt(id) * 0x1_0000_0001n;
        const expected = BigInt(id) * 0x1_0000_0001n + (hasInput ? BigInt(id & 255) : 0n);
        assert.equal(value, expected, `execution ${id}`);
      }
    }
  });
});
