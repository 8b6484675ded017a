/**
 * Bounds checks of checked code (memory mode `checked`) hoisted out of unrolled loops (unroll.ts).
 *
 * The fast path of an unrolled loop runs UNROLL_FACTOR copies of the body behind one guard. Many of
 * its loads and stores address memory as "registers at the guard + constant", give or take a
 * bounded amount: a pointer walked by a constant stride (`p + i`, `i += 1`), a stack slot, a table
 * indexed by a masked byte (`base + (x & 252)`). For those, one comparison at the guard covers every
 * copy of the access: the guard takes the fast path only if each such address range lies in the
 * sandbox's readable (or writable) span, and the covered accesses then compile without their own
 * check. If the comparison fails, the loop runs its original blocks, every access checked, so a
 * fault happens at the same instruction, address and size as in the interpreter; only where the
 * hoisted comparison holds is the per-access one skipped, and there it would have passed.
 *
 * The analysis is a symbolic execution of the copies (acyclic: back edges lead to the next copy) in
 * which a register holds `sum of some registers' values at the guard + c + t` with t an unknown
 * integer in [lo, hi], or is unknown. The forms are exact modulo 2^64, and the check at the guard
 * computes the sum itself, so no assumption on what the registers hold is made.
 */
import type { Instruction, Register } from '../../isa/index.js';

/** One comparison at a guard: `[sum(registers) + lowOffset, + spanBytes)` must lie in the span for `write`. */
export interface HoistedBoundsCheck {
  /** Registers (at the guard) whose 64-bit sum is the base; one or two, sorted. */
  readonly registers: readonly Register[];
  readonly lowOffset: number;
  readonly spanBytes: number;
  readonly write: boolean;
}

/** The sandbox's span (see memory.ts). */
export interface SandboxBounds {
  readonly lowAddress: number;
  readonly writableEnd: number;
  readonly readableEnd: number;
}

/** A block of the unrolled copies, for the analysis: its instructions and successors within the copies. */
export interface CopyBlock {
  readonly startPc: number;
  readonly endPc: number;
  /** Indexes (into the blocks given) of the successors inside the copies. */
  readonly next: readonly number[];
}

export interface HoistingResult {
  readonly checks: readonly HoistedBoundsCheck[];
  /** Per block: slots of the accesses the checks cover. */
  readonly covered: readonly ReadonlySet<number>[];
}

/** More registers in a form, or wider constants, and it is dropped (kept simple and in safe integers). */
const MAX_FORM_REGISTERS = 2;
const MAX_MAGNITUDE = 2 ** 40;
/** Comparisons per guard: more groups stay checked per access. */
export const MAX_HOISTED_CHECKS = 4;

/** `sum(regs) + c + t`, t in [lo, hi]; regs sorted (a multiset). */
interface Form {
  readonly regs: readonly Register[];
  readonly c: number;
  readonly lo: number;
  readonly hi: number;
}

type State = (Form | undefined)[];

const constant = (c: number): Form | undefined => interval(c, c);
const interval = (lo: number, hi: number): Form | undefined => checked({ regs: [], c: 0, lo, hi });

function checked(f: Form): Form | undefined {
  if (f.regs.length > MAX_FORM_REGISTERS) return undefined;
  for (const v of [f.c, f.lo, f.hi]) if (!Number.isSafeInteger(v) || Math.abs(v) > MAX_MAGNITUDE) return undefined;
  return f;
}

function add(a: Form | undefined, b: Form | undefined): Form | undefined {
  if (a === undefined || b === undefined) return undefined;
  const regs = [...a.regs, ...b.regs].sort((x, y) => x - y);
  return checked({ regs, c: a.c + b.c, lo: a.lo + b.lo, hi: a.hi + b.hi });
}

function sameRegs(a: Form, b: Form): boolean {
  return a.regs.length === b.regs.length && a.regs.every((r, i) => r === b.regs[i]);
}

/** Both values possible: the same registers with the constants widened into the interval, else unknown. */
function join(a: Form | undefined, b: Form | undefined): Form | undefined {
  if (a === undefined || b === undefined || !sameRegs(a, b)) return undefined;
  if (a.c === b.c && a.lo === b.lo && a.hi === b.hi) return a;
  return checked({ regs: a.regs, c: 0, lo: Math.min(a.c + a.lo, b.c + b.lo), hi: Math.max(a.c + a.hi, b.c + b.hi) });
}

/** A value known to be a non-negative number below 2^40 (no registers), as [lo, hi]. */
function pure(f: Form | undefined): { lo: number; hi: number } | undefined {
  if (f === undefined || f.regs.length > 0 || f.c + f.lo < 0) return undefined;
  return { lo: f.c + f.lo, hi: f.c + f.hi };
}

function transfer(state: State, insn: Instruction): void {
  switch (insn.kind) {
    case 'alu': {
      const imm = insn.src.kind === 'imm' ? insn.src.value : undefined;
      const src = imm !== undefined ? constant(imm) : state[(insn.src as { reg: Register }).reg];
      state[insn.dst] = insn.width === 64 ? alu64(insn.op, state[insn.dst], src, imm) : alu32(insn.op, src, imm);
      return;
    }
    case 'load':
      state[insn.dst] = !insn.signed && insn.size < 8 ? interval(0, 2 ** (8 * insn.size) - 1) : undefined;
      return;
    case 'lddw':
      state[insn.dst] = insn.nextImm === insn.imm >> 31 ? constant(insn.imm) : undefined;
      return;
    case 'endian':
      state[insn.dst] = undefined;
      return;
    case 'atomic':
      if (insn.fetch) state[insn.op === 'cmpxchg' ? 0 : insn.src] = undefined;
      return;
    case 'call':
    case 'callx':
      // Not in unrolled loops; what a call leaves in r0-r5 is unknown.
      for (let r = 0; r <= 5; r++) state[r] = undefined;
      return;
    default:
      return; // stores, jumps, exit: no register written
  }
}

/** `imm`: the immediate operand (sign-extended), undefined for a register operand. */
function alu64(op: string, dst: Form | undefined, src: Form | undefined, imm: number | undefined): Form | undefined {
  switch (op) {
    case 'mov':
      return src;
    case 'add':
      return add(dst, src);
    case 'sub':
      return imm === undefined ? undefined : add(dst, constant(-imm));
    case 'and': {
      // x & m lies in [0, m] for any x when m >= 0 (as a 64-bit value).
      const m = pure(src);
      return m === undefined ? undefined : interval(0, m.hi);
    }
    case 'lsh': {
      const x = pure(dst);
      return x === undefined || imm === undefined || imm < 0 || imm > 31 ? undefined : interval(x.lo * 2 ** imm, x.hi * 2 ** imm);
    }
    case 'rsh': {
      const x = pure(dst);
      return x === undefined || imm === undefined || imm < 0 || imm > 63
        ? undefined
        : interval(Math.floor(x.lo / 2 ** imm), Math.floor(x.hi / 2 ** imm));
    }
    default:
      return undefined;
  }
}

/** 32-bit ALU results are zero-extended: only what stays exact as such is kept. */
function alu32(op: string, src: Form | undefined, imm: number | undefined): Form | undefined {
  if (op === 'mov' && imm !== undefined) return constant(imm >>> 0);
  if (op === 'mov') {
    const x = pure(src);
    return x !== undefined && x.hi < 2 ** 32 ? interval(x.lo, x.hi) : undefined;
  }
  if (op === 'and') {
    const m = pure(src);
    if (m !== undefined) return interval(0, Math.min(m.hi, 2 ** 32 - 1));
    if (imm !== undefined) return interval(0, imm >>> 0);
  }
  return undefined;
}

/** The access an instruction makes: base register, offset, size, whether it writes. */
function accessOf(insn: Instruction): { base: Register; offset: number; size: number; write: boolean } | undefined {
  if (insn.kind === 'load') return { base: insn.src, offset: insn.offset, size: insn.size, write: false };
  if (insn.kind === 'store') return { base: insn.dst, offset: insn.offset, size: insn.size, write: true };
  if (insn.kind === 'atomic') return { base: insn.dst, offset: insn.offset, size: insn.size, write: true };
  return undefined;
}

interface Group {
  readonly registers: readonly Register[];
  readonly write: boolean;
  low: number;
  end: number;
  readonly sites: { block: number; pc: number }[];
}

/**
 * The checks to hoist to a guard whose fast path runs `blocks` (block 0 its entry, every block after
 * all its predecessors), and which accesses they cover. `instructionAt(pc)` is the instruction at a
 * slot (undefined on an lddw's second slot).
 */
export function hoistBoundsChecks(
  blocks: readonly CopyBlock[],
  instructionAt: (pc: number) => Instruction | undefined,
  bounds: SandboxBounds,
): HoistingResult {
  const entry: State = Array.from({ length: 11 }, (_, r) => ({ regs: [r as Register], c: 0, lo: 0, hi: 0 }));
  const incoming: (State | undefined)[] = blocks.map(() => undefined);
  incoming[0] = entry;
  const groups = new Map<string, Group>();
  blocks.forEach((block, b) => {
    const state = incoming[b];
    if (state === undefined) return; // not reached within the copies
    const s = [...state];
    for (let pc = block.startPc; pc < block.endPc; pc++) {
      const insn = instructionAt(pc);
      if (insn === undefined) continue;
      const access = accessOf(insn);
      const base = access === undefined ? undefined : s[access.base];
      if (access !== undefined && base !== undefined && base.regs.length > 0) {
        const key = `${base.regs.join(',')}${access.write ? 'w' : 'r'}`;
        let g = groups.get(key);
        if (g === undefined) {
          g = {
            registers: base.regs,
            write: access.write,
            low: Number.POSITIVE_INFINITY,
            end: Number.NEGATIVE_INFINITY,
            sites: [],
          };
          groups.set(key, g);
        }
        g.low = Math.min(g.low, base.c + base.lo + access.offset);
        g.end = Math.max(g.end, base.c + base.hi + access.offset + access.size);
        g.sites.push({ block: b, pc });
      }
      transfer(s, insn);
    }
    for (const n of block.next) {
      const before = incoming[n];
      incoming[n] = before === undefined ? [...s] : before.map((f, r) => join(f, s[r]));
    }
  });
  // Reads through a base that is also written (read-modify-write of one object) join the writes'
  // comparison when the whole range fits the writable span: one test instead of two. (The writable
  // span starts where the readable one does and ends no later, so the write test covers the reads.)
  for (const [key, write] of groups) {
    if (!write.write) continue;
    const readKey = `${key.slice(0, -1)}r`;
    const read = groups.get(readKey);
    if (read === undefined) continue;
    const low = Math.min(read.low, write.low);
    const end = Math.max(read.end, write.end);
    if (end - low > bounds.writableEnd - bounds.lowAddress) continue;
    write.low = low;
    write.end = end;
    write.sites.push(...read.sites);
    groups.delete(readKey);
  }
  const usable = [...groups.values()]
    .filter((g) => g.end - g.low <= (g.write ? bounds.writableEnd : bounds.readableEnd) - bounds.lowAddress)
    .sort((a, b) => b.sites.length - a.sites.length)
    .slice(0, MAX_HOISTED_CHECKS);
  const covered = blocks.map(() => new Set<number>());
  for (const g of usable) for (const site of g.sites) covered[site.block].add(site.pc);
  return {
    checks: usable.map((g) => ({ registers: g.registers, lowOffset: g.low, spanBytes: g.end - g.low, write: g.write })),
    covered,
  };
}
