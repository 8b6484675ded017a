/**
 * The storage runtime: loaded storage functions per tenant, their limits, and executions. It knows
 * nothing of NVMe; the target maps its vendor commands onto these calls.
 */
import { NearbpfError, ProgramLoadError } from '../errors.js';
import type { Program } from '../isa/index.js';
import type { MapSet, MapSpec } from '../maps/index.js';
import type { MemoryMode } from '../vm/jit/engine.js';
import { DEFAULT_TENANT_LIMITS, type TenantLimits } from './budget.js';
import { BudgetExceededError } from './errors.js';
import {
  type ExecutionObserver,
  type ExecutionRequest,
  type ExecutionResult,
  type ExecutionStats,
  executeStorageFunction,
  runStorageFunction,
  type StorageExecutor,
} from './execution.js';
import { FairScheduler, type SchedulerOptions } from './scheduler.js';
import { StorageFunction, type StorageFunctionStats } from './storage-function.js';

/** Checks a program before it is compiled; throws (e.g. a `VerifierError`) to refuse it. */
export type ProgramVerifier = (program: Program, name: string, maps: readonly MapSpec[], tenant: string) => void | Promise<void>;

/** A program as loaded: its instructions (map references unresolved), its maps and how to link them. */
export interface LoadableProgram {
  readonly instructions: Program;
  readonly maps?: readonly MapSpec[];
  readonly link?: (maps: MapSet) => Program;
}

export interface StorageRuntimeOptions {
  readonly verify: ProgramVerifier;
  /**
   * Whether `verify` proves every memory access of an accepted program in bounds, so its code runs
   * without per-access checks (`verified`), or not (`checked`, the default: e.g. a test's stand-in).
   */
  readonly memoryMode?: MemoryMode;
  /** Limits of a tenant (host NQN); the defaults when omitted. */
  readonly limitsFor?: (tenant: string) => TenantLimits;
  /** Bounds of one scheduler turn (the work a tenant's synchronous chain may do before it yields). */
  readonly scheduler?: SchedulerOptions;
  /** Told once per execution, when it ends (metrics). */
  readonly observer?: ExecutionObserver;
  /** Runs executions on other threads (see `StorageExecutor`); without it they run on this one. */
  readonly executor?: StorageExecutor;
}

export interface ProgramInfo {
  readonly name: string;
  readonly instructions: number;
  readonly loadedAt: Date;
  readonly stats: Readonly<StorageFunctionStats>;
}

export class UnknownProgramError extends ProgramLoadError {
  override readonly code = 'ERR_PROGRAM_LOAD';
  constructor(readonly programName: string) {
    super(`no program named '${programName}' is loaded`);
  }
}

/** A tenant already has a program of that name (or one being verified). */
export class ProgramNameInUseError extends NearbpfError {
  readonly code = 'ERR_PROGRAM_NAME_IN_USE';
  constructor(readonly programName: string) {
    super(`a program named '${programName}' is already loaded`);
  }
}

/** A program cannot be unloaded while executions of it are running. */
export class ProgramBusyError extends NearbpfError {
  readonly code = 'ERR_PROGRAM_BUSY';
  constructor(
    readonly programName: string,
    readonly executions: number,
  ) {
    super(`program '${programName}' has ${executions} executions running`);
  }
}

/** Longest program name, in bytes of UTF-8. */
export const MAX_PROGRAM_NAME_BYTES = 64;

export class StorageRuntime {
  readonly scheduler: FairScheduler;
  private readonly programs = new Map<string, Map<string, StorageFunction>>();
  private readonly verifying = new Set<string>();

  constructor(private readonly options: StorageRuntimeOptions) {
    this.scheduler = new FairScheduler(options.scheduler);
  }

  limits(tenant: string): TenantLimits {
    return this.options.limitsFor?.(tenant) ?? DEFAULT_TENANT_LIMITS;
  }

  /** Verify and compile `program` under `name` for `tenant`, replacing nothing: names are unique per tenant. */
  async load(tenant: string, name: string, loadable: LoadableProgram | Program): Promise<ProgramInfo> {
    const program: LoadableProgram = isLoadable(loadable) ? loadable : { instructions: loadable };
    if (!/^[\w.-]+$/.test(name) || Buffer.byteLength(name) > MAX_PROGRAM_NAME_BYTES) {
      throw new ProgramLoadError(`program name must be 1-${MAX_PROGRAM_NAME_BYTES} of [A-Za-z0-9_.-], got '${name}'`);
    }
    const limits = this.limits(tenant);
    const mine = this.tenantPrograms(tenant);
    const key = `${tenant}\0${name}`;
    // A name being verified is taken too: verification may take a while (off the event loop).
    if (mine.has(name) || this.verifying.has(key)) throw new ProgramNameInUseError(name);
    const checkCount = () => {
      if (mine.size >= limits.maxLoadedPrograms) {
        throw new BudgetExceededError(
          'loadedPrograms',
          limits.maxLoadedPrograms,
          `tenant '${tenant}' has ${mine.size} programs loaded`,
        );
      }
    };
    checkCount();
    // The function is built and its program compiled while the verifier runs (the target's verifier
    // is a worker thread; V8 compiles on its background threads: TurboFan takes ~10 µs per
    // instruction of a typical program), so an accepted program is ready about when its verdict is.
    // Only the Wasm bytes are speculative: the code is the same whatever the verdict, and it is
    // instantiated only after acceptance. A rejected program's compile is dropped (V8 offers no
    // cancel): it costs less than the verification did, and a tenant's verifications in flight are
    // bounded. The verdict's error takes precedence over a build error, as when nothing was speculated.
    this.verifying.add(key);
    let verdict: Promise<void>;
    try {
      verdict = Promise.resolve(this.options.verify(program.instructions, name, program.maps ?? [], tenant));
    } catch (e) {
      this.verifying.delete(key);
      throw e;
    }
    let fn: StorageFunction | undefined;
    let compiled: Promise<void> | undefined;
    let buildError: unknown;
    try {
      fn = new StorageFunction({
        name,
        program: program.instructions,
        maps: program.maps,
        link: program.link,
        mapMemoryLimitBytes: limits.maxMapMemoryBytes,
        slots: limits.maxConcurrentExecutions,
        memoryMode: this.options.memoryMode ?? 'checked',
        threads: this.options.executor?.threads,
        compile: 'later',
      });
      compiled = fn.compileAsync();
      compiled.catch(() => {}); // reported below, after the verdict
    } catch (e) {
      buildError = e;
    }
    try {
      await verdict;
    } finally {
      this.verifying.delete(key);
    }
    if (fn === undefined || compiled === undefined) throw buildError;
    await compiled;
    checkCount(); // other names may have been loaded while this one was verified
    fn.instantiate();
    if (this.options.executor !== undefined) {
      this.verifying.add(key);
      try {
        await this.options.executor.load(fn, tenant);
      } finally {
        this.verifying.delete(key);
      }
      try {
        checkCount();
      } catch (e) {
        this.options.executor.unload(fn);
        throw e;
      }
    }
    mine.set(name, fn);
    return info(fn);
  }

  unload(tenant: string, name: string): void {
    const fn = this.find(tenant, name);
    if (fn.busySlots > 0) throw new ProgramBusyError(name, fn.busySlots);
    this.tenantPrograms(tenant).delete(name);
    this.options.executor?.unload(fn);
  }

  /** The maps of a loaded program, for host-side reads and updates. */
  maps(tenant: string, name: string): MapSet {
    return this.find(tenant, name).maps;
  }

  list(tenant: string): ProgramInfo[] {
    return [...this.tenantPrograms(tenant).values()].map(info);
  }

  execute(tenant: string, name: string, request: Omit<ExecutionRequest, 'tenant'>): Promise<ExecutionResult> {
    const fn = this.find(tenant, name);
    const { reader, params, input, mode } = request;
    return executeStorageFunction(
      fn,
      { reader, params, input, mode, tenant },
      this.limits(tenant),
      this.scheduler,
      this.options.observer,
      this.options.executor,
    );
  }

  /** The loaded function (another thread's executor needs its shared parts), or undefined. */
  functionOf(tenant: string, name: string): StorageFunction | undefined {
    return this.programs.get(tenant)?.get(name);
  }

  /**
   * An execution of a loaded function that another thread started and saw end (an I/O thread
   * submitting to the execution workers itself): counted in the function's statistics and told to
   * the observer as one started here would be.
   */
  executedElsewhere(tenant: string, name: string, stats: ExecutionStats, outputBytes: number, error: unknown): void {
    const fn = this.functionOf(tenant, name);
    if (fn === undefined) return;
    fn.stats.executions++;
    if (error !== null) fn.stats.failures++;
    fn.stats.steps += stats.steps;
    fn.stats.instructions += stats.instructions;
    fn.stats.bytesRead += stats.bytesRead;
    this.options.observer?.executed(tenant, name, stats, outputBytes, error);
  }

  /**
   * `execute` with a callback, for the target's command path: `done` runs once, synchronously when
   * the execution ends in the turn it started in (no promise either way). Throws `UnknownProgramError`
   * (before anything runs) when `request.tenant` has no program `name`.
   */
  run(name: string, request: ExecutionRequest, done: (error: unknown, result: ExecutionResult | undefined) => void): void {
    const tenant = request.tenant;
    runStorageFunction(
      this.find(tenant, name),
      request,
      this.limits(tenant),
      this.scheduler,
      this.options.observer,
      this.options.executor,
      done,
    );
  }

  private find(tenant: string, name: string): StorageFunction {
    const fn = this.programs.get(tenant)?.get(name);
    if (fn === undefined) throw new UnknownProgramError(name);
    return fn;
  }

  private tenantPrograms(tenant: string): Map<string, StorageFunction> {
    let mine = this.programs.get(tenant);
    if (mine === undefined) {
      mine = new Map();
      this.programs.set(tenant, mine);
    }
    return mine;
  }
}

function info(fn: StorageFunction): ProgramInfo {
  return { name: fn.name, instructions: fn.program.length, loadedAt: fn.loadedAt, stats: { ...fn.stats } };
}

function isLoadable(p: LoadableProgram | Program): p is LoadableProgram {
  return !Array.isArray(p);
}
