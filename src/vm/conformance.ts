/**
 * The environment the bpf_conformance suite assumes: r1 points to the test memory, r2 holds its
 * length, and helper 5 ("unwind") returns its argument or, given 0, stops the program with r0 = 0.
 */
import { CONFORMANCE_UNWIND_HELPER_ID, DEFAULT_FUEL } from '../abi/limits.js';
import { UsageError } from '../errors.js';
import type { Program } from '../isa/index.js';
import type { Engine, EngineKind, RunResult } from './engine.js';
import { createSandbox } from './engine.js';
import { type Helper, helperTable, ProgramStop } from './helpers.js';
import { Interpreter } from './interpreter.js';
import { JitEngine, type MemoryMode } from './jit/engine.js';

export const CONFORMANCE_MEMORY_REGION_ID = 2;

export const unwindHelper: Helper = {
  id: CONFORMANCE_UNWIND_HELPER_ID,
  name: 'unwind',
  fn: (args) => {
    if (args.num(1) === 0) throw new ProgramStop(0n);
    return args.u64(1);
  },
};

export const conformanceHelpers = helperTable([unwindHelper]);

export interface ConformanceRun extends RunResult {
  /** The test memory after the run. */
  readonly memory: Uint8Array;
  /** The engine that ran the program (for its statistics). */
  readonly engine: Engine;
}

/** Parse memory given as hex bytes, with or without spaces between them (`"aa bb"`, `"aabb"`). */
export function parseHexBytes(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new UsageError(`not a sequence of hex bytes: '${text.slice(0, 40)}'`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

/** Load `program` on `engine` in the conformance environment and run it once over `memory`. */
export function createConformanceEngine(
  program: Program,
  engine: EngineKind,
  memorySizeBytes: number,
  memoryMode: MemoryMode = 'checked',
  withinRegion = false,
  sharedMemory = false,
) {
  const memory = createSandbox([{ name: 'mem', sizeBytes: memorySizeBytes, writable: true }], { shared: sharedMemory });
  const options = { helpers: conformanceHelpers, memory };
  const instance: Engine =
    engine === 'jit'
      ? new JitEngine(program, { ...options, memoryMode })
      : new Interpreter(program, { ...options, withinRegion });
  return { instance, memory };
}

export function runConformance(
  program: Program,
  memoryBytes: Uint8Array,
  options: {
    engine: EngineKind;
    fuel?: number;
    /** JIT only: see `MemoryMode`. */
    memoryMode?: MemoryMode;
    /** Interpreter only: fault on accesses outside the memory region too (`InterpreterOptions`). */
    withinRegion?: boolean;
    /** Run over a shared WebAssembly.Memory (the JIT then emits Wasm atomics for eBPF atomics). */
    sharedMemory?: boolean;
  },
): ConformanceRun {
  const { instance, memory } = createConformanceEngine(
    program,
    options.engine,
    memoryBytes.length,
    options.memoryMode,
    options.withinRegion,
    options.sharedMemory,
  );
  memory.bytes(CONFORMANCE_MEMORY_REGION_ID).set(memoryBytes);
  const args = [BigInt(memory.address(CONFORMANCE_MEMORY_REGION_ID)), BigInt(memoryBytes.length)];
  const result = instance.run(args, { fuel: options.fuel ?? DEFAULT_FUEL });
  return {
    ...result,
    memory: memory.bytes(CONFORMANCE_MEMORY_REGION_ID).slice(),
    engine: instance,
  };
}
