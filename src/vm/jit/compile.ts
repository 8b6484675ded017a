/**
 * Translation of an eBPF program into a WebAssembly module.
 *
 * Each eBPF function (the entry and every local-call target) becomes one Wasm function whose
 * locals are the registers. Control flow is rebuilt as Wasm blocks and loops from the dominator
 * tree (Ramsey, "Beyond Relooper", 2022); a function whose graph is irreducible falls back to a
 * loop around a `br_table` dispatch, which handles any graph. Small leaf functions are inlined at
 * their call sites. Every memory access is checked against the sandbox's bounds (or, for verified
 * programs, left to Wasm's own), fuel is charged per basic block exactly as the interpreter does
 * (blocks.ts), and checked code never makes Wasm trap: failures call the `fault` import, which
 * throws the same typed error the interpreter would.
 */
import type { Instruction, Operand, ProgramLayout, Register } from '../../isa/index.js';
import { blockCosts, blockLeaders, fuelCheckpoints } from '../blocks.js';
import type { HoistedBoundsCheck } from './bounds.js';
import { analyzeControlFlow } from './cfg.js';
import { type BlockNode, type HoistingContext, unrollInnerLoops } from './unroll.js';
import { ATOMIC_PREFIX, AtomicRmw, ByteWriter, I32, I64, ModuleBuilder, Op, type ValType, VOID_BLOCK } from './wasm.js';

export const FaultKind = { read: 0, write: 1, fuel: 2, callDepth: 3 } as const;

/**
 * Where the host and the compiled code exchange registers: a block of the sandbox's NULL guard
 * (below `lowAddress`, so no program access reaches it), one per thread that runs the program.
 * Numbers cross the JS/Wasm boundary as typed-array words instead of i64 parameters and results,
 * each of which would be a BigInt conversion per call. Byte offsets within the block:
 */
export const BOUNDARY = {
  /** r1-r5 for the entry (8 bytes each, from offset 0). */
  args: 0,
  /** The stack pointer r10 for the entry. */
  r10: 40,
  /** Fuel on entry; fuel left on return. */
  fuel: 48,
  /** r0 on return. */
  r0: 56,
  /** r1-r5 of a helper call (8 bytes each); the helper's result is written over the first. */
  helperArgs: 64,
  /** The id a helper call names (`call` immediate, sign-extended, or the `callx` register). */
  helperId: 104,
  sizeBytes: 128,
} as const;

/** Address of the boundary block of the thread whose stack is region `stackRegionId` (1-255). */
export function boundaryBlockAddress(stackRegionId: number): number {
  return stackRegionId * BOUNDARY.sizeBytes;
}

/**
 * How loads and stores are compiled.
 * - `checked`: one unsigned comparison per access against the sandbox's bounds; a miss calls the
 *   `fault` import (a `MemoryAccessError` with pc, address and size). For programs nobody verified.
 * - `verified`: a plain Wasm load or store. Only for programs whose every access the verifier proved
 *   in bounds; what remains is Wasm's own guarantee that nothing outside the sandbox's linear memory
 *   is reachable (a verifier bug could at worst touch the same program's own regions).
 */
export type MemoryMode = 'checked' | 'verified';

export interface CompileOptions {
  readonly maxCallDepth: number;
  readonly memoryPages: number;
  readonly stackFrameSizeBytes: number;
  readonly memoryMode: MemoryMode;
  /**
   * The memory is shared between threads: it is imported as shared, and eBPF atomics become Wasm
   * atomic instructions when aligned (a misaligned one, which Linux's verifier rejects, keeps the
   * plain load/store sequence, atomic only with respect to this thread).
   */
  readonly sharedMemory?: boolean;
  /** The sandbox's bounds (see memory.ts): mapped from `lowAddress`, writable below `writableEnd`. */
  readonly lowAddress: number;
  readonly writableEnd: number;
  readonly readableEnd: number;
}

export interface CompiledProgram {
  readonly wasm: Uint8Array<ArrayBuffer>;
  /** Per eBPF function: whether its control flow was structured (true) or dispatched (false). */
  readonly structured: readonly boolean[];
  /** Local calls compiled by copying a small leaf callee in place (see MAX_INLINED_SLOTS). */
  readonly inlinedCallSites: number;
  /** Inner loops unrolled behind a fuel guard (unroll.ts), counted once per function that holds them. */
  readonly unrolledLoops: number;
  /** Checked code: loads and stores of unrolled copies compiled without their own check (bounds.ts), per function as for `unrolledLoops`. */
  readonly hoistedAccesses: number;
}

// Locals: parameters r1-r5, r10, fuel left and call depth; then r0, r6-r9 and scratch. Fuel and
// depth travel as parameters and fuel comes back as a second result, so a local call touches no
// global state.
const REG_LOCAL = [8, 0, 1, 2, 3, 4, 9, 10, 11, 12, 5];
const L_FUEL = 6;
const L_DEPTH = 7;
const L_ADDR = 13;
const L_TA = 14;
const L_TB = 15;
const L_LABEL = 16;
const L_T32 = 17;
/**
 * Deepest nesting of inlined calls: a callee inlined into a function, inlined into another, and so
 * on. Each level has its own r0-r10 locals; the callees of one level never run at once, so one set
 * per level serves every call site.
 */
const MAX_INLINE_LEVELS = 3;
const FIRST_INLINE_LOCAL = 18;
const INLINE_REG_LOCALS = Array.from({ length: MAX_INLINE_LEVELS }, (_, level) =>
  Array.from({ length: 11 }, (_, r) => FIRST_INLINE_LOCAL + 11 * level + r),
);
const DECLARED_LOCALS: ValType[] = [
  I64,
  I64,
  I64,
  I64,
  I64,
  I64,
  I64,
  I64,
  I32,
  I32,
  ...INLINE_REG_LOCALS.flat().map((): ValType => I64),
];
/**
 * Largest callee (in slots) inlined at its call sites. A Wasm call costs a frame, eight arguments
 * and a two-value result; a small leaf is cheaper copied in place, and V8 does not inline Wasm calls.
 */
export const MAX_INLINED_SLOTS = 96;
/** Deepest structured nesting (see `structuredNestingDepth`) compiled without the dispatch loop. */
const MAX_STRUCTURED_NESTING = 1000;

/** Fuel left, published before each helper call so a helper that stops the program can report it. */
const G_FUEL = 0;
/** Address of this thread's boundary block (BOUNDARY), set by `run`. */
const G_BLOCK = 1;
const F_FAULT = 0;
const F_HELPER = 1;

type Context = { kind: 'loop' | 'block'; node: number } | { kind: 'if' } | { kind: 'dispatch' } | { kind: 'inline' };

type Node = BlockNode;

export function compileProgram(layout: ProgramLayout, options: CompileOptions): CompiledProgram {
  const mb = new ModuleBuilder();
  const fnType = mb.type([I64, I64, I64, I64, I64, I64, I64, I32], [I64, I64]);
  mb.importFunction('env', 'fault', mb.type([I32, I32, I64, I32], []));
  mb.importFunction('env', 'helper', mb.type([I32], []));
  mb.importMemory('env', 'memory', options.memoryPages, options.memoryPages, options.sharedMemory === true);
  mb.global(I64, true, 0n);
  mb.global(I32, true, 0n);
  const firstFn = mb.nextFunctionIndex;
  const fnIndexAt = new Map(layout.functions.map((f, i) => [f.entryPc, firstFn + i]));
  const leaders = blockLeaders(layout);
  const costs = blockCosts(layout, leaders);
  const structured: boolean[] = [];
  let inlinedCallSites = 0;
  let unrolledLoops = 0;
  let hoistedAccesses = 0;
  const shared: SharedFacts = {
    layout,
    costs,
    leaders,
    fnIndexAt,
    options,
    inlinable: inlinableFunctions(layout, leaders, costs),
    checkpoints: fuelCheckpoints(layout, leaders),
    hoisting:
      options.memoryMode === 'checked'
        ? {
            bounds: options,
            instructionAt: (pc) => {
              const i = layout.indexAt[pc];
              return i < 0 ? undefined : layout.program[i];
            },
          }
        : undefined,
  };
  for (const fn of layout.functions) {
    const compiler = new FunctionCompiler(shared, fn.entryPc, fn.endPc, new ByteWriter(), REG_LOCAL);
    mb.addFunction({
      type: fnType,
      locals: DECLARED_LOCALS,
      code: compiler.compile(),
    });
    structured.push(compiler.structured);
    inlinedCallSites += compiler.inlinedCallSites;
    unrolledLoops += compiler.unrolledLoops;
    hoistedAccesses += compiler.hoistedAccesses;
  }
  mb.exportFunction('run', mb.addFunction({ type: mb.type([I32], []), locals: [I64, I64], code: runFunction(firstFn) }));
  mb.exportGlobal('fuel', G_FUEL);
  return { wasm: mb.build(), structured, inlinedCallSites, unrolledLoops, hoistedAccesses };
}

/**
 * `run(block)`: the entry function called with r1-r5, r10 and fuel read from the boundary block at
 * `block`, its r0 and fuel left written back there; the block is also where helper calls pass
 * their arguments (G_BLOCK).
 */
function runFunction(entryFn: number): Uint8Array {
  const w = new ByteWriter();
  const L_BLOCK = 0;
  const L_LEFT = 1;
  const L_R0 = 2;
  w.byte(Op.local_get).u32(L_BLOCK).byte(Op.global_set).u32(G_BLOCK);
  for (const offset of [0, 8, 16, 24, 32, BOUNDARY.r10, BOUNDARY.fuel]) {
    w.byte(Op.local_get).u32(L_BLOCK).byte(Op.i64_load).u32(3).u32(offset);
  }
  w.byte(Op.i32_const).s32(0);
  w.byte(Op.call).u32(entryFn);
  w.byte(Op.local_set).u32(L_LEFT).byte(Op.local_set).u32(L_R0);
  w.byte(Op.local_get).u32(L_BLOCK).byte(Op.local_get).u32(L_R0).byte(Op.i64_store).u32(3).u32(BOUNDARY.r0);
  w.byte(Op.local_get).u32(L_BLOCK).byte(Op.local_get).u32(L_LEFT).byte(Op.i64_store).u32(3).u32(BOUNDARY.fuel);
  w.byte(Op.end);
  return w.toBytes();
}

/** What every function's compiler shares. */
interface SharedFacts {
  readonly layout: ProgramLayout;
  readonly costs: Int32Array;
  readonly leaders: Uint8Array;
  readonly fnIndexAt: ReadonlyMap<number, number>;
  readonly options: CompileOptions;
  /** Functions inlined at their call sites, by entry pc. */
  readonly inlinable: ReadonlyMap<number, InlinableFunction>;
  /** Slots where running out of fuel is checked on block entry (blocks.ts). */
  readonly checkpoints: Uint8Array;
  /** Checked code: what unrolling needs to hoist bounds checks (undefined for verified code, which has none). */
  readonly hoisting?: HoistingContext;
}

interface InlinableFunction {
  readonly endPc: number;
  /** Levels of inlining its body takes: 1 for a leaf, 1 + its deepest callee's otherwise. */
  readonly levels: number;
}

/**
 * Functions inlined at their call sites: structured functions of at most MAX_INLINED_SLOTS slots,
 * counting the inlined copies of their callees, whose local calls all go to inlinable functions
 * (leaves first, then their callers, up to MAX_INLINE_LEVELS; recursion never qualifies). Their
 * blocks charge fuel and fault exactly as in a real call.
 */
function inlinableFunctions(layout: ProgramLayout, leaders: Uint8Array, costs: Int32Array): Map<number, InlinableFunction> {
  const out = new Map<number, InlinableFunction>();
  const expandedSlots = new Map<number, number>();
  const candidates = layout.functions.filter((fn) => fn.entryPc !== 0 && fn.endPc - fn.entryPc <= MAX_INLINED_SLOTS);
  for (let level = 1; level <= MAX_INLINE_LEVELS; level++) {
    for (const fn of candidates) {
      if (out.has(fn.entryPc)) continue;
      let slots = fn.endPc - fn.entryPc;
      let deepest = 0;
      let ok = true;
      for (let pc = fn.entryPc; pc < fn.endPc && ok; pc++) {
        const i = layout.indexAt[pc];
        const insn = i < 0 ? undefined : layout.program[i];
        if (insn?.kind !== 'call' || insn.target !== 'local') continue;
        const callee = out.get(pc + insn.imm + 1);
        if (callee === undefined || callee.levels >= level) ok = false;
        else {
          deepest = Math.max(deepest, callee.levels);
          slots += expandedSlots.get(pc + insn.imm + 1) ?? 0;
        }
      }
      if (!ok || slots > MAX_INLINED_SLOTS) continue;
      const nodes = functionGraph(layout, fn.entryPc, fn.endPc, leaders, costs);
      const facts = analyzeControlFlow(nodes.map((n) => n.successors));
      if (facts.reducible && structuredNestingDepth(facts) <= MAX_STRUCTURED_NESTING) {
        out.set(fn.entryPc, { endPc: fn.endPc, levels: deepest + 1 });
        expandedSlots.set(fn.entryPc, slots);
      }
    }
  }
  return out;
}

/**
 * The blocks of one function as the JIT translates them: small inner loops unrolled (unroll.ts), in
 * checked code with their bounds checks hoisted where bounds.ts can (given `hoisting`).
 */
function functionGraph(
  layout: ProgramLayout,
  entryPc: number,
  endPc: number,
  leaders: Uint8Array,
  costs: Int32Array,
  hoisting?: HoistingContext,
): Node[] {
  return unrollInnerLoops(functionNodes(layout, entryPc, endPc, leaders).nodes, costs, hoisting);
}

/** The basic blocks of one function, as graph nodes (node 0 = its entry). */
function functionNodes(layout: ProgramLayout, entryPc: number, endPc: number, leaders: Uint8Array) {
  const nodeAt = new Map<number, number>();
  const nodes: Node[] = [];
  const starts: number[] = [];
  for (let pc = entryPc; pc < endPc; pc++) if (leaders[pc] || pc === entryPc) starts.push(pc);
  for (const [i, pc] of starts.entries()) nodeAt.set(pc, i);
  const nodeOf = (pc: number) => {
    const n = nodeAt.get(pc);
    if (n === undefined) throw new Error(`internal: slot ${pc} does not start a block`);
    return n;
  };
  starts.forEach((start, i) => {
    const end = starts[i + 1] ?? endPc;
    let lastPc = end - 1;
    if (layout.indexAt[lastPc] < 0) lastPc--;
    const last = layout.program[layout.indexAt[lastPc]];
    const successors: number[] = [];
    if (last.kind === 'ja') successors.push(nodeOf(lastPc + last.offset + 1));
    else if (last.kind === 'jump') successors.push(nodeOf(lastPc + last.offset + 1), nodeOf(end));
    else if (last.kind !== 'exit') successors.push(nodeOf(end));
    nodes.push({ startPc: start, endPc: end, successors, last, lastPc });
  });
  return { nodes, nodeAt };
}

class FunctionCompiler {
  private readonly ctx: Context[] = [];
  private readonly nodes: Node[];
  private readonly layout: ProgramLayout;
  private readonly costs: Int32Array;
  private readonly options: CompileOptions;
  structured = true;
  inlinedCallSites = 0;
  /** Fuel guards in this function's graph: its unrolled inner loops. */
  get unrolledLoops(): number {
    return this.nodes.filter((n) => n.fuelGuard !== undefined).length;
  }
  /** Accesses of this function's unrolled copies whose check a guard's hoisted one covers. */
  get hoistedAccesses(): number {
    return this.nodes.reduce((sum, n) => sum + (n.coveredAccesses?.size ?? 0), 0);
  }

  /**
   * `regLocals` maps eBPF registers to Wasm locals; an inlined callee gets its own set and returns by
   * branching out of the block its call site wraps it in (the `inline` context).
   */
  constructor(
    private readonly shared: SharedFacts,
    entryPc: number,
    endPc: number,
    private readonly w: ByteWriter,
    private readonly regLocals: readonly number[],
    /** 0 for a function compiled as a Wasm function; k for a callee inlined k calls deep. */
    private readonly inlineLevel = 0,
  ) {
    this.layout = shared.layout;
    this.costs = shared.costs;
    this.options = shared.options;
    this.nodes = functionGraph(shared.layout, entryPc, endPc, shared.leaders, shared.costs, shared.hoisting);
    if (this.inline) this.ctx.push({ kind: 'inline' });
  }

  private get inline(): boolean {
    return this.inlineLevel > 0;
  }

  compile(): Uint8Array {
    const facts = analyzeControlFlow(this.nodes.map((n) => n.successors));
    const w = this.w;
    if (this.inline) {
      // Only structured leaves are inlined (see inlinableFunctions); every path ends in a branch out.
      this.doTree(0, facts);
      w.byte(Op.unreachable);
      return new Uint8Array(0);
    }
    // The structured translation recurses once per level of nesting; a very deeply nested function
    // (thousands of branches in a row) would overflow the JavaScript stack, so it is dispatched.
    if (facts.reducible && structuredNestingDepth(facts) <= MAX_STRUCTURED_NESTING) {
      this.doTree(0, facts);
    } else {
      this.structured = false;
      this.emitDispatch(facts.order);
    }
    w.byte(Op.unreachable).byte(Op.end);
    return w.toBytes();
  }

  // ---- structured control flow (reducible graphs) ----

  private doTree(x: number, facts: ReturnType<typeof analyzeControlFlow>): void {
    const mergeChildren = facts.domChildren[x].filter((c) => facts.merge[c]).sort((a, b) => facts.rpo[b] - facts.rpo[a]);
    if (facts.loopHeader[x]) {
      this.w.byte(Op.loop).byte(VOID_BLOCK);
      this.ctx.push({ kind: 'loop', node: x });
      this.nodeWithin(x, mergeChildren, facts);
      this.ctx.pop();
      this.w.byte(Op.end);
    } else {
      this.nodeWithin(x, mergeChildren, facts);
    }
  }

  private nodeWithin(x: number, followers: number[], facts: ReturnType<typeof analyzeControlFlow>): void {
    if (followers.length > 0) {
      const [y, ...rest] = followers;
      this.w.byte(Op.block).byte(VOID_BLOCK);
      this.ctx.push({ kind: 'block', node: y });
      this.nodeWithin(x, rest, facts);
      this.ctx.pop();
      this.w.byte(Op.end);
      this.doTree(y, facts);
      return;
    }
    this.emitNode(x, (target) => this.doBranch(x, target, facts));
  }

  private doBranch(from: number, to: number, facts: ReturnType<typeof analyzeControlFlow>): void {
    if (facts.rpo[to] <= facts.rpo[from]) this.br((c) => c.kind === 'loop' && c.node === to);
    else if (facts.merge[to]) this.br((c) => c.kind === 'block' && c.node === to);
    else this.doTree(to, facts);
  }

  private br(match: (c: Context) => boolean): void {
    for (let i = this.ctx.length - 1; i >= 0; i--) {
      if (match(this.ctx[i])) {
        this.w.byte(Op.br).u32(this.ctx.length - 1 - i);
        return;
      }
    }
    throw new Error('internal: branch target not in scope');
  }

  // ---- dispatch loop (any graph) ----

  private emitDispatch(order: readonly number[]): void {
    const w = this.w;
    const reachable = [...order].sort((a, b) => a - b);
    w.byte(Op.i32_const).s32(0).byte(Op.local_set).u32(L_LABEL);
    w.byte(Op.loop).byte(VOID_BLOCK);
    const dispatchAt = this.ctx.length;
    this.ctx.push({ kind: 'dispatch' });
    for (let i = 0; i < reachable.length; i++) {
      w.byte(Op.block).byte(VOID_BLOCK);
      this.ctx.push({
        kind: 'block',
        node: reachable[reachable.length - 1 - i],
      });
    }
    // br_table: label i -> block of node i (blocks nest so the innermost is reachable[0]).
    w.byte(Op.local_get).u32(L_LABEL).byte(Op.br_table).u32(this.nodes.length);
    const depthOf = new Map(reachable.map((node, i) => [node, i]));
    for (let node = 0; node < this.nodes.length; node++) w.u32(depthOf.get(node) ?? 0);
    w.u32(0);
    for (const node of reachable) {
      w.byte(Op.end);
      this.ctx.pop();
      this.emitNode(node, (target) => {
        w.byte(Op.i32_const).s32(target).byte(Op.local_set).u32(L_LABEL);
        // The loop's depth is known: searching for it from the innermost context would make
        // translation quadratic in the number of blocks still open.
        w.byte(Op.br).u32(this.ctx.length - 1 - dispatchAt);
      });
    }
    this.ctx.pop();
    w.byte(Op.end);
  }

  // ---- straight-line code ----

  private emitNode(x: number, branch: (target: number) => void): void {
    const node = this.nodes[x];
    const w = this.w;
    if (node.fuelGuard !== undefined) {
      // Each test branches to the slow path on its own (br_if): TurboFan fuses each compare with its
      // branch, where `and`-ing the tests into one condition cost checked loops ~10% (measured).
      w.byte(Op.block).byte(VOID_BLOCK);
      this.ctx.push({ kind: 'if' });
      w.byte(Op.local_get).u32(L_FUEL).byte(Op.i64_const).s64(node.fuelGuard).byte(Op.i64_lt_s).byte(Op.br_if).u32(0);
      for (const check of node.boundsChecks ?? []) {
        this.emitHoistedCheck(check);
        w.byte(Op.i32_eqz).byte(Op.br_if).u32(0);
      }
      branch(node.successors[0]);
      this.ctx.pop();
      w.byte(Op.end);
      branch(node.successors[1]);
      return;
    }
    if (node.chargeOnly === true) {
      this.charge(node.fuelCharge ?? 0);
      branch(node.successors[0]);
      return;
    }
    const cost = node.fuelCharge ?? this.costs[node.startPc];
    if (cost > 0) {
      w.byte(Op.local_get).u32(L_FUEL).byte(Op.i64_const).s64(cost).byte(Op.i64_sub);
      if (this.shared.checkpoints[node.startPc] && !node.skipCheckpoint) {
        w.byte(Op.local_tee).u32(L_FUEL);
        this.faultIfFuelGone(node.startPc, true);
      } else w.byte(Op.local_set).u32(L_FUEL);
    }
    const covered = node.coveredAccesses;
    for (let pc = node.startPc; pc <= node.lastPc; pc++) {
      const i = this.layout.indexAt[pc];
      if (i < 0) continue;
      if (pc === node.lastPc) break;
      this.emitInstruction(pc, this.layout.program[i], covered?.has(pc) === true);
    }
    const last = node.last;
    if (last.kind === 'ja') {
      branch(node.successors[0]);
    } else if (last.kind === 'jump') {
      this.emitCondition(last);
      this.twoWay(node, branch);
    } else if (last.kind === 'exit') {
      w.byte(Op.local_get).u32(L_FUEL);
      this.faultIfFuelGone(node.lastPc, true);
      this.emitReturn();
    } else {
      this.emitInstruction(node.lastPc, last, covered?.has(node.lastPc) === true);
      branch(node.successors[0]);
    }
  }

  private charge(cost: number): void {
    if (cost !== 0) {
      this.w.byte(Op.local_get).u32(L_FUEL).byte(Op.i64_const).s64(cost).byte(Op.i64_sub).byte(Op.local_set).u32(L_FUEL);
    }
  }

  /** With a condition (i32) on the stack: to the node's first successor if it holds, else to its second. */
  private twoWay(node: Node, branch: (target: number) => void): void {
    const w = this.w;
    w.byte(Op.if).byte(VOID_BLOCK);
    this.ctx.push({ kind: 'if' });
    branch(node.successors[0]);
    w.byte(Op.else);
    branch(node.successors[1]);
    this.ctx.pop();
    w.byte(Op.end);
  }

  /** With fuel left (i64) on the stack, or read from its local when `onStack` is false: fault at `pc` if it is below zero. */
  private faultIfFuelGone(pc: number, onStack: boolean): void {
    const w = this.w;
    if (!onStack) w.byte(Op.local_get).u32(L_FUEL);
    w.byte(Op.i64_const).s64(0).byte(Op.i64_lt_s).byte(Op.if).byte(VOID_BLOCK);
    this.fault(FaultKind.fuel, pc, () => w.byte(Op.i64_const).s64(0), 0);
    w.byte(Op.end);
  }

  private emitReturn(): void {
    if (this.inline) {
      this.w.byte(Op.br).u32(this.ctx.length - 1); // out of the call site's block; r0 is in its local
      return;
    }
    this.w.byte(Op.local_get).u32(this.regLocals[0]).byte(Op.local_get).u32(L_FUEL).byte(Op.return);
  }

  private get(r: Register): void {
    this.w.byte(Op.local_get).u32(this.regLocals[r]);
  }

  private set(r: Register): void {
    this.w.byte(Op.local_set).u32(this.regLocals[r]);
  }

  private push64(o: Operand): void {
    if (o.kind === 'reg') this.get(o.reg);
    else this.w.byte(Op.i64_const).s64(o.value);
  }

  private push32(o: Operand): void {
    if (o.kind === 'reg') {
      this.get(o.reg);
      this.w.byte(Op.i32_wrap_i64);
    } else this.w.byte(Op.i32_const).s32(o.value);
  }

  private get32(r: Register): void {
    this.get(r);
    this.w.byte(Op.i32_wrap_i64);
  }

  /** Call the fault import (which throws) with a constant kind/pc/size and an address pushed by `addr`. */
  private fault(kind: number, pc: number, addr: () => void, size: number): void {
    this.w.byte(Op.i32_const).s32(kind).byte(Op.i32_const).s32(pc);
    addr();
    this.w.byte(Op.i32_const).s32(size).byte(Op.call).u32(F_FAULT).byte(Op.unreachable);
  }

  /**
   * `covered`: a load or store whose bounds a hoisted check (bounds.ts) already proved, compiled
   * without its own check.
   */
  private emitInstruction(pc: number, insn: Instruction, covered = false): void {
    const w = this.w;
    switch (insn.kind) {
      case 'alu':
        if (insn.width === 64) this.emitAlu64(insn.op, insn.dst, insn.src);
        else this.emitAlu32(insn.op, insn.dst, insn.src);
        return;
      case 'endian':
        this.emitEndian(insn.order, insn.bits, insn.dst);
        return;
      case 'lddw':
        if (insn.nextImm === insn.imm >> 31) w.byte(Op.i64_const).s64(insn.imm);
        else w.byte(Op.i64_const).s64((BigInt(insn.nextImm) << 32n) | BigInt(insn.imm >>> 0));
        this.set(insn.dst);
        return;
      case 'load': {
        const memOffset = this.emitAddress(insn.src, insn.offset, insn.size, false, pc, covered);
        const op =
          insn.size === 8
            ? Op.i64_load
            : insn.size === 4
              ? insn.signed
                ? Op.i64_load32_s
                : Op.i64_load32_u
              : insn.size === 2
                ? insn.signed
                  ? Op.i64_load16_s
                  : Op.i64_load16_u
                : insn.signed
                  ? Op.i64_load8_s
                  : Op.i64_load8_u;
        w.byte(op).u32(0).u32(memOffset);
        this.set(insn.dst);
        return;
      }
      case 'store': {
        const memOffset = this.emitAddress(insn.dst, insn.offset, insn.size, true, pc, covered);
        this.push64(insn.src);
        const op =
          insn.size === 8 ? Op.i64_store : insn.size === 4 ? Op.i64_store32 : insn.size === 2 ? Op.i64_store16 : Op.i64_store8;
        w.byte(op).u32(0).u32(memOffset);
        return;
      }
      case 'atomic':
        this.emitAtomic(pc, insn, covered);
        return;
      case 'call':
        if (insn.target === 'local') this.emitLocalCall(pc, insn.imm);
        else this.emitHelperCall(pc, () => w.byte(Op.i64_const).s64(insn.imm));
        return;
      case 'callx':
        this.emitHelperCall(pc, () => this.get(insn.reg));
        return;
      default:
        throw new Error(`internal: ${insn.kind} cannot appear inside a block`);
    }
  }

  private emitHelperCall(pc: number, pushId: () => void): void {
    const w = this.w;
    this.faultIfFuelGone(pc, false);
    w.byte(Op.local_get).u32(L_FUEL).byte(Op.global_set).u32(G_FUEL);
    for (let r = 1; r <= 5; r++) {
      w.byte(Op.global_get).u32(G_BLOCK);
      this.get(r as Register);
      w.byte(Op.i64_store)
        .u32(3)
        .u32(BOUNDARY.helperArgs + 8 * (r - 1));
    }
    w.byte(Op.global_get).u32(G_BLOCK);
    pushId();
    w.byte(Op.i64_store).u32(3).u32(BOUNDARY.helperId);
    w.byte(Op.i32_const).s32(pc);
    w.byte(Op.call).u32(F_HELPER);
    w.byte(Op.global_get).u32(G_BLOCK).byte(Op.i64_load).u32(3).u32(BOUNDARY.helperArgs);
    this.set(0);
  }

  private emitLocalCall(pc: number, imm: number): void {
    const w = this.w;
    const target = this.shared.fnIndexAt.get(pc + imm + 1);
    if (target === undefined) throw new Error(`internal: no function at ${pc + imm + 1}`);
    const candidate = this.shared.inlinable.get(pc + imm + 1);
    const inlined = candidate !== undefined && this.inlineLevel + candidate.levels <= MAX_INLINE_LEVELS ? candidate : undefined;
    const locals = INLINE_REG_LOCALS[this.inlineLevel];
    // This code runs `inlineLevel` frames below the Wasm function's own depth (L_DEPTH).
    w.byte(Op.local_get)
      .u32(L_DEPTH)
      .byte(Op.i32_const)
      .s32(this.options.maxCallDepth - 1 - this.inlineLevel)
      .byte(Op.i32_ge_s);
    w.byte(Op.if).byte(VOID_BLOCK);
    this.fault(FaultKind.callDepth, pc, () => w.byte(Op.i64_const).s64(0), 0);
    w.byte(Op.end);
    if (inlined !== undefined) {
      // The callee's registers: r1-r5 copied, r10 one frame lower, r0 and r6-r9 zero (engine.ts's
      // calling convention); the caller's own locals are untouched, as after a real call.
      for (let r = 1; r <= 5; r++) {
        this.get(r as Register);
        w.byte(Op.local_set).u32(locals[r]);
      }
      this.get(10);
      w.byte(Op.i64_const).s64(this.options.stackFrameSizeBytes).byte(Op.i64_sub);
      w.byte(Op.local_set).u32(locals[10]);
      for (const r of [0, 6, 7, 8, 9]) w.byte(Op.i64_const).s64(0).byte(Op.local_set).u32(locals[r]);
      this.inlinedCallSites++;
      w.byte(Op.block).byte(VOID_BLOCK);
      const callee = new FunctionCompiler(this.shared, pc + imm + 1, inlined.endPc, w, locals, this.inlineLevel + 1);
      callee.compile();
      this.inlinedCallSites += callee.inlinedCallSites;
      w.byte(Op.end);
      w.byte(Op.local_get).u32(locals[0]);
      this.set(0);
      return;
    }
    for (let r = 1; r <= 5; r++) this.get(r as Register);
    this.get(10);
    w.byte(Op.i64_const).s64(this.options.stackFrameSizeBytes).byte(Op.i64_sub);
    w.byte(Op.local_get).u32(L_FUEL);
    w.byte(Op.local_get)
      .u32(L_DEPTH)
      .byte(Op.i32_const)
      .s32(1 + this.inlineLevel)
      .byte(Op.i32_add);
    w.byte(Op.call).u32(target);
    w.byte(Op.local_set).u32(L_FUEL);
    this.set(0);
  }

  /**
   * Leaves an i32 on the stack and returns the memarg offset to add to it: together the linear-memory
   * address of `[base + offset, +size)`. Checked mode faults unless the whole access lies in the
   * sandbox's readable (or writable) span: `base + offset - low`, as an unsigned 64-bit number, is at
   * most `end - size - low` exactly when the access is inside, whatever the high bits of `base` hold.
   */
  private emitAddress(base: Register, offset: number, size: number, write: boolean, pc: number, covered = false): number {
    const w = this.w;
    const o = this.options;
    this.get(base);
    if (o.memoryMode === 'verified' || covered) {
      w.byte(Op.i32_wrap_i64);
      if (offset >= 0) return offset;
      w.byte(Op.i32_const).s32(offset).byte(Op.i32_add);
      return 0;
    }
    const low = o.lowAddress;
    const limit = (write ? o.writableEnd : o.readableEnd) - size - low;
    if (offset - low !== 0)
      w.byte(Op.i64_const)
        .s64(offset - low)
        .byte(Op.i64_add);
    const fault = () =>
      this.fault(
        write ? FaultKind.write : FaultKind.read,
        pc,
        () => w.byte(Op.local_get).u32(L_ADDR).byte(Op.i64_const).s64(low).byte(Op.i64_add),
        size,
      );
    if (limit < 0) {
      // A span smaller than the access admits no address; the code after the fault is unreachable.
      w.byte(Op.local_set).u32(L_ADDR);
      fault();
      return low;
    }
    w.byte(Op.local_tee).u32(L_ADDR);
    w.byte(Op.i64_const).s64(limit).byte(Op.i64_gt_u).byte(Op.if).byte(VOID_BLOCK);
    fault();
    w.byte(Op.end);
    w.byte(Op.local_get).u32(L_ADDR).byte(Op.i32_wrap_i64);
    return low;
  }

  /**
   * Pushes (i32) whether `[sum of the check's registers + lowOffset, + spanBytes)` lies in the span
   * it needs: the same unsigned comparison as a single access's (emitAddress), over the whole range.
   */
  private emitHoistedCheck(check: HoistedBoundsCheck): void {
    const w = this.w;
    const o = this.options;
    const low = o.lowAddress;
    check.registers.forEach((r, i) => {
      this.get(r);
      if (i > 0) w.byte(Op.i64_add);
    });
    if (check.lowOffset - low !== 0)
      w.byte(Op.i64_const)
        .s64(check.lowOffset - low)
        .byte(Op.i64_add);
    w.byte(Op.i64_const)
      .s64((check.write ? o.writableEnd : o.readableEnd) - low - check.spanBytes)
      .byte(Op.i64_le_u);
  }

  private emitAtomic(pc: number, insn: Extract<Instruction, { kind: 'atomic' }>, covered: boolean): void {
    const w = this.w;
    const wide = insn.size === 8;
    const memOffset = this.emitAddress(insn.dst, insn.offset, insn.size, true, pc, covered);
    w.byte(Op.local_set).u32(L_T32);
    if (this.options.sharedMemory === true) {
      // Aligned (the effective address, memarg offset included): one Wasm atomic; else the plain sequence.
      w.byte(Op.local_get)
        .u32(L_T32)
        .byte(Op.i32_const)
        .s32(memOffset | 0)
        .byte(Op.i32_add);
      w.byte(Op.i32_const)
        .s32(insn.size - 1)
        .byte(Op.i32_and)
        .byte(Op.i32_eqz);
      w.byte(Op.if).byte(VOID_BLOCK);
      w.byte(Op.local_get).u32(L_T32);
      if (insn.op === 'cmpxchg') this.get(0);
      this.get(insn.src);
      const codes = AtomicRmw[insn.op];
      w.byte(ATOMIC_PREFIX)
        .u32(wide ? codes.wide : codes.narrow)
        .u32(wide ? 3 : 2)
        .u32(memOffset);
      w.byte(Op.local_set).u32(L_TA);
      w.byte(Op.else);
      this.emitPlainRmw(insn, memOffset);
      w.byte(Op.end);
    } else {
      this.emitPlainRmw(insn, memOffset);
    }
    if (insn.fetch) {
      w.byte(Op.local_get).u32(L_TA);
      this.set(insn.op === 'cmpxchg' ? 0 : insn.src);
    }
  }

  /** Read-modify-write of the value at L_T32 + memOffset as plain load and store; the old value in L_TA. */
  private emitPlainRmw(insn: Extract<Instruction, { kind: 'atomic' }>, memOffset: number): void {
    const w = this.w;
    const wide = insn.size === 8;
    w.byte(Op.local_get).u32(L_T32);
    w.byte(wide ? Op.i64_load : Op.i64_load32_u)
      .u32(wide ? 3 : 2)
      .u32(memOffset)
      .byte(Op.local_set)
      .u32(L_TA);
    const mask = () => {
      if (!wide) w.byte(Op.i64_const).s64(0xffffffffn).byte(Op.i64_and);
    };
    switch (insn.op) {
      case 'xchg':
        this.get(insn.src);
        break;
      case 'cmpxchg':
        // new = (r0 == old) ? src : old, comparing the low 32 bits for the 32-bit form
        this.get(insn.src);
        w.byte(Op.local_get).u32(L_TA);
        this.get(0);
        mask();
        w.byte(Op.local_get).u32(L_TA).byte(Op.i64_eq).byte(Op.select);
        break;
      default: {
        w.byte(Op.local_get).u32(L_TA);
        this.get(insn.src);
        const op = {
          add: Op.i64_add,
          or: Op.i64_or,
          and: Op.i64_and,
          xor: Op.i64_xor,
        }[insn.op];
        w.byte(op);
      }
    }
    w.byte(Op.local_set).u32(L_TB);
    w.byte(Op.local_get).u32(L_T32).byte(Op.local_get).u32(L_TB);
    w.byte(wide ? Op.i64_store : Op.i64_store32)
      .u32(wide ? 3 : 2)
      .u32(memOffset);
  }

  private emitCondition(insn: Extract<Instruction, { kind: 'jump' }>): void {
    const w = this.w;
    if (insn.width === 64) {
      this.get(insn.dst);
      this.push64(insn.src);
      if (insn.cond === 'set') w.byte(Op.i64_and).byte(Op.i64_const).s64(0).byte(Op.i64_ne);
      else w.byte(COND64[insn.cond]);
    } else {
      this.get32(insn.dst);
      this.push32(insn.src);
      w.byte(insn.cond === 'set' ? Op.i32_and : COND32[insn.cond]);
    }
  }

  private emitAlu64(op: string, dst: Register, src: Operand): void {
    const w = this.w;
    switch (op) {
      case 'mov':
        this.push64(src);
        break;
      case 'movsx8':
      case 'movsx16':
      case 'movsx32':
        this.push64(src);
        w.byte(op === 'movsx8' ? Op.i64_extend8_s : op === 'movsx16' ? Op.i64_extend16_s : Op.i64_extend32_s);
        break;
      case 'neg':
        w.byte(Op.i64_const).s64(0);
        this.get(dst);
        w.byte(Op.i64_sub);
        break;
      case 'div':
      case 'mod':
      case 'sdiv':
      case 'smod':
        this.emitDivision(op, dst, src, 64);
        break;
      default:
        this.get(dst);
        this.push64(src);
        w.byte(BINARY64[op]);
    }
    this.set(dst);
  }

  private emitAlu32(op: string, dst: Register, src: Operand): void {
    const w = this.w;
    switch (op) {
      case 'mov':
        this.push32(src);
        break;
      case 'movsx8':
      case 'movsx16':
        this.push32(src);
        w.byte(op === 'movsx8' ? Op.i32_extend8_s : Op.i32_extend16_s);
        break;
      case 'neg':
        w.byte(Op.i32_const).s32(0);
        this.get32(dst);
        w.byte(Op.i32_sub);
        break;
      case 'div':
      case 'mod':
      case 'sdiv':
      case 'smod':
        this.emitDivision(op, dst, src, 32);
        break;
      default:
        this.get32(dst);
        this.push32(src);
        w.byte(BINARY32[op]);
    }
    w.byte(Op.i64_extend_i32_u);
    this.set(dst);
  }

  /**
   * Division and remainder without traps: x/0 = 0, x%0 = x, INT_MIN/-1 = INT_MIN (as -x),
   * x%-1 = 0. Leaves the result (i32 for width 32) on the stack.
   */
  private emitDivision(op: 'div' | 'mod' | 'sdiv' | 'smod', dst: Register, src: Operand, width: 32 | 64): void {
    const w = this.w;
    const wide = width === 64;
    const type = wide ? I64 : I32;
    const pushDst = () => (wide ? this.get(dst) : this.get32(dst));
    const pushSrc = () => (wide ? this.push64(src) : this.push32(src));
    const zero = () => (wide ? w.byte(Op.i64_const).s64(0) : w.byte(Op.i32_const).s32(0));
    const isMod = op === 'mod' || op === 'smod';
    const signed = op === 'sdiv' || op === 'smod';
    const raw = wide
      ? {
          div: Op.i64_div_u,
          mod: Op.i64_rem_u,
          sdiv: Op.i64_div_s,
          smod: Op.i64_rem_s,
        }[op]
      : {
          div: Op.i32_div_u,
          mod: Op.i32_rem_u,
          sdiv: Op.i32_div_s,
          smod: Op.i32_rem_s,
        }[op];
    const byMinusOne = () => {
      if (isMod) zero();
      else {
        zero();
        pushDst();
        w.byte(wide ? Op.i64_sub : Op.i32_sub);
      }
    };
    if (src.kind === 'imm') {
      if (src.value === 0) isMod ? pushDst() : zero();
      else if (signed && src.value === -1) byMinusOne();
      else {
        pushDst();
        pushSrc();
        w.byte(raw);
      }
      return;
    }
    pushSrc();
    w.byte(wide ? Op.i64_eqz : Op.i32_eqz)
      .byte(Op.if)
      .byte(type);
    isMod ? pushDst() : zero();
    w.byte(Op.else);
    if (signed) {
      pushSrc();
      if (wide) w.byte(Op.i64_const).s64(-1).byte(Op.i64_eq);
      else w.byte(Op.i32_const).s32(-1).byte(Op.i32_eq);
      w.byte(Op.if).byte(type);
      byMinusOne();
      w.byte(Op.else);
      pushDst();
      pushSrc();
      w.byte(raw);
      w.byte(Op.end);
    } else {
      pushDst();
      pushSrc();
      w.byte(raw);
    }
    w.byte(Op.end);
  }

  private emitEndian(order: 'le' | 'be' | 'swap', bits: 16 | 32 | 64, dst: Register): void {
    const w = this.w;
    if (order === 'le') {
      if (bits === 64) return;
      this.get(dst);
      w.byte(Op.i64_const)
        .s64(bits === 16 ? 0xffffn : 0xffffffffn)
        .byte(Op.i64_and);
      this.set(dst);
      return;
    }
    if (bits === 16) {
      // ((x & 0xff) << 8) | ((x >> 8) & 0xff)
      this.get32(dst);
      w.byte(Op.local_tee).u32(L_T32).byte(Op.i32_const).s32(0xff).byte(Op.i32_and).byte(Op.i32_const).s32(8).byte(Op.i32_shl);
      w.byte(Op.local_get).u32(L_T32).byte(Op.i32_const).s32(8).byte(Op.i32_shr_u);
      w.byte(Op.i32_const).s32(0xff).byte(Op.i32_and).byte(Op.i32_or).byte(Op.i64_extend_i32_u);
    } else if (bits === 32) {
      this.get32(dst);
      this.bswap32();
      w.byte(Op.i64_extend_i32_u);
    } else {
      this.get32(dst);
      this.bswap32();
      w.byte(Op.i64_extend_i32_u).byte(Op.i64_const).s64(32).byte(Op.i64_shl);
      this.get(dst);
      w.byte(Op.i64_const).s64(32).byte(Op.i64_shr_u).byte(Op.i32_wrap_i64);
      this.bswap32();
      w.byte(Op.i64_extend_i32_u).byte(Op.i64_or);
    }
    this.set(dst);
  }

  /** i32 on the stack -> its byte swap: rotr(x & 0x00ff00ff, 8) | rotl(x & 0xff00ff00, 8). */
  private bswap32(): void {
    const w = this.w;
    w.byte(Op.local_tee).u32(L_T32).byte(Op.i32_const).s32(0x00ff00ff).byte(Op.i32_and);
    w.byte(Op.i32_const).s32(8).byte(Op.i32_rotr);
    w.byte(Op.local_get)
      .u32(L_T32)
      .byte(Op.i32_const)
      .s32(0xff00ff00 | 0)
      .byte(Op.i32_and);
    w.byte(Op.i32_const).s32(8).byte(Op.i32_rotl).byte(Op.i32_or);
  }
}

/**
 * Upper bound of the recursion depth of `doTree`/`nodeWithin`: along each dominator-tree path, one
 * level per node plus one per merge child it wraps in a block.
 */
function structuredNestingDepth(facts: ReturnType<typeof analyzeControlFlow>): number {
  const depth = new Int32Array(facts.rpo.length);
  let deepest = 0;
  for (const x of facts.order) {
    // Reverse postorder visits each node's immediate dominator before the node.
    const own = 1 + facts.domChildren[x].filter((c) => facts.merge[c]).length;
    depth[x] = (x === 0 ? 0 : depth[facts.idom[x]]) + own;
    deepest = Math.max(deepest, depth[x]);
  }
  return deepest;
}

const BINARY64: Record<string, number> = {
  add: Op.i64_add,
  sub: Op.i64_sub,
  mul: Op.i64_mul,
  or: Op.i64_or,
  and: Op.i64_and,
  xor: Op.i64_xor,
  lsh: Op.i64_shl,
  rsh: Op.i64_shr_u,
  arsh: Op.i64_shr_s,
};
const BINARY32: Record<string, number> = {
  add: Op.i32_add,
  sub: Op.i32_sub,
  mul: Op.i32_mul,
  or: Op.i32_or,
  and: Op.i32_and,
  xor: Op.i32_xor,
  lsh: Op.i32_shl,
  rsh: Op.i32_shr_u,
  arsh: Op.i32_shr_s,
};
const COND64: Record<string, number> = {
  eq: Op.i64_eq,
  ne: Op.i64_ne,
  gt: Op.i64_gt_u,
  ge: Op.i64_ge_u,
  lt: Op.i64_lt_u,
  le: Op.i64_le_u,
  sgt: Op.i64_gt_s,
  sge: Op.i64_ge_s,
  slt: Op.i64_lt_s,
  sle: Op.i64_le_s,
};
const COND32: Record<string, number> = {
  eq: Op.i32_eq,
  ne: Op.i32_ne,
  gt: Op.i32_gt_u,
  ge: Op.i32_ge_u,
  lt: Op.i32_lt_u,
  le: Op.i32_le_u,
  sgt: Op.i32_gt_s,
  sge: Op.i32_ge_s,
  slt: Op.i32_lt_s,
  sle: Op.i32_le_s,
};
