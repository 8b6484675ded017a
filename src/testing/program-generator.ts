/**
 * Seeded generator of random eBPF programs for differential testing of the engines.
 *
 * Programs are valid in structure (every one passes `layoutProgram`) but not verified: they read
 * and write out of bounds, divide by zero, loop until fuel runs out and recurse past the call-depth
 * limit, so that every outcome an engine can produce shows up. Registers each function reads are
 * initialised first, so results do not depend on how an engine treats uninitialised registers
 * (the JIT's callee locals start at 0, the interpreter's callee sees the caller's values).
 *
 * Register roles: r9 holds the data-region pointer and r10 the frame pointer (neither is ever
 * written); r6-r8 serve as loop counters, reserved while a loop body is generated so that the body
 * cannot write them and every counted loop terminates.
 */
import {
  type AccessSize,
  type AluOp,
  type AtomicInstruction,
  type AtomicOp,
  alu,
  callHelper,
  callLocal,
  exit,
  type Instruction,
  imm,
  type JumpCondition,
  ja,
  jump,
  layoutProgram,
  lddw,
  load,
  type Operand,
  type Program,
  type Register,
  reg,
  store,
  type Width,
} from '../isa/index.js';
import { differentialAddresses } from '../vm/differential.js';
import { type Helper, ProgramStop } from '../vm/helpers.js';

// ---- the environment generated programs run in ----

/** Region ids: the stack is region 1 (see `createSandbox`), then these. */
export const DATA_REGION_ID = 2;
export const READ_ONLY_REGION_ID = 3;
export const STACK_REGION_SIZE_BYTES = 4096;

export const HELPER_MIX = 1;
export const HELPER_STOP_IF = 2;
export const HELPER_SUM_BYTES = 3;
export const HELPER_FILL_BYTES = 4;
export const HELPER_REJECT_ODD = 5;
/** Ids no helper is registered under: callx through them raises `UnknownHelperError`. */
const UNREGISTERED_HELPER_IDS = [0, 6, 99, 0x7fffffff];

const U64 = (v: bigint) => BigInt.asUintN(64, v);

/**
 * The helpers generated programs call: a pure mix of all arguments, one that stops the program
 * when its argument's low nibble is 0xa, two that read or fill sandbox memory through
 * `HelperArgs.bytes`, and one that throws a plain Error on an odd argument.
 */
export function generatorHelpers(): Helper[] {
  return [
    {
      id: HELPER_MIX,
      name: 'mix',
      fn: (a) => U64((a.u64(1) * 0x9e3779b97f4a7c15n) ^ (a.u64(2) << 7n) ^ a.u64(3)) + U64(a.u64(4) - (a.u64(5) >> 3n)),
    },
    {
      id: HELPER_STOP_IF,
      name: 'stop_if',
      fn: (a) => {
        const r1 = a.u64(1);
        if ((r1 & 0xfn) === 0xan) throw new ProgramStop(U64(r1 ^ a.u64(2)));
        return U64(r1 + 1n);
      },
    },
    {
      id: HELPER_SUM_BYTES,
      name: 'sum_bytes',
      fn: (a) => {
        const bytes = a.bytes(1, a.u32(2) & 0x3f, 'read');
        return U64(bytes.reduce((sum, b) => sum * 31n + BigInt(b), a.u64(3)));
      },
    },
    {
      id: HELPER_FILL_BYTES,
      name: 'fill_bytes',
      fn: (a) => {
        const bytes = a.bytes(1, a.u32(2) & 0x1f, 'write');
        bytes.fill(a.u32(3) & 0xff);
        return bytes.length;
      },
    },
    {
      id: HELPER_REJECT_ODD,
      name: 'reject_odd',
      fn: (a) => {
        const r1 = a.u64(1);
        if (r1 & 1n) throw new Error(`odd argument ${r1}`);
        return U64(r1 ^ a.u64(2));
      },
    },
  ];
}

// ---- seeded PRNG ----

/** sfc32 seeded through splitmix32: small, fast, and good enough for test generation. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }

  /** Uniform integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.below(max - min + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.u32() & 0xff);
  }
}

// ---- instruction kinds, for coverage ----

const ALU_BINARY_OPS: AluOp[] = [
  'add',
  'sub',
  'mul',
  'div',
  'sdiv',
  'or',
  'and',
  'lsh',
  'rsh',
  'mod',
  'smod',
  'xor',
  'mov',
  'arsh',
];
const JUMP_CONDITIONS: JumpCondition[] = ['eq', 'gt', 'ge', 'set', 'ne', 'sgt', 'sge', 'lt', 'le', 'slt', 'sle'];
const ATOMIC_OPS: AtomicOp[] = ['add', 'or', 'and', 'xor', 'xchg', 'cmpxchg'];
const SIZES: AccessSize[] = [1, 2, 4, 8];

/** A name for the instruction's opcode-level form, e.g. `alu32.sdiv.reg`, `jmp32.sle.imm`, `ldxs.2`. */
export function instructionKind(insn: Instruction): string {
  switch (insn.kind) {
    case 'alu':
      if (insn.op === 'neg' || insn.op.startsWith('movsx')) return `alu${insn.width}.${insn.op}`;
      return `alu${insn.width}.${insn.op}.${insn.src.kind}`;
    case 'endian':
      return `endian.${insn.order}${insn.bits}`;
    case 'ja':
      return insn.wide ? 'ja32' : 'ja';
    case 'jump':
      return `jmp${insn.width === 32 ? '32' : ''}.${insn.cond}.${insn.src.kind}`;
    case 'call':
      return `call.${insn.target}`;
    case 'callx':
      return 'callx';
    case 'exit':
      return 'exit';
    case 'lddw':
      return 'lddw';
    case 'load':
      return `${insn.signed ? 'ldxs' : 'ldx'}.${insn.size}`;
    case 'store':
      return `${insn.src.kind === 'reg' ? 'stx' : 'st'}.${insn.size}`;
    case 'atomic':
      return `atomic${insn.size * 8}.${insn.op}${insn.fetch && insn.op !== 'xchg' && insn.op !== 'cmpxchg' ? '.fetch' : ''}`;
  }
}

/** Every kind `instructionKind` can return for an instruction the engines accept. */
export const ALL_INSTRUCTION_KINDS: readonly string[] = (() => {
  const kinds: string[] = [];
  for (const width of [32, 64]) {
    for (const op of ALU_BINARY_OPS) for (const src of ['imm', 'reg']) kinds.push(`alu${width}.${op}.${src}`);
    kinds.push(`alu${width}.neg`, `alu${width}.movsx8`, `alu${width}.movsx16`);
  }
  kinds.push('alu64.movsx32');
  for (const order of ['le', 'be', 'swap']) for (const bits of [16, 32, 64]) kinds.push(`endian.${order}${bits}`);
  kinds.push('ja', 'ja32');
  for (const w of ['', '32'])
    for (const c of JUMP_CONDITIONS) for (const src of ['imm', 'reg']) kinds.push(`jmp${w}.${c}.${src}`);
  kinds.push('call.helper', 'call.local', 'callx', 'exit', 'lddw');
  for (const size of SIZES) kinds.push(`ldx.${size}`, `st.${size}`, `stx.${size}`);
  for (const size of [1, 2, 4]) kinds.push(`ldxs.${size}`);
  for (const bits of [32, 64]) {
    for (const op of ATOMIC_OPS) {
      kinds.push(`atomic${bits}.${op}`);
      if (op !== 'xchg' && op !== 'cmpxchg') kinds.push(`atomic${bits}.${op}.fetch`);
    }
  }
  return kinds;
})();

// ---- interesting values ----

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const INTERESTING_IMM32 = [
  0,
  1,
  -1,
  2,
  -2,
  3,
  -3,
  7,
  8,
  15,
  16,
  31,
  32,
  33,
  63,
  64,
  65,
  100,
  255,
  256,
  0xffff,
  INT32_MAX,
  INT32_MIN,
  -13,
];
const INTERESTING_U64 = [
  0n,
  1n,
  -1n,
  2n,
  -13n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  0x1ffffffffn,
  -0x80000000n,
  -0x100000000n,
  0xffffffff00000000n,
  0x7fffffffffffffffn,
  -0x8000000000000000n,
  0x0123456789abcdefn,
  0xdeadbeefcafebaban,
  0x8000000080000000n,
  0x00000000ffff0000n,
];

// ---- assembly with labels ----

interface Fixup {
  readonly index: number;
  readonly label: string;
}

/** Instructions with symbolic jump/call targets, resolved to slot offsets at the end. */
class Assembler {
  readonly insns: Instruction[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: Fixup[] = [];
  private nextLabel = 0;

  newLabel(hint: string): string {
    return `${hint}${this.nextLabel++}`;
  }

  emit(insn: Instruction): void {
    this.insns.push(insn);
  }

  /** A jump, `ja` or local call whose offset is filled in once `label` is placed. */
  emitTo(insn: Instruction, label: string): void {
    this.fixups.push({ index: this.insns.length, label });
    this.insns.push(insn);
  }

  place(label: string): void {
    this.labels.set(label, this.insns.length);
  }

  resolve(): Program {
    const pcOf: number[] = [];
    let pc = 0;
    for (const insn of this.insns) {
      pcOf.push(pc);
      pc += insn.kind === 'lddw' ? 2 : 1;
    }
    const out = this.insns.slice();
    for (const { index, label } of this.fixups) {
      const target = this.labels.get(label);
      if (target === undefined || target >= out.length)
        throw new Error(`internal: label ${label} not placed before an instruction`);
      const offset = pcOf[target] - pcOf[index] - 1;
      const insn = out[index];
      if (insn.kind === 'jump' || insn.kind === 'ja') out[index] = { ...insn, offset };
      else if (insn.kind === 'call') out[index] = { ...insn, imm: offset };
      else throw new Error(`internal: ${insn.kind} has no target`);
    }
    return out;
  }
}

// ---- program generation ----

export interface GeneratorOptions {
  /** Extra functions besides the entry (at most). */
  readonly maxFunctions?: number;
  /** Statements in the entry function (roughly). */
  readonly mainStatements?: number;
}

export interface GeneratedProgram {
  readonly seed: number;
  readonly program: Program;
  /** Initial contents of the writable data region (r1 points at it, r2 holds its length). */
  readonly data: Uint8Array;
  /** Contents of the read-only region (r3 points at it). */
  readonly readOnly: Uint8Array;
  readonly args: readonly bigint[];
  readonly fuel: number;
}

type FunctionRole = 'main' | 'plain' | 'recursive';

interface ProgramPlan {
  readonly roles: FunctionRole[];
  /** Whether this program may contain loops bounded only by fuel. */
  readonly fuelLoops: boolean;
  readonly dataSize: number;
  readonly readOnlySize: number;
  /** Where the data and read-only regions lie in the sandbox the program runs in. */
  readonly addresses: { readonly data: number; readonly readOnly: number };
  /** Chance that a memory access, helper argument or callx target is chosen to be likely to fault. */
  readonly wildness: number;
}

const WRITABLE_REGISTERS: Register[] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const COUNTER_REGISTERS: Register[] = [6, 7, 8];
const DATA_POINTER: Register = 9;
const FRAME_POINTER: Register = 10;

class ProgramGenerator {
  private readonly asm = new Assembler();
  private readonly fnLabels: string[];
  /** Registers the current statement may not write (loop counters, the recursion argument). */
  private readonly reserved = new Set<Register>();
  /** Pointers walked by the enclosing counted loops (innermost last): preferred bases of accesses. */
  private readonly walkers: Register[] = [];
  private fnIndex = 0;
  private loopDepth = 0;
  /** Labels of the current function that will be placed after the current point: forward jump targets. */
  private readonly openLabels: string[] = [];
  /** Labels of the current function placed so far: backward jump targets (fuel-bounded programs only). */
  private placedLabels: string[] = [];

  constructor(
    private readonly rng: Random,
    private readonly plan: ProgramPlan,
  ) {
    this.fnLabels = plan.roles.map((role, i) => `${role}${i}_`);
  }

  generate(mainStatements: number): Program {
    this.plan.roles.forEach((role, i) => {
      this.fnIndex = i;
      this.placedLabels = [];
      this.place(this.fnLabels[i]);
      if (role === 'recursive') this.recursiveFunction();
      else this.plainFunction(role === 'main' ? mainStatements : this.rng.between(3, 14));
    });
    return this.asm.resolve();
  }

  private place(label: string): void {
    this.asm.place(label);
    this.placedLabels.push(label);
  }

  /** Run `generate` with `label` available as a forward jump target. */
  private withOpenLabel(label: string, generate: () => void): void {
    this.openLabels.push(label);
    generate();
    this.openLabels.pop();
  }

  // ---- functions ----

  private plainFunction(statements: number): void {
    this.prologue();
    const end = this.asm.newLabel('ret');
    this.withOpenLabel(end, () => this.sequence(statements, 0, end));
    this.place(end);
    this.epilogue();
  }

  /**
   * Recursion bounded by r1 (the caller picks it, so deep values run into the call-depth limit);
   * sometimes two recursive calls, so fuel is what stops it.
   */
  private recursiveFunction(): void {
    const { asm, rng } = this;
    this.reserved.add(1);
    this.prologue();
    const base = asm.newLabel('base');
    asm.emitTo(jump(rng.pick([32, 64] as Width[]), 'sle', 1, imm(0), 0), base);
    asm.emit(alu(64, 'sub', 1, imm(1)));
    this.withOpenLabel(base, () => this.sequence(rng.between(1, 4), 1, base));
    const self = this.fnLabels[this.fnIndex];
    asm.emitTo(callLocal(0), self);
    asm.emit(alu(64, 'add', 0, imm(1)));
    if (rng.chance(0.3)) {
      asm.emit(alu(64, 'mov', 6, reg(0)));
      asm.emitTo(callLocal(0), self);
      asm.emit(alu(64, 'add', 0, reg(6)));
    }
    asm.emit(exit());
    this.place(base);
    this.epilogue();
    this.reserved.delete(1);
  }

  /** r9 = data pointer; r0 and r6-r8 get values so nothing depends on engine-specific initial state. */
  private prologue(): void {
    const { asm, rng } = this;
    if (this.fnIndex === 0) asm.emit(alu(64, 'mov', DATA_POINTER, reg(1)));
    else asm.emit(lddw(DATA_POINTER, BigInt(this.plan.addresses.data)));
    for (const r of [0, 6, 7, 8] as Register[]) this.setRandomValue(r);
    if (rng.chance(0.3)) asm.emit(alu(64, 'mov', rng.pick([2, 3, 4, 5] as Register[]), imm(rng.pick(INTERESTING_IMM32))));
  }

  /** Fold r6-r8 into r0 sometimes, so their final values count; then exit. */
  private epilogue(): void {
    const { asm, rng } = this;
    if (rng.chance(0.6)) {
      for (const r of [6, 7, 8] as Register[]) {
        if (rng.chance(0.6)) asm.emit(alu(64, rng.pick(['xor', 'add', 'sub'] as AluOp[]), 0, reg(r)));
      }
    }
    asm.emit(exit());
  }

  // ---- statements ----

  /**
   * `count` statements; `exitLabel` is the function's epilogue (for early returns). Nested
   * constructs get a share of the count.
   */
  private sequence(count: number, depth: number, exitLabel: string): void {
    let left = count;
    while (left > 0) {
      left -= Math.max(1, this.statement(depth, exitLabel, left));
    }
  }

  /** One statement; returns how much of the budget it used. */
  private statement(depth: number, exitLabel: string, budget: number): number {
    const { rng } = this;
    const nested = depth < 3 && budget >= 2;
    const roll = rng.below(100);
    if (nested && roll < 8) return this.ifThen(depth, exitLabel, budget);
    if (nested && roll < 13) return this.ifThenElse(depth, exitLabel, budget);
    if (nested && roll < 19 && this.freeCounter() !== undefined && this.loopDepth < 2)
      return this.countedLoop(depth, exitLabel, budget);
    if (nested && roll < 21 && this.freeCounter() !== undefined && this.loopDepth < 2)
      return this.irreducibleLoop(depth, exitLabel, budget);
    if (nested && roll < 22 && this.plan.fuelLoops && this.loopDepth === 0) return this.fuelLoop(depth, exitLabel, budget);
    if (roll < 25) {
      // Forward to any enclosing construct's continuation (or the epilogue): exits loops and
      // branches into join points, making DAGs that are not simply nested.
      const target = rng.chance(0.3) ? exitLabel : rng.pick(this.openLabels);
      this.asm.emitTo(rng.chance(0.85) ? this.condition() : ja(0, rng.chance(0.3)), target);
      return 1;
    }
    if (roll < 26) {
      // A jump to the next instruction: both edges of the branch reach the same block.
      const next = this.asm.newLabel('next');
      this.asm.emitTo(rng.chance(0.7) ? this.condition() : ja(0, rng.chance(0.5)), next);
      this.place(next);
      this.simpleInstruction();
      return 2;
    }
    if (roll < 27 && this.plan.fuelLoops) {
      // Backward to anywhere already placed in this function: arbitrary cycles, often irreducible.
      this.asm.emitTo(this.condition(), rng.pick(this.placedLabels));
      return 1;
    }
    if (roll < 28 && this.wild()) {
      // r10 is read-only by the RFC, but nothing stops an unverified program from writing it.
      const op = rng.pick(['add', 'sub', 'mov', 'xor'] as AluOp[]);
      this.asm.emit(
        alu(rng.pick([32, 64] as Width[]), op, FRAME_POINTER, rng.chance(0.5) ? imm(this.imm32()) : reg(this.anyRegister())),
      );
      return 1;
    }
    if (roll < 31) return this.localCall();
    if (roll < 35) return this.helperCall();
    if (roll < 37) return this.callx();
    if (roll < 40) return this.divisionEdgeCase();
    this.simpleInstruction();
    return 1;
  }

  private ifThen(depth: number, exitLabel: string, budget: number): number {
    const skip = this.asm.newLabel('skip');
    this.asm.emitTo(this.condition(), skip);
    const inner = this.rng.between(1, Math.min(6, budget - 1));
    this.withOpenLabel(skip, () => this.sequence(inner, depth + 1, exitLabel));
    this.place(skip);
    return inner + 1;
  }

  private ifThenElse(depth: number, exitLabel: string, budget: number): number {
    const { asm, rng } = this;
    const otherwise = asm.newLabel('else');
    const join = asm.newLabel('join');
    asm.emitTo(this.condition(), otherwise);
    const a = rng.between(1, Math.max(1, Math.min(5, budget - 2)));
    this.withOpenLabel(join, () => this.withOpenLabel(otherwise, () => this.sequence(a, depth + 1, exitLabel)));
    asm.emitTo(ja(0, rng.chance(0.3)), join);
    this.place(otherwise);
    const b = rng.between(1, 5);
    this.withOpenLabel(join, () => this.sequence(b, depth + 1, exitLabel));
    this.place(join);
    return a + b + 1;
  }

  /** A loop whose counter only the loop itself writes, compared with a constant: it terminates. */
  private countedLoop(depth: number, exitLabel: string, budget: number): number {
    const { asm, rng } = this;
    const counter = this.freeCounter() as Register;
    this.reserved.add(counter);
    this.loopDepth++;
    const head = asm.newLabel('loop');
    const done = asm.newLabel('done');
    const trips = rng.between(0, 6);
    const width = rng.pick([32, 64] as Width[]);
    const inner = rng.between(1, Math.min(6, budget));
    const walker = this.startWalker();
    const body = () => {
      this.withOpenLabel(done, () => this.sequence(inner, depth + 1, exitLabel));
      if (walker !== undefined) asm.emit(alu(64, 'add', walker.reg, imm(walker.stride)));
      if (rng.chance(0.2)) asm.emitTo(this.condition(), done); // break
    };
    switch (rng.below(3)) {
      case 0: // counting up, tested at the bottom
        asm.emit(alu(64, 'mov', counter, imm(0)));
        this.place(head);
        body();
        asm.emit(alu(width, 'add', counter, imm(1)));
        if (trips > 0 && rng.chance(0.4)) {
          const cond = rng.pick(['ne', 'lt', 'slt'] as JumpCondition[]);
          asm.emitTo(jump(width, cond, counter, imm(trips), 0), head);
        } else if (trips > 0 && rng.chance(0.5))
          asm.emitTo(jump(width, rng.pick(['le', 'sle'] as JumpCondition[]), counter, imm(trips - 1), 0), head);
        else asm.emitTo(jump(width, 'lt', counter, imm(trips), 0), head);
        break;
      case 1: // counting down
        asm.emit(alu(64, 'mov', counter, imm(Math.max(trips, 1))));
        this.place(head);
        body();
        asm.emit(alu(width, 'sub', counter, imm(1)));
        asm.emitTo(jump(width, rng.pick(['ne', 'sgt', 'gt'] as JumpCondition[]), counter, imm(0), 0), head);
        break;
      default: // tested at the top
        asm.emit(alu(64, 'mov', counter, imm(0)));
        this.place(head);
        asm.emitTo(jump(width, rng.pick(['ge', 'sge', 'eq'] as JumpCondition[]), counter, imm(trips), 0), done);
        body();
        asm.emit(alu(width, 'add', counter, imm(1)));
        asm.emitTo(ja(0, rng.chance(0.3)), head);
    }
    this.place(done);
    // Something after the loop, so `done` labels an instruction even at the end of a function.
    this.simpleInstruction();
    this.loopDepth--;
    this.reserved.delete(counter);
    if (walker !== undefined) {
      this.walkers.pop();
      this.reserved.delete(walker.reg);
    }
    return inner + 3;
  }

  /**
   * Sometimes, a pointer the loop walks by a constant stride (`p += stride` each iteration), which
   * the body's accesses use as their base: into the data region, the frame, or (when wild) from
   * anywhere, so walks run off region ends in later iterations. The JIT hoists such accesses' bounds
   * checks out of unrolled loops (src/vm/jit/bounds.ts); this is what exercises them.
   */
  private startWalker(): { reg: Register; stride: number } | undefined {
    const { asm, rng } = this;
    const free = ([1, 2, 3, 4, 5] as Register[]).filter((r) => !this.reserved.has(r));
    if (free.length === 0 || !rng.chance(0.35)) return undefined;
    const w = rng.pick(free);
    if (this.wild()) {
      if (rng.chance(0.5)) {
        asm.emit(alu(64, 'mov', w, reg(DATA_POINTER)));
        asm.emit(alu(64, 'add', w, imm(this.plan.dataSize - rng.between(0, 4))));
      } else this.setRandomValue(w, true);
    } else if (rng.chance(0.75)) {
      asm.emit(alu(64, 'mov', w, reg(DATA_POINTER)));
      asm.emit(alu(64, 'add', w, imm(rng.between(0, this.plan.dataSize))));
    } else {
      asm.emit(alu(64, 'mov', w, reg(FRAME_POINTER)));
      asm.emit(alu(64, 'add', w, imm(-rng.between(8, 512))));
    }
    const walker = { reg: w, stride: rng.pick([1, 2, 3, 4, 8, 12, -1, -4, -8]) };
    this.reserved.add(w);
    this.walkers.push(w);
    return walker;
  }

  /**
   * A counted cycle with two entries (A and B), which no nesting of Wasm blocks and loops
   * expresses: the JIT must fall back to its dispatch loop.
   */
  private irreducibleLoop(depth: number, exitLabel: string, budget: number): number {
    const { asm, rng } = this;
    const counter = this.freeCounter() as Register;
    this.reserved.add(counter);
    this.loopDepth++;
    const entryA = asm.newLabel('irrA');
    const entryB = asm.newLabel('irrB');
    asm.emit(alu(64, 'mov', counter, imm(0)));
    asm.emitTo(this.condition(), entryB);
    this.place(entryA);
    this.simpleInstruction(); // A is never empty, else A and B would be one block
    const inner = rng.between(0, Math.min(4, budget));
    this.sequence(inner, depth + 1, exitLabel);
    this.place(entryB);
    asm.emit(alu(64, 'add', counter, imm(1)));
    this.sequence(rng.between(0, 2), depth + 1, exitLabel);
    asm.emitTo(jump(rng.pick([32, 64] as Width[]), 'lt', counter, imm(rng.between(1, 5)), 0), entryA);
    this.simpleInstruction();
    this.loopDepth--;
    this.reserved.delete(counter);
    return inner + 4;
  }

  /** A loop with no bound but fuel (or, by luck, its condition). */
  private fuelLoop(depth: number, exitLabel: string, budget: number): number {
    const { asm, rng } = this;
    this.loopDepth++;
    // Sometimes back to the function's entry, which then heads a loop and is also a call target.
    const head = rng.chance(0.2) ? this.fnLabels[this.fnIndex] : asm.newLabel('spin');
    if (head !== this.fnLabels[this.fnIndex]) this.place(head);
    const inner = rng.between(1, Math.min(4, budget));
    this.sequence(inner, depth + 1, exitLabel);
    if (rng.chance(0.5)) asm.emitTo(ja(0, rng.chance(0.5)), head);
    else {
      const c = this.condition() as Extract<Instruction, { kind: 'jump' }>;
      asm.emitTo({ ...c, cond: rng.pick(['ne', 'set', 'sge'] as JumpCondition[]) }, head);
    }
    this.simpleInstruction();
    this.loopDepth--;
    return inner + 2;
  }

  /** A conditional jump with its target left to the caller. */
  private condition(): Instruction {
    const { rng } = this;
    const src: Operand = rng.chance(0.5) ? imm(this.imm32()) : reg(this.anyRegister());
    return jump(rng.pick([32, 64] as Width[]), rng.pick(JUMP_CONDITIONS), this.anyRegister(), src, 0);
  }

  private localCall(): number {
    const { asm, rng } = this;
    const n = this.plan.roles.length;
    if (n === 1) {
      this.simpleInstruction();
      return 1;
    }
    // Mostly calls to later functions (a call DAG); rarely to any function (unbounded recursion).
    const later = Array.from({ length: n - this.fnIndex - 1 }, (_, k) => this.fnIndex + 1 + k);
    const target = later.length > 0 && !rng.chance(0.04) ? rng.pick(later) : rng.below(n);
    if (target === 0 && !rng.chance(0.3)) {
      this.simpleInstruction();
      return 1;
    }
    if (this.plan.roles[target] === 'recursive') {
      if (!this.reserved.has(1)) asm.emit(alu(64, 'mov', 1, imm(rng.between(0, 9))));
    } else {
      for (const r of [1, 2, 3, 4, 5] as Register[]) if (rng.chance(0.3)) this.setRandomValue(r);
    }
    asm.emitTo(callLocal(0), this.fnLabels[target]);
    if (rng.chance(0.5)) {
      const d = this.writableRegister();
      if (d !== undefined) asm.emit(alu(64, rng.pick(['xor', 'add'] as AluOp[]), d, reg(0)));
    }
    return 2;
  }

  /** Set the arguments a helper cares about, then call it. */
  private helperCall(): number {
    const { asm, rng } = this;
    const id = rng.between(HELPER_MIX, HELPER_REJECT_ODD);
    this.setHelperArguments(id);
    asm.emit(callHelper(id));
    return 2;
  }

  private callx(): number {
    const { asm, rng } = this;
    const target = this.writableRegister();
    if (target === undefined) return 0;
    const roll = this.wild() ? rng.below(4) : 0;
    if (roll === 0) {
      const id = rng.between(HELPER_MIX, HELPER_REJECT_ODD);
      this.setHelperArguments(id);
      asm.emit(alu(64, 'mov', target, imm(id)));
    } else if (roll === 1) {
      asm.emit(alu(64, 'mov', target, imm(rng.pick(UNREGISTERED_HELPER_IDS))));
    } else if (roll === 2) {
      // Low half names a helper, high half does not: no helper.
      asm.emit(lddw(target, 0x100000000n | BigInt(HELPER_MIX)));
    } // else: whatever the register holds
    asm.emit({ kind: 'callx', reg: target });
    return 2;
  }

  private setHelperArguments(id: number): void {
    const { asm, rng } = this;
    const set = (r: Register, f: () => void) => {
      if (!this.reserved.has(r)) f();
    };
    switch (id) {
      case HELPER_STOP_IF:
        set(1, () => {
          const v = rng.chance(0.1) ? 0xa + 16 * rng.below(1000) : 16 * rng.below(1000);
          asm.emit(alu(64, 'mov', 1, imm(v)));
        });
        break;
      case HELPER_SUM_BYTES:
      case HELPER_FILL_BYTES:
        if (!this.reserved.has(1) && !this.reserved.has(2)) this.bufferArguments(id === HELPER_FILL_BYTES);
        if (rng.chance(0.5)) set(3, () => this.setRandomValue(3));
        break;
      case HELPER_REJECT_ODD:
        set(1, () => asm.emit(alu(64, 'mov', 1, imm(this.wild() ? rng.pick(INTERESTING_IMM32) : 2 * rng.below(1000)))));
        break;
      default:
        for (const r of [1, 2, 3, 4, 5] as Register[]) if (rng.chance(0.4)) set(r, () => this.setRandomValue(r));
    }
  }

  /**
   * r1/r2 = a buffer and its length for the memory helpers: inside the data region or the current
   * frame, or (when wild) running past their ends or into the read-only region.
   */
  private bufferArguments(write: boolean): void {
    const { asm, rng } = this;
    const { dataSize, readOnlySize } = this.plan;
    const roll = this.wild() ? rng.below(4) : rng.below(2);
    let length: number;
    if (roll === 0) {
      const at = rng.between(0, dataSize);
      length = rng.between(0, Math.min(63, dataSize - at));
      asm.emit(alu(64, 'mov', 1, reg(DATA_POINTER)));
      asm.emit(alu(64, 'add', 1, imm(at)));
    } else if (roll === 1) {
      const below = rng.between(1, 512);
      length = rng.between(0, Math.min(63, below));
      asm.emit(alu(64, 'mov', 1, reg(FRAME_POINTER)));
      asm.emit(alu(64, 'add', 1, imm(-below)));
    } else if (roll === 2) {
      length = rng.between(1, 63);
      asm.emit(alu(64, 'mov', 1, reg(DATA_POINTER)));
      asm.emit(alu(64, 'add', 1, imm(rng.between(dataSize - length + 1, dataSize + 4))));
    } else {
      length = rng.between(write ? 1 : 0, readOnlySize + 2);
      asm.emit(lddw(1, BigInt(this.plan.addresses.readOnly)));
    }
    asm.emit(alu(64, 'mov', 2, imm(length)));
  }

  /** INT_MIN / -1, x % -1, x / 0 and x % 0 in both widths, with imm and register divisors. */
  private divisionEdgeCase(): number {
    const { asm, rng } = this;
    const d = this.writableRegister();
    if (d === undefined) return 0;
    const width = rng.pick([32, 64] as Width[]);
    const op = rng.pick(['div', 'sdiv', 'mod', 'smod'] as AluOp[]);
    const dividend = rng.pick([-0x8000000000000000n, -1n, 0n, 7n, -13n, 13n, -0x80000000n, 0xffffffff80000000n]);
    asm.emit(lddw(d, dividend));
    const divisor = rng.pick([0n, -1n, 3n, -3n, 0x100000000n, 0xffffffffn, -0x8000000000000000n]);
    const s = this.writableRegister(d);
    if (s !== undefined && rng.chance(0.5)) {
      asm.emit(lddw(s, divisor));
      asm.emit(alu(width, op, d, reg(s)));
    } else {
      asm.emit(alu(width, op, d, imm(Number(BigInt.asIntN(32, divisor)))));
    }
    return 2;
  }

  // ---- single instructions ----

  private simpleInstruction(): void {
    const { rng } = this;
    const d = this.writableRegister();
    const roll = rng.below(100);
    if (d === undefined || roll < 12) this.memoryStore();
    else if (roll < 45) this.aluInstruction(d);
    else if (roll < 50) {
      this.asm.emit({
        kind: 'endian',
        order: rng.pick(['le', 'be', 'swap'] as const),
        bits: rng.pick([16, 32, 64] as const),
        dst: d,
      });
    } else if (roll < 55) this.setRandomValue(d, true);
    else if (roll < 70) this.memoryLoad(d);
    else if (roll < 85) this.memoryStore();
    else this.atomic();
  }

  private aluInstruction(d: Register): void {
    const { asm, rng } = this;
    const width = rng.pick([32, 64] as Width[]);
    const roll = rng.below(20);
    if (roll === 0) asm.emit(alu(width, 'neg', d, imm(0)));
    else if (roll === 1) {
      const op =
        width === 64 ? rng.pick(['movsx8', 'movsx16', 'movsx32'] as AluOp[]) : rng.pick(['movsx8', 'movsx16'] as AluOp[]);
      asm.emit(alu(width, op, d, reg(this.anyRegister())));
    } else {
      const op = rng.pick(ALU_BINARY_OPS);
      let src: Operand;
      if (rng.chance(0.5)) src = reg(this.anyRegister());
      else if ((op === 'lsh' || op === 'rsh' || op === 'arsh') && rng.chance(0.7)) src = imm(rng.between(0, 70));
      else src = imm(this.imm32());
      asm.emit(alu(width, op, d, src));
    }
  }

  private memoryLoad(d: Register): void {
    const { asm, rng } = this;
    const size = rng.pick(SIZES);
    const signed = size !== 8 && rng.chance(0.35);
    const { base, offset } = this.address(size, 'read', d);
    asm.emit(load(size, d, base, offset, signed));
  }

  private memoryStore(): void {
    const { asm, rng } = this;
    const size = rng.pick(SIZES);
    const { base, offset } = this.address(size, 'write');
    const src = rng.chance(0.5) ? reg(this.anyRegister()) : imm(this.imm32());
    asm.emit(store(size, base, offset, src));
  }

  private atomic(): void {
    const { asm, rng } = this;
    const size = rng.pick([4, 8] as const);
    const op = rng.pick(ATOMIC_OPS);
    const fetch = op === 'xchg' || op === 'cmpxchg' || rng.chance(0.5);
    // A fetching atomic writes src (r0 for cmpxchg): it must not be a reserved register.
    const src = fetch && op !== 'cmpxchg' ? this.writableRegister() : this.anyRegister();
    if (src === undefined || (op === 'cmpxchg' && this.reserved.has(0))) {
      this.memoryStore();
      return;
    }
    const { base, offset } = this.address(size, 'write');
    const insn: AtomicInstruction = { kind: 'atomic', size, op, fetch, dst: base, src, offset };
    asm.emit(insn);
  }

  /**
   * Base register and offset of an access: inside the data region or the current frame, or a
   * read of the read-only region. When wild: straddling or past the ends of those, below the
   * stack, a write to the read-only region, or through a register holding anything (NULL too).
   * `scratch` may be clobbered to hold a pointer.
   */
  private address(size: number, access: 'read' | 'write', scratch?: Register): { base: Register; offset: number } {
    const { rng } = this;
    const walker = this.walkers.at(-1);
    if (walker !== undefined && rng.chance(0.5)) return { base: walker, offset: rng.between(-8, 24) };
    const { dataSize, readOnlySize } = this.plan;
    const roRegister = () => {
      const base = scratch ?? this.writableRegister();
      if (base !== undefined) this.asm.emit(lddw(base, BigInt(this.plan.addresses.readOnly)));
      return base;
    };
    if (!this.wild()) {
      const roll = rng.below(100);
      if (roll < 55) {
        const offset = rng.between(0, dataSize - size);
        return { base: DATA_POINTER, offset: rng.chance(0.6) ? offset - (offset % size) : offset };
      }
      if (roll < 60 && access === 'read') {
        const base = roRegister();
        if (base !== undefined) return { base, offset: rng.between(0, readOnlySize - size) };
      }
      // Anywhere in this frame; a callee's accesses above r10 land in its caller's frame.
      return { base: FRAME_POINTER, offset: -rng.between(size, 512) };
    }
    switch (rng.below(7)) {
      case 0:
        return { base: DATA_POINTER, offset: rng.between(dataSize - size + 1, dataSize + 8) };
      case 1:
        return { base: DATA_POINTER, offset: rng.between(-9, -1) };
      case 2: // straddles the frame top: faults in the entry function
        return { base: FRAME_POINTER, offset: rng.between(-size + 1, 8) };
      case 3: // below this frame: inside the stack region unless deep
        return { base: FRAME_POINTER, offset: -rng.between(513, 4200) };
      case 4: {
        const base = roRegister();
        if (base !== undefined) return { base, offset: rng.between(-2, readOnlySize + 2) };
      }
    }
    return { base: rng.pick(WRITABLE_REGISTERS), offset: rng.pick([0, 0, 1, -1, 8, rng.between(-64, 64)]) };
  }

  /** Whether to make this choice likely to fault (the per-program wildness). */
  private wild(): boolean {
    return this.rng.chance(this.plan.wildness);
  }

  // ---- registers and values ----

  private setRandomValue(r: Register, allowPointers = false): void {
    const { asm, rng } = this;
    if (this.reserved.has(r)) return;
    const roll = rng.below(10);
    if (roll < 4) asm.emit(alu(64, 'mov', r, imm(this.imm32())));
    else if (roll < 5) asm.emit(alu(32, 'mov', r, imm(this.imm32())));
    else if (roll < 8) asm.emit(lddw(r, rng.pick(INTERESTING_U64)));
    else if (roll < 9 && allowPointers) {
      const pointer = rng.chance(0.5)
        ? BigInt(this.plan.addresses.data + rng.between(0, this.plan.dataSize))
        : BigInt(this.plan.addresses.readOnly + rng.between(0, this.plan.readOnlySize));
      asm.emit(lddw(r, pointer));
    } else asm.emit(lddw(r, rng.u64()));
  }

  private imm32(): number {
    const { rng } = this;
    const roll = rng.below(10);
    if (roll < 6) return rng.pick(INTERESTING_IMM32);
    if (roll < 8) return rng.between(-300, 300);
    return rng.u32() | 0;
  }

  private anyRegister(): Register {
    return this.rng.below(11) as Register;
  }

  private writableRegister(except?: Register): Register | undefined {
    const choices = WRITABLE_REGISTERS.filter((r) => !this.reserved.has(r) && r !== except);
    return choices.length === 0 ? undefined : this.rng.pick(choices);
  }

  private freeCounter(): Register | undefined {
    return COUNTER_REGISTERS.find((r) => !this.reserved.has(r));
  }
}

/** The program for `seed`: same seed, same program, on every platform. */
export function generateProgram(seed: number, options: GeneratorOptions = {}): GeneratedProgram {
  const rng = new Random(seed);
  const extra = rng.between(0, options.maxFunctions ?? 4);
  const roles: FunctionRole[] = ['main'];
  for (let i = 0; i < extra; i++) roles.push(rng.chance(0.25) ? 'recursive' : 'plain');
  const fuelLoops = rng.chance(0.08);
  const dataSize = rng.pick([8, 16, 32, 64, 100, 256]);
  const readOnlySize = rng.pick([8, 16, 32]);
  const plan: ProgramPlan = {
    roles,
    fuelLoops,
    dataSize,
    readOnlySize,
    addresses: differentialAddresses(dataSize, readOnlySize),
    wildness: rng.pick([0, 0, 0.01, 0.03, 0.1, 0.3]),
  };
  const program = new ProgramGenerator(rng, plan).generate(options.mainStatements ?? rng.between(4, 40));
  layoutProgram(program); // throws if the generator broke a structural rule
  const fuelRoll = rng.below(10);
  const fuel = fuelRoll === 0 ? rng.between(0, 200) : fuelLoops ? rng.between(500, 3000) : rng.between(5000, 30000);
  return {
    seed,
    program,
    data: rng.bytes(plan.dataSize),
    readOnly: rng.bytes(plan.readOnlySize),
    args: [
      BigInt(plan.addresses.data),
      BigInt(plan.dataSize),
      BigInt(plan.addresses.readOnly),
      rng.u64(),
      BigInt(rng.pick(INTERESTING_IMM32)),
    ],
    fuel,
  };
}
