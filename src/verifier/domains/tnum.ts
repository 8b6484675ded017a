/**
 * Tristate numbers ("known bits"), as in the Linux kernel's tnum.c: a 64-bit value of which the bits
 * set in `mask` are unknown and the others equal the bits of `value` (`value & mask` is always 0).
 * Every operation over-approximates: its result contains every concrete result of operands drawn
 * from its inputs. Pure 64-bit arithmetic; knows nothing about eBPF.
 */

export const U64_MAX = (1n << 64n) - 1n;
export const U32_MAX = (1n << 32n) - 1n;
const UPPER32 = U64_MAX ^ U32_MAX;

export interface Tnum {
  readonly value: bigint;
  readonly mask: bigint;
}

const make = (value: bigint, mask: bigint): Tnum => ({ value, mask });

export const TNUM_UNKNOWN: Tnum = make(0n, U64_MAX);

export function tnumConst(value: bigint): Tnum {
  return make(BigInt.asUintN(64, value), 0n);
}

/** Number of significant bits of a non-negative bigint. */
function bitLength(x: bigint): number {
  if (x === 0n) return 0;
  // Numbers below 2^64 (all this module handles) without formatting a string.
  if (x <= 0xffffffffn) return 32 - Math.clz32(Number(x));
  if (x <= U64_MAX) return 64 - Math.clz32(Number(x >> 32n));
  const hex = x.toString(16);
  return (hex.length - 1) * 4 + (32 - Math.clz32(Number.parseInt(hex[0], 16)));
}

/** Smallest tnum containing every value of the unsigned range [min, max]. */
export function tnumRange(min: bigint, max: bigint): Tnum {
  const chi = min ^ max;
  const bits = bitLength(chi);
  if (bits > 63) return TNUM_UNKNOWN;
  const delta = (1n << BigInt(bits)) - 1n;
  return make(min & ~delta, delta);
}

export const tnumIsConst = (a: Tnum): boolean => a.mask === 0n;
export const tnumIsUnknown = (a: Tnum): boolean => a.mask === U64_MAX;
/** Whether the concrete 64-bit value `x` is one of `a`'s values. */
export const tnumContains = (a: Tnum, x: bigint): boolean => (BigInt.asUintN(64, x) & ~a.mask) === a.value;
/** Whether every value of `b` is a value of `a`. */
export function tnumIn(a: Tnum, b: Tnum): boolean {
  if ((b.mask & ~a.mask) !== 0n) return false;
  return (b.value & ~a.mask) === a.value;
}
export const tnumEquals = (a: Tnum, b: Tnum): boolean => a.value === b.value && a.mask === b.mask;

export function tnumLshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return make((a.value << s) & U64_MAX, (a.mask << s) & U64_MAX);
}

export function tnumRshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return make(a.value >> s, a.mask >> s);
}

/** Arithmetic right shift of the low `bits` bits (32 or 64), result zero-extended from `bits`. */
export function tnumArshift(a: Tnum, shift: number, bits: 32 | 64): Tnum {
  const s = BigInt(shift);
  // Sign-extending value and mask separately is exact: an unknown sign bit makes the new bits unknown.
  return make(BigInt.asUintN(bits, BigInt.asIntN(bits, a.value) >> s), BigInt.asUintN(bits, BigInt.asIntN(bits, a.mask) >> s));
}

export function tnumAdd(a: Tnum, b: Tnum): Tnum {
  const sm = a.mask + b.mask;
  const sv = a.value + b.value;
  const sigma = sm + sv;
  const chi = sigma ^ sv;
  const mu = (chi | a.mask | b.mask) & U64_MAX;
  return make(sv & ~mu & U64_MAX, mu);
}

export function tnumSub(a: Tnum, b: Tnum): Tnum {
  const dv = BigInt.asUintN(64, a.value - b.value);
  const alpha = BigInt.asUintN(64, dv + a.mask);
  const beta = BigInt.asUintN(64, dv - b.mask);
  const chi = alpha ^ beta;
  const mu = chi | a.mask | b.mask;
  return make(dv & ~mu, mu);
}

export function tnumAnd(a: Tnum, b: Tnum): Tnum {
  const alpha = a.value | a.mask;
  const beta = b.value | b.mask;
  const v = a.value & b.value;
  return make(v, alpha & beta & ~v);
}

export function tnumOr(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask | b.mask;
  return make(v, mu & ~v);
}

export function tnumXor(a: Tnum, b: Tnum): Tnum {
  const v = a.value ^ b.value;
  const mu = a.mask | b.mask;
  return make(v & ~mu, mu);
}

/** Multiplication by long multiplication over the bits of `a` (the kernel's algorithm). */
export function tnumMul(a: Tnum, b: Tnum): Tnum {
  const accV = BigInt.asUintN(64, a.value * b.value);
  let accM = make(0n, 0n);
  let x = a;
  let y = b;
  while (x.value !== 0n || x.mask !== 0n) {
    if ((x.value & 1n) !== 0n) accM = tnumAdd(accM, make(0n, y.mask));
    else if ((x.mask & 1n) !== 0n) accM = tnumAdd(accM, make(0n, y.value | y.mask));
    x = tnumRshift(x, 1);
    y = tnumLshift(y, 1);
  }
  return tnumAdd(make(accV, 0n), accM);
}

/** Values in both `a` and `b`; undefined when their known bits disagree (no such value). */
export function tnumIntersect(a: Tnum, b: Tnum): Tnum | undefined {
  if (((a.value ^ b.value) & ~a.mask & ~b.mask) !== 0n) return undefined;
  const v = a.value | b.value;
  const mu = a.mask & b.mask;
  return make(v & ~mu, mu);
}

/** Smallest tnum containing the values of both. */
export function tnumUnion(a: Tnum, b: Tnum): Tnum {
  const v = a.value & b.value;
  const mu = (a.value ^ b.value) | a.mask | b.mask;
  return make(v & ~mu, mu);
}

/** Keep the low `bytes` bytes (zero the others). */
export function tnumCast(a: Tnum, bytes: 1 | 2 | 4 | 8): Tnum {
  const m = (1n << BigInt(bytes * 8)) - 1n;
  return make(a.value & m, a.mask & m);
}

/** Sign-extend the low `bits` bits to 64 bits. */
export function tnumSignExtend(a: Tnum, bits: 8 | 16 | 32): Tnum {
  return make(BigInt.asUintN(64, BigInt.asIntN(bits, a.value)), BigInt.asUintN(64, BigInt.asIntN(bits, a.mask)));
}

export const tnumSubreg = (a: Tnum): Tnum => tnumCast(a, 4);
export const tnumClearSubreg = (a: Tnum): Tnum => make(a.value & UPPER32, a.mask & UPPER32);
/** `a` with its low 32 bits replaced by those of `low`. */
export const tnumWithSubreg = (a: Tnum, low: Tnum): Tnum => tnumOr(tnumClearSubreg(a), tnumSubreg(low));

/** Reverse the byte order of the low `bytes` bytes; exact, since each bit moves to a fixed place. */
export function tnumByteSwap(a: Tnum, bytes: 2 | 4 | 8): Tnum {
  const swap = (x: bigint) => {
    let out = 0n;
    for (let i = 0; i < bytes; i++) out = (out << 8n) | ((x >> BigInt(8 * i)) & 0xffn);
    return out;
  };
  return make(swap(a.value), swap(a.mask));
}

/** Unsigned minimum and maximum of `a`. */
export const tnumUmin = (a: Tnum): bigint => a.value;
export const tnumUmax = (a: Tnum): bigint => a.value | a.mask;

export function tnumToString(a: Tnum): string {
  return `(0x${a.value.toString(16)}; 0x${a.mask.toString(16)})`;
}
