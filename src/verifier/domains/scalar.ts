/**
 * Abstract 64-bit machine integers: known bits (tnum) plus unsigned and signed bounds of the whole
 * value and of its low 32 bits, kept consistent with each other as the Linux kernel's verifier does
 * (`reg_bounds_sync`). Every transfer function over-approximates the concrete operation; every
 * refinement keeps every pair of values that satisfies the comparison. Knows nothing about eBPF:
 * operations are named by their arithmetic, and the division conventions (x / 0 = 0, x % 0 = x,
 * INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0) and shift-count masking are those of 64-bit machines
 * that never trap.
 */
import {
  TNUM_UNKNOWN,
  type Tnum,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumByteSwap,
  tnumCast,
  tnumConst,
  tnumContains,
  tnumEquals,
  tnumIn,
  tnumIntersect,
  tnumIsConst,
  tnumLshift,
  tnumMul,
  tnumOr,
  tnumRange,
  tnumRshift,
  tnumSignExtend,
  tnumSub,
  tnumSubreg,
  tnumToString,
  tnumUnion,
  tnumWithSubreg,
  tnumXor,
  U32_MAX,
  U64_MAX,
} from './tnum.js';

export type BitWidth = 32 | 64;

export interface Scalar {
  /** Known bits of the 64-bit value. */
  readonly t: Tnum;
  readonly umin: bigint;
  readonly umax: bigint;
  readonly smin: bigint;
  readonly smax: bigint;
  /** Bounds of the low 32 bits, read as u32 and as s32. */
  readonly u32min: bigint;
  readonly u32max: bigint;
  readonly s32min: bigint;
  readonly s32max: bigint;
}

/** Bounds of a value of one width (the whole 64 bits, or the low 32 bits): the unit the operations work on. */
interface Bounds {
  readonly t: Tnum;
  readonly umin: bigint;
  readonly umax: bigint;
  readonly smin: bigint;
  readonly smax: bigint;
}

const S64_MIN = -(1n << 63n);
const S64_MAX = (1n << 63n) - 1n;
const S32_MIN = -(1n << 31n);
const S32_MAX = (1n << 31n) - 1n;
const UPPER32 = U64_MAX ^ U32_MAX;

const umaxOf = (w: BitWidth) => (w === 64 ? U64_MAX : U32_MAX);
const sminOf = (w: BitWidth) => (w === 64 ? S64_MIN : S32_MIN);
const smaxOf = (w: BitWidth) => (w === 64 ? S64_MAX : S32_MAX);
const maxOf = (a: bigint, b: bigint) => (a > b ? a : b);
const minOf = (a: bigint, b: bigint) => (a < b ? a : b);
const castTo = (t: Tnum, w: BitWidth) => (w === 64 ? t : tnumSubreg(t));
const asSigned = (x: bigint, bits: number) => BigInt.asIntN(bits, x);
const asUnsigned = (x: bigint, w: BitWidth) => BigInt.asUintN(w, x);

export const SCALAR_UNKNOWN: Scalar = {
  t: TNUM_UNKNOWN,
  umin: 0n,
  umax: U64_MAX,
  smin: S64_MIN,
  smax: S64_MAX,
  u32min: 0n,
  u32max: U32_MAX,
  s32min: S32_MIN,
  s32max: S32_MAX,
};

/**
 * The constants below SHARED_CONSTANTS, made once on first use. Scalars are immutable, so states
 * share them: loop counters and small offsets recur on every path, and a constant costs a dozen
 * allocations to build. (A cache by value of any constant cost more in BigInt hashing than it saved.)
 */
const SHARED_CONSTANTS = 4096;
const SHARED_CONSTANTS_BIG = 4096n;
const sharedConstants: (Scalar | undefined)[] = new Array(SHARED_CONSTANTS).fill(undefined);

export function scalarConst(value: bigint): Scalar {
  const u = asUnsigned(value, 64);
  const small = u < SHARED_CONSTANTS_BIG ? Number(u) : -1;
  if (small >= 0) {
    const known = sharedConstants[small];
    if (known) return known;
  }
  const u32 = u & U32_MAX;
  const made: Scalar = {
    t: tnumConst(u),
    umin: u,
    umax: u,
    smin: asSigned(u, 64),
    smax: asSigned(u, 64),
    u32min: u32,
    u32max: u32,
    s32min: asSigned(u32, 32),
    s32max: asSigned(u32, 32),
  };
  if (small >= 0) sharedConstants[small] = made;
  return made;
}

export const scalarIsConst = (s: Scalar): boolean => tnumIsConst(s.t);
/** The value of a constant scalar (unsigned 64-bit), or undefined. */
export const scalarConstValue = (s: Scalar): bigint | undefined => (tnumIsConst(s.t) ? s.t.value : undefined);

/** Every value in the unsigned range [min, max] (both in [0, 2^64)). */
export function scalarFromRange(min: bigint, max: bigint): Scalar {
  return scalarSync({ ...SCALAR_UNKNOWN, umin: min, umax: max }) ?? SCALAR_UNKNOWN;
}

/** Every value in the signed range [min, max] (both in [-2^63, 2^63)). */
export function scalarFromSignedRange(min: bigint, max: bigint): Scalar {
  return scalarSync({ ...SCALAR_UNKNOWN, smin: min, smax: max }) ?? SCALAR_UNKNOWN;
}

export function scalarFromTnum(t: Tnum): Scalar {
  return scalarSync({ ...SCALAR_UNKNOWN, t }) ?? SCALAR_UNKNOWN;
}

/** Any value a load of `bytes` bytes can produce, zero- or sign-extended to 64 bits. */
export function scalarOfSize(bytes: 1 | 2 | 4 | 8, signed: boolean): Scalar {
  if (bytes === 8) return SCALAR_UNKNOWN;
  const bits = BigInt(bytes * 8);
  return signed ? scalarFromSignedRange(-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n) : scalarFromRange(0n, (1n << bits) - 1n);
}

/** Whether the concrete 64-bit value `x` (any bigint, taken modulo 2^64) is a value of `s`. */
export function scalarContains(s: Scalar, x: bigint): boolean {
  const u = asUnsigned(x, 64);
  const u32 = u & U32_MAX;
  const sv = asSigned(u, 64);
  const s32 = asSigned(u32, 32);
  return (
    tnumContains(s.t, u) &&
    u >= s.umin &&
    u <= s.umax &&
    sv >= s.smin &&
    sv <= s.smax &&
    u32 >= s.u32min &&
    u32 <= s.u32max &&
    s32 >= s.s32min &&
    s32 <= s.s32max
  );
}

/** Whether every value of `inner` is a value of `outer`. */
export function scalarIn(outer: Scalar, inner: Scalar): boolean {
  return (
    outer.umin <= inner.umin &&
    inner.umax <= outer.umax &&
    outer.smin <= inner.smin &&
    inner.smax <= outer.smax &&
    outer.u32min <= inner.u32min &&
    inner.u32max <= outer.u32max &&
    outer.s32min <= inner.s32min &&
    inner.s32max <= outer.s32max &&
    tnumIn(outer.t, inner.t)
  );
}

export function scalarEquals(a: Scalar, b: Scalar): boolean {
  return (
    a.umin === b.umin &&
    a.umax === b.umax &&
    a.smin === b.smin &&
    a.smax === b.smax &&
    a.u32min === b.u32min &&
    a.u32max === b.u32max &&
    a.s32min === b.s32min &&
    a.s32max === b.s32max &&
    tnumEquals(a.t, b.t)
  );
}

/** Values in both; undefined when there are none. */
export function scalarIntersect(a: Scalar, b: Scalar): Scalar | undefined {
  const t = tnumIntersect(a.t, b.t);
  if (!t) return undefined;
  return scalarSync({
    t,
    umin: maxOf(a.umin, b.umin),
    umax: minOf(a.umax, b.umax),
    smin: maxOf(a.smin, b.smin),
    smax: minOf(a.smax, b.smax),
    u32min: maxOf(a.u32min, b.u32min),
    u32max: minOf(a.u32max, b.u32max),
    s32min: maxOf(a.s32min, b.s32min),
    s32max: minOf(a.s32max, b.s32max),
  });
}

/** The least scalar of this domain containing every value of `a` and of `b` (a sound union). */
export function scalarJoin(a: Scalar, b: Scalar): Scalar {
  return (
    scalarSync({
      t: tnumUnion(a.t, b.t),
      umin: minOf(a.umin, b.umin),
      umax: maxOf(a.umax, b.umax),
      smin: minOf(a.smin, b.smin),
      smax: maxOf(a.smax, b.smax),
      u32min: minOf(a.u32min, b.u32min),
      u32max: maxOf(a.u32max, b.u32max),
      s32min: minOf(a.s32min, b.s32min),
      s32max: maxOf(a.s32max, b.s32max),
    }) ?? SCALAR_UNKNOWN
  );
}

/**
 * Make the nine facts agree (the kernel's `reg_bounds_sync`): known bits bound the ranges, a range that
 * does not cross a sign boundary bounds the other signedness, 64-bit ranges inside one 4 GiB block
 * bound the low 32 bits and the other way round, and ranges give known high bits.
 * Returns undefined when the facts contradict each other (no value satisfies them all).
 */
export function scalarSync(s: Scalar): Scalar | undefined {
  if (s.t.mask === 0n) return scalarContains(s, s.t.value) ? scalarConst(s.t.value) : undefined;
  let { t, umin, umax, smin, smax, u32min, u32max, s32min, s32max } = s;
  for (let round = 0; round < 4; round++) {
    const umin0 = umin;
    const umax0 = umax;
    const smin0 = smin;
    const smax0 = smax;
    const u32min0 = u32min;
    const u32max0 = u32max;
    const s32min0 = s32min;
    const s32max0 = s32max;
    // Known bits bound every range.
    umin = maxOf(umin, t.value);
    umax = minOf(umax, t.value | t.mask);
    smin = maxOf(smin, asSigned(t.value | (t.mask & ~S64_MAX), 64));
    smax = minOf(smax, asSigned(t.value | (t.mask & S64_MAX), 64));
    const t32 = tnumSubreg(t);
    u32min = maxOf(u32min, t32.value);
    u32max = minOf(u32max, t32.value | t32.mask);
    s32min = maxOf(s32min, asSigned(t32.value | (t32.mask & (1n << 31n)), 32));
    s32max = minOf(s32max, asSigned(t32.value | (t32.mask & S32_MAX), 32));
    // A range on one side of the sign boundary reads the same signed and unsigned.
    if (umin >> 63n === umax >> 63n) {
      smin = maxOf(smin, asSigned(umin, 64));
      smax = minOf(smax, asSigned(umax, 64));
    }
    if (smin < 0n === smax < 0n) {
      umin = maxOf(umin, asUnsigned(smin, 64));
      umax = minOf(umax, asUnsigned(smax, 64));
    }
    if (u32min >> 31n === u32max >> 31n) {
      s32min = maxOf(s32min, asSigned(u32min, 32));
      s32max = minOf(s32max, asSigned(u32max, 32));
    }
    if (s32min < 0n === s32max < 0n) {
      u32min = maxOf(u32min, asUnsigned(s32min, 32));
      u32max = minOf(u32max, asUnsigned(s32max, 32));
    }
    // 64-bit ranges within one 4 GiB block bound the low 32 bits, and the other way round.
    if (umin >> 32n === umax >> 32n) {
      u32min = maxOf(u32min, umin & U32_MAX);
      u32max = minOf(u32max, umax & U32_MAX);
      const hi = umin & UPPER32;
      umin = maxOf(umin, hi | u32min);
      umax = minOf(umax, hi | u32max);
    } else if ((umin >> 32n) + 1n === umax >> 32n && asSigned(umin, 32) < 0n && asSigned(umax, 32) >= 0n) {
      // Crossing one block boundary where the low half wraps from negative to non-negative s32.
      s32min = maxOf(s32min, asSigned(umin, 32));
      s32max = minOf(s32max, asSigned(umax, 32));
    }
    if (smin >> 32n === smax >> 32n) {
      u32min = maxOf(u32min, smin & U32_MAX);
      u32max = minOf(u32max, smax & U32_MAX);
      const hi = (smin >> 32n) << 32n;
      smin = maxOf(smin, hi + u32min);
      smax = minOf(smax, hi + u32max);
    } else if ((smin >> 32n) + 1n === smax >> 32n && asSigned(smin, 32) < 0n && asSigned(smax, 32) >= 0n) {
      s32min = maxOf(s32min, asSigned(smin, 32));
      s32max = minOf(s32max, asSigned(smax, 32));
    }
    if (umin > umax || smin > smax || u32min > u32max || s32min > s32max) return undefined;
    // Ranges give known bits.
    const t64 = tnumIntersect(t, tnumRange(umin, umax));
    const low = t64 && tnumIntersect(tnumSubreg(t64), tnumRange(u32min, u32max));
    if (!t64 || !low) return undefined;
    t = tnumWithSubreg(t64, low);
    const settled =
      umin === umin0 &&
      umax === umax0 &&
      smin === smin0 &&
      smax === smax0 &&
      u32min === u32min0 &&
      u32max === u32max0 &&
      s32min === s32min0 &&
      s32max === s32max0;
    if (settled) break;
  }
  return { t, umin, umax, smin, smax, u32min, u32max, s32min, s32max };
}

function boundsOf(s: Scalar, w: BitWidth): Bounds {
  return w === 64
    ? { t: s.t, umin: s.umin, umax: s.umax, smin: s.smin, smax: s.smax }
    : { t: tnumSubreg(s.t), umin: s.u32min, umax: s.u32max, smin: s.s32min, smax: s.s32max };
}

/** Bounds carrying only known bits; the scalar sync derives the ranges. */
const fromBits = (t: Tnum, w: BitWidth): Bounds => ({
  t: castTo(t, w),
  umin: 0n,
  umax: umaxOf(w),
  smin: sminOf(w),
  smax: smaxOf(w),
});
const unknownOf = (w: BitWidth): Bounds => fromBits(TNUM_UNKNOWN, w);
const constOf = (x: bigint, w: BitWidth): Bounds => {
  const u = asUnsigned(x, w);
  return { t: tnumConst(u), umin: u, umax: u, smin: asSigned(u, w), smax: asSigned(u, w) };
};

/** A 64-bit scalar from 64-bit bounds and, optionally, separately computed bounds of its low 32 bits. */
function fromBounds(b64: Bounds, b32?: Bounds): Scalar | undefined {
  const t = b32 ? tnumIntersect(b64.t, { value: b32.t.value, mask: b32.t.mask | UPPER32 }) : b64.t;
  if (!t) return undefined;
  return scalarSync({
    t,
    umin: b64.umin,
    umax: b64.umax,
    smin: b64.smin,
    smax: b64.smax,
    u32min: b32?.umin ?? 0n,
    u32max: b32?.umax ?? U32_MAX,
    s32min: b32?.smin ?? S32_MIN,
    s32max: b32?.smax ?? S32_MAX,
  });
}

/** The 64-bit scalar whose low 32 bits are `b32` and whose high 32 bits are zero. */
function zeroExtend32(b32: Bounds): Scalar | undefined {
  return scalarSync({
    t: tnumSubreg(b32.t),
    umin: b32.umin,
    umax: b32.umax,
    smin: b32.umin,
    smax: b32.umax,
    u32min: b32.umin,
    u32max: b32.umax,
    s32min: b32.smin,
    s32max: b32.smax,
  });
}

export type ScalarAluOp = 'add' | 'sub' | 'mul' | 'div' | 'sdiv' | 'mod' | 'smod' | 'and' | 'or' | 'xor' | 'lsh' | 'rsh' | 'arsh';

/** Operations whose low 32 result bits depend only on the low 32 bits of the operands. */
const LOW_BITS_LOCAL = new Set<ScalarAluOp>(['add', 'sub', 'mul', 'and', 'or', 'xor']);

/**
 * The concrete operation on `width`-bit values (inputs and output unsigned, in [0, 2^width)).
 * Shift counts are masked to width - 1; division never traps (see the module comment).
 */
export function concreteAlu(op: ScalarAluOp, x: bigint, y: bigint, width: BitWidth): bigint {
  const u = (v: bigint) => asUnsigned(v, width);
  const sx = asSigned(x, width);
  const sy = asSigned(y, width);
  const count = y & BigInt(width - 1);
  switch (op) {
    case 'add':
      return u(x + y);
    case 'sub':
      return u(x - y);
    case 'mul':
      return u(x * y);
    case 'div':
      return y === 0n ? 0n : x / y;
    case 'mod':
      return y === 0n ? x : x % y;
    case 'sdiv':
      return y === 0n ? 0n : u(sx / sy); // INT_MIN / -1 wraps back to INT_MIN
    case 'smod':
      return y === 0n ? x : u(sx % sy); // BigInt's % truncates: the sign of the dividend
    case 'and':
      return x & y;
    case 'or':
      return x | y;
    case 'xor':
      return x ^ y;
    case 'lsh':
      return u(x << count);
    case 'rsh':
      return x >> count;
    case 'arsh':
      return u(sx >> count);
  }
}

/** One operation on the bounds of one width. */
function boundsAlu(op: ScalarAluOp, a: Bounds, b: Bounds, w: BitWidth): Bounds {
  const UMAX = umaxOf(w);
  const SMIN = sminOf(w);
  const SMAX = smaxOf(w);
  const bConst = tnumIsConst(b.t) ? b.t.value : undefined;
  if (tnumIsConst(a.t) && bConst !== undefined) return constOf(concreteAlu(op, a.t.value, bConst, w), w);
  const fitsS = (lo: bigint, hi: bigint) => lo >= SMIN && hi <= SMAX;
  switch (op) {
    case 'add': {
      const t = castTo(tnumAdd(a.t, b.t), w);
      const uOk = a.umax + b.umax <= UMAX;
      const smin = a.smin + b.smin;
      const smax = a.smax + b.smax;
      const sOk = fitsS(smin, smax);
      return {
        t,
        umin: uOk ? a.umin + b.umin : 0n,
        umax: uOk ? a.umax + b.umax : UMAX,
        smin: sOk ? smin : SMIN,
        smax: sOk ? smax : SMAX,
      };
    }
    case 'sub': {
      const t = castTo(tnumSub(a.t, b.t), w);
      const uOk = a.umin >= b.umax;
      const smin = a.smin - b.smax;
      const smax = a.smax - b.smin;
      const sOk = fitsS(smin, smax);
      return {
        t,
        umin: uOk ? a.umin - b.umax : 0n,
        umax: uOk ? a.umax - b.umin : UMAX,
        smin: sOk ? smin : SMIN,
        smax: sOk ? smax : SMAX,
      };
    }
    case 'mul': {
      const t = castTo(tnumMul(a.t, b.t), w);
      const uOk = a.umax * b.umax <= UMAX;
      // x * y over a box reaches its extremes at the corners; if no corner overflows, nothing does.
      const corners = [a.smin * b.smin, a.smin * b.smax, a.smax * b.smin, a.smax * b.smax];
      const smin = corners.reduce(minOf);
      const smax = corners.reduce(maxOf);
      const sOk = fitsS(smin, smax);
      return {
        t,
        umin: uOk ? a.umin * b.umin : 0n,
        umax: uOk ? a.umax * b.umax : UMAX,
        smin: sOk ? smin : SMIN,
        smax: sOk ? smax : SMAX,
      };
    }
    case 'and': {
      const t = tnumAnd(a.t, b.t);
      return { ...fromBits(t, w), umin: t.value, umax: minOf(a.umax, b.umax) };
    }
    case 'or': {
      const t = tnumOr(a.t, b.t);
      return { ...fromBits(t, w), umin: maxOf(a.umin, b.umin) };
    }
    case 'xor':
      return fromBits(tnumXor(a.t, b.t), w);
    case 'lsh': {
      if (bConst === undefined) return unknownOf(w);
      const k = bConst & BigInt(w - 1);
      const t = castTo(tnumLshift(a.t, Number(k)), w);
      return a.umax << k <= UMAX ? { ...fromBits(t, w), umin: a.umin << k, umax: a.umax << k } : fromBits(t, w);
    }
    case 'rsh': {
      if (bConst === undefined) return unknownOf(w);
      const k = bConst & BigInt(w - 1);
      return { ...fromBits(tnumRshift(a.t, Number(k)), w), umin: a.umin >> k, umax: a.umax >> k };
    }
    case 'arsh': {
      if (bConst === undefined) return unknownOf(w);
      const k = bConst & BigInt(w - 1);
      return { ...fromBits(tnumArshift(a.t, Number(k), w), w), smin: a.smin >> k, smax: a.smax >> k };
    }
    case 'div': {
      // x / y <= x, and x / 0 = 0.
      if (bConst === undefined) return { ...unknownOf(w), umax: a.umax };
      if (bConst === 0n) return constOf(0n, w);
      return { ...unknownOf(w), umin: a.umin / bConst, umax: a.umax / bConst };
    }
    case 'mod': {
      // x % y < y and x % y <= x; x % 0 = x.
      if (bConst === 0n) return a;
      if (b.umin > 0n && a.umax < b.umin) return a;
      return { ...unknownOf(w), umax: b.umin > 0n ? minOf(a.umax, b.umax - 1n) : a.umax };
    }
    case 'sdiv':
      return unknownOf(w);
    case 'smod': {
      // |x smod c| < |c|, with the sign of x.
      if (bConst === undefined || bConst === 0n) return unknownOf(w);
      const c = asSigned(bConst, w);
      const m = (c < 0n ? -c : c) - 1n;
      return a.smin >= 0n ? { ...unknownOf(w), smin: 0n, smax: minOf(m, a.smax) } : { ...unknownOf(w), smin: -m, smax: m };
    }
  }
}

/**
 * `a op b` on the whole 64 bits (width 64) or on the low 32 bits with the result zero-extended
 * (width 32).
 */
export function scalarAlu(op: ScalarAluOp, a: Scalar, b: Scalar, width: BitWidth): Scalar {
  if (a.t.mask === 0n && b.t.mask === 0n) {
    const mask = width === 64 ? U64_MAX : U32_MAX;
    return scalarConst(concreteAlu(op, a.t.value & mask, b.t.value & mask, width));
  }
  if (width === 32) return zeroExtend32(boundsAlu(op, boundsOf(a, 32), boundsOf(b, 32), 32)) ?? SCALAR_UNKNOWN;
  const r64 = boundsAlu(op, boundsOf(a, 64), boundsOf(b, 64), 64);
  const r32 = LOW_BITS_LOCAL.has(op) ? boundsAlu(op, boundsOf(a, 32), boundsOf(b, 32), 32) : undefined;
  // Both results are sound, so their intersection is not empty unless the inputs were.
  return fromBounds(r64, r32) ?? SCALAR_UNKNOWN;
}

export function scalarNeg(a: Scalar, width: BitWidth): Scalar {
  return scalarAlu('sub', scalarConst(0n), a, width);
}

/** The low `bytes` bytes of `a`, zero-extended. */
export function scalarTruncate(a: Scalar, bytes: 1 | 2 | 4 | 8): Scalar {
  if (bytes === 8) return a;
  if (bytes === 4) return zeroExtend32(boundsOf(a, 32)) ?? SCALAR_UNKNOWN;
  const limit = (1n << BigInt(bytes * 8)) - 1n;
  const t = tnumCast(a.t, bytes);
  // If every value already fits, truncation changes nothing.
  if (a.umax <= limit) return a;
  if (a.u32max <= limit) return scalarSync({ ...SCALAR_UNKNOWN, t, umin: a.u32min, umax: a.u32max }) ?? SCALAR_UNKNOWN;
  return scalarSync({ ...SCALAR_UNKNOWN, t, umax: limit }) ?? SCALAR_UNKNOWN;
}

/** The low `bits` bits of `a`, sign-extended to 64 bits. */
export function scalarSignExtend(a: Scalar, bits: 8 | 16 | 32): Scalar {
  const t = tnumSignExtend(tnumCast(a.t, (bits / 8) as 1 | 2 | 4), bits);
  const half = 1n << BigInt(bits - 1);
  // Unsigned range of the low bits, when known from the 64- or 32-bit bounds.
  const low = a.umax < half * 2n ? [a.umin, a.umax] : bits === 32 || a.u32max < half * 2n ? [a.u32min, a.u32max] : undefined;
  const signedLow = low && low[0] >= half === low[1] >= half ? [asSigned(low[0], bits), asSigned(low[1], bits)] : undefined;
  return scalarSync({ ...SCALAR_UNKNOWN, t, smin: signedLow?.[0] ?? -half, smax: signedLow?.[1] ?? half - 1n }) ?? SCALAR_UNKNOWN;
}

/** The low `bytes` bytes of `a` in reverse byte order, zero-extended. */
export function scalarByteSwap(a: Scalar, bytes: 2 | 4 | 8): Scalar {
  return scalarFromTnum(tnumByteSwap(tnumCast(a.t, bytes), bytes));
}

export type Comparison = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'slt' | 'sle' | 'sgt' | 'sge' | 'set' | 'notset';

const NEGATION: Record<Comparison, Comparison> = {
  eq: 'ne',
  ne: 'eq',
  lt: 'ge',
  ge: 'lt',
  le: 'gt',
  gt: 'le',
  slt: 'sge',
  sge: 'slt',
  sle: 'sgt',
  sgt: 'sle',
  set: 'notset',
  notset: 'set',
};
export const negateComparison = (c: Comparison): Comparison => NEGATION[c];

const SWAPPED: Partial<Record<Comparison, Comparison>> = { gt: 'lt', ge: 'le', sgt: 'slt', sge: 'sle' };

/** Whether `a cmp b` holds for concrete `width`-bit values (inputs unsigned). */
export function concreteCompare(cmp: Comparison, x: bigint, y: bigint, width: BitWidth): boolean {
  const sx = asSigned(x, width);
  const sy = asSigned(y, width);
  switch (cmp) {
    case 'eq':
      return x === y;
    case 'ne':
      return x !== y;
    case 'lt':
      return x < y;
    case 'le':
      return x <= y;
    case 'gt':
      return x > y;
    case 'ge':
      return x >= y;
    case 'slt':
      return sx < sy;
    case 'sle':
      return sx <= sy;
    case 'sgt':
      return sx > sy;
    case 'sge':
      return sx >= sy;
    case 'set':
      return (x & y) !== 0n;
    case 'notset':
      return (x & y) === 0n;
  }
}

const isPowerOfTwo = (x: bigint) => x !== 0n && (x & (x - 1n)) === 0n;

/** Bounds of `a` and `b` assuming `a cmp b` holds; undefined when it cannot. Emptiness is left to the sync. */
function boundsRefine(cmp: Comparison, a: Bounds, b: Bounds, w: BitWidth): [Bounds, Bounds] | undefined {
  const swapped = SWAPPED[cmp];
  if (swapped) {
    const r = boundsRefine(swapped, b, a, w);
    return r && [r[1], r[0]];
  }
  const aConst = tnumIsConst(a.t) ? a.t.value : undefined;
  const bConst = tnumIsConst(b.t) ? b.t.value : undefined;
  switch (cmp) {
    case 'eq': {
      const t = tnumIntersect(a.t, b.t);
      if (!t) return undefined;
      const both = {
        t,
        umin: maxOf(a.umin, b.umin),
        umax: minOf(a.umax, b.umax),
        smin: maxOf(a.smin, b.smin),
        smax: minOf(a.smax, b.smax),
      };
      return [both, both];
    }
    case 'ne': {
      // Only a constant on one side excludes something: the other side's bound if it equals it.
      const exclude = (x: Bounds, c: bigint | undefined): Bounds | undefined => {
        if (c === undefined) return x;
        if (tnumIsConst(x.t) && x.t.value === c) return undefined;
        const sc = asSigned(c, w);
        return {
          t: x.t,
          umin: x.umin === c ? x.umin + 1n : x.umin,
          umax: x.umax === c ? x.umax - 1n : x.umax,
          smin: x.smin === sc ? x.smin + 1n : x.smin,
          smax: x.smax === sc ? x.smax - 1n : x.smax,
        };
      };
      const ra = exclude(a, bConst);
      const rb = exclude(b, aConst);
      return ra && rb ? [ra, rb] : undefined;
    }
    case 'lt':
      if (a.umin >= b.umax) return undefined;
      return [
        { ...a, umax: minOf(a.umax, b.umax - 1n) },
        { ...b, umin: maxOf(b.umin, a.umin + 1n) },
      ];
    case 'le':
      if (a.umin > b.umax) return undefined;
      return [
        { ...a, umax: minOf(a.umax, b.umax) },
        { ...b, umin: maxOf(b.umin, a.umin) },
      ];
    case 'slt':
      if (a.smin >= b.smax) return undefined;
      return [
        { ...a, smax: minOf(a.smax, b.smax - 1n) },
        { ...b, smin: maxOf(b.smin, a.smin + 1n) },
      ];
    case 'sle':
      if (a.smin > b.smax) return undefined;
      return [
        { ...a, smax: minOf(a.smax, b.smax) },
        { ...b, smin: maxOf(b.smin, a.smin) },
      ];
    case 'set': {
      if (((a.t.value | a.t.mask) & (b.t.value | b.t.mask)) === 0n) return undefined;
      // x & 2^k != 0 means bit k of x is set.
      const setBit = (x: Bounds, c: bigint | undefined): Bounds =>
        c !== undefined && isPowerOfTwo(c) ? { ...x, t: tnumOr(x.t, tnumConst(c)) } : x;
      return [setBit(a, bConst), setBit(b, aConst)];
    }
    case 'notset': {
      if ((a.t.value & b.t.value) !== 0n) return undefined;
      // x & c == 0 means every bit of c is clear in x.
      const clearBits = (x: Bounds, c: bigint | undefined): Bounds =>
        c !== undefined ? { ...x, t: tnumAnd(x.t, tnumConst(~c & umaxOf(w))) } : x;
      return [clearBits(a, bConst), clearBits(b, aConst)];
    }
  }
  throw new Error(`unreachable comparison ${cmp}`);
}

function withBounds(s: Scalar, b: Bounds, w: BitWidth): Scalar | undefined {
  if (w === 64) return scalarSync({ ...s, t: b.t, umin: b.umin, umax: b.umax, smin: b.smin, smax: b.smax });
  return scalarSync({ ...s, t: tnumWithSubreg(s.t, b.t), u32min: b.umin, u32max: b.umax, s32min: b.smin, s32max: b.smax });
}

/**
 * `a` and `b` narrowed to the values for which `a cmp b` holds on their low `width` bits;
 * undefined when no pair of values satisfies it (that branch cannot be taken).
 */
export function scalarRefine(cmp: Comparison, a: Scalar, b: Scalar, width: BitWidth): { a: Scalar; b: Scalar } | undefined {
  // Two constants (a loop counter against its bound): the comparison is decided, nothing narrows.
  if (a.t.mask === 0n && b.t.mask === 0n) {
    const mask = width === 64 ? U64_MAX : U32_MAX;
    return concreteCompare(cmp, a.t.value & mask, b.t.value & mask, width) ? { a, b } : undefined;
  }
  const r = boundsRefine(cmp, boundsOf(a, width), boundsOf(b, width), width);
  if (!r) return undefined;
  const ra = withBounds(a, r[0], width);
  const rb = ra && withBounds(b, r[1], width);
  return ra && rb ? { a: ra, b: rb } : undefined;
}

/** Whether `a cmp b` is always, never, or maybe true. */
export function scalarCompare(cmp: Comparison, a: Scalar, b: Scalar, width: BitWidth): 'always' | 'never' | 'maybe' {
  if (!scalarRefine(cmp, a, b, width)) return 'never';
  if (!scalarRefine(negateComparison(cmp), a, b, width)) return 'always';
  return 'maybe';
}

/**
 * Compact text in the kernel's style: a constant, or the bounds that say something, with names of
 * equal bounds grouped (`smin=umin=0,smax=umax=15`) and known bits only when the range does not imply them.
 */
export function scalarToString(s: Scalar): string {
  if (tnumIsConst(s.t)) return `${asSigned(s.t.value, 64)}`;
  const bounds: [string, bigint, bigint][] = [
    ['smin', s.smin, S64_MIN],
    ['smax', s.smax, S64_MAX],
    ['umin', s.umin, 0n],
    ['umax', s.umax, U64_MAX],
    ['smin32', s.s32min, S32_MIN],
    ['smax32', s.s32max, S32_MAX],
    ['umin32', s.u32min, 0n],
    ['umax32', s.u32max, U32_MAX],
  ];
  const groups = new Map<bigint, string[]>();
  for (const [name, value, trivial] of bounds) {
    if (value === trivial) continue;
    const names = groups.get(value);
    if (names) names.push(name);
    else groups.set(value, [name]);
  }
  const parts = [...groups].map(([value, names]) => `${names.join('=')}=${value}`);
  if (!tnumEquals(s.t, tnumRange(s.umin, s.umax))) parts.push(`var_off=${tnumToString(s.t)}`);
  return `scalar(${parts.join(',')})`;
}
