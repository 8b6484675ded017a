/**
 * The JIT engine: compiles a program to WebAssembly once, then runs it in V8 against the sandbox
 * memory. Errors are the interpreter's, raised by the `fault` and `helper` imports.
 */
import v8 from 'node:v8';
import { MAX_CALL_DEPTH } from '../../abi/limits.js';
import {
  CallDepthError,
  ExecutionError,
  FuelExhaustedError,
  HelperError,
  MemoryAccessError,
  NearbpfError,
  ProgramLoadError,
  UnknownHelperError,
} from '../../errors.js';
import type { Program } from '../../isa/index.js';
import {
  checkFuel,
  type Engine,
  type EngineOptions,
  prepareProgram,
  type RunOptions,
  type RunResult,
  STACK_FRAME_SIZE_BYTES,
  STACK_REGION_ID,
  STACK_TOP_OFFSET,
} from '../engine.js';
import { HelperArgs, type HelperTable, ProgramStop, storeHelperResult } from '../helpers.js';
import { type SandboxMemory, WASM_PAGE_SIZE_BYTES } from '../memory.js';
import { BOUNDARY, boundaryBlockAddress, type CompiledProgram, compileProgram, FaultKind, type MemoryMode } from './compile.js';

export type { MemoryMode };

// V8 compiles Wasm with its baseline compiler (Liftoff) first and moves a function to the optimising
// one (TurboFan) only for its next call: there is no on-stack replacement, so a program whose loop
// runs inside one call would run baseline code to its end. Every JIT compile therefore goes straight
// to TurboFan, and eagerly (V8 would otherwise compile each function on its first call, inside a
// storage function's first step): loading pays the compile, executions never do. The flags are
// read at each module compile, so setting them here, before the first one, is enough and needs no
// command-line flag from the user.
v8.setFlagsFromString('--no-liftoff');
v8.setFlagsFromString('--no-wasm-lazy-compilation');

/**
 * Milliseconds from a monotonic clock. Not `performance.now()`: its first use loads perf_hooks,
 * a few milliseconds of every CLI start (`nearbpf run` compiles one program and exits).
 */
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

interface Exports {
  /** Runs the program with registers and fuel from the boundary block at `block` (see BOUNDARY). */
  run(block: number): void;
  /** Fuel left as of the last helper call. */
  fuel: WebAssembly.Global;
}

const TWO_POW_32 = 2 ** 32;

export interface JitOptions extends EngineOptions {
  /** `checked` (default) or `verified`: see `MemoryMode`. Only a verifier's acceptance justifies `verified`. */
  readonly memoryMode?: MemoryMode;
  /**
   * Region of the stack this instance runs on (default region 1). Threads that run the same
   * program over one shared sandbox each have their own stack region of the same size.
   */
  readonly stackRegionId?: number;
}

/** A verified program trapped in Wasm: the verifier accepted an access outside the sandbox's regions. */
export class SandboxTrapError extends ExecutionError {
  readonly code = 'ERR_SANDBOX_TRAP';
  constructor(readonly reason: string) {
    super(-1, `verified program trapped (${reason}); the sandbox held, but the verifier let an invalid access through`);
  }
}

export interface JitStats {
  /** Time to translate to Wasm bytes. */
  readonly translateMs: number;
  /**
   * Time for V8 to compile the module: on this thread (`JitProgram.compile`), or from the start of a
   * background compile until its result was taken (`JitProgram.compileAsync`).
   */
  readonly compileMs: number;
  readonly wasmSizeBytes: number;
  readonly structuredFunctions: number;
  readonly dispatchedFunctions: number;
}

/**
 * What another thread needs to instantiate a compiled program without compiling it again (a
 * `WebAssembly.Module` crosses `postMessage` without a copy of its code): see `JitProgram.attach`.
 */
export interface JitProgramShared {
  readonly module: WebAssembly.Module;
  readonly compiled: CompiledProgram;
  readonly stats: JitStats;
  readonly maxCallDepth: number;
  readonly memoryMode: MemoryMode;
  readonly layoutKey: string;
}

/**
 * A program compiled to a WebAssembly module, for sandboxes of one layout: compile once, then
 * instantiate per sandbox or thread (`new JitEngine(jitProgram, ...)`). Compiling is separate from
 * instantiating, so a caller can compile while the verifier still runs and instantiate only an
 * accepted program.
 */
export class JitProgram implements JitProgramShared {
  private constructor(
    readonly module: WebAssembly.Module,
    readonly compiled: CompiledProgram,
    readonly stats: JitStats,
    readonly maxCallDepth: number,
    readonly memoryMode: MemoryMode,
    /** The sandbox layout the code was compiled for: pages, then the bounds its checks compare with. */
    readonly layoutKey: string,
  ) {}

  /** Translates and compiles on this thread. */
  static compile(program: Program, options: JitOptions): JitProgram {
    const t = translate(program, options);
    const t1 = nowMs();
    let module: WebAssembly.Module;
    try {
      module = new WebAssembly.Module(t.compiled.wasm);
    } catch (e) {
      throw tooLarge(e);
    }
    return JitProgram.of(module, t, nowMs() - t1);
  }

  /**
   * Translates on this thread, then compiles on V8's background threads (`WebAssembly.compile`):
   * this thread stays free (for instance to verify the same program) while TurboFan works.
   */
  static async compileAsync(program: Program, options: JitOptions): Promise<JitProgram> {
    const t = translate(program, options);
    const t1 = nowMs();
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(t.compiled.wasm);
    } catch (e) {
      throw tooLarge(e);
    }
    return JitProgram.of(module, t, nowMs() - t1);
  }

  /** A program another thread compiled (see `JitProgramShared`). */
  static attach(shared: JitProgramShared): JitProgram {
    return new JitProgram(shared.module, shared.compiled, shared.stats, shared.maxCallDepth, shared.memoryMode, shared.layoutKey);
  }

  /** Its structured-clonable form, for `attach` on another thread. */
  shareable(): JitProgramShared {
    const { module, compiled, stats, maxCallDepth, memoryMode, layoutKey } = this;
    return { module, compiled, stats, maxCallDepth, memoryMode, layoutKey };
  }

  private static of(module: WebAssembly.Module, t: Translation, compileMs: number): JitProgram {
    const structured = t.compiled.structured.filter(Boolean).length;
    const stats: JitStats = {
      translateMs: t.translateMs,
      compileMs,
      wasmSizeBytes: t.compiled.wasm.length,
      structuredFunctions: structured,
      dispatchedFunctions: t.compiled.structured.length - structured,
    };
    return new JitProgram(module, t.compiled, stats, t.maxCallDepth, t.memoryMode, t.layoutKey);
  }
}

interface Translation {
  readonly compiled: CompiledProgram;
  readonly translateMs: number;
  readonly maxCallDepth: number;
  readonly memoryMode: MemoryMode;
  readonly layoutKey: string;
}

function translate(program: Program, options: JitOptions): Translation {
  const layout = prepareProgram(program, options);
  const maxCallDepth = options.maxCallDepth ?? MAX_CALL_DEPTH;
  const memoryMode = options.memoryMode ?? 'checked';
  const m = options.memory;
  const t0 = nowMs();
  const compiled = compileProgram(layout, {
    maxCallDepth,
    memoryPages: m.memory.buffer.byteLength / WASM_PAGE_SIZE_BYTES,
    stackFrameSizeBytes: STACK_FRAME_SIZE_BYTES,
    memoryMode,
    sharedMemory: m.shared,
    lowAddress: m.lowAddress,
    writableEnd: m.writableEnd,
    readableEnd: m.readableEnd,
  });
  return { compiled, translateMs: nowMs() - t0, maxCallDepth, memoryMode, layoutKey: sandboxLayoutKey(m) };
}

/** V8's own limits (e.g. a br_table of more than 65520 targets in a huge dispatched function). */
function tooLarge(e: unknown): ProgramLoadError {
  return new ProgramLoadError(`program too large for the JIT: ${e instanceof Error ? e.message : String(e)}`);
}

export class JitEngine implements Engine {
  readonly kind = 'jit' as const;
  readonly program: JitProgram;
  /** Time V8 took to instantiate the module for this sandbox. */
  readonly instantiateMs: number;
  private readonly exports: Exports;
  private readonly memory: SandboxMemory;
  /** Address of the stack's top: r10 on entry. */
  private readonly stackTop: number;
  private readonly stackRegionId: number;
  /** Address of this engine's boundary block (BOUNDARY) and the words it is read through. */
  private readonly block: number;
  private readonly words: Int32Array;
  private readonly helperArgs: HelperArgs;
  private budget = 0;

  /** Compiles `program` (or reuses a `JitProgram` compiled for a sandbox of the same layout) and instantiates it. */
  constructor(program: Program | JitProgram, options: JitOptions) {
    this.program = program instanceof JitProgram ? program : JitProgram.compile(program, options);
    this.memory = options.memory;
    const key = sandboxLayoutKey(options.memory);
    if (key !== this.program.layoutKey) {
      throw new ProgramLoadError(`sandbox laid out as ${key} given to a program compiled for ${this.program.layoutKey}`);
    }
    const maxCallDepth = this.program.maxCallDepth;
    this.stackRegionId = options.stackRegionId ?? STACK_REGION_ID;
    const stack = options.memory.region(this.stackRegionId);
    if (!stack.writable || stack.sizeBytes !== options.memory.region(STACK_REGION_ID).sizeBytes) {
      throw new ProgramLoadError(`region ${this.stackRegionId} (${stack.name}) cannot serve as a stack`);
    }
    // One boundary block per stack, so threads running the program over one shared sandbox never
    // share a block; all of them lie in the NULL guard, out of every program's reach.
    this.block = boundaryBlockAddress(this.stackRegionId);
    if (this.block + BOUNDARY.sizeBytes > options.memory.lowAddress) {
      throw new ProgramLoadError(`no boundary block for stack region ${this.stackRegionId}`);
    }
    this.words = new Int32Array(options.memory.memory.buffer);
    this.stackTop = options.memory.address(this.stackRegionId, STACK_TOP_OFFSET);
    const at = this.block / 4;
    this.helperArgs = new HelperArgs(options.memory, this.words, at + BOUNDARY.helperArgs / 4);
    const t0 = nowMs();
    const instance = new WebAssembly.Instance(this.program.module, {
      env: {
        memory: options.memory.memory,
        fault: (kind: number, pc: number, addr: bigint, size: number) => this.fault(kind, pc, addr, size, maxCallDepth),
        helper: makeHelperImport(options.helpers, this.helperArgs, this.words, at),
      },
    });
    this.exports = instance.exports as unknown as Exports;
    this.instantiateMs = nowMs() - t0;
  }

  get stats(): JitStats {
    return this.program.stats;
  }

  get compiled(): CompiledProgram {
    return this.program.compiled;
  }

  run(args: readonly bigint[], options: RunOptions): RunResult {
    checkFuel(options.fuel);
    const w = this.words;
    const at = this.block / 4;
    for (let i = 0; i < 5; i++) {
      const v = i < args.length ? BigInt.asUintN(64, args[i]) : 0n;
      w[at + 2 * i] = Number(v & 0xffffffffn);
      w[at + 2 * i + 1] = Number(v >> 32n);
    }
    const fuelUsed = this.enter(options.fuel, options.clearStack !== false);
    return { r0: this.r0(), fuelUsed };
  }

  /**
   * `run` for the storage runtime's steps: r1 an address (below 2^32), r2-r5 zero; returns the fuel
   * used, and `r0()` the result. No BigInt or allocation unless the program faults.
   */
  runAddress(r1: number, fuel: number, clearStack: boolean): number {
    checkFuel(fuel);
    const w = this.words;
    const at = this.block / 4;
    w[at] = r1;
    for (let i = 1; i < 10; i++) w[at + i] = 0;
    return this.enter(fuel, clearStack);
  }

  /** r0 of the last run that returned. */
  r0(): bigint {
    const at = (this.block + BOUNDARY.r0) / 4;
    return (BigInt(this.words[at + 1] >>> 0) << 32n) | BigInt(this.words[at] >>> 0);
  }

  /** Enter with r1-r5 already in the block; returns the fuel used (a stop's r0 goes to the block). */
  private enter(fuel: number, clearStack: boolean): number {
    const w = this.words;
    const at = this.block / 4;
    this.budget = fuel;
    // The `fuel` global needs no reset: the code publishes it before every helper call, and only
    // helpers stop a program early.
    if (clearStack) this.memory.bytes(this.stackRegionId).fill(0);
    w[at + BOUNDARY.r10 / 4] = this.stackTop;
    w[at + BOUNDARY.r10 / 4 + 1] = 0;
    w[at + BOUNDARY.fuel / 4] = fuel % TWO_POW_32;
    w[at + BOUNDARY.fuel / 4 + 1] = Math.floor(fuel / TWO_POW_32);
    try {
      this.exports.run(this.block);
      const left = (w[at + BOUNDARY.fuel / 4 + 1] >>> 0) * TWO_POW_32 + (w[at + BOUNDARY.fuel / 4] >>> 0);
      return fuel - left;
    } catch (e) {
      if (e instanceof ProgramStop) {
        storeHelperResult(w, at + BOUNDARY.r0 / 4, e.r0);
        return fuel - Number(this.exports.fuel.value as bigint);
      }
      // Only verified code can trap (checked code faults through the import first): a verifier bug.
      if (e instanceof WebAssembly.RuntimeError) throw new SandboxTrapError(e.message);
      throw e;
    }
  }

  private fault(kind: number, pc: number, addr: bigint, size: number, maxCallDepth: number): never {
    switch (kind) {
      case FaultKind.read:
        throw new MemoryAccessError(pc, 'read', BigInt.asUintN(64, addr), size);
      case FaultKind.write:
        throw new MemoryAccessError(pc, 'write', BigInt.asUintN(64, addr), size);
      case FaultKind.fuel:
        throw new FuelExhaustedError(pc, this.budget);
      default:
        throw new CallDepthError(pc, maxCallDepth);
    }
  }
}

function sandboxLayoutKey(m: SandboxMemory): string {
  return `${m.memory.buffer.byteLength / WASM_PAGE_SIZE_BYTES}${m.shared ? ' shared' : ''} pages, [${m.lowAddress}, ${m.writableEnd}, ${m.readableEnd})`;
}

/**
 * The `helper` import: r1-r5 and the id are in the boundary block at word `at`; the result goes
 * over r1's words, where the compiled code reads it as r0.
 */
function makeHelperImport(helpers: HelperTable, args: HelperArgs, words: Int32Array, at: number) {
  const argsAt = at + BOUNDARY.helperArgs / 4;
  const idAt = at + BOUNDARY.helperId / 4;
  return (pc: number): void => {
    // An id beyond 32 bits names no helper (the interpreter's rule).
    const key = words[idAt + 1] === 0 ? words[idAt] >>> 0 : -1;
    const helper = helpers.get(key);
    if (helper === undefined) throw new UnknownHelperError(pc, key);
    args.pc = pc;
    let r0: number | bigint;
    try {
      r0 = helper.fn(args);
    } catch (e) {
      if (e instanceof ProgramStop || e instanceof NearbpfError) throw e;
      throw new HelperError(pc, key, e instanceof Error ? e.message : String(e));
    }
    if (!storeHelperResult(words, argsAt, r0)) throw new HelperError(pc, key, `returned ${String(r0)}, not a 64-bit integer`);
  };
}
