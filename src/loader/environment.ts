/**
 * Running a loaded program: builds its sandbox (stack, program memory, one region per map), the
 * helper table (maps 1-3, unwind 5, trace_printk 6) and the engines.
 *
 * Layout of the sandbox: region 1 the stack, region 2 the program memory (r1 = its address,
 * r2 = the input length: the conformance convention, for now), regions 3... the maps in
 * `LoadedObject.maps` order. Linking for the sandbox turns `map_by_idx K` into the map's handle and
 * `map_value_by_idx K, OFF` into the sandbox address OFF bytes into entry 0 of map K (addresses are
 * flat offsets into the sandbox: see src/vm/memory.ts).
 */
import { DEFAULT_FUEL } from '../abi/limits.js';
import type { Instruction } from '../isa/index.js';
import { type BpfMap, DEFAULT_MAP_MEMORY_LIMIT_BYTES, MapSet, mapHelpers, mapRegionSpecs } from '../maps/index.js';
import { unwindHelper } from '../vm/conformance.js';
import { createSandbox, type Engine, type EngineKind } from '../vm/engine.js';
import { type HelperTable, helperTable } from '../vm/helpers.js';
import { Interpreter } from '../vm/interpreter.js';
import { JitEngine, type MemoryMode } from '../vm/jit/engine.js';
import type { SandboxMemory } from '../vm/memory.js';
import { EnvironmentError, ProgramNotFoundError } from './errors.js';
import { findProgram, type LoadedObject, type LoadedProgram } from './object.js';
import { DebugLog, tracePrintkHelper } from './trace-printk.js';

export const PROGRAM_MEMORY_REGION_ID = 2;
export const FIRST_MAP_REGION_ID = 3;
/** Program memory when none is asked for. */
export const DEFAULT_PROGRAM_MEMORY_BYTES = 64 * 1024;
/** The conformance program type's data buffer limit (src/abi/program-types.ts). */
export const MAX_PROGRAM_MEMORY_BYTES = 1 << 20;

export interface EnvironmentOptions {
  /** Size of the program memory region (the largest input a run accepts). */
  readonly memorySizeBytes?: number;
  /** Total map memory (values, keys, index) allowed for this sandbox. */
  readonly mapMemoryLimitBytes?: number;
  readonly maxLogLines?: number;
  readonly maxCallDepth?: number;
  /**
   * How the JIT compiles memory accesses (default `checked`). `verified` only once the verifier
   * accepted the program (see `MemoryMode`).
   */
  readonly memoryMode?: MemoryMode;
}

export interface EnvironmentRun {
  readonly r0: bigint;
  readonly fuelUsed: number;
  /** The input's bytes of program memory after the run. */
  readonly memory: Uint8Array;
  /** Lines the program printed during this run. */
  readonly log: readonly string[];
}

/** Replace map references by handles and data references by sandbox addresses. */
export function linkForSandbox(program: LoadedProgram, maps: MapSet): Instruction[] {
  return program.instructions.map((insn, i) => {
    if (insn.kind !== 'lddw' || insn.source === 0) return insn;
    const fail = (reason: string) => new EnvironmentError(`program '${program.name}', instruction ${i}: ${reason}`);
    const map: BpfMap | undefined = maps.maps[insn.imm];
    if (map === undefined) throw fail(`lddw refers to map ${insn.imm}, but there are ${maps.maps.length}`);
    let value: bigint;
    if (insn.source === 1 || insn.source === 5) {
      value = maps.handle(insn.imm);
    } else if (insn.source === 2 || insn.source === 6) {
      // A direct value pointer is only meaningful into the single value of a one-entry array.
      if (map.spec.type !== 'array' || map.spec.maxEntries !== 1) throw fail(`map ${map.name} is not a one-entry array`);
      if (insn.nextImm < 0 || insn.nextImm > map.spec.valueSizeBytes)
        throw fail(`offset ${insn.nextImm} is outside map ${map.name}`);
      value = BigInt(map.valuesAddress + insn.nextImm);
    } else {
      throw fail(`lddw source ${insn.source} is not supported`);
    }
    return {
      kind: 'lddw',
      dst: insn.dst,
      source: 0,
      imm: Number(BigInt.asIntN(32, value)),
      nextImm: Number(BigInt.asIntN(32, value >> 32n)),
    };
  });
}

/** A program ready to run on either engine; maps and the log persist across runs (and engines). */
export class ProgramEnvironment {
  readonly program: LoadedProgram;
  readonly instructions: readonly Instruction[];
  readonly memory: SandboxMemory;
  readonly maps: MapSet;
  readonly helpers: HelperTable;
  readonly log: DebugLog;
  readonly memorySizeBytes: number;
  private readonly maxCallDepth: number | undefined;
  private readonly memoryMode: MemoryMode;
  private readonly engines = new Map<EngineKind, Engine>();

  constructor(object: LoadedObject, programName: string | undefined, options: EnvironmentOptions = {}) {
    const program = findProgram(object, programName);
    if (program === undefined)
      throw new ProgramNotFoundError(
        programName,
        object.programs.map((p) => p.name),
      );
    const memorySizeBytes = options.memorySizeBytes ?? DEFAULT_PROGRAM_MEMORY_BYTES;
    if (!Number.isSafeInteger(memorySizeBytes) || memorySizeBytes < 0 || memorySizeBytes > MAX_PROGRAM_MEMORY_BYTES) {
      throw new EnvironmentError(`program memory of ${memorySizeBytes} bytes is not in [0, ${MAX_PROGRAM_MEMORY_BYTES}]`);
    }
    const specs = object.maps.map((m) => ({ ...m }));
    const mapRegions = mapRegionSpecs(specs, options.mapMemoryLimitBytes ?? DEFAULT_MAP_MEMORY_LIMIT_BYTES);
    this.program = program;
    this.memorySizeBytes = memorySizeBytes;
    this.memory = createSandbox([{ name: 'mem', sizeBytes: memorySizeBytes, writable: true }, ...mapRegions]);
    this.maps = new MapSet(this.memory, specs, FIRST_MAP_REGION_ID);
    this.log = new DebugLog(options.maxLogLines);
    this.helpers = helperTable([...mapHelpers(this.maps), unwindHelper, tracePrintkHelper(this.log)]);
    this.instructions = linkForSandbox(program, this.maps);
    this.maxCallDepth = options.maxCallDepth;
    this.memoryMode = options.memoryMode ?? 'checked';
  }

  /** The engine of `kind` for this sandbox (compiled once, then reused). */
  engine(kind: EngineKind): Engine {
    let e = this.engines.get(kind);
    if (e === undefined) {
      const options = { helpers: this.helpers, memory: this.memory, maxCallDepth: this.maxCallDepth };
      e =
        kind === 'jit'
          ? new JitEngine(this.instructions, { ...options, memoryMode: this.memoryMode })
          : new Interpreter(this.instructions, options);
      this.engines.set(kind, e);
    }
    return e;
  }

  /** Copy `input` into program memory (the rest is zeroed) and run with r1 = its address, r2 = its length. */
  run(input: Uint8Array, options: { engine: EngineKind; fuel?: number }): EnvironmentRun {
    if (input.length > this.memorySizeBytes) {
      throw new EnvironmentError(`input of ${input.length} bytes exceeds the program memory of ${this.memorySizeBytes}`);
    }
    const engine = this.engine(options.engine);
    const mem = this.memory.bytes(PROGRAM_MEMORY_REGION_ID);
    mem.fill(0);
    mem.set(input);
    const before = this.log.lines.length;
    const result = engine.run([BigInt(this.memory.address(PROGRAM_MEMORY_REGION_ID)), BigInt(input.length)], {
      fuel: options.fuel ?? DEFAULT_FUEL,
    });
    return { ...result, memory: mem.slice(0, input.length), log: this.log.lines.slice(before) };
  }
}

export function createProgramEnvironment(
  object: LoadedObject,
  programName?: string,
  options: EnvironmentOptions = {},
): ProgramEnvironment {
  return new ProgramEnvironment(object, programName, options);
}
