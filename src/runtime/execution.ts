/**
 * Running one execution of a storage function: steps, the reads between them, budgets and the
 * fair scheduler. Reads of the next step are issued together (fan-out); in scan mode the next chunk
 * is read while the current one is processed (readahead).
 */
import { NB_FLAG_SCAN, NB_FLAG_SCAN_END, STORAGE_CTX } from '../abi/storage.js';
import { FuelExhaustedError } from '../errors.js';
import type { ExecutionBudget } from './budget.js';
import { BudgetExceededError, StorageAccessError, StorageReadError } from './errors.js';
import type { FairScheduler } from './scheduler.js';
import type { ReadRequest, Slot, StepState, StorageFunction } from './storage-function.js';

/** The bytes a storage function reads: a namespace, as the tenant may see it. */
export interface NamespaceReader {
  readonly sizeBytes: number;
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
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
}

export interface ExecutionResult {
  readonly returnValue: bigint;
  readonly output: Uint8Array;
  readonly stats: ExecutionStats;
}

export async function executeStorageFunction(
  fn: StorageFunction,
  request: ExecutionRequest,
  budget: ExecutionBudget,
  scheduler: FairScheduler,
): Promise<ExecutionResult> {
  const slot = fn.acquireSlot();
  if (slot === undefined) {
    throw new BudgetExceededError('concurrentExecutions', fn.sandbox.regions.length, `all slots of '${fn.name}' are busy`);
  }
  const execution = new Execution(fn, slot, request, budget, scheduler);
  fn.stats.executions++;
  try {
    const result = await execution.run();
    return result;
  } catch (e) {
    fn.stats.failures++;
    throw e;
  } finally {
    fn.stats.steps += execution.stats.steps;
    fn.stats.instructions += execution.stats.instructions;
    fn.stats.bytesRead += execution.stats.bytesRead;
    fn.releaseSlot(slot);
  }
}

class Execution {
  readonly stats: ExecutionStats = { steps: 0, reads: 0, bytesRead: 0, instructions: 0, durationMs: 0 };
  private readonly startMs = performance.now();
  private readonly state: StepState;
  private readonly ctx: DataView;
  private readonly data: Uint8Array;
  /** Sandbox address of the data region's first byte. */
  private readonly dataAddress: number;

  constructor(
    private readonly fn: StorageFunction,
    private readonly slot: Slot,
    private readonly request: ExecutionRequest,
    private readonly budget: ExecutionBudget,
    private readonly scheduler: FairScheduler,
  ) {
    const mode = request.mode ?? { kind: 'chain' };
    this.state = {
      namespaceSizeBytes: request.reader.sizeBytes,
      maxReadsPerStep: budget.maxReadsPerStep,
      maxOutputBytes: budget.maxOutputBytes,
      scanMode: mode.kind === 'scan',
      reads: [],
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
  }

  async run(): Promise<ExecutionResult> {
    const mode = this.request.mode ?? { kind: 'chain' };
    const returnValue = mode.kind === 'scan' ? await this.runScan(mode) : await this.runChain();
    this.stats.durationMs = performance.now() - this.startMs;
    return { returnValue, output: concat(this.state.output, this.state.outputBytes), stats: this.stats };
  }

  private async runChain(): Promise<bigint> {
    let dataBytes = 0;
    let nrReads = 0;
    let dataOffset = 0;
    for (;;) {
      const r0 = await this.step(dataBytes, nrReads, dataOffset, 0);
      const reads = this.state.reads;
      if (reads.length === 0) return r0;
      dataBytes = await this.performReads(reads);
      nrReads = reads.length;
      dataOffset = reads[0].offsetBytes;
    }
  }

  private async runScan(mode: Extract<typeof this.request.mode, { kind: 'scan' }>): Promise<bigint> {
    const { reader } = this.request;
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
    const end = mode.offsetBytes + mode.lengthBytes;
    const readChunk = (at: number) => this.readBudgeted(at, Math.min(chunk, end - at));
    let at = mode.offsetBytes;
    let pending = at < end ? readChunk(at) : undefined;
    while (pending !== undefined && !this.state.scanStopped) {
      const bytes = await pending;
      const next = at + bytes.length;
      // Readahead: fetch the following chunk while this one is processed.
      pending = next < end ? readChunk(next) : undefined;
      this.data.set(bytes, 0);
      await this.step(bytes.length, 1, at, NB_FLAG_SCAN);
      at = next;
    }
    if (pending !== undefined) pending.catch(() => {}); // stopped early: the readahead is dropped
    return this.step(0, 0, at, NB_FLAG_SCAN | NB_FLAG_SCAN_END);
  }

  /** Run one step of the program; returns its r0. */
  private async step(dataBytes: number, nrReads: number, dataOffset: number, flags: number): Promise<bigint> {
    const { budget, fn, ctx } = this;
    if (this.stats.steps >= budget.maxSteps) {
      throw new BudgetExceededError('steps', budget.maxSteps, `execution of '${fn.name}' wanted step ${this.stats.steps + 1}`);
    }
    this.checkDeadline();
    const release = await this.scheduler.turn(this.request.tenant);
    try {
      this.checkDeadline();
      ctx.setUint32(STORAGE_CTX.dataEnd, this.dataAddress + dataBytes, true);
      ctx.setBigUint64(STORAGE_CTX.step, BigInt(this.stats.steps), true);
      ctx.setBigUint64(STORAGE_CTX.nrReads, BigInt(nrReads), true);
      ctx.setBigUint64(STORAGE_CTX.dataOffset, BigInt(dataOffset), true);
      ctx.setBigUint64(STORAGE_CTX.flags, BigInt(flags), true);
      this.state.reads = [];
      this.state.readBytesThisStep = 0;
      const leftForExecution = budget.maxInstructionsPerExecution - this.stats.instructions;
      const fuel = Math.min(budget.maxInstructionsPerStep, leftForExecution);
      fn.current = this.state;
      this.stats.steps++;
      try {
        const result = fn.engine.run(this.slot.entryArgs, { fuel });
        this.stats.instructions += result.fuelUsed;
        return result.r0;
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
    } finally {
      release();
    }
  }

  private async performReads(reads: readonly ReadRequest[]): Promise<number> {
    const results = await Promise.all(reads.map((r) => this.readBudgeted(r.offsetBytes, r.lengthBytes)));
    let at = 0;
    for (const bytes of results) {
      this.data.set(bytes, at);
      at += bytes.length;
    }
    return at;
  }

  private async readBudgeted(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const { budget } = this;
    if (this.stats.bytesRead + lengthBytes > budget.maxBytesRead) {
      throw new BudgetExceededError(
        'bytesRead',
        budget.maxBytesRead,
        `reading ${lengthBytes} more bytes after ${this.stats.bytesRead}`,
      );
    }
    this.stats.bytesRead += lengthBytes;
    this.stats.reads++;
    const remainingMs = budget.deadlineMs - (performance.now() - this.startMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BudgetExceededError('deadline', budget.deadlineMs, 'waiting for a read')),
        Math.max(0, remainingMs),
      );
    });
    try {
      const bytes = await Promise.race([this.request.reader.read(offsetBytes, lengthBytes), deadline]);
      if (bytes.length !== lengthBytes) {
        throw new StorageReadError(`read of ${lengthBytes} bytes at ${offsetBytes} returned ${bytes.length}`);
      }
      return bytes;
    } finally {
      clearTimeout(timer);
    }
  }

  private checkDeadline(): void {
    const elapsed = performance.now() - this.startMs;
    if (elapsed > this.budget.deadlineMs) {
      throw new BudgetExceededError('deadline', this.budget.deadlineMs, `${Math.round(elapsed)} ms elapsed`);
    }
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
