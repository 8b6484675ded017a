/**
 * Running one execution of a storage function: steps, the reads between them, budgets and the
 * fair scheduler. Reads of the next step are issued together (fan-out); in scan mode the next chunk
 * is read while the current one is processed (readahead).
 */
import { MAX_READS_PER_STEP, NB_FLAG_SCAN, NB_FLAG_SCAN_END, STORAGE_CTX } from '../abi/storage.js';
import { FuelExhaustedError } from '../errors.js';
import type { ExecutionBudget } from './budget.js';
import { BudgetExceededError, StorageAccessError, StorageReadError } from './errors.js';
import type { TurnScheduler, TurnTaker } from './scheduler.js';
import { INITIAL_OUTPUT_BYTES, type Slot, type StepState, type StorageFunction } from './storage-function.js';

/** The bytes a storage function reads: a namespace, as the tenant may see it. */
export interface NamespaceReader {
  readonly sizeBytes: number;
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  /**
   * Copy `[offsetBytes, offsetBytes + lengthBytes)` into `dest` at `destOffset` if the bytes are in
   * memory now (a page cache), returning true; false (nothing copied) when they must be read.
   * Optional: without it every read goes through `read`.
   */
  readNow?(offsetBytes: number, lengthBytes: number, dest: Uint8Array, destOffset: number): boolean;
  /**
   * What a thread needs to read the same namespace itself (an execution worker): opaque to the
   * runtime, given to the executor. Optional: without it executions run on the calling thread.
   */
  shareable?(): unknown;
}

export type ExecutionMode =
  | { readonly kind: 'chain' }
  | { readonly kind: 'scan'; readonly offsetBytes: number; readonly lengthBytes: number; readonly chunkBytes: number };

export interface ExecutionRequest {
  readonly reader: NamespaceReader;
  readonly params: readonly [bigint, bigint];
  readonly input?: Uint8Array;
  readonly mode?: ExecutionMode;
  /** Who runs it: the fairness and budget domain. */
  readonly tenant: string;
}

export interface ExecutionStats {
  steps: number;
  reads: number;
  bytesRead: number;
  instructions: number;
  durationMs: number;
  /** Time spent running steps (in scheduler turns): the execution's CPU time on the event loop. */
  runMs: number;
  /** Time spent waiting for scheduler turns (from each request to its grant). */
  queuedMs: number;
}

export interface ExecutionResult {
  readonly returnValue: bigint;
  readonly output: Uint8Array;
  readonly stats: ExecutionStats;
}

/** Told once per execution when it ends, with its stats and its error (null on success). */
export interface ExecutionObserver {
  executed(tenant: string, program: string, stats: Readonly<ExecutionStats>, outputBytes: number, error: unknown): void;
}

/**
 * Runs executions somewhere else than the calling thread (the target's execution workers): the
 * runtime still owns slots, budgets, statistics and the observer.
 */
export interface StorageExecutor {
  /** Threads that may run one program at once: each needs its own stack region in the sandbox. */
  readonly threads: number;
  /** Make a loaded program runnable on every thread (compiles it there); rejects if it cannot be. */
  load(fn: StorageFunction, tenant: string): Promise<void>;
  unload(fn: StorageFunction): void;
  /** Run one execution in `slot` (acquired by the runtime); `done` once, with its stats either way. */
  execute(
    fn: StorageFunction,
    slot: Slot,
    request: ExecutionRequest,
    budget: ExecutionBudget,
    done: (error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats) => void,
  ): void;
}

export function executeStorageFunction(
  fn: StorageFunction,
  request: ExecutionRequest,
  budget: ExecutionBudget,
  scheduler: TurnScheduler,
  observer?: ExecutionObserver,
  executor?: StorageExecutor,
): Promise<ExecutionResult> {
  return new Promise((resolve, reject) => {
    runStorageFunction(fn, request, budget, scheduler, observer, executor, (error, result) => {
      if (error !== null) reject(error);
      else resolve(result as ExecutionResult);
    });
  });
}

/**
 * `executeStorageFunction` with a callback instead of a promise (the target's command path): `done`
 * runs once, with the error or null and the result; synchronously when the execution ends in the
 * turn it started in (every read in memory and nobody else waiting).
 */
export function runStorageFunction(
  fn: StorageFunction,
  request: ExecutionRequest,
  budget: ExecutionBudget,
  scheduler: TurnScheduler,
  observer: ExecutionObserver | undefined,
  executor: StorageExecutor | undefined,
  done: (error: unknown, result: ExecutionResult | undefined) => void,
): void {
  const slot = fn.acquireSlot();
  if (slot === undefined) {
    done(new BudgetExceededError('concurrentExecutions', fn.slotCount, `all slots of '${fn.name}' are busy`), undefined);
    return;
  }
  fn.stats.executions++;
  const ended = (error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats): void => {
    fn.releaseSlot(slot);
    if (error !== null) fn.stats.failures++;
    observer?.executed(request.tenant, fn.name, stats, result?.output.byteLength ?? 0, error);
    fn.stats.steps += stats.steps;
    fn.stats.instructions += stats.instructions;
    fn.stats.bytesRead += stats.bytesRead;
    done(error, result);
  };
  if (executor !== undefined && request.reader.shareable !== undefined) {
    executor.execute(fn, slot, request, budget, ended);
    return;
  }
  startExecution(fn, slot, request, budget, scheduler, ended);
}

/**
 * The execution state of each slot on this thread, reused by every execution in it: views of its
 * regions, the context, the step state and the output arena are built once per slot, not per
 * execution. An execution that ends with a read or a turn still pending leaves its state behind
 * (the late callback finds it settled) and the slot's next execution gets a fresh one.
 */
const slotExecutions = new WeakMap<Slot, Execution>();

/**
 * Start one execution in `slot` on this thread, driven by `scheduler`'s turns; `done` runs once, when
 * it ends (with its error, or null and the result).
 */
export function startExecution(
  fn: StorageFunction,
  slot: Slot,
  request: ExecutionRequest,
  budget: ExecutionBudget,
  scheduler: TurnScheduler,
  done: (error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats) => void,
): void {
  const startMs = performance.now();
  let execution = slotExecutions.get(slot);
  if (execution === undefined || execution.fn !== fn || !execution.reusable) {
    execution = new Execution(fn, slot);
    slotExecutions.set(slot, execution);
  }
  execution.begin(request, budget, scheduler, startMs, done);
}

/**
 * Executions waiting for reads, checked against their deadlines by one timer for all of them (a
 * read that never completes must not hold an execution past its deadline); running executions
 * check theirs with one clock reading per step.
 */
const DEADLINE_SWEEP_MS = 25;
const waitingForReads = new Set<Execution>();
let sweepTimer: NodeJS.Timeout | null = null;
function watchDeadline(e: Execution): void {
  waitingForReads.add(e);
  if (sweepTimer === null) {
    // Not unref'd: it runs only while some execution waits, and that wait must end by its deadline.
    sweepTimer = setInterval(sweepDeadlines, DEADLINE_SWEEP_MS);
  }
}
function unwatchDeadline(e: Execution): void {
  waitingForReads.delete(e);
  if (waitingForReads.size === 0 && sweepTimer !== null) {
    clearInterval(sweepTimer);
    sweepTimer = null;
  }
}
function sweepDeadlines(): void {
  const now = performance.now();
  for (const e of waitingForReads) e.checkWaitingDeadline(now);
}

type ScanMode = Extract<ExecutionMode, { kind: 'scan' }>;
type Done = (error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats) => void;

const NO_INPUT = new Uint8Array(0);
/** Output of an execution that emitted nothing (never written: it has no bytes). */
const NO_OUTPUT = new Uint8Array(0);
/** An output arena larger than this is not kept for the slot's next execution. */
const MAX_KEPT_OUTPUT_BYTES = 64 * 1024;
const TWO_POW_32 = 0x1_0000_0000;

/**
 * One execution as a state machine driven by turns of the scheduler: in a turn it runs steps back
 * to back while every read they ask for is in memory (copied straight into the slot's data
 * region), and leaves the turn when a read must go to storage (the turn is requested again once
 * all of them arrived), when the turn's work bound is reached, or when it ends.
 *
 * One object per slot serves execution after execution (`begin`): what belongs to one execution is
 * reset there, and what the sandbox holds is cleared as isolation needs it: the input region from
 * the end of this input up to the furthest byte an earlier input reached, the scratch region
 * wholly (the program may have written any of it), the context's per-execution fields (the rest is
 * rewritten every step; programs cannot write the context, input or data regions).
 */
class Execution implements TurnTaker {
  stats: ExecutionStats = { steps: 0, reads: 0, bytesRead: 0, instructions: 0, durationMs: 0, runMs: 0, queuedMs: 0 };
  /** When the pending turn was requested (0: none pending). */
  private turnRequestedAtMs = 0;
  /** The turn running now, if any, and when it started. */
  private inTurn = false;
  private turnStartMs = 0;
  startMs = 0;
  private deadlineMs = 0;
  private readonly state: StepState;
  private readonly ctx: DataView;
  private readonly data: Uint8Array;
  private readonly input: Uint8Array;
  private readonly scratch: Uint8Array;
  /** Offsets of the input and scratch regions in the sandbox's memory. */
  private readonly inputAt: number;
  private readonly scratchAt: number;
  /** Sandbox address of the data region's first byte. */
  private readonly dataAddress: number;
  /** Sandbox address of the context (r1 of every step). */
  private readonly ctxAddress: number;
  private tenant = '';
  private reader!: NamespaceReader;
  private budget!: ExecutionBudget;
  private scheduler!: TurnScheduler;
  private scan: ScanMode | null = null;
  private onDone: Done | null = null;
  private settled = true;
  /** When it finished or failed (performance.now()). */
  private settledAtMs = 0;
  /** Inputs of the next step (chain mode). */
  private dataBytes = 0;
  private nrReads = 0;
  private dataOffset = 0;
  /** Reads of the last step still on their way from storage. */
  private readsOutstanding = 0;
  /** Scan: next byte to process, next byte to read, end, chunk size, and the chunk read ahead. */
  private scanAt = 0;
  private scanReadAt = 0;
  private scanEnd = 0;
  private scanChunk = 0;
  private scanNext: Uint8Array | null = null;
  /** Between turns, waiting for reads: their arrival requests the next turn. */
  private waiting = false;
  private readonly onReadArrived = (): void => {
    if (this.settled || --this.readsOutstanding > 0 || !this.waiting) return;
    this.waiting = false;
    unwatchDeadline(this);
    this.requestTurn(performance.now());
  };
  private readonly onReadFailed = (e: unknown): void => {
    if (this.settled) return;
    unwatchDeadline(this);
    this.fail(e);
  };

  constructor(
    readonly fn: StorageFunction,
    slot: Slot,
  ) {
    const sandbox = fn.sandbox;
    const ctxBytes = sandbox.bytes(slot.ctxRegion);
    this.ctx = new DataView(ctxBytes.buffer, ctxBytes.byteOffset, ctxBytes.byteLength);
    this.data = sandbox.bytes(slot.dataRegion);
    this.input = sandbox.bytes(slot.inputRegion);
    this.scratch = sandbox.bytes(slot.scratchRegion);
    this.inputAt = this.input.byteOffset;
    this.scratchAt = this.scratch.byteOffset;
    this.dataAddress = sandbox.address(slot.dataRegion);
    this.ctxAddress = sandbox.address(slot.ctxRegion);
    // A fresh state for the slot: clear the context and the input once (from then on the context's
    // input_len bounds what the input region may hold, whichever thread ran the slot last).
    ctxBytes.fill(0);
    this.input.fill(0);
    // Pointers are 32-bit sandbox addresses: the low half of the field (the high half stays 0).
    this.ctx.setUint32(STORAGE_CTX.data, this.dataAddress, true);
    this.ctx.setUint32(STORAGE_CTX.scratch, sandbox.address(slot.scratchRegion), true);
    this.ctx.setUint32(STORAGE_CTX.input, sandbox.address(slot.inputRegion), true);
    this.state = {
      namespaceSizeBytes: 0,
      maxReadsPerStep: 0,
      maxOutputBytes: 0,
      scanMode: false,
      readCount: 0,
      readOffsets: new Float64Array(MAX_READS_PER_STEP),
      readLengths: new Float64Array(MAX_READS_PER_STEP),
      readBytesThisStep: 0,
      output: new Uint8Array(INITIAL_OUTPUT_BYTES),
      outputBytes: 0,
      scanStopped: false,
    };
  }

  /** Whether the slot's next execution may use this state: this one ended with nothing pending. */
  get reusable(): boolean {
    return this.settled && this.readsOutstanding === 0 && this.turnRequestedAtMs === 0 && !this.waiting;
  }

  /** Start an execution (the previous one in this slot has ended: see `reusable`). */
  begin(request: ExecutionRequest, budget: ExecutionBudget, scheduler: TurnScheduler, startMs: number, onDone: Done): void {
    this.stats = { steps: 0, reads: 0, bytesRead: 0, instructions: 0, durationMs: 0, runMs: 0, queuedMs: 0 };
    this.startMs = startMs;
    this.onDone = onDone;
    this.settled = false;
    this.settledAtMs = 0;
    this.inTurn = false;
    const mode = request.mode;
    const scan = mode !== undefined && mode.kind === 'scan' ? mode : null;
    this.tenant = request.tenant;
    this.reader = request.reader;
    this.budget = budget;
    this.scheduler = scheduler;
    this.scan = scan;
    this.deadlineMs = startMs + budget.deadlineMs;
    this.dataBytes = 0;
    this.nrReads = 0;
    this.dataOffset = 0;
    this.readsOutstanding = 0;
    this.scanNext = null;
    this.waiting = false;
    const state = this.state;
    state.namespaceSizeBytes = request.reader.sizeBytes;
    state.maxReadsPerStep = Math.min(budget.maxReadsPerStep, MAX_READS_PER_STEP);
    state.maxOutputBytes = budget.maxOutputBytes;
    state.scanMode = scan !== null;
    state.readCount = 0;
    state.readBytesThisStep = 0;
    if (state.output.length > MAX_KEPT_OUTPUT_BYTES) state.output = new Uint8Array(INITIAL_OUTPUT_BYTES);
    state.outputBytes = 0;
    state.scanStopped = false;
    try {
      const input = request.input ?? NO_INPUT;
      if (input.length > this.input.length) {
        throw new StorageAccessError(0, `input of ${input.length} bytes exceeds the ${this.input.length}-byte limit`);
      }
      // Isolation: nothing an earlier execution left in the slot may be visible to this one. Bytes of
      // the input region past the context's input_len are zero (every execution keeps it so, on any
      // thread: the context lives in the shared sandbox), so only [new length, old length) is cleared.
      // The region is marked wholly dirty first, so a thread that dies half way leaves no stale bytes
      // behind the mark.
      const ctx = this.ctx;
      const regionBytes = this.input.length;
      const dirtyBytes =
        ctx.getUint32(STORAGE_CTX.inputLen + 4, true) === 0 ? ctx.getUint32(STORAGE_CTX.inputLen, true) : regionBytes;
      ctx.setUint32(STORAGE_CTX.inputLen, regionBytes, true);
      ctx.setUint32(STORAGE_CTX.inputLen + 4, 0, true);
      this.input.set(input);
      const fn = this.fn;
      if (dirtyBytes > input.length) fn.zero(this.inputAt + input.length, Math.min(dirtyBytes, regionBytes) - input.length);
      ctx.setUint32(STORAGE_CTX.inputLen, input.length, true);
      fn.zero(this.scratchAt, this.scratch.length);
      ctx.setBigUint64(STORAGE_CTX.param0, BigInt.asUintN(64, request.params[0]), true);
      ctx.setBigUint64(STORAGE_CTX.param1, BigInt.asUintN(64, request.params[1]), true);
      const size = request.reader.sizeBytes;
      ctx.setUint32(STORAGE_CTX.namespaceSize, size % TWO_POW_32, true);
      ctx.setUint32(STORAGE_CTX.namespaceSize + 4, Math.floor(size / TWO_POW_32), true);
      if (scan !== null) this.prepareScan(scan);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.requestTurn(startMs);
  }

  /** Queue for a turn; the wait until it is granted counts in `queuedMs`. */
  private requestTurn(nowMs: number): void {
    this.turnRequestedAtMs = nowMs;
    this.scheduler.request(this.tenant, this, nowMs);
  }

  /** A turn: steps back to back until one needs storage, the turn's bound is reached, or the end. */
  runTurn(turnStartMs: number): void {
    if (this.settled) return;
    if (this.turnRequestedAtMs !== 0) this.stats.queuedMs += turnStartMs - this.turnRequestedAtMs;
    this.turnRequestedAtMs = 0;
    this.turnStartMs = turnStartMs;
    this.inTurn = true;
    try {
      this.runSteps(turnStartMs);
    } finally {
      // A turn ends when it queued the execution for the next turn (waiting starts then) or when it
      // waits for reads; one that settled it was counted by `settle`, before the stats went out. So
      // running and waiting time never overlap and always fit inside `durationMs`.
      if (this.inTurn) {
        this.inTurn = false;
        this.stats.runMs += (this.turnRequestedAtMs !== 0 ? this.turnRequestedAtMs : performance.now()) - turnStartMs;
      }
    }
  }

  private runSteps(turnStartMs: number): void {
    try {
      let now = turnStartMs;
      for (;;) {
        if (now > this.deadlineMs) {
          throw new BudgetExceededError('deadline', this.budget.deadlineMs, `${Math.round(now - this.startMs)} ms elapsed`);
        }
        if (this.scan !== null ? !this.scanStep() : !this.chainStep()) return;
        now = performance.now();
        if (!this.scheduler.mayContinue(now)) {
          // Bounded work per turn: queue for another one (others, and the event loop, go first).
          this.requestTurn(now);
          return;
        }
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** One step of a chain; true when the next step may run at once (every read it asked for hit). */
  private chainStep(): boolean {
    const r0 = this.step(this.dataBytes, this.nrReads, this.dataOffset, 0);
    const state = this.state;
    const n = state.readCount;
    if (n === 0) {
      this.finish(r0);
      return false;
    }
    const readOffsets = state.readOffsets;
    const readLengths = state.readLengths;
    this.nrReads = n;
    this.dataOffset = readOffsets[0];
    let at = 0;
    let missed = 0;
    const reader = this.reader;
    const readNow = reader.readNow;
    for (let i = 0; i < n; i++) {
      const offset = readOffsets[i];
      const length = readLengths[i];
      this.chargeRead(length);
      if (readNow === undefined || !readNow.call(reader, offset, length, this.data, at)) {
        missed++;
        this.readFromStorage(offset, length, at);
      }
      at += length;
    }
    this.dataBytes = at;
    if (missed === 0) return true;
    this.readsOutstanding += missed;
    this.waitForReads();
    return false;
  }

  private readFromStorage(offset: number, length: number, at: number): void {
    this.reader.read(offset, length).then((bytes) => {
      if (this.settled) return;
      if (bytes.length !== length) {
        this.onReadFailed(new StorageReadError(`read of ${length} bytes at ${offset} returned ${bytes.length}`));
        return;
      }
      this.data.set(bytes, at);
      this.onReadArrived();
    }, this.onReadFailed);
  }

  private chargeRead(lengthBytes: number): void {
    if (this.stats.bytesRead + lengthBytes > this.budget.maxBytesRead) {
      throw new BudgetExceededError(
        'bytesRead',
        this.budget.maxBytesRead,
        `reading ${lengthBytes} more bytes after ${this.stats.bytesRead}`,
      );
    }
    this.stats.bytesRead += lengthBytes;
    this.stats.reads++;
  }

  private prepareScan(mode: ScanMode): void {
    const { reader } = this;
    if (
      !Number.isSafeInteger(mode.offsetBytes) ||
      !Number.isSafeInteger(mode.lengthBytes) ||
      mode.offsetBytes < 0 ||
      mode.lengthBytes < 0
    ) {
      throw new StorageAccessError(0, 'scan range must be non-negative integers');
    }
    if (mode.offsetBytes + mode.lengthBytes > reader.sizeBytes) {
      throw new StorageAccessError(0, `scan of ${mode.lengthBytes} bytes at ${mode.offsetBytes} is outside the namespace`);
    }
    const chunk = Math.min(mode.chunkBytes, this.data.length);
    if (!Number.isSafeInteger(chunk) || chunk <= 0) throw new StorageAccessError(0, `invalid scan chunk size ${mode.chunkBytes}`);
    this.scanAt = mode.offsetBytes;
    this.scanReadAt = mode.offsetBytes;
    this.scanEnd = mode.offsetBytes + mode.lengthBytes;
    this.scanChunk = chunk;
  }

  /** Ask storage for the next chunk not yet asked for; it arrives in `scanNext`. */
  private readAhead(): void {
    const start = this.scanReadAt;
    const length = Math.min(this.scanChunk, this.scanEnd - start);
    if (length <= 0) return;
    this.scanReadAt = start + length;
    this.chargeRead(length);
    this.readsOutstanding++;
    this.reader.read(start, length).then((bytes) => {
      if (this.settled) return;
      if (bytes.length !== length) {
        this.onReadFailed(new StorageReadError(`read of ${length} bytes at ${start} returned ${bytes.length}`));
        return;
      }
      this.scanNext = bytes;
      this.onReadArrived();
    }, this.onReadFailed);
  }

  /**
   * One step of a scan; true when another may run at once. A chunk in memory (the page cache, or a
   * reader that reads synchronously, as on an execution worker) is copied straight into the data
   * region; otherwise it is asked of storage and the following chunk read ahead while it is processed.
   */
  private scanStep(): boolean {
    if (this.state.scanStopped || this.scanAt >= this.scanEnd) {
      this.finish(this.step(0, 0, this.scanAt, NB_FLAG_SCAN | NB_FLAG_SCAN_END));
      return false;
    }
    const at = this.scanAt;
    const chunk = this.scanNext;
    if (chunk !== null) {
      this.scanNext = null;
      this.data.set(chunk, 0);
      this.scanAt = at + chunk.length;
      // Readahead: fetch the following chunk while this one is processed.
      this.readAhead();
      this.step(chunk.length, 1, at, NB_FLAG_SCAN);
      return true;
    }
    if (this.readsOutstanding > 0) {
      this.waitForReads();
      return false;
    }
    const reader = this.reader;
    const length = Math.min(this.scanChunk, this.scanEnd - at);
    if (reader.readNow !== undefined) {
      this.chargeRead(length);
      if (!reader.readNow(at, length, this.data, 0)) {
        // Not in memory: take the promise path for this chunk (charged already) and the ones after it.
        this.stats.bytesRead -= length;
        this.stats.reads--;
        this.readAhead();
        this.waitForReads();
        return false;
      }
      this.scanReadAt = at + length;
      this.scanAt = at + length;
      this.step(length, 1, at, NB_FLAG_SCAN);
      return true;
    }
    this.readAhead();
    this.waitForReads();
    return false;
  }

  /** Leave the turn until the reads in flight arrive (their arrival requests the next turn). */
  private waitForReads(): void {
    if (this.readsOutstanding === 0) {
      this.requestTurn(performance.now());
      return;
    }
    this.waiting = true;
    watchDeadline(this);
  }

  /** Run one step of the program; returns its r0. */
  private step(dataBytes: number, nrReads: number, dataOffset: number, flags: number): bigint {
    const { budget, fn, ctx, stats } = this;
    if (stats.steps >= budget.maxSteps) {
      throw new BudgetExceededError('steps', budget.maxSteps, `execution of '${fn.name}' wanted step ${stats.steps + 1}`);
    }
    // Context fields as numbers: the high halves of step, nr_reads and flags stay 0 (bounded far below 2^32).
    ctx.setUint32(STORAGE_CTX.dataEnd, this.dataAddress + dataBytes, true);
    ctx.setUint32(STORAGE_CTX.step, stats.steps, true);
    ctx.setUint32(STORAGE_CTX.nrReads, nrReads, true);
    ctx.setUint32(STORAGE_CTX.dataOffset, dataOffset % TWO_POW_32, true);
    ctx.setUint32(STORAGE_CTX.dataOffset + 4, Math.floor(dataOffset / TWO_POW_32), true);
    ctx.setUint32(STORAGE_CTX.flags, flags, true);
    this.state.readCount = 0;
    this.state.readBytesThisStep = 0;
    const leftForExecution = budget.maxInstructionsPerExecution - stats.instructions;
    const fuel = Math.min(budget.maxInstructionsPerStep, leftForExecution);
    fn.current = this.state;
    stats.steps++;
    try {
      const engine = fn.engine;
      if (engine === undefined) throw new StorageAccessError(0, `'${fn.name}' runs on execution workers, not on this thread`);
      // r1 = the context's address, passed as a number: no BigInt crosses into Wasm per step.
      const fuelUsed = engine.runAddress(this.ctxAddress, fuel, fn.clearStack);
      stats.instructions += fuelUsed;
      this.scheduler.charge(fuelUsed);
      return engine.r0();
    } catch (e) {
      if (e instanceof FuelExhaustedError) {
        stats.instructions += fuel;
        if (fuel < budget.maxInstructionsPerStep) {
          throw new BudgetExceededError('instructionsPerExecution', budget.maxInstructionsPerExecution, e.message);
        }
        throw new BudgetExceededError('instructionsPerStep', budget.maxInstructionsPerStep, e.message);
      }
      throw e;
    } finally {
      fn.current = undefined;
    }
  }

  /** Called by the deadline sweep while reads are outstanding. */
  checkWaitingDeadline(nowMs: number): void {
    if (nowMs <= this.deadlineMs) return;
    unwatchDeadline(this);
    this.fail(new BudgetExceededError('deadline', this.budget.deadlineMs, 'waiting for a read'));
  }

  private finish(r0: bigint): void {
    if (this.settled) return;
    const state = this.state;
    const n = state.outputBytes;
    let output = NO_OUTPUT;
    if (n > 0) {
      // The result's own copy: the arena is the slot's and serves its next execution.
      output = new Uint8Array(n);
      output.set(state.output.subarray(0, n));
    }
    this.settle(null, { returnValue: r0, output, stats: this.stats });
  }

  private fail(e: unknown): void {
    if (this.settled) return;
    this.settle(e, undefined);
  }

  private settle(error: unknown, result: ExecutionResult | undefined): void {
    this.settled = true;
    if (this.waiting) unwatchDeadline(this);
    this.settledAtMs = performance.now();
    this.stats.durationMs = this.settledAtMs - this.startMs;
    if (this.inTurn) {
      // The turn it settled in counts before the stats are handed on (metrics read them in onDone).
      this.inTurn = false;
      this.stats.runMs += this.settledAtMs - this.turnStartMs;
    }
    const onDone = this.onDone as Done;
    this.onDone = null;
    onDone(error, result, this.stats);
  }
}
