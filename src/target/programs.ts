/**
 * The program commands of the target (see src/protocol/programs.ts for the wire format): loading
 * images in chunks, verifying and compiling them in the storage runtime, executing them against a
 * namespace of the controller's subsystem, and keeping the messages of failed commands for the host.
 * Programs belong to a tenant, the host NQN: a host sees and runs only its own.
 */
import {
  CallDepthError,
  DecodeError,
  HelperError,
  MemoryAccessError,
  NearbpfError,
  ProgramLoadError,
  UnknownHelperError,
} from '../errors.js';
import { decodeProgram } from '../isa/index.js';
import { isElf, LoaderError, linkForSandbox, loadProgramBytes } from '../loader/index.js';
import type { MapSet, MapSpec } from '../maps/index.js';
import {
  decodeLoadImage,
  EXECUTE_FLAG_SCAN,
  EXECUTE_FLAG_STATS,
  encodeMapDump,
  encodeMapList,
  encodeProgramList,
  MAP_INDEX_LIST,
  MAP_UPDATE_DELETE,
  MAX_LISTED_PROGRAMS,
  MAX_LOAD_IMAGE_BYTES,
  MESSAGE_HISTORY,
  MESSAGE_KIND_COMMAND,
  MESSAGE_KIND_LOAD,
  ProgramImageError,
  ProgramOpcode,
  ProgramStatus,
  STATS_TRAILER_BYTES,
  VENDOR_STATUS_CODE_TYPE,
  writeStatsTrailer,
} from '../protocol/programs.js';
import type { Sqe } from '../protocol/sqe.js';
import type { ExecutionBudget, TenantLimits } from '../runtime/budget.js';
import {
  BudgetExceededError,
  type BudgetName,
  ExecutionWorkerError,
  StorageAccessError,
  StorageReadError,
} from '../runtime/errors.js';
import type { ExecutionMode, ExecutionObserver, ExecutionResult, ExecutionStats } from '../runtime/execution.js';
import {
  type LoadableProgram,
  ProgramBusyError,
  ProgramNameInUseError,
  StorageRuntime,
  UnknownProgramError,
} from '../runtime/runtime.js';
import type { SchedulerOptions } from '../runtime/scheduler.js';
import { VerifierError } from '../verifier/errors.js';
import { type Completion, failure, INVALID_FIELD, INVALID_NAMESPACE, success } from './completion.js';
import type { TargetLimits } from './config.js';
import type { Controller } from './controller.js';

/**
 * What the program service needs of an association: its tenant (host NQN), namespaces and log ids. A
 * `Controller` on this thread, or the main thread's stand-in for an association of an I/O thread.
 */
export type ProgramCaller = Pick<Controller, 'hostNqn' | 'io' | 'logIds'>;

import { defaultExecutionWorkers, ExecutionPool } from './execution-pool.js';
import { type Logger, LogRateLimit, logEvent } from './logger.js';
import { NO_METRICS, type ProgramMeter, type TargetMetrics } from './metrics.js';
import { Ledger } from './quotas.js';
import { VerificationMemoryError, VerificationTimeoutError, VerifierBusyError, VerifierPool } from './verify-worker.js';

/** Loads a controller may have half-sent at once. */
const resolveLater = (resolve: (c: Completion) => void, c: Completion): void => resolve(c);

const MAX_PENDING_LOADS = 4;

interface PendingLoad {
  /** Chunks as they arrived: memory grows with what was sent, not with what was announced. */
  chunks: Buffer[];
  received: number;
  total: number;
  lastChunkAtMs: number;
}

interface Message {
  code: string;
  message: string;
  log?: string;
}

/** What one association keeps: half-sent loads and the messages of its recent failures. */
interface ControllerState {
  loads: Map<number, PendingLoad>;
  messages: Map<string, Message>;
  /** Bytes of `loads`, counted against the association's cap. */
  pendingBytes: number;
  tenant: string;
  /** The association in the log: host, subsystem, cntlid, source address. */
  ids: ReturnType<Controller['logIds']>;
}

/** What the target's limits say about programs (see config.ts). */
export type ProgramServiceLimits = Pick<
  TargetLimits,
  | 'maxPendingImageBytesPerAssociation'
  | 'maxPendingImageBytesPerHost'
  | 'maxPendingImageBytes'
  | 'pendingLoadTimeoutMs'
  | 'verifierWorkers'
  | 'maxVerificationsPerTenant'
  | 'verifyTimeoutMs'
  | 'verifyMemoryBytes'
  | 'maxMapMemoryBytesPerTenant'
  | 'maxMapMemoryBytes'
  | 'maxProgramMemoryBytesPerTenant'
  | 'maxProgramMemoryBytes'
>;

/** Loaded code is charged at 64 bytes per instruction: the instructions, the JIT's Wasm and its machine code. */
export const PROGRAM_BYTES_PER_INSTRUCTION = 64;

/** Map memory a program's maps need: keys and values of every entry, plus a per-entry overhead for hash maps. */
export function mapMemoryBytes(maps: readonly MapSpec[] | undefined): number {
  let total = 0;
  for (const m of maps ?? []) total += m.maxEntries * (m.keySizeBytes + m.valueSizeBytes + (m.type === 'hash' ? 32 : 0));
  return total;
}

/** A tenant's memory quota is used up; `kind` says which. */
export class TenantMemoryError extends NearbpfError {
  readonly code = 'ERR_TENANT_MEMORY';
  constructor(
    readonly kind: 'map' | 'program',
    message: string,
  ) {
    super(message);
  }
}

const BUDGET_STATUS: Record<BudgetName, number> = {
  steps: ProgramStatus.BudgetSteps,
  bytesRead: ProgramStatus.BudgetBytesRead,
  readsPerStep: ProgramStatus.BudgetReadsPerStep,
  instructionsPerStep: ProgramStatus.BudgetInstructionsPerStep,
  instructionsPerExecution: ProgramStatus.BudgetInstructionsPerExecution,
  outputBytes: ProgramStatus.BudgetOutputBytes,
  deadline: ProgramStatus.BudgetDeadline,
  concurrentExecutions: ProgramStatus.BudgetConcurrentExecutions,
  loadedPrograms: ProgramStatus.BudgetLoadedPrograms,
  mapMemory: ProgramStatus.BudgetMapMemory,
};

const vendor = (sc: number, dw0 = 0): Completion => failure(VENDOR_STATUS_CODE_TYPE, sc, true, dw0 >>> 0);

const ADMIN_OPCODES = new Set<number>([
  ProgramOpcode.Load,
  ProgramOpcode.Unload,
  ProgramOpcode.List,
  ProgramOpcode.GetMessage,
  ProgramOpcode.MapUpdate,
  ProgramOpcode.MapDump,
]);

export function isProgramAdminOpcode(opcode: number): boolean {
  return ADMIN_OPCODES.has(opcode);
}

export function isProgramIoOpcode(opcode: number): boolean {
  return opcode === ProgramOpcode.Execute || opcode === ProgramOpcode.ExecuteWithInput;
}

export class ProgramService {
  readonly runtime: StorageRuntime;
  readonly verifier: VerifierPool;
  /** Execution workers; undefined when steps run on the I/O thread (`executionWorkers: 0`). */
  readonly pool: ExecutionPool | undefined;
  private readonly handles = new Map<number, { tenant: string; name: string; mapBytes: number; codeBytes: number }>();
  private nextHandle = 1;
  private readonly states = new Map<ProgramCaller, ControllerState>();
  /** Half-sent image bytes per host (the association cap is kept in its state). */
  private readonly uploads: Ledger;
  private readonly mapMemory: Ledger;
  private readonly programMemory: Ledger;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    limits: {
      defaults: TenantLimits;
      tenants: ReadonlyMap<string, TenantLimits>;
      scheduler?: SchedulerOptions;
      /** -1 (or absent): one per core beyond the first, at least 1; 0: on the I/O thread; N: N workers. */
      executionWorkers?: number;
      /** Nice levels the execution workers run below the target (absent: the pool's default). */
      executionWorkerNice?: number;
      /** CPU weight of tenants on the execution workers (absent: 1). */
      weights?: ReadonlyMap<string, number>;
    },
    private readonly quotas: ProgramServiceLimits,
    private readonly metrics: TargetMetrics = NO_METRICS,
  ) {
    this.verifier = new VerifierPool({
      workers: quotas.verifierWorkers,
      maxPerTenant: quotas.maxVerificationsPerTenant,
      timeoutMs: quotas.verifyTimeoutMs,
      memoryBytes: quotas.verifyMemoryBytes,
    });
    this.uploads = new Ledger(quotas.maxPendingImageBytesPerHost, quotas.maxPendingImageBytes);
    this.mapMemory = new Ledger(quotas.maxMapMemoryBytesPerTenant, quotas.maxMapMemoryBytes);
    this.programMemory = new Ledger(quotas.maxProgramMemoryBytesPerTenant, quotas.maxProgramMemoryBytes);
    // Half-sent loads that stopped receiving chunks are dropped.
    this.sweeper = setInterval(() => this.dropIdleLoads(), Math.max(50, Math.floor(quotas.pendingLoadTimeoutMs / 4)));
    this.sweeper.unref();
    const workers = limits.executionWorkers ?? -1;
    this.pool =
      workers === 0
        ? undefined
        : new ExecutionPool({
            workers: workers < 0 ? defaultExecutionWorkers() : workers,
            scheduler: limits.scheduler,
            weights: limits.weights,
            nice: limits.executionWorkerNice,
            log,
          });
    this.runtime = new StorageRuntime({
      executor: this.pool,
      verify: (program, _name, maps, tenant) => this.verifier.verify(tenant, program, maps),
      // The verifier proves every access of an accepted program in bounds.
      memoryMode: 'verified',
      limitsFor: (tenant) => limits.tenants.get(tenant) ?? limits.defaults,
      scheduler: limits.scheduler,
      observer: metrics.enabled ? new ExecutionMetrics(metrics) : undefined,
    });
  }

  private state(ctl: ProgramCaller): ControllerState {
    let s = this.states.get(ctl);
    if (s === undefined) {
      s = { loads: new Map(), messages: new Map(), pendingBytes: 0, tenant: ctl.hostNqn, ids: ctl.logIds() };
      this.states.set(ctl, s);
    }
    return s;
  }

  /** The association ended: its half-sent loads and messages go. */
  associationEnded(ctl: ProgramCaller): void {
    const s = this.states.get(ctl);
    if (!s) return;
    for (const id of [...s.loads.keys()]) this.dropLoad(s, id);
    this.states.delete(ctl);
  }

  private dropLoad(s: ControllerState, loadId: number): void {
    const pending = s.loads.get(loadId);
    if (!pending) return;
    s.loads.delete(loadId);
    s.pendingBytes -= pending.received;
    this.uploads.give(s.tenant, pending.received);
  }

  private dropIdleLoads(): void {
    const cutoff = Date.now() - this.quotas.pendingLoadTimeoutMs;
    for (const s of this.states.values()) {
      for (const [id, load] of s.loads) {
        if (load.lastChunkAtMs > cutoff) continue;
        this.dropLoad(s, id);
        this.remember2(s, `load:${id}`, {
          code: 'ERR_LOAD_IDLE',
          message: `load ${id} saw no chunk for ${this.quotas.pendingLoadTimeoutMs} ms and was dropped`,
        });
        logEvent(this.log, 'program.load_dropped', { ...s.ids, loadId: id, receivedBytes: load.received, reason: 'idle' });
      }
    }
  }

  /** Half-sent image bytes: per host, overall (tests and stats). */
  uploadBytes(host?: string): number {
    return host === undefined ? this.uploads.total : this.uploads.held(host);
  }

  /** Map and code bytes charged to a tenant (tests and stats). */
  memoryOf(tenant: string): { mapBytes: number; programBytes: number } {
    return { mapBytes: this.mapMemory.held(tenant), programBytes: this.programMemory.held(tenant) };
  }

  private remember(ctl: ProgramCaller, key: string, message: Message): void {
    this.remember2(this.state(ctl), key, message);
  }

  private remember2(state: ControllerState, key: string, message: Message): void {
    const { messages } = state;
    messages.delete(key);
    messages.set(key, message);
    if (messages.size > MESSAGE_HISTORY) messages.delete(messages.keys().next().value as string);
  }

  async admin(ctl: ProgramCaller, sqe: Sqe, data: Buffer | null): Promise<Completion> {
    switch (sqe.opcode) {
      case ProgramOpcode.Load:
        return this.loadChunk(ctl, sqe, data);
      case ProgramOpcode.Unload:
        return this.unload(ctl, sqe.cdw10 >>> 0);
      case ProgramOpcode.List:
        return this.list(ctl);
      case ProgramOpcode.MapUpdate:
        return this.mapUpdate(ctl, sqe, data);
      case ProgramOpcode.MapDump:
        return this.mapDump(ctl, sqe);
      default:
        return this.getMessage(ctl, sqe);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([this.verifier.close(), this.pool?.close()]);
  }

  private loadChunk(ctl: ProgramCaller, sqe: Sqe, data: Buffer | null): Completion | Promise<Completion> {
    const offset = sqe.cdw10 >>> 0;
    const total = sqe.cdw11 >>> 0;
    const loadId = sqe.cdw12 >>> 0;
    const state = this.state(ctl);
    const { loads } = state;
    const key = `load:${loadId}`;
    if (!data || data.length === 0) return INVALID_FIELD;
    if (total > MAX_LOAD_IMAGE_BYTES || total === 0) {
      this.remember(ctl, key, {
        code: 'ERR_IMAGE_SIZE',
        message: `image of ${total} bytes is not in 1..${MAX_LOAD_IMAGE_BYTES}`,
      });
      return vendor(ProgramStatus.BadImage);
    }
    let pending = loads.get(loadId);
    if (offset === 0) {
      if (pending === undefined && loads.size >= MAX_PENDING_LOADS) return vendor(ProgramStatus.LoadSequence);
      if (pending) this.dropLoad(state, loadId); // restarted from the beginning
      pending = { chunks: [], received: 0, total, lastChunkAtMs: Date.now() };
      loads.set(loadId, pending);
    }
    if (pending === undefined || offset !== pending.received || pending.total !== total || offset + data.length > total) {
      this.dropLoad(state, loadId);
      this.remember(ctl, key, { code: 'ERR_LOAD_SEQUENCE', message: `chunk at ${offset} of load ${loadId} is out of sequence` });
      return vendor(ProgramStatus.LoadSequence);
    }
    // Half-sent images are capped per association, per host and overall; memory follows the chunks.
    const n = data.length;
    const whose =
      state.pendingBytes + n > this.quotas.maxPendingImageBytesPerAssociation
        ? `this association's ${this.quotas.maxPendingImageBytesPerAssociation}`
        : this.uploads.wouldExceed(state.tenant, n) === 'key'
          ? `this host's ${this.quotas.maxPendingImageBytesPerHost}`
          : this.uploads.wouldExceed(state.tenant, n) === 'total'
            ? `the target's ${this.quotas.maxPendingImageBytes}`
            : null;
    if (whose !== null) {
      logEvent(this.log, 'program.load_dropped', {
        ...state.ids,
        loadId,
        receivedBytes: pending.received,
        reason: 'upload_quota',
      });
      this.dropLoad(state, loadId);
      this.remember(ctl, key, {
        code: 'ERR_UPLOAD_QUOTA',
        message: `load ${loadId} dropped: half-sent images would pass ${whose} bytes; finish or abandon other loads first`,
      });
      return vendor(ProgramStatus.UploadQuota);
    }
    this.uploads.tryTake(state.tenant, n);
    state.pendingBytes += n;
    pending.chunks.push(Buffer.from(data));
    pending.received += n;
    pending.lastChunkAtMs = Date.now();
    if (pending.received < total) return success();
    const image = Buffer.concat(pending.chunks, total);
    this.dropLoad(state, loadId);
    return this.finishLoad(ctl, loadId, image);
  }

  private async finishLoad(ctl: ProgramCaller, loadId: number, image: Buffer): Promise<Completion> {
    const key = `load:${loadId}`;
    const tenant = ctl.hostNqn;
    const startMs = performance.now();
    let name = '';
    try {
      const decoded = decodeLoadImage(image);
      name = decoded.header.name;
      const program = this.programOf(decoded.header.format, decoded.program, decoded.header.objectProgram);
      // Memory quotas before verification: a program that could never fit is not worth verifying.
      const mapBytes = mapMemoryBytes(program.maps);
      const codeBytes = program.instructions.length * PROGRAM_BYTES_PER_INSTRUCTION;
      this.chargeMemory(tenant, mapBytes, codeBytes);
      let loaded = false;
      try {
        await this.runtime.load(tenant, name, program);
        loaded = true;
      } finally {
        if (!loaded) {
          this.mapMemory.give(tenant, mapBytes);
          this.programMemory.give(tenant, codeBytes);
        }
      }
      const handle = this.allocateHandle();
      this.handles.set(handle, { tenant, name, mapBytes, codeBytes });
      this.announce(handle);
      const loadMs = performance.now() - startMs;
      logEvent(this.log, 'program.loaded', {
        ...ctl.logIds(),
        program: name,
        handle,
        loadId,
        instructions: program.instructions.length,
        loadMs: Math.round(loadMs * 1000) / 1000,
      });
      this.metrics.programLoad(tenant, name, 'accepted', loadMs / 1000);
      return success(handle);
    } catch (e) {
      const c = this.failureOf(e);
      this.remember(ctl, key, messageOf(e));
      // The message is one line (for a rejection, the verifier's: pc, reason, instruction); never the image.
      const fields = { ...ctl.logIds(), program: name, loadId, error: firstLine(e instanceof Error ? e.message : String(e)) };
      // A refusal is the host's business; a failure the target cannot explain is the operator's.
      if (!(e instanceof NearbpfError) && !(e instanceof ProgramImageError)) logEvent(this.log, 'program.load_failed', fields);
      else
        logEvent(this.log, 'program.rejected', {
          ...fields,
          code: messageOf(e).code,
          ...(e instanceof VerifierError ? { pc: e.pc } : {}),
        });
      this.metrics.programLoad(tenant, name, outcomeOf(e), (performance.now() - startMs) / 1000);
      return c;
    }
  }

  private chargeMemory(tenant: string, mapBytes: number, codeBytes: number): void {
    const map = this.mapMemory.wouldExceed(tenant, mapBytes);
    if (map !== null) {
      const cap =
        map === 'key' ? `this host's ${this.quotas.maxMapMemoryBytesPerTenant}` : `the target's ${this.quotas.maxMapMemoryBytes}`;
      throw new TenantMemoryError(
        'map',
        `maps of ${mapBytes} bytes would pass ${cap} bytes of map memory (${this.mapMemory.held(tenant)} in use by this host)`,
      );
    }
    const code = this.programMemory.wouldExceed(tenant, codeBytes);
    if (code !== null) {
      const cap =
        code === 'key'
          ? `this host's ${this.quotas.maxProgramMemoryBytesPerTenant}`
          : `the target's ${this.quotas.maxProgramMemoryBytes}`;
      throw new TenantMemoryError(
        'program',
        `code of ${codeBytes} bytes would pass ${cap} bytes of program memory (${this.programMemory.held(tenant)} in use by this host)`,
      );
    }
    this.mapMemory.tryTake(tenant, mapBytes);
    this.programMemory.tryTake(tenant, codeBytes);
  }

  private programOf(format: 'bytecode' | 'elf', bytes: Buffer, objectProgram: string): LoadableProgram {
    if (format === 'bytecode') return { instructions: decodeProgram(bytes) };
    if (!isElf(bytes)) throw new ProgramImageError('image says ELF but holds no ELF object');
    const { object, program } = loadProgramBytes(bytes, { program: objectProgram || undefined });
    return { instructions: program.instructions, maps: object.maps, link: (maps) => linkForSandbox(program, maps) };
  }

  private allocateHandle(): number {
    while (this.handles.has(this.nextHandle) || this.nextHandle === 0) this.nextHandle = (this.nextHandle + 1) >>> 0;
    return this.nextHandle++;
  }

  private unload(ctl: ProgramCaller, handle: number): Completion {
    const entry = this.handles.get(handle);
    if (entry === undefined || entry.tenant !== ctl.hostNqn) return vendor(ProgramStatus.UnknownProgram);
    // Closed before the busy check: an I/O thread that takes a slot after this sees it and leaves
    // the command to this thread, so no execution of it starts elsewhere once it is gone.
    const table = this.runtime.functionOf(entry.tenant, entry.name)?.slotTable;
    if (table !== undefined) Atomics.store(table, table.length - 1, 1);
    try {
      this.runtime.unload(entry.tenant, entry.name);
    } catch (e) {
      if (table !== undefined) Atomics.store(table, table.length - 1, 0);
      return this.failureOf(e);
    }
    this.handles.delete(handle);
    this.programsChanged?.({ kind: 'removed', handle });
    logEvent(this.log, 'program.unloaded', { ...ctl.logIds(), program: entry.name, handle });
    this.mapMemory.give(entry.tenant, entry.mapBytes);
    this.programMemory.give(entry.tenant, entry.codeBytes);
    return success();
  }

  private list(ctl: ProgramCaller): Completion {
    const mine = [...this.handles.entries()].filter(([, e]) => e.tenant === ctl.hostNqn).slice(0, MAX_LISTED_PROGRAMS);
    const infos = new Map(this.runtime.list(ctl.hostNqn).map((p) => [p.name, p]));
    const entries = mine.flatMap(([handle, e]) => {
      const p = infos.get(e.name);
      if (!p) return [];
      return [
        {
          handle,
          name: p.name,
          instructions: p.instructions,
          executions: p.stats.executions,
          failures: p.stats.failures,
          steps: p.stats.steps,
          instructionsExecuted: p.stats.instructions,
          bytesRead: p.stats.bytesRead,
          loadedAtMs: p.loadedAt.getTime(),
        },
      ];
    });
    return success(entries.length, encodeProgramList(entries));
  }

  private mapsOf(ctl: ProgramCaller, handle: number): MapSet | undefined {
    const entry = this.handles.get(handle);
    if (entry === undefined || entry.tenant !== ctl.hostNqn) return undefined;
    return this.runtime.maps(entry.tenant, entry.name);
  }

  private mapUpdate(ctl: ProgramCaller, sqe: Sqe, data: Buffer | null): Completion {
    const maps = this.mapsOf(ctl, sqe.cdw10 >>> 0);
    if (maps === undefined) return vendor(ProgramStatus.UnknownProgram);
    const map = maps.maps[sqe.cdw11 >>> 0];
    if (map === undefined || !data) return INVALID_FIELD;
    const { keySizeBytes, valueSizeBytes } = map.spec;
    const remove = (sqe.cdw13 & MAP_UPDATE_DELETE) !== 0;
    if (data.length !== keySizeBytes + (remove ? 0 : valueSizeBytes)) return INVALID_FIELD;
    const key = data.subarray(0, keySizeBytes);
    const errno = remove ? map.delete(key) : map.update(key, data.subarray(keySizeBytes), sqe.cdw12 >>> 0);
    return errno === 0 ? success() : vendor(ProgramStatus.MapOperationFailed, -errno);
  }

  private mapDump(ctl: ProgramCaller, sqe: Sqe): Completion {
    const maps = this.mapsOf(ctl, sqe.cdw10 >>> 0);
    if (maps === undefined) return vendor(ProgramStatus.UnknownProgram);
    const index = sqe.cdw11 >>> 0;
    if (index === MAP_INDEX_LIST) {
      const infos = maps.maps.map((m) => ({
        name: m.name,
        type: m.spec.type,
        keySizeBytes: m.spec.keySizeBytes,
        valueSizeBytes: m.spec.valueSizeBytes,
        maxEntries: m.spec.maxEntries,
      }));
      return success(infos.length, encodeMapList(infos));
    }
    const map = maps.maps[index];
    if (map === undefined) return INVALID_FIELD;
    const entries = map.entries();
    return success(entries.length, encodeMapDump(map.spec.keySizeBytes, map.spec.valueSizeBytes, entries));
  }

  private getMessage(ctl: ProgramCaller, sqe: Sqe): Completion {
    const kind = sqe.cdw10 >>> 0;
    const key =
      kind === MESSAGE_KIND_LOAD
        ? `load:${sqe.cdw11 >>> 0}`
        : kind === MESSAGE_KIND_COMMAND
          ? `cmd:${sqe.cdw11 >>> 0}:${sqe.cdw12 & 0xffff}`
          : '';
    const message = this.state(ctl).messages.get(key);
    if (message === undefined) return INVALID_FIELD;
    const data = Buffer.from(JSON.stringify(message), 'utf8');
    return success(data.length, data);
  }

  /**
   * Told of every program loaded (with what another thread needs to start executions of it: the
   * execution workers' id for it, its slot table, the tenant's budget) and every program unloaded.
   * The target mirrors this to its I/O threads (io-executions.ts).
   */
  programsChanged: ((change: ProgramChange) => void) | undefined;

  private announce(handle: number): void {
    const entry = this.handles.get(handle);
    const fn = entry && this.runtime.functionOf(entry.tenant, entry.name);
    const program = fn && this.pool?.programId(fn);
    if (entry === undefined || fn === undefined || program === undefined || this.programsChanged === undefined) return;
    const {
      maxConcurrentExecutions: _c,
      maxLoadedPrograms: _l,
      maxMapMemoryBytes: _m,
      ...budget
    } = this.runtime.limits(entry.tenant);
    this.programsChanged({
      kind: 'added',
      handle,
      tenant: entry.tenant,
      name: entry.name,
      program,
      slotTable: fn.slotTable.buffer as SharedArrayBuffer,
      slots: fn.slotCount,
      budget,
    });
  }

  /**
   * An execution an I/O thread ran on the workers itself (io-executions.ts): counted, observed, and
   * on failure remembered for Get Message and logged, as one run here.
   */
  executedElsewhere(ctl: ProgramCaller | undefined, r: RemoteExecution): void {
    const entry = this.handles.get(r.handle);
    if (entry === undefined) return;
    this.runtime.executedElsewhere(entry.tenant, entry.name, r.stats, r.outputBytes, r.error);
    if (ctl === undefined) return;
    const key = `cmd:${r.qid}:${r.cid}`;
    if (r.error !== null) {
      this.remember(ctl, key, messageOf(r.error));
      this.logExecutionFailure(ctl, r.qid, { cid: r.cid, nsid: r.nsid } as Sqe, entry.name, r.handle, r.error);
    } else if (r.tooLargeBytes !== undefined) {
      this.remember(ctl, key, outputTooLarge(r.tooLargeBytes, r.roomBytes ?? 0));
    }
  }

  /** An Execute command as a promise (see `execute` for the callback form the data path uses). */
  io(ctl: ProgramCaller, qid: number, sqe: Sqe, data: Buffer | null): Promise<Completion> {
    return new Promise((resolve) => {
      const now = this.execute(ctl, qid, sqe, data, resolveLater, resolve);
      if (now !== null) resolve(now);
    });
  }

  /**
   * An Execute command: its completion now when it is known in this turn (a refused command, or an
   * execution that ended in the turn it started in: every read in memory, no other tenant waiting),
   * else null, and `done(token, completion)` once it ends. No promise either way.
   */
  execute<T>(
    ctl: ProgramCaller,
    qid: number,
    sqe: Sqe,
    data: Buffer | null,
    done: (token: T, c: Completion) => void,
    token: T,
  ): Completion | null {
    const handle = sqe.cdw12 >>> 0;
    const entry = this.handles.get(handle);
    if (entry === undefined || entry.tenant !== ctl.hostNqn) return vendor(ProgramStatus.UnknownProgram);
    const ns = ctl.io.namespaces.get(sqe.nsid);
    if (!ns) return INVALID_NAMESPACE;
    const { params, mode, input } = executeRequestOf(sqe, ns.blockSize, data);
    let now: Completion | null = null;
    let returned = false;
    const ended = (error: unknown, result: ExecutionResult | undefined): void => {
      let c: Completion;
      try {
        c =
          error === null
            ? this.executed(ctl, qid, sqe, result as ExecutionResult)
            : this.executionFailed(ctl, qid, sqe, entry.name, handle, error);
      } catch (e) {
        // A bug while answering: this command fails, never the execution machinery that called here.
        this.log.error(`program command ${sqe.cid} on queue ${qid}: ${e instanceof Error ? e.message : String(e)}`);
        c = vendor(ProgramStatus.ExecutionFailed);
      }
      if (returned) done(token, c);
      else now = c;
    };
    try {
      this.runtime.run(entry.name, { reader: ns, params, input, mode, tenant: entry.tenant }, ended);
    } catch (e) {
      // The program went away between the handle lookup and the run (nothing ran).
      returned = true;
      return this.executionFailed(ctl, qid, sqe, entry.name, handle, e);
    }
    returned = true;
    return now;
  }

  private executed(ctl: ProgramCaller, qid: number, sqe: Sqe, result: ExecutionResult): Completion {
    const c = executedCompletion(sqe, result);
    if (c.status === OUTPUT_TOO_LARGE_STATUS) this.remember(ctl, `cmd:${qid}:${sqe.cid}`, outputTooLarge(c.dw0, roomOf(sqe)));
    return c;
  }

  private executionFailed(ctl: ProgramCaller, qid: number, sqe: Sqe, program: string, handle: number, e: unknown): Completion {
    this.remember(ctl, `cmd:${qid}:${sqe.cid}`, messageOf(e));
    this.logExecutionFailure(ctl, qid, sqe, program, handle, e);
    return this.failureOf(e);
  }

  /** Failed executions, at most a burst per host per window (a host can fail thousands a second). */
  private readonly failureLines = new LogRateLimit();

  private logExecutionFailure(ctl: ProgramCaller, qid: number, sqe: Sqe, program: string, handle: number, e: unknown): void {
    const suppressed = this.failureLines.take(ctl.hostNqn);
    if (suppressed < 0) return;
    const ids = {
      ...ctl.logIds(),
      qid,
      cid: sqe.cid,
      nsid: sqe.nsid,
      program,
      handle,
      ...(suppressed > 0 ? { suppressed } : {}),
    };
    if (e instanceof BudgetExceededError) {
      logEvent(this.log, 'program.budget_exceeded', { ...ids, budget: e.budget, limit: e.limit });
      return;
    }
    const m = messageOf(e);
    const pc = (e as { pc?: unknown }).pc;
    logEvent(this.log, 'program.execution_failed', {
      ...ids,
      code: m.code,
      error: firstLine(m.message),
      ...(typeof pc === 'number' ? { pc } : {}),
    });
  }

  /** The NVMe status of a failed load or execution; DW0 carries the pc where there is one. */
  private failureOf(e: unknown): Completion {
    return failureCompletion(e);
  }
}

/** A program loaded or unloaded, as the target's I/O threads mirror it. */
export type ProgramChange =
  | {
      readonly kind: 'added';
      readonly handle: number;
      readonly tenant: string;
      readonly name: string;
      /** Its id on the execution workers. */
      readonly program: number;
      readonly slotTable: SharedArrayBuffer;
      readonly slots: number;
      readonly budget: ExecutionBudget;
    }
  | { readonly kind: 'removed'; readonly handle: number };

/** An execution an I/O thread ran itself, reported to the program service (`executedElsewhere`). */
export interface RemoteExecution {
  readonly handle: number;
  readonly qid: number;
  readonly cid: number;
  readonly nsid: number;
  readonly stats: ExecutionStats;
  readonly outputBytes: number;
  /** The error it ended with (rebuilt as its class), or null. */
  readonly error: unknown;
  /** Its output did not fit the host's buffer: its size with the trailer, and the room. */
  readonly tooLargeBytes?: number;
  readonly roomBytes?: number;
}

/** What an Execute command asks for: its parameters, mode and input (SQE fields; pure). */
export function executeRequestOf(
  sqe: Sqe,
  blockSize: number,
  data: Buffer | null,
): { params: [bigint, bigint]; mode: ExecutionMode; input: Buffer | undefined } {
  const param0 = (BigInt(sqe.cdw3 >>> 0) << 32n) | BigInt(sqe.cdw2 >>> 0);
  const param1 = (BigInt(sqe.cdw11 >>> 0) << 32n) | BigInt(sqe.cdw10 >>> 0);
  let mode: ExecutionMode = CHAIN_MODE;
  if (sqe.cdw13 & EXECUTE_FLAG_SCAN) {
    const start = (sqe.cdw14 >>> 0) * blockSize;
    const length = (sqe.cdw15 >>> 0) * blockSize;
    mode = { kind: 'scan', offsetBytes: start, lengthBytes: length, chunkBytes: 128 * 1024 };
  }
  const input = sqe.opcode === ProgramOpcode.ExecuteWithInput && data ? data : undefined;
  return { params: [param0, param1], mode, input };
}

const CHAIN_MODE: ExecutionMode = { kind: 'chain' };
const OUTPUT_TOO_LARGE_STATUS = vendor(ProgramStatus.OutputTooLarge, 0).status;

/** Room the host gave for an Execute's output (Execute With Input returns what fits its SGL too). */
function roomOf(sqe: Sqe): number {
  return sqe.opcode === ProgramOpcode.Execute ? sqe.sglLength : Number.POSITIVE_INFINITY;
}

function outputTooLarge(bytes: number, room: number): Message {
  return { code: 'ERR_OUTPUT_TOO_LARGE', message: `output of ${bytes} bytes exceeds the ${room}-byte buffer` };
}

/**
 * The completion of an execution that ended well: its output (with the statistics trailer if the
 * command asked for it), or Output Too Large with the size in DW0 (pure).
 */
export function executedCompletion(sqe: Sqe, result: ExecutionResult): Completion {
  const out = result.output;
  const withStats = (sqe.cdw13 & EXECUTE_FLAG_STATS) !== 0;
  const length = out.byteLength + (withStats ? STATS_TRAILER_BYTES : 0);
  if (length > roomOf(sqe)) return vendor(ProgramStatus.OutputTooLarge, length);
  let output: Buffer | null = null;
  if (withStats) {
    // One buffer for the output and its trailer.
    output = Buffer.allocUnsafe(length);
    output.set(out, 0);
    const { steps, reads, bytesRead, instructions, durationMs } = result.stats;
    writeStatsTrailer({ steps, reads, bytesRead, instructions, durationUs: durationMs * 1000 }, output, out.byteLength);
  } else if (out.byteLength > 0) {
    output = Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }
  const value = BigInt.asUintN(64, result.returnValue);
  return success(Number(value & 0xffffffffn), output, Number(value >> 32n));
}

/** Whether `c` is Output Too Large (`executedCompletion`), and the room it missed. */
export function outputTooLargeOf(sqe: Sqe, c: Completion): { bytes: number; room: number } | undefined {
  return c.status === OUTPUT_TOO_LARGE_STATUS ? { bytes: c.dw0, room: roomOf(sqe) } : undefined;
}

/** The NVMe status of a failed load or execution; DW0 carries the pc where there is one (pure). */
export function failureCompletion(e: unknown): Completion {
  if (e instanceof VerifierError) return vendor(ProgramStatus.Rejected, e.pc);
  if (e instanceof BudgetExceededError) return vendor(BUDGET_STATUS[e.budget]);
  if (e instanceof UnknownProgramError) return vendor(ProgramStatus.UnknownProgram);
  if (e instanceof MemoryAccessError) return vendor(ProgramStatus.MemoryFault, e.pc);
  if (e instanceof StorageAccessError) return vendor(ProgramStatus.StorageAccess, e.pc);
  if (e instanceof StorageReadError) return vendor(ProgramStatus.StorageRead);
  if (e instanceof ExecutionWorkerError) return vendor(ProgramStatus.ExecutionWorkerFailed);
  if (e instanceof HelperError || e instanceof UnknownHelperError) return vendor(ProgramStatus.HelperFailed, e.pc);
  if (e instanceof CallDepthError) return vendor(ProgramStatus.CallDepth, e.pc);
  if (e instanceof ProgramNameInUseError) return vendor(ProgramStatus.NameInUse);
  if (e instanceof ProgramBusyError) return vendor(ProgramStatus.ProgramBusy);
  if (e instanceof VerifierBusyError) return vendor(ProgramStatus.VerifierBusy);
  if (e instanceof VerificationTimeoutError) return vendor(ProgramStatus.VerificationTimeout);
  if (e instanceof VerificationMemoryError) return vendor(ProgramStatus.VerificationMemory);
  if (e instanceof TenantMemoryError)
    return vendor(e.kind === 'map' ? ProgramStatus.TenantMapMemory : ProgramStatus.TenantProgramMemory);
  // Anything wrong with the image itself: its header, the ELF object, the bytecode, the link.
  if (e instanceof ProgramImageError || e instanceof LoaderError || e instanceof DecodeError || e instanceof ProgramLoadError) {
    return vendor(ProgramStatus.BadImage);
  }
  return vendor(ProgramStatus.ExecutionFailed);
}

/** The first line of a message, at most 300 characters: a log line stays one line. */
function firstLine(message: string): string {
  const nl = message.indexOf('\n');
  const line = nl < 0 ? message : message.slice(0, nl);
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function messageOf(e: unknown): Message {
  if (e instanceof VerifierError) return { code: e.code, message: e.message, log: e.format({ verbose: true }) };
  if (e instanceof NearbpfError) return { code: e.code, message: e.message };
  if (e instanceof ProgramImageError) return { code: 'ERR_BAD_IMAGE', message: e.message };
  return { code: 'ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** A metric label for how a load or execution ended: a budget's name, else the error's stable code. */
export function outcomeOf(e: unknown): string {
  if (e === null) return 'success';
  if (e instanceof BudgetExceededError) return `budget_${e.budget}`;
  if (e instanceof NearbpfError) return e.code.replace(/^ERR_/, '').toLowerCase();
  if (e instanceof ProgramImageError || e instanceof LoaderError || e instanceof DecodeError) return 'bad_image';
  return 'internal';
}

/** Feeds the runtime's per-execution reports into the metrics, one meter per tenant and program. */
class ExecutionMetrics implements ExecutionObserver {
  private readonly meters = new Map<string, Map<string, ProgramMeter>>();
  constructor(private readonly metrics: TargetMetrics) {}

  executed(tenant: string, program: string, s: Readonly<ExecutionStats>, outputBytes: number, error: unknown): void {
    let mine = this.meters.get(tenant);
    if (mine === undefined) {
      mine = new Map();
      this.meters.set(tenant, mine);
    }
    let meter = mine.get(program);
    if (meter === undefined) {
      meter = this.metrics.programMeter(tenant, program);
      mine.set(program, meter);
    }
    meter.executed(
      outcomeOf(error),
      s.steps,
      s.reads,
      s.bytesRead,
      s.instructions,
      outputBytes,
      s.durationMs / 1000,
      s.runMs / 1000,
      s.queuedMs / 1000,
    );
  }
}
