/**
 * A loaded storage function: one verified program compiled once, with one sandbox holding a slot
 * per concurrent execution (context, data buffer, scratch and input regions) plus the program's
 * maps, which all its executions share. Steps never interleave (see scheduler.ts), so one JIT
 * instance serves every slot: r1 simply points at the slot's context.
 */
import { MAX_CALL_DEPTH, MAX_STACK_SIZE_BYTES } from '../abi/limits.js';
import { MAX_DATA_BYTES_PER_STEP, MAX_INPUT_BYTES, SCRATCH_SIZE_BYTES, STORAGE_CTX, STORAGE_HELPER_IDS } from '../abi/storage.js';
import { MemoryAccessError, ProgramLoadError } from '../errors.js';
import type { Program } from '../isa/index.js';
import { MapMemoryLimitError, MapSet, type MapSpec, mapHelpers, mapRegionSpecs, type SharedMapSet } from '../maps/index.js';
import { createSandbox } from '../vm/engine.js';
import { type Helper, helperTable } from '../vm/helpers.js';
import { JitEngine, type JitOptions, JitProgram, type JitProgramShared, type MemoryMode } from '../vm/jit/engine.js';
import { type RegionSpec, type SandboxMemory, STACK_REGION_ID } from '../vm/memory.js';
import { BudgetExceededError, StorageAccessError } from './errors.js';
import { type SandboxZero, sandboxZero } from './sandbox-fill.js';

/**
 * What the helpers of a running step act on; owned by the execution (execution.ts), which keeps one
 * per slot and resets it for each execution, so a step allocates nothing.
 */
export interface StepState {
  namespaceSizeBytes: number;
  maxReadsPerStep: number;
  maxOutputBytes: number;
  scanMode: boolean;
  /** Reads the step asked for so far: offsets and lengths in the first `readCount` entries. */
  readCount: number;
  /** `MAX_READS_PER_STEP` entries each (a budget's `maxReadsPerStep` is at most that). */
  readonly readOffsets: Float64Array;
  readonly readLengths: Float64Array;
  readBytesThisStep: number;
  /** Output so far: the first `outputBytes` bytes of `output` (grown by doubling, up to `maxOutputBytes`). */
  output: Uint8Array;
  outputBytes: number;
  scanStopped: boolean;
}

/** Output arena a step state starts with; it grows on demand. */
export const INITIAL_OUTPUT_BYTES = 256;

export interface Slot {
  readonly index: number;
  readonly ctxRegion: number;
  readonly dataRegion: number;
  readonly scratchRegion: number;
  readonly inputRegion: number;
  /** r1 for a step of this slot (its context's address), built once so a step allocates nothing. */
  readonly entryArgs: readonly bigint[];
}

const REGIONS_PER_SLOT = 4;
const FIRST_SLOT_REGION = 2;

export interface StorageFunctionOptions {
  readonly name: string;
  readonly program: Program;
  /** Concurrent executions of this function (slots in its sandbox). */
  readonly slots: number;
  /** The program's maps, placed after the slots; shared by all its executions. */
  readonly maps?: readonly MapSpec[];
  /** Map memory allowed (the tenant's budget). */
  readonly mapMemoryLimitBytes?: number;
  /** Resolves map references (lddw map_by_idx / map_value_by_idx) once the maps have addresses. */
  readonly link?: (maps: MapSet) => Program;
  /**
   * How the JIT compiles memory accesses (default `checked`). `verified` only for a program the
   * verifier accepted: its accesses run without bounds checks (see src/vm/jit/compile.ts).
   */
  readonly memoryMode?: MemoryMode;
  /**
   * Threads that will run this function at once (execution workers): the sandbox is a shared
   * memory with one stack region per thread, and this copy runs nothing. It hands its compiled
   * program to the threads (`shareable().jit`) when it has one (see `compile`); without one each
   * thread compiles its own.
   */
  readonly threads?: number;
  /** Another thread's copy: attach to its sandbox and maps (and compiled program), run on stack `threadIndex`. */
  readonly attach?: StorageFunctionShared & { readonly threadIndex: number };
  /**
   * `now` (the default): the constructor compiles the program and instantiates it. `later`: the
   * caller starts `compileAsync()` (V8 compiles on its background threads, so it overlaps with, say,
   * the verifier's run) and calls `instantiate()` once the program may run; until then the function
   * has no engine.
   */
  readonly compile?: 'now' | 'later';
}

/** What another thread needs to run the same function over the same sandbox and maps. */
export interface StorageFunctionShared {
  readonly memory: WebAssembly.Memory;
  readonly maps: SharedMapSet;
  readonly threads: number;
  /** Which slots are taken (see `StorageFunction.slotTable`). */
  readonly slotTable: SharedArrayBuffer;
  /** The compiled program, when this copy has one: the thread instantiates it instead of compiling. */
  readonly jit?: JitProgramShared;
}

/**
 * Take a free slot of a shared slot table (`count` slots, one Int32 word each: 0 free, else taken,
 * the word naming who took it: 1 for this runtime, other values the caller's): its index, or -1
 * when all are taken. Any thread that starts executions of the function may call it.
 */
export function takeSlot(table: Int32Array, count: number, owner = 1): number {
  for (let i = 0; i < count; i++) if (Atomics.compareExchange(table, i, 0, owner) === 0) return i;
  return -1;
}

/**
 * Give slot `slot` back only while `owner` still holds it (true if it did): what a thread that
 * frees a slot on behalf of another, dead one uses, so it can never free a slot taken since.
 */
export function releaseSlotOf(table: Int32Array, slot: number, owner: number): boolean {
  return Atomics.compareExchange(table, slot, owner, 0) === owner;
}

export interface StorageFunctionStats {
  executions: number;
  failures: number;
  steps: number;
  instructions: number;
  bytesRead: number;
}

export class StorageFunction {
  readonly name: string;
  readonly program: Program;
  readonly sandbox: SandboxMemory;
  /**
   * What runs the program on this thread. Undefined for the copy of a function whose executions run
   * on other threads (`threads`), and before `instantiate()` (`compile: 'later'`).
   */
  get engine(): JitEngine | undefined {
    return this.instance;
  }
  /** The compiled program (undefined on a `threads` copy that compiled nothing, and before `compileAsync()` ends). */
  get jit(): JitProgram | undefined {
    return this.jitProgram;
  }
  /** Threads sharing the sandbox (1 when it is not shared). */
  readonly threads: number;
  readonly maps: MapSet;
  readonly slotCount: number;
  readonly stats: StorageFunctionStats = { executions: 0, failures: 0, steps: 0, instructions: 0, bytesRead: 0 };
  readonly loadedAt = new Date();
  /** Every slot, by index (built once). */
  private readonly slots: Slot[] = [];
  /**
   * Which slots are taken: one Int32 per slot (0 free, else who took it: `takeSlot`), then one word for the caller's
   * use (the target marks an unloading function there). Shared memory, so threads other than this
   * one (I/O threads starting executions) take slots from the same table and the function's
   * concurrency limit holds over all of them.
   */
  readonly slotTable: Int32Array;
  /** The whole sandbox as bytes (it never grows, so one view serves every copy out of it). */
  readonly memoryBytes: Uint8Array;
  /** Zeroes bytes of the sandbox (fast on a shared memory too: see sandbox-fill.ts). */
  readonly zero: SandboxZero;
  readonly memoryMode: MemoryMode;
  /** The step running now, if any: what the helpers act on. */
  current: StepState | undefined;
  /** Whether executions run on this thread (not a `threads` copy that hands them to other threads). */
  private readonly runsHere: boolean;
  private readonly jitOptions: JitOptions;
  private jitProgram: JitProgram | undefined;
  private instance: JitEngine | undefined;

  constructor(options: StorageFunctionOptions) {
    if (!Number.isInteger(options.slots) || options.slots < 1)
      throw new ProgramLoadError(`slots must be >= 1, got ${options.slots}`);
    this.name = options.name;
    this.slotCount = options.slots;
    const regions: RegionSpec[] = [];
    for (let s = 0; s < options.slots; s++) {
      regions.push(
        { name: `ctx${s}`, sizeBytes: STORAGE_CTX.sizeBytes, writable: false },
        { name: `data${s}`, sizeBytes: MAX_DATA_BYTES_PER_STEP, writable: false },
        { name: `scratch${s}`, sizeBytes: SCRATCH_SIZE_BYTES, writable: true },
        { name: `input${s}`, sizeBytes: MAX_INPUT_BYTES, writable: false },
      );
    }
    const threads = options.attach?.threads ?? options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 256)
      throw new ProgramLoadError(`threads must be 1-256, got ${threads}`);
    this.threads = threads;
    // Stacks of threads beyond the first (region 1 is the first thread's).
    const firstExtraStack = FIRST_SLOT_REGION + regions.length;
    for (let t = 1; t < threads; t++) regions.push({ name: `stack${t}`, sizeBytes: MAX_STACK_SIZE_BYTES, writable: true });
    const firstMapRegion = FIRST_SLOT_REGION + regions.length;
    const mapSpecs = options.maps ?? [];
    try {
      regions.push(...mapRegionSpecs(mapSpecs, options.mapMemoryLimitBytes));
    } catch (e) {
      if (e instanceof MapMemoryLimitError) {
        throw new BudgetExceededError('mapMemory', options.mapMemoryLimitBytes ?? 0, e.message);
      }
      throw e;
    }
    const shared = options.attach !== undefined || options.threads !== undefined;
    this.sandbox = createSandbox(regions, { shared, memory: options.attach?.memory });
    this.maps = new MapSet(this.sandbox, mapSpecs, firstMapRegion, options.attach?.maps);
    this.program = options.link ? options.link(this.maps) : options.program;
    this.slotTable = new Int32Array(options.attach?.slotTable ?? new SharedArrayBuffer(4 * (options.slots + 1)));
    this.memoryBytes = new Uint8Array(this.sandbox.memory.buffer);
    this.zero = sandboxZero(this.sandbox.memory);
    for (let s = 0; s < options.slots; s++) {
      const base = FIRST_SLOT_REGION + s * REGIONS_PER_SLOT;
      this.slots.push({
        index: s,
        ctxRegion: base,
        dataRegion: base + 1,
        scratchRegion: base + 2,
        inputRegion: base + 3,
        entryArgs: [BigInt(this.sandbox.address(base))],
      });
    }
    this.memoryMode = options.memoryMode ?? 'checked';
    this.runsHere = options.threads === undefined || options.attach !== undefined;
    const threadIndex = options.attach?.threadIndex ?? 0;
    if (!Number.isInteger(threadIndex) || threadIndex < 0 || threadIndex >= threads) {
      throw new ProgramLoadError(`thread ${threadIndex} of ${threads}`);
    }
    this.jitOptions = {
      helpers: helperTable([...this.storageHelpers(), ...mapHelpers(this.maps)]),
      memory: this.sandbox,
      maxCallDepth: MAX_CALL_DEPTH,
      memoryMode: this.memoryMode,
      stackRegionId: threadIndex === 0 ? STACK_REGION_ID : firstExtraStack + threadIndex - 1,
    };
    const given = options.attach?.jit;
    if (given !== undefined) {
      if (given.memoryMode !== this.memoryMode) {
        throw new ProgramLoadError(
          `a program compiled for memory mode ${given.memoryMode} given to a ${this.memoryMode} function`,
        );
      }
      this.jitProgram = JitProgram.attach(given);
    }
    if (options.compile === 'later') return;
    if (this.runsHere) {
      this.jitProgram ??= JitProgram.compile(this.program, this.jitOptions);
      this.instantiate();
    }
  }

  /**
   * Compiles the program on V8's background threads (for `compile: 'later'`); never runs it. The
   * caller instantiates it (`instantiate()`) only once the program is accepted.
   */
  async compileAsync(): Promise<void> {
    this.jitProgram ??= await JitProgram.compileAsync(this.program, this.jitOptions);
  }

  /** Instantiates the compiled program on this thread, unless its executions run on other threads. */
  instantiate(): void {
    if (!this.runsHere || this.instance !== undefined) return;
    if (this.jitProgram === undefined) throw new ProgramLoadError(`'${this.name}' is not compiled yet`);
    this.instance = new JitEngine(this.jitProgram, this.jitOptions);
  }

  /** What another thread passes as `attach` (with its thread index) to run this function. */
  shareable(): StorageFunctionShared {
    return {
      memory: this.sandbox.memory,
      maps: this.maps.shareable(),
      threads: this.threads,
      slotTable: this.slotTable.buffer as SharedArrayBuffer,
      jit: this.jitProgram?.shareable(),
    };
  }

  /** The slot of index `index` (another thread runs an execution in a slot this copy handed out). */
  slotAt(index: number): Slot {
    const slot = this.slots[index];
    if (slot === undefined || slot.index !== index) throw new ProgramLoadError(`no slot ${index}`);
    return slot;
  }

  /**
   * Whether the stack is zeroed before each step. Not for a program the verifier accepted (memory
   * mode `verified`): it rejects every read of stack bytes not written earlier in the same run, so
   * what an earlier step or execution left there can never be observed.
   */
  get clearStack(): boolean {
    return this.memoryMode !== 'verified';
  }

  acquireSlot(): Slot | undefined {
    const index = takeSlot(this.slotTable, this.slotCount);
    return index < 0 ? undefined : this.slots[index];
  }

  releaseSlot(slot: Slot): void {
    Atomics.store(this.slotTable, slot.index, 0);
  }

  get busySlots(): number {
    let busy = 0;
    for (let i = 0; i < this.slotCount; i++) if (Atomics.load(this.slotTable, i) !== 0) busy++;
    return busy;
  }

  private step(pc: number): StepState {
    const state = this.current;
    if (state === undefined) throw new StorageAccessError(pc, 'storage helper called outside a step');
    return state;
  }

  private storageHelpers(): Helper[] {
    return [
      {
        id: STORAGE_HELPER_IDS.read,
        name: 'nb_read',
        fn: (args) => {
          const state = this.step(args.pc);
          if (state.scanMode) throw new StorageAccessError(args.pc, 'nb_read is not available in scan mode');
          if (state.readCount >= state.maxReadsPerStep) {
            throw new BudgetExceededError('readsPerStep', state.maxReadsPerStep, `pc ${args.pc}: read ${state.readCount + 1}`);
          }
          // Numbers: a namespace is far below 2^53 bytes, so a rounded larger value is out of it too.
          const o = args.num(1);
          const l = args.num(2);
          if (l === 0 || o + l > state.namespaceSizeBytes) {
            throw new StorageAccessError(
              args.pc,
              `read of ${args.u64(2)} bytes at offset ${args.u64(1)} is outside the namespace of ${state.namespaceSizeBytes} bytes`,
            );
          }
          if (state.readBytesThisStep + l > MAX_DATA_BYTES_PER_STEP) {
            throw new StorageAccessError(
              args.pc,
              `reads of one step exceed the ${MAX_DATA_BYTES_PER_STEP}-byte data buffer (${state.readBytesThisStep} + ${args.u64(2)})`,
            );
          }
          state.readOffsets[state.readCount] = o;
          state.readLengths[state.readCount] = l;
          state.readCount++;
          state.readBytesThisStep += l;
          return 0;
        },
      },
      {
        id: STORAGE_HELPER_IDS.emit,
        name: 'nb_emit',
        fn: (args) => {
          const state = this.step(args.pc);
          const length = args.num(2);
          if (length > state.maxOutputBytes - state.outputBytes) {
            throw new BudgetExceededError(
              'outputBytes',
              state.maxOutputBytes,
              `pc ${args.pc}: emitting ${args.u64(2)} more bytes`,
            );
          }
          // The same bounds rule as the engines' accesses; then straight from the sandbox into the arena.
          const at = args.fitsU32(1) ? args.memory.check(0, args.u32(1), length, 'read') : -1;
          if (at < 0) throw new MemoryAccessError(args.pc, 'read', args.u64(1), length);
          const end = state.outputBytes + length;
          if (end > state.output.length) {
            let size = state.output.length * 2;
            while (size < end) size *= 2;
            const grown = new Uint8Array(Math.min(size, state.maxOutputBytes));
            grown.set(state.output.subarray(0, state.outputBytes));
            state.output = grown;
          }
          state.output.set(this.memoryBytes.subarray(at, at + length), state.outputBytes);
          state.outputBytes = end;
          return 0;
        },
      },
      {
        id: STORAGE_HELPER_IDS.scanStop,
        name: 'nb_scan_stop',
        fn: (args) => {
          const state = this.step(args.pc);
          if (!state.scanMode) throw new StorageAccessError(args.pc, 'nb_scan_stop is only available in scan mode');
          state.scanStopped = true;
          return 0;
        },
      },
    ];
  }
}
