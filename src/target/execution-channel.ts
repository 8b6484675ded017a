/**
 * The execution hand-off over shared memory: a thread that submits executions (the producer: the
 * main thread, or an I/O thread) and an execution worker share, per pair, a submission ring and a
 * completion ring (slot-ring.ts). An execution's request and its completion are plain fields of a
 * slot: no structured clone, no MessagePort event, no promise.
 *
 * Waking: the worker spins briefly when idle and then sleeps in `Atomics.wait` on its wake word; a
 * producer calls `Atomics.notify` only when the worker said it sleeps. The producer never blocks:
 * while it has executions in flight it keeps one `Atomics.waitAsync` armed on its own wake word,
 * which a worker notifies after publishing completions, only when that wait is armed. A producer
 * busy with other work drains completions whenever it submits (no wake needed at all).
 *
 * What does not fit a slot goes by message, in order with the rest of that execution: an input
 * larger than `MAX_INLINE_INPUT_BYTES` is posted as an `exec` message; an output larger than
 * `MAX_INLINE_OUTPUT_BYTES`, or an error, comes back as a `done` message (see execution-wire.ts).
 *
 * Backpressure, bounded at every stage:
 * - A worker takes a submission only while its completion ring has room for the completions of
 *   every execution it has started plus this one, so a completion always finds a free slot and a
 *   worker never waits on a producer.
 * - A producer whose submission ring is full keeps the submission in its backlog (FIFO, per
 *   worker); the backlog moves into the ring as the worker takes submissions, in order, and new
 *   submissions queue behind it. The backlog is bounded by what the runtime admits (every
 *   execution holds one of its program's slots, `maxConcurrentExecutions` per program); beyond
 *   `MAX_BACKLOG` an execution fails at once with `ExecutionWorkerError` (the target is overloaded
 *   far past any configuration; nothing waits unboundedly).
 */

import type { ExecutionBudget } from '../runtime/budget.js';
import { ExecutionWorkerError } from '../runtime/errors.js';
import type { ExecutionMode, ExecutionResult, ExecutionStats } from '../runtime/execution.js';
import { type SharedSlotRing, SlotRing, WakeWord } from './slot-ring.js';

export type Done = (error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats) => void;

/** Slots per ring and their size: 128 x 512 bytes = 64 KiB per ring. */
export const RING_SLOTS = 128;
export const SLOT_BYTES = 512;
/** Submissions waiting for room in one worker's ring, at most. */
export const MAX_BACKLOG = 16_384;

// Submission slot (byte offsets). Kinds: exec (chain), exec (scan), ping.
const S_ID = 0;
const S_PROGRAM = 4;
const S_SLOT = 8;
const S_NAMESPACE = 12;
const S_KIND = 16;
const S_INPUT_LEN = 20;
const S_PARAM0 = 24;
const S_PARAM1 = 32;
const S_SCAN_OFFSET = 40;
const S_SCAN_LENGTH = 48;
const S_SCAN_CHUNK = 56;
const S_BUDGET = 64; // 7 x f64
const S_INPUT = 120;
export const MAX_INLINE_INPUT_BYTES = SLOT_BYTES - S_INPUT;
const KIND_CHAIN = 0;
const KIND_SCAN = 1;
const KIND_PING = 2;
/** S_INPUT_LEN of a request without input (distinct from an empty one). */
const NO_INPUT = 0xffffffff;

// Completion slot. Kinds: done (inline output), pong.
const C_ID = 0;
const C_KIND = 4;
const C_OUTPUT_LEN = 8;
/** The execution's slot and program: what to give back if its producer died (`takeOrphans`). */
const C_SLOT = 12;
const C_RETURN = 16;
const C_STATS = 24; // 7 x f64
const C_PROGRAM = 80;
const C_OUTPUT = 88;
export const MAX_INLINE_OUTPUT_BYTES = SLOT_BYTES - C_OUTPUT;
const KIND_DONE = 0;
const KIND_PONG = 1;

/** One producer-worker pair as shared memory: what both sides attach to. */
export interface SharedLink {
  readonly submissions: SharedSlotRing;
  readonly completions: SharedSlotRing;
  /** The producer's wake word (workers bump it after publishing completions). */
  readonly producerWake: SharedArrayBuffer;
}

/**
 * The slot-table word of an execution a remote producer (an I/O thread, producer >= 1) submitted
 * to worker `worker` in its `generation`: when a producer and a worker die together, only the pool
 * is left to give back the slots of the executions between them, and it finds them by this word
 * (and frees each only while it still holds it: `releaseSlotOf`).
 */
export function remoteSlotOwner(producer: number, worker: number, generation: number): number {
  return 0x40000000 | ((generation & 0xff) << 16) | ((worker & 0xff) << 8) | (producer & 0xff);
}
export const ownerProducer = (word: number) => word & 0xff;
export const ownerWorker = (word: number) => (word >>> 8) & 0xff;
export const ownerGeneration = (word: number) => (word >>> 16) & 0xff;
export const isRemoteOwner = (word: number) => (word & 0x40000000) !== 0;

export function createLink(producerWake: SharedArrayBuffer): SharedLink {
  return {
    submissions: SlotRing.create(RING_SLOTS, SLOT_BYTES).shareable(),
    completions: SlotRing.create(RING_SLOTS, SLOT_BYTES).shareable(),
    producerWake,
  };
}

const f64Index = (byteOffset: number) => byteOffset >>> 3;
const u32Index = (byteOffset: number) => byteOffset >>> 2;

function writeBudget(f64: Float64Array, at: number, b: ExecutionBudget): void {
  const i = f64Index(at + S_BUDGET);
  f64[i] = b.maxSteps;
  f64[i + 1] = b.maxBytesRead;
  f64[i + 2] = b.maxReadsPerStep;
  f64[i + 3] = b.maxInstructionsPerStep;
  f64[i + 4] = b.maxInstructionsPerExecution;
  f64[i + 5] = b.maxOutputBytes;
  f64[i + 6] = b.deadlineMs;
}

function readBudget(f64: Float64Array, at: number): ExecutionBudget {
  const i = f64Index(at + S_BUDGET);
  return {
    maxSteps: f64[i],
    maxBytesRead: f64[i + 1],
    maxReadsPerStep: f64[i + 2],
    maxInstructionsPerStep: f64[i + 3],
    maxInstructionsPerExecution: f64[i + 4],
    maxOutputBytes: f64[i + 5],
    deadlineMs: f64[i + 6],
  };
}

function writeStats(f64: Float64Array, at: number, s: ExecutionStats): void {
  const i = f64Index(at + C_STATS);
  f64[i] = s.steps;
  f64[i + 1] = s.reads;
  f64[i + 2] = s.bytesRead;
  f64[i + 3] = s.instructions;
  f64[i + 4] = s.durationMs;
  f64[i + 5] = s.runMs;
  f64[i + 6] = s.queuedMs;
}

function readStats(f64: Float64Array, at: number): ExecutionStats {
  const i = f64Index(at + C_STATS);
  return {
    steps: f64[i],
    reads: f64[i + 1],
    bytesRead: f64[i + 2],
    instructions: f64[i + 3],
    durationMs: f64[i + 4],
    runMs: f64[i + 5],
    queuedMs: f64[i + 6],
  };
}

/** An execution as the producer submits it (program, slot and namespace are ids both sides know). */
export interface Submission {
  readonly id: number;
  readonly program: number;
  readonly slot: number;
  readonly namespace: number;
  readonly params: readonly [bigint, bigint];
  readonly input: Uint8Array | undefined;
  readonly mode: ExecutionMode;
  readonly budget: ExecutionBudget;
}

/** Whether a submission fits a ring slot (else it goes by message). */
export function fitsSlot(input: Uint8Array | undefined): boolean {
  return input === undefined || input.byteLength <= MAX_INLINE_INPUT_BYTES;
}

/** Write `s` into the ring's reserved slot at `at` (the caller publishes). */
function writeSubmission(ring: SlotRing, at: number, s: Submission): void {
  const { u32, u64, f64 } = ring;
  u32[u32Index(at + S_ID)] = s.id;
  u32[u32Index(at + S_PROGRAM)] = s.program;
  u32[u32Index(at + S_SLOT)] = s.slot;
  u32[u32Index(at + S_NAMESPACE)] = s.namespace;
  u64[f64Index(at + S_PARAM0)] = BigInt.asUintN(64, s.params[0]);
  u64[f64Index(at + S_PARAM1)] = BigInt.asUintN(64, s.params[1]);
  if (s.mode.kind === 'scan') {
    u32[u32Index(at + S_KIND)] = KIND_SCAN;
    f64[f64Index(at + S_SCAN_OFFSET)] = s.mode.offsetBytes;
    f64[f64Index(at + S_SCAN_LENGTH)] = s.mode.lengthBytes;
    f64[f64Index(at + S_SCAN_CHUNK)] = s.mode.chunkBytes;
  } else {
    u32[u32Index(at + S_KIND)] = KIND_CHAIN;
  }
  writeBudget(f64, at, s.budget);
  if (s.input === undefined) {
    u32[u32Index(at + S_INPUT_LEN)] = NO_INPUT;
  } else {
    u32[u32Index(at + S_INPUT_LEN)] = s.input.byteLength;
    ring.bytes.set(s.input, at + S_INPUT);
  }
}

interface Pending {
  readonly done: Done;
  readonly worker: number;
}

/** A submission that found its worker's ring full, or a ping. */
type Backlogged = Submission | { readonly ping: number };

/** The producer's end of its links to every worker of a pool. */
export class ExecutionProducer {
  private readonly submissions: SlotRing[];
  private readonly completions: SlotRing[];
  private readonly backlog: Backlogged[][];
  private readonly pending = new Map<number, Pending>();
  private readonly pings = new Map<
    number,
    { readonly worker: number; readonly resolve: () => void; readonly reject: (e: Error) => void }
  >();
  /** Executions and pings outstanding per worker (this producer's). */
  private readonly outstandingOf: number[];
  /** Executions completed per worker (statistics, tests). */
  readonly completedBy: number[];
  private readonly wake: WakeWord;
  private waiting = false;
  /** Completions taken from the rings (statistics, tests). */
  ringCompletions = 0;

  constructor(
    links: readonly SharedLink[],
    private readonly workerWakes: readonly WakeWord[],
    /** Executions in flight per worker, across every producer (placement reads it). */
    private readonly inflight: Int32Array,
    /** Posts an execution that does not fit a slot to worker `index` (the `exec` message). */
    private readonly postLarge: (index: number, s: Submission) => void,
    /** Every submission or completion changes whether this producer has work outstanding. */
    private readonly busyChanged: (index: number) => void = () => {},
  ) {
    this.submissions = links.map((l) => SlotRing.attach(l.submissions));
    this.completions = links.map((l) => SlotRing.attach(l.completions));
    this.backlog = links.map(() => []);
    this.outstandingOf = links.map(() => 0);
    this.completedBy = links.map(() => 0);
    this.wake = new WakeWord(links[0]?.producerWake);
  }

  /** Executions and pings this producer has outstanding on worker `index`. */
  outstanding(index: number): number {
    return this.outstandingOf[index];
  }

  /** Worker `index` was replaced: its new link (call `failWorker` first). */
  replaceLink(index: number, link: SharedLink): void {
    this.submissions[index] = SlotRing.attach(link.submissions);
    this.completions[index] = SlotRing.attach(link.completions);
  }

  get outstandingTotal(): number {
    return this.pending.size + this.pings.size;
  }

  /** The worker with the fewest executions in flight over all producers; ties go to `preferred` onward. */
  pick(preferred: number): number {
    const n = this.inflight.length;
    let best = preferred % n;
    for (let k = 1; k < n; k++) {
      const w = (preferred + k) % n;
      if (Atomics.load(this.inflight, w) < Atomics.load(this.inflight, best)) best = w;
    }
    return best;
  }

  submit(worker: number, s: Submission, done: Done): void {
    this.pending.set(s.id, { done, worker });
    this.outstandingOf[worker]++;
    Atomics.add(this.inflight, worker, 1);
    if (!fitsSlot(s.input)) {
      this.postLarge(worker, s);
    } else if (!this.push(worker, s)) {
      if (this.backlog[worker].length >= MAX_BACKLOG) {
        this.pending.delete(s.id);
        this.outstandingOf[worker]--;
        Atomics.sub(this.inflight, worker, 1);
        done(
          new ExecutionWorkerError(`execution worker ${worker} has ${MAX_BACKLOG} submissions waiting; the target is overloaded`),
          undefined,
          ZERO_STATS,
        );
        return;
      }
      this.backlog[worker].push(s);
    }
    this.busyChanged(worker);
    this.drain();
    this.armWait();
  }

  /** An empty round trip to worker `index` over the rings; resolves with its wall time in microseconds. */
  ping(worker: number, id: number): Promise<number> {
    const start = performance.now();
    return new Promise((resolve, reject) => {
      this.pings.set(id, { worker, resolve: () => resolve((performance.now() - start) * 1000), reject });
      this.outstandingOf[worker]++;
      if (!this.push(worker, { ping: id })) this.backlog[worker].push({ ping: id });
      this.busyChanged(worker);
      this.armWait();
    });
  }

  /** Into the ring if there is room and nothing queued before it. */
  private push(worker: number, s: Backlogged): boolean {
    if (this.backlog[worker].length > 0) return false;
    return this.write(worker, s);
  }

  private write(worker: number, s: Backlogged): boolean {
    const ring = this.submissions[worker];
    const at = ring.reserve();
    if (at < 0) return false;
    if ('ping' in s) {
      ring.u32[u32Index(at + S_ID)] = s.ping;
      ring.u32[u32Index(at + S_KIND)] = KIND_PING;
    } else {
      writeSubmission(ring, at, s);
    }
    ring.publish();
    this.workerWakes[worker].wake();
    return true;
  }

  /** Take every completion published so far; move backlogs into rings that have room again. */
  drain(): void {
    for (let w = 0; w < this.completions.length; w++) {
      const ring = this.completions[w];
      let took = 0;
      for (let at = ring.peek(); at >= 0; at = ring.peek()) {
        const id = ring.u32[u32Index(at + C_ID)];
        const kind = ring.u32[u32Index(at + C_KIND)];
        if (kind === KIND_PONG) {
          ring.release();
          const pong = this.pings.get(id);
          if (pong !== undefined) {
            this.pings.delete(id);
            this.outstandingOf[pong.worker]--;
            pong.resolve();
          }
          took++;
          continue;
        }
        const length = ring.u32[u32Index(at + C_OUTPUT_LEN)];
        const output = ring.bytes.slice(at + C_OUTPUT, at + C_OUTPUT + length);
        const returnValue = ring.u64[f64Index(at + C_RETURN)];
        const stats = readStats(ring.f64, at);
        ring.release();
        took++;
        this.ringCompletions++;
        this.complete(id, null, { returnValue, output, stats }, stats);
      }
      this.refill(w);
      // The worker may hold submissions back for want of completion room: tell it there is room.
      if (took > 0 && this.submissions[w].size > 0) this.workerWakes[w].wake();
      if (took > 0) this.busyChanged(w);
    }
  }

  /** A completion that came by message (a large output, an error), or a failure decided here. */
  complete(id: number, error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    this.outstandingOf[p.worker]--;
    if (error === null) this.completedBy[p.worker]++;
    Atomics.sub(this.inflight, p.worker, 1);
    p.done(error, result, stats);
    // A completion by message frees no ring slot, but the worker may have made room while taking
    // (it wakes this thread for that only when it found the ring full).
    if (this.backlog[p.worker].length > 0) this.refill(p.worker);
  }

  /** Move worker `w`'s backlog into its submission ring, in order, as far as there is room. */
  private refill(w: number): void {
    const backlog = this.backlog[w];
    let moved = 0;
    while (moved < backlog.length && this.write(w, backlog[moved])) moved++;
    if (moved > 0) backlog.splice(0, moved);
  }

  /** Worker `index` died: every execution and ping this producer had on it fails with `error`. */
  failWorker(index: number, error: Error): void {
    this.backlog[index] = [];
    for (const [id, p] of this.pings) {
      if (p.worker !== index) continue;
      this.pings.delete(id);
      this.outstandingOf[index]--;
      p.reject(error);
    }
    for (const [id, p] of this.pending) if (p.worker === index) this.complete(id, error, undefined, ZERO_STATS);
  }

  /** Keep one `Atomics.waitAsync` armed while anything is outstanding. */
  private armWait(): void {
    if (this.waiting || this.outstandingTotal === 0) return;
    this.wake.arm();
    const seen = this.wake.seen();
    // Published between the last drain and arming: take it now, then arm again.
    if (this.completionsWaiting()) {
      this.wake.disarm();
      queueMicrotask(this.onWake);
      this.waiting = true;
      return;
    }
    this.waiting = true;
    if (!this.wake.sleepAsync(seen, this.onWake)) queueMicrotask(this.onWake);
  }

  private completionsWaiting(): boolean {
    for (const ring of this.completions) if (ring.size > 0) return true;
    return false;
  }

  private readonly onWake = (): void => {
    this.waiting = false;
    this.wake.disarm();
    this.drain();
    this.armWait();
  };
}

export const ZERO_STATS: ExecutionStats = {
  steps: 0,
  reads: 0,
  bytesRead: 0,
  instructions: 0,
  durationMs: 0,
  runMs: 0,
  queuedMs: 0,
};

/** A submission as the worker reads it from its slot; `input` views the slot (valid until release). */
export interface TakenSubmission {
  readonly id: number;
  readonly kind: 'exec' | 'ping';
  readonly program: number;
  readonly slot: number;
  readonly namespace: number;
  readonly params: readonly [bigint, bigint];
  readonly input: Uint8Array | undefined;
  readonly mode: ExecutionMode;
  readonly budget: ExecutionBudget;
}

const CHAIN: ExecutionMode = { kind: 'chain' };

/** The worker's end of one link: takes submissions, publishes completions, wakes the producer. */
export class WorkerLink {
  private readonly submissions: SlotRing;
  private readonly completions: SlotRing;
  private readonly producerWake: WakeWord;
  /** Executions taken from this link and not yet completed (each has a completion slot kept for it). */
  running = 0;

  constructor(link: SharedLink) {
    this.submissions = SlotRing.attach(link.submissions);
    this.completions = SlotRing.attach(link.completions);
    this.producerWake = new WakeWord(link.producerWake);
  }

  /**
   * Hand each waiting submission to `take` while the completion ring has room for it and for every
   * execution already running; a ping is answered here. Returns how many were taken.
   */
  takeAll(take: (s: TakenSubmission) => void): number {
    const ring = this.submissions;
    // Only a full ring can have left submissions in the producer's backlog: then the room made here
    // is worth a wake-up. Otherwise the completion that follows every take wakes it anyway.
    const wasFull = ring.free === 0;
    let ponged = false;
    let taken = 0;
    for (let at = ring.peek(); at >= 0; at = ring.peek()) {
      if (this.running + 1 > this.completions.free) break;
      const { u32, u64, f64 } = ring;
      const id = u32[u32Index(at + S_ID)];
      const kind = u32[u32Index(at + S_KIND)];
      taken++;
      if (kind === KIND_PING) {
        ring.release();
        ponged = this.pong(id) || ponged;
        continue;
      }
      const inputLength = u32[u32Index(at + S_INPUT_LEN)];
      const mode: ExecutionMode =
        kind === KIND_SCAN
          ? {
              kind: 'scan',
              offsetBytes: f64[f64Index(at + S_SCAN_OFFSET)],
              lengthBytes: f64[f64Index(at + S_SCAN_LENGTH)],
              chunkBytes: f64[f64Index(at + S_SCAN_CHUNK)],
            }
          : CHAIN;
      this.running++;
      try {
        take({
          id,
          kind: 'exec',
          program: u32[u32Index(at + S_PROGRAM)],
          slot: u32[u32Index(at + S_SLOT)],
          namespace: u32[u32Index(at + S_NAMESPACE)],
          params: [u64[f64Index(at + S_PARAM0)], u64[f64Index(at + S_PARAM1)]],
          input: inputLength === NO_INPUT ? undefined : ring.bytes.subarray(at + S_INPUT, at + S_INPUT + inputLength),
          mode,
          budget: readBudget(f64, at),
        });
      } finally {
        ring.release();
      }
    }
    if (ponged || (taken > 0 && wasFull)) this.producerWake.wake();
    return taken;
  }

  /** Answer a ping in the completion ring; false (the ping is lost) only if there were no room. */
  private pong(id: number): boolean {
    const ring = this.completions;
    const at = ring.reserve();
    // takeAll takes a ping only with room for it beyond the running executions' completions.
    if (at < 0) return false;
    ring.u32[u32Index(at + C_ID)] = id;
    ring.u32[u32Index(at + C_KIND)] = KIND_PONG;
    ring.publish();
    return true;
  }

  /** Whether `output` can complete through the ring (else: the `done` message). */
  static fits(output: Uint8Array): boolean {
    return output.byteLength <= MAX_INLINE_OUTPUT_BYTES;
  }

  /** Publish a successful completion whose output fits a slot (room was kept when it was taken). */
  completed(id: number, program: number, slot: number, returnValue: bigint, output: Uint8Array, stats: ExecutionStats): void {
    const ring = this.completions;
    const at = ring.reserve();
    if (at < 0) throw new Error('completion ring full: room was kept for every running execution');
    ring.u32[u32Index(at + C_ID)] = id;
    ring.u32[u32Index(at + C_KIND)] = KIND_DONE;
    ring.u32[u32Index(at + C_OUTPUT_LEN)] = output.byteLength;
    ring.u32[u32Index(at + C_SLOT)] = slot;
    ring.u32[u32Index(at + C_PROGRAM)] = program;
    ring.u64[f64Index(at + C_RETURN)] = BigInt.asUintN(64, returnValue);
    writeStats(ring.f64, at, stats);
    ring.bytes.set(output, at + C_OUTPUT);
    ring.publish();
    this.running--;
    this.producerWake.wake();
  }

  /** An execution taken from this link completed by message instead: its kept room is free again. */
  completedElsewhere(): void {
    this.running--;
  }

  /** Submissions waiting that this worker could take now. */
  get waiting(): number {
    return this.submissions.size;
  }

  /**
   * The producer died: drop every submission it left waiting, telling `orphan` each one's program
   * and slot (the producer took the slot; nobody else will give it back). Pings are dropped.
   */
  discardAll(orphan: (program: number, slot: number) => void): void {
    const ring = this.submissions;
    for (let at = ring.peek(); at >= 0; at = ring.peek()) {
      if (ring.u32[u32Index(at + S_KIND)] !== KIND_PING) {
        orphan(ring.u32[u32Index(at + S_PROGRAM)], ring.u32[u32Index(at + S_SLOT)]);
      }
      ring.release();
    }
  }
}

/**
 * A dead producer's completion ring, read by the pool's thread once no worker writes it any more:
 * `orphan` gets each completed execution's program and slot (to give the slot back).
 */
export function takeOrphans(link: SharedLink, orphan: (program: number, slot: number) => void): void {
  const ring = SlotRing.attach(link.completions);
  for (let at = ring.peek(); at >= 0; at = ring.peek()) {
    if (ring.u32[u32Index(at + C_KIND)] === KIND_DONE) {
      orphan(ring.u32[u32Index(at + C_PROGRAM)], ring.u32[u32Index(at + C_SLOT)]);
    }
    ring.release();
  }
}
