/**
 * Running one execution of a storage function: steps, the reads between them, budgets and the
 * fair scheduler. Reads of the next step are issued together (fan-out); in scan mode the next chunk
 * is read while the current one is processed (readahead).
 */
import { NB_FLAG_SCAN, NB_FLAG_SCAN_END, STORAGE_CTX } from '../abi/storage.js';
import { FuelExhaustedError } from '../errors.js';
import type { ExecutionBudget } from './budget.js';
import { BudgetExceededError, StorageAccessError, StorageReadError } from './errors.js';
import type { TurnScheduler, TurnTaker } from './scheduler.js';
import type { Slot, StepState, StorageFunction } from './storage-function.js';

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
  const slot = fn.acquireSlot();
  if (slot === undefined) {
    return Promise.reject(new BudgetExceededError('concurrentExecutions', fn.slotCount, `all slots of '${fn.name}' are busy`));
  }
  fn.stats.executions++;
  return new Promise((resolve, reject) => {
    const done = (error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats): void => {
      fn.releaseSlot(slot);
      if (error !== null) fn.stats.failures++;
      observer?.executed(request.tenant, fn.name, stats, result?.output.byteLength ?? 0, error);
      fn.stats.steps += stats.steps;
      fn.stats.instructions += stats.instructions;
      fn.stats.bytesRead += stats.bytesRead;
      if (error !== null) reject(error);
      else resolve(result as ExecutionResult);
    };
    if (executor !== undefined && request.reader.shareable !== undefined) {
      executor.execute(fn, slot, request, budget, done);
      return;
    }
    startExecution(fn, slot, request, budget, scheduler, done);
  });
}

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
  let execution: Execution;
  try {
    execution = new Execution(fn, slot, request, budget, scheduler);
  } catch (e) {
    done(e, undefined, {
      steps: 0,
      reads: 0,
      bytesRead: 0,
      instructions: 0,
      durationMs: performance.now() - startMs,
      runMs: 0,
      queuedMs: 0,
    });
    return;
  }
  execution.start((error, result) => {
    if (error !== null) execution.stats.durationMs = performance.now() - execution.startMs;
    fn.current = undefined;
    done(error, result, execution.stats);
  });
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

/**
 * One execution as a state machine driven by turns of the scheduler: in a turn it runs steps back
 * to back while every read they ask for is in memory (copied straight into the slot's data
 * region), and leaves the turn when a read must go to storage (the turn is requested again once
 * all of them arrived), when the turn's work bound is reached, or when it ends.
 */
class Execution implements TurnTaker {
  readonly stats: ExecutionStats = { steps: 0, reads: 0, bytesRead: 0, instructions: 0, durationMs: 0, runMs: 0, queuedMs: 0 };
  /** When the pending turn was requested (0: none pending). */
  private turnRequestedAtMs = 0;
  readonly startMs = performance.now();
  private readonly deadlineMs: number;
  private readonly state: StepState;
  private readonly ctx: DataView;
  private readonly data: Uint8Array;
  /** Sandbox address of the data region's first byte. */
  private readonly dataAddress: number;
  private readonly tenant: string;
  private readonly reader: NamespaceReader;
  private readonly scan: ScanMode | null;
  private onDone!: (error: unknown, result: ExecutionResult | undefined) => void;
  private settled = false;
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
    this.requestTurn();
  };
  private readonly onReadFailed = (e: unknown): void => {
    if (this.settled) return;
    unwatchDeadline(this);
    this.fail(e);
  };

  constructor(
    private readonly fn: StorageFunction,
    private readonly slot: Slot,
    request: ExecutionRequest,
    private readonly budget: ExecutionBudget,
    private readonly scheduler: TurnScheduler,
  ) {
    const mode = request.mode ?? { kind: 'chain' };
    this.tenant = request.tenant;
    this.reader = request.reader;
    this.scan = mode.kind === 'scan' ? mode : null;
    this.deadlineMs = this.startMs + budget.deadlineMs;
    this.state = {
      namespaceSizeBytes: request.reader.sizeBytes,
      maxReadsPerStep: budget.maxReadsPerStep,
      maxOutputBytes: budget.maxOutputBytes,
      scanMode: mode.kind === 'scan',
      readCount: 0,
      readOffsets: new Float64Array(budget.maxReadsPerStep),
      readLengths: new Float64Array(budget.maxReadsPerStep),
      readBytesThisStep: 0,
      output: [],
      outputBytes: 0,
      scanStopped: false,
    };
    const sandbox = fn.sandbox;
    const ctxBytes = sandbox.bytes(slot.ctxRegion);
    this.ctx = new DataView(ctxBytes.buffer, ctxBytes.byteOffset, ctxBytes.byteLength);
    this.data = sandbox.bytes(slot.dataRegion);
    const input = request.input ?? new Uint8Array(0);
    const inputRegion = sandbox.bytes(slot.inputRegion);
    if (input.length > inputRegion.length) {
      throw new StorageAccessError(0, `input of ${input.length} bytes exceeds the ${inputRegion.length}-byte limit`);
    }
    inputRegion.fill(0).set(input);
    sandbox.bytes(slot.scratchRegion).fill(0);
    ctxBytes.fill(0);
    // Pointers are 32-bit sandbox addresses: the low half of the field (the high half stays 0).
    this.ctx.setUint32(STORAGE_CTX.data, sandbox.address(slot.dataRegion), true);
    this.ctx.setUint32(STORAGE_CTX.scratch, sandbox.address(slot.scratchRegion), true);
    this.ctx.setUint32(STORAGE_CTX.input, sandbox.address(slot.inputRegion), true);
    this.dataAddress = sandbox.address(slot.dataRegion);
    this.ctx.setBigUint64(STORAGE_CTX.inputLen, BigInt(input.length), true);
    this.ctx.setBigUint64(STORAGE_CTX.param0, BigInt.asUintN(64, request.params[0]), true);
    this.ctx.setBigUint64(STORAGE_CTX.param1, BigInt.asUintN(64, request.params[1]), true);
    this.ctx.setBigUint64(STORAGE_CTX.namespaceSize, BigInt(request.reader.sizeBytes), true);
    if (this.scan !== null) this.prepareScan(this.scan);
  }

  start(onDone: (error: unknown, result: ExecutionResult | undefined) => void): void {
    this.onDone = onDone;
    if (this.scan !== null && this.scanAt < this.scanEnd) {
      // The first chunk is read before the first turn.
      try {
        this.readAhead();
      } catch (e) {
        this.fail(e);
        return;
      }
      this.waitForReads();
      return;
    }
    this.requestTurn();
  }

  /** Queue for a turn; the wait until it is granted counts in `queuedMs`. */
  private requestTurn(): void {
    this.turnRequestedAtMs = performance.now();
    this.scheduler.request(this.tenant, this);
  }

  /** A turn: steps back to back until one needs storage, the turn's bound is reached, or the end. */
  runTurn(): void {
    if (this.settled) return;
    const turnStartMs = performance.now();
    if (this.turnRequestedAtMs !== 0) this.stats.queuedMs += turnStartMs - this.turnRequestedAtMs;
    this.turnRequestedAtMs = 0;
    try {
      this.runSteps(turnStartMs);
    } finally {
      // A turn ends when it settled the execution or queued it for the next turn (waiting starts
      // then), so running and waiting time never overlap and always fit inside `durationMs`.
      const endMs = this.settled ? this.settledAtMs : this.turnRequestedAtMs !== 0 ? this.turnRequestedAtMs : performance.now();
      this.stats.runMs += endMs - turnStartMs;
    }
  }

  private runSteps(turnStartMs: number): void {
    try {
      let first = true;
      for (;;) {
        const now = first ? turnStartMs : performance.now();
        if (now > this.deadlineMs) {
          throw new BudgetExceededError('deadline', this.budget.deadlineMs, `${Math.round(now - this.startMs)} ms elapsed`);
        }
        if (!first && !this.scheduler.mayContinue(now)) {
          // Bounded work per turn: queue for another one (others, and the event loop, go first).
          this.requestTurn();
          return;
        }
        first = false;
        if (this.scan !== null ? !this.scanStep() : !this.chainStep()) return;
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** One step of a chain; true when the next step may run at once (every read it asked for hit). */
  private chainStep(): boolean {
    const r0 = this.step(this.dataBytes, this.nrReads, this.dataOffset, 0);
    const n = this.state.readCount;
    if (n === 0) {
      this.finish(r0);
      return false;
    }
    const { readOffsets, readLengths } = this.state;
    this.nrReads = n;
    this.dataOffset = readOffsets[0];
    let at = 0;
    let missed = 0;
    const readNow = this.reader.readNow;
    for (let i = 0; i < n; i++) {
      const offset = readOffsets[i];
      const length = readLengths[i];
      this.chargeRead(length);
      if (readNow === undefined || !readNow.call(this.reader, offset, length, this.data, at)) {
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

  /** Read the next chunk not yet asked for (one chunk ahead of the one being processed). */
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

  /** One step of a scan; true when another may run at once. */
  private scanStep(): boolean {
    if (this.state.scanStopped || this.scanAt >= this.scanEnd) {
      this.finish(this.step(0, 0, this.scanAt, NB_FLAG_SCAN | NB_FLAG_SCAN_END));
      return false;
    }
    const chunk = this.scanNext;
    if (chunk === null) {
      this.waitForReads();
      return false;
    }
    this.scanNext = null;
    const at = this.scanAt;
    this.data.set(chunk, 0);
    this.scanAt = at + chunk.length;
    // Readahead: fetch the following chunk while this one is processed.
    this.readAhead();
    this.step(chunk.length, 1, at, NB_FLAG_SCAN);
    return true;
  }

  /** Leave the turn until the reads in flight arrive (their arrival requests the next turn). */
  private waitForReads(): void {
    if (this.readsOutstanding === 0) {
      this.requestTurn();
      return;
    }
    this.waiting = true;
    watchDeadline(this);
  }

  /** Run one step of the program; returns its r0. */
  private step(dataBytes: number, nrReads: number, dataOffset: number, flags: number): bigint {
    const { budget, fn, ctx } = this;
    if (this.stats.steps >= budget.maxSteps) {
      throw new BudgetExceededError('steps', budget.maxSteps, `execution of '${fn.name}' wanted step ${this.stats.steps + 1}`);
    }
    // Context fields as numbers: the high halves of step, nr_reads and flags stay 0 (bounded far below 2^32).
    ctx.setUint32(STORAGE_CTX.dataEnd, this.dataAddress + dataBytes, true);
    ctx.setUint32(STORAGE_CTX.step, this.stats.steps, true);
    ctx.setUint32(STORAGE_CTX.nrReads, nrReads, true);
    ctx.setUint32(STORAGE_CTX.dataOffset, dataOffset % 0x1_0000_0000, true);
    ctx.setUint32(STORAGE_CTX.dataOffset + 4, Math.floor(dataOffset / 0x1_0000_0000), true);
    ctx.setUint32(STORAGE_CTX.flags, flags, true);
    this.state.readCount = 0;
    this.state.readBytesThisStep = 0;
    const leftForExecution = budget.maxInstructionsPerExecution - this.stats.instructions;
    const fuel = Math.min(budget.maxInstructionsPerStep, leftForExecution);
    fn.current = this.state;
    this.stats.steps++;
    try {
      const engine = fn.engine;
      if (engine === undefined) throw new StorageAccessError(0, `'${fn.name}' runs on execution workers, not on this thread`);
      // r1 = the context's address, passed as a number: no BigInt crosses into Wasm per step.
      const fuelUsed = engine.runAddress(Number(this.slot.entryArgs[0]), fuel, fn.clearStack);
      this.stats.instructions += fuelUsed;
      this.scheduler.charge(fuelUsed);
      return engine.r0();
    } catch (e) {
      if (e instanceof FuelExhaustedError) {
        this.stats.instructions += fuel;
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
    this.settled = true;
    unwatchDeadline(this);
    this.settledAtMs = performance.now();
    this.stats.durationMs = this.settledAtMs - this.startMs;
    this.onDone(null, { returnValue: r0, output: concat(this.state.output, this.state.outputBytes), stats: this.stats });
  }

  private fail(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    unwatchDeadline(this);
    this.settledAtMs = performance.now();
    this.stats.durationMs = this.settledAtMs - this.startMs;
    this.onDone(e, undefined);
  }
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
