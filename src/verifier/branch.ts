/**
 * Conditional jumps. Each successor gets the state narrowed by what the branch proves: numbers are
 * refined on both sides (64- or 32-bit, signed or unsigned), a tested lookup result becomes null or
 * non-null, and comparing a data pointer with the end pointer proves bytes in bounds. A branch that
 * cannot be taken is not explored. Comparisons that would reveal an address are rejected.
 */
import type { JumpCondition, JumpInstruction } from '../isa/index.js';
import { operandValue } from './alu.js';
import { type Analysis, readReg, reject } from './analysis.js';
import {
  type Comparison,
  negateComparison,
  SCALAR_UNKNOWN,
  type Scalar,
  scalarAlu,
  scalarConst,
  scalarConstValue,
  scalarIntersect,
  scalarRefine,
} from './domains/scalar.js';
import { regLoc, slotLoc } from './precision.js';
import {
  cloneState,
  DATA_LENGTH_ID,
  isPointer,
  LE_LEN,
  LT_LEN,
  type RegValue,
  scalarValue,
  type VerifierState,
  validRelation,
  writableStack,
} from './state.js';

type ScalarReg = Extract<RegValue, { kind: 'scalar' }>;

/** Scalar comparison for each jump condition (`set` is "a & b != 0"). */
const COMPARISON: Record<JumpCondition, Comparison> = {
  eq: 'eq',
  ne: 'ne',
  gt: 'gt',
  ge: 'ge',
  lt: 'lt',
  le: 'le',
  sgt: 'sgt',
  sge: 'sge',
  slt: 'slt',
  sle: 'sle',
  set: 'set',
};

/** The states after the jump: `taken` goes to the target, `fallthrough` to the next instruction; undefined = impossible. */
export interface BranchOutcome {
  taken?: VerifierState;
  fallthrough?: VerifierState;
}

export function checkJump(an: Analysis, s: VerifierState, insn: JumpInstruction, maxDataBytes: number): BranchOutcome {
  const a = readReg(s, insn.dst);
  const b = operandValue(s, insn.src);
  const cmp = COMPARISON[insn.cond];
  if (a.kind === 'scalar' && b.kind === 'scalar') return scalarBranch(an, s, insn, cmp, a, b);
  if (insn.width === 64) {
    const nullTest = nullCheck(s, cmp, a, b);
    if (nullTest) {
      // Only a comparison with the number 0 is a null test: that number must stay 0.
      const other = isPointer(a) ? insn.src : { kind: 'reg' as const, reg: insn.dst };
      if (other.kind === 'reg') an.markPrecise(s, [other.reg]);
      return nullTest;
    }
    const bounds = dataEndCheck(s, cmp, a, b, maxDataBytes);
    if (bounds) return bounds;
  }
  return reject(`R${isPointer(a) ? insn.dst : (insn.src as { reg: number }).reg} pointer comparison prohibited`);
}

function scalarBranch(
  an: Analysis,
  s: VerifierState,
  insn: JumpInstruction,
  cmp: Comparison,
  a: Extract<RegValue, { kind: 'scalar' }>,
  b: Extract<RegValue, { kind: 'scalar' }>,
): BranchOutcome {
  const sameReg = insn.src.kind === 'reg' && insn.src.reg === insn.dst;
  const srcIsReg = insn.src.kind === 'reg';
  const successor = (c: Comparison, copy: boolean): VerifierState | undefined => {
    const r = scalarRefine(c, a.value, b.value, insn.width);
    if (!r) return undefined;
    const next = copy ? cloneState(s) : s;
    const regs = next.frames[next.frames.length - 1].regs;
    // Refining a register never changes its value, so it keeps its id; its copies (same id) learn
    // the same bounds, and so does the buffer's proven length when the value is the length.
    if (!sameReg) {
      let aRel = a.lenRel ?? 0;
      let bRel = b.lenRel ?? 0;
      // `x < len` (unsigned, 64-bit): x is below the buffer's length, whatever x's bounds.
      if (insn.width === 64 && srcIsReg) {
        const isLen = (x: ScalarReg) => x.id === DATA_LENGTH_ID && !x.delta;
        if (isLen(b) && !isLen(a)) aRel = Math.max(aRel, c === 'lt' ? LT_LEN : c === 'le' ? LE_LEN : 0);
        if (isLen(a) && !isLen(b)) bRel = Math.max(bRel, c === 'gt' ? LT_LEN : c === 'ge' ? LE_LEN : 0);
      }
      const newA = scalarValue(r.a, a.id, aRel, a.delta ?? 0) as ScalarReg;
      regs[insn.dst] = newA;
      linkRefinement(next, newA);
      if (insn.src.kind === 'reg') {
        const newB = scalarValue(r.b, b.id, bRel, b.delta ?? 0) as ScalarReg;
        regs[insn.src.reg] = newB;
        linkRefinement(next, newB);
        const frame = next.frames.length - 1;
        next.relation = {
          frame,
          a: insn.dst,
          b: insn.src.reg,
          va: regs[insn.dst],
          vb: regs[insn.src.reg],
          cmp: c,
          width: insn.width,
        };
      }
    }
    return next;
  };
  // Linked copies learn from the comparison: backtracking must know they were refined together.
  if (a.id !== 0 || b.id !== 0) noteLinkedGroup(an, s, a.id, b.id);
  const operands = srcIsReg ? [insn.dst, (insn.src as { reg: number }).reg] : [insn.dst];
  const lenBefore = s.minDataLen;
  // Two registers compared before, unchanged since: the earlier outcome may decide this one.
  const known = srcIsReg && !sameReg ? impliedOutcome(s, insn, cmp) : undefined;
  if (known !== undefined) {
    // The relation (compared whole by pruning) decides; the values only refine the side taken.
    const next = successor(known ? cmp : negateComparison(cmp), false);
    if (!next || next.minDataLen !== lenBefore) an.markPrecise(s, operands);
    return known ? { taken: next } : { fallthrough: next };
  }
  // Compute the taken side on a copy first: the fall-through may then reuse the current state.
  const taken = successor(cmp, true);
  const takenLen = taken?.minDataLen;
  // Mark before the fall-through refines `s` in place (backtracking only reads its path).
  if (!taken || takenLen !== lenBefore) an.markPrecise(s, operands);
  const fallthrough = successor(negateComparison(cmp), false);
  // A side ruled out by the numbers' bounds, or a proven buffer length: the decision rests on them.
  if (taken && (!fallthrough || fallthrough.minDataLen !== lenBefore)) an.markPrecise(s, operands);
  return { taken, fallthrough };
}

/** Record every register and spill (any frame) linked to the compared numbers (ids `x`, `y`). */
function noteLinkedGroup(an: Analysis, s: VerifierState, x: number, y: number): void {
  const group: number[] = [];
  const linked = (v: RegValue | undefined) => v?.kind === 'scalar' && v.id !== 0 && (v.id === x || v.id === y);
  s.frames.forEach((f, k) => {
    for (let r = 0; r < f.regs.length; r++) if (linked(f.regs[r])) group.push(regLoc(k, r));
    for (let i = 0; i < f.spills.length; i++) if (linked(f.spills[i])) group.push(slotLoc(k, i));
  });
  if (group.length > 1) an.noteLinked(group);
}

const SWAPPED: Partial<Record<Comparison, Comparison>> = {
  eq: 'eq',
  ne: 'ne',
  lt: 'gt',
  gt: 'lt',
  le: 'ge',
  ge: 'le',
  slt: 'sgt',
  sgt: 'slt',
  sle: 'sge',
  sge: 'sle',
};

/** Whether `dst cmp src` is surely true or false given the state's still-valid relation. */
function impliedOutcome(s: VerifierState, insn: JumpInstruction, cmp: Comparison): boolean | undefined {
  const rel = validRelation(s);
  const src = (insn.src as { reg: number }).reg;
  if (!rel || rel.frame !== s.frames.length - 1 || rel.width !== insn.width) return undefined;
  let held: Comparison | undefined;
  if (rel.a === insn.dst && rel.b === src) held = rel.cmp as Comparison;
  else if (rel.a === src && rel.b === insn.dst) held = SWAPPED[rel.cmp as Comparison];
  if (held === undefined) return undefined;
  if (held === cmp) return true;
  if (held === negateComparison(cmp)) return false;
  return undefined;
}

/** Give every register and spill linked to `v` (same id) its refined value; note a proven length. */
function linkRefinement(s: VerifierState, v: ScalarReg): void {
  if (v.id === 0) return;
  const dv = v.delta ?? 0;
  // x = base + dx and v = base + dv, so x = v + (dx - dv) (mod 2^64): shift v's bounds, keep x's own.
  const shifted = (x: ScalarReg): Scalar => {
    const dx = x.delta ?? 0;
    if (dx === dv) return v.value;
    const moved = scalarAlu('add', v.value, scalarConst(BigInt(dx - dv)), 64);
    return scalarIntersect(moved, x.value) ?? moved;
  };
  if (v.id === DATA_LENGTH_ID) {
    const len = shifted({ kind: 'scalar', value: SCALAR_LEN_PLACEHOLDER, id: DATA_LENGTH_ID });
    if (len.umin > BigInt(s.minDataLen)) s.minDataLen = Number(len.umin);
  }
  mapValues(s, (x) => {
    if (x.kind !== 'scalar' || x.id !== v.id || x === v) return x;
    if ((x.delta ?? 0) === dv) return scalarValue(v.value, v.id, Math.max(v.lenRel ?? 0, x.lenRel ?? 0), dv);
    return scalarValue(shifted(x), x.id, x.lenRel ?? 0, x.delta ?? 0);
  });
}

/** Any value: only used to shift a refined copy back to the length itself (intersected with nothing). */
const SCALAR_LEN_PLACEHOLDER: Scalar = SCALAR_UNKNOWN;

/** Apply `change` to every register and spilled register of every frame. */
function mapValues(s: VerifierState, change: (v: RegValue) => RegValue): void {
  for (const f of s.frames) {
    for (let r = 0; r < f.regs.length; r++) f.regs[r] = change(f.regs[r]);
    for (let i = 0; i < f.spills.length; i++) {
      const v = f.spills[i];
      const changed = v && change(v);
      if (changed !== v) writableStack(f).spills[i] = changed;
    }
  }
}

/** `if ptr == 0` / `if ptr != 0`: a lookup result becomes null or usable; other pointers are never null. */
function nullCheck(s: VerifierState, cmp: Comparison, a: RegValue, b: RegValue): BranchOutcome | undefined {
  if (cmp !== 'eq' && cmp !== 'ne') return undefined;
  const [ptr, other] = isPointer(a) ? [a, b] : [b, a];
  if (!isPointer(ptr) || other.kind !== 'scalar' || scalarConstValue(other.value) !== 0n) return undefined;
  const nullState = cloneState(s);
  const nonNullState = s;
  if (ptr.kind === 'mem' && ptr.nullable) {
    const id = ptr.id;
    mapValues(nullState, (v) => (v.kind === 'mem' && v.nullable && v.id === id ? scalarValue(scalarConst(0n)) : v));
    mapValues(nonNullState, (v) => (v.kind === 'mem' && v.nullable && v.id === id ? { ...v, nullable: false } : v));
    return cmp === 'eq' ? { taken: nullState, fallthrough: nonNullState } : { taken: nonNullState, fallthrough: nullState };
  }
  // Any other pointer is known non-null: only one side is possible.
  return cmp === 'eq' ? { fallthrough: nonNullState } : { taken: nonNullState };
}

const FLIPPED: Partial<Record<Comparison, Comparison>> = { gt: 'lt', ge: 'le', lt: 'gt', le: 'ge', eq: 'eq', ne: 'ne' };

/**
 * `data <op> data_end` (either order, unsigned): on the side where `data <= end` holds, the bytes
 * before `data` are in bounds for every pointer of its family; where `data < end`, one more byte.
 * And since the buffer is at most `maxDataBytes` long, a pointer surely past that is past the end:
 * the side where `data <= end` is then impossible (what ends a loop walking the buffer).
 * Comparing two data pointers proves nothing but reveals no address.
 */
function dataEndCheck(
  s: VerifierState,
  cmp: Comparison,
  a: RegValue,
  b: RegValue,
  maxDataBytes: number,
): BranchOutcome | undefined {
  if (a.kind === 'data' && b.kind === 'data') return { taken: cloneState(s), fallthrough: s };
  let data: Extract<RegValue, { kind: 'data' }>;
  let rel: Comparison | undefined; // relation "data rel end" when the jump is taken
  if (a.kind === 'data' && b.kind === 'data_end') {
    data = a;
    rel = cmp;
  } else if (a.kind === 'data_end' && b.kind === 'data') {
    data = b;
    rel = FLIPPED[cmp];
  } else {
    return undefined;
  }
  if (!rel || !FLIPPED[rel]) return undefined;
  const provenRange = (r: Comparison): number | undefined => {
    if (data.off < 0) return undefined;
    if (r === 'lt') return data.off + 1;
    if (r === 'le' || r === 'eq') return data.off;
    return undefined;
  };
  const widen = (state: VerifierState, range: number | undefined) => {
    if (range === undefined) return state;
    const id = data.id;
    mapValues(state, (v) => (v.kind === 'data' && v.id === id && v.range < range ? { ...v, range } : v));
    // Data pointers are the buffer's start + off + varOff: the buffer is at least that long.
    const least = range + Number(data.varOff.smin);
    if (data.varOff.smin >= 0n && least > state.minDataLen) state.minDataLen = least;
    return state;
  };
  const surelyPastEnd = data.off + Number(data.varOff.smin) > maxDataBytes;
  const possible = (r: Comparison) => !(surelyPastEnd && (r === 'lt' || r === 'le' || r === 'eq'));
  const notRel = negateComparison(rel);
  const taken = possible(rel) ? widen(cloneState(s), provenRange(rel)) : undefined;
  const fallthrough = possible(notRel) ? widen(s, provenRange(notRel)) : undefined;
  return { taken, fallthrough };
}
