import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bigUintN, tnumWithMember } from './arbitraries.js';
import {
  type BitWidth,
  type Comparison,
  SCALAR_UNKNOWN,
  type Scalar,
  type ScalarAluOp,
  scalarAlu,
  scalarByteSwap,
  scalarCompare,
  scalarConst,
  scalarConstValue,
  scalarContains,
  scalarEquals,
  scalarFromRange,
  scalarFromSignedRange,
  scalarIn,
  scalarIntersect,
  scalarNeg,
  scalarRefine,
  scalarSignExtend,
  scalarSync,
  scalarTruncate,
} from './scalar.js';

// Reference semantics, written independently of the domain's own `concreteAlu`.
function reference(op: ScalarAluOp, x: bigint, y: bigint, w: BitWidth): bigint {
  const mask = (1n << BigInt(w)) - 1n;
  const [a, b] = [x & mask, y & mask];
  const sa = BigInt.asIntN(w, a);
  const sb = BigInt.asIntN(w, b);
  const n = b % BigInt(w);
  const ops: Record<ScalarAluOp, () => bigint> = {
    add: () => a + b,
    sub: () => a - b,
    mul: () => a * b,
    div: () => (b === 0n ? 0n : a / b),
    mod: () => (b === 0n ? a : a % b),
    sdiv: () => (b === 0n ? 0n : sa / sb),
    smod: () => (b === 0n ? a : sa % sb),
    and: () => a & b,
    or: () => a | b,
    xor: () => a ^ b,
    lsh: () => a << n,
    rsh: () => a >> n,
    arsh: () => sa >> n,
  };
  return ops[op]() & mask;
}

function compare(cmp: Comparison, x: bigint, y: bigint, w: BitWidth): boolean {
  const mask = (1n << BigInt(w)) - 1n;
  const [a, b] = [x & mask, y & mask];
  const [sa, sb] = [BigInt.asIntN(w, a), BigInt.asIntN(w, b)];
  return {
    eq: a === b,
    ne: a !== b,
    lt: a < b,
    le: a <= b,
    gt: a > b,
    ge: a >= b,
    slt: sa < sb,
    sle: sa <= sb,
    sgt: sa > sb,
    sge: sa >= sb,
    set: (a & b) !== 0n,
    notset: (a & b) === 0n,
  }[cmp];
}

const interesting = fc.oneof(
  bigUintN(64),
  fc.bigInt(-300n, 300n).map((v) => BigInt.asUintN(64, v)),
  fc.constantFrom(0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 32n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n),
  bigUintN(32),
);

/** A concrete value and an abstract scalar containing it, built in one of several shapes. */
const scalarWithMember: fc.Arbitrary<[Scalar, bigint]> = fc
  .tuple(interesting, fc.nat(5), bigUintN(64), bigUintN(64), tnumWithMember)
  .map(([x, shape, d1, d2, [t]]): [Scalar, bigint] => {
    const small = (d: bigint) => d % 1000n;
    const known = { value: x & ~t.mask, mask: t.mask };
    let s: Scalar | undefined;
    switch (shape) {
      case 0:
        s = scalarConst(x);
        break;
      case 1: // unsigned range around x
        s = scalarFromRange(
          x - small(d1) < 0n ? 0n : x - small(d1),
          x + small(d2) > (1n << 64n) - 1n ? (1n << 64n) - 1n : x + small(d2),
        );
        break;
      case 2: {
        const sx = BigInt.asIntN(64, x);
        const lo = sx - small(d1);
        const hi = sx + small(d2);
        s = scalarFromSignedRange(lo < -(1n << 63n) ? -(1n << 63n) : lo, hi >= 1n << 63n ? (1n << 63n) - 1n : hi);
        break;
      }
      case 3:
        s = scalarSync({ ...SCALAR_UNKNOWN, t: known });
        break;
      case 4: // known bits and a range
        s = scalarIntersect(
          scalarSync({ ...SCALAR_UNKNOWN, t: known }) ?? SCALAR_UNKNOWN,
          scalarFromRange(x > d1 ? x - d1 : 0n, x + (d2 >> 1n) > (1n << 64n) - 1n ? (1n << 64n) - 1n : x + (d2 >> 1n)),
        );
        break;
      default: // a 32-bit range in the low half
        s = scalarSync({ ...SCALAR_UNKNOWN, u32min: (x & 0xffffffffn) - small(d1) < 0n ? 0n : (x & 0xffffffffn) - small(d1) });
    }
    if (!s) throw new Error('generator built an empty scalar');
    return [s, x];
  });

const OPS: ScalarAluOp[] = ['add', 'sub', 'mul', 'div', 'sdiv', 'mod', 'smod', 'and', 'or', 'xor', 'lsh', 'rsh', 'arsh'];
const CMPS: Comparison[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'slt', 'sle', 'sgt', 'sge', 'set', 'notset'];

describe('scalar bounds', () => {
  it('generated abstractions contain their member (sync is sound)', () => {
    fc.assert(
      fc.property(scalarWithMember, ([s, x]) => {
        assert.ok(scalarContains(s, x));
      }),
      { numRuns: 2000 },
    );
  });

  for (const op of OPS) {
    for (const w of [64, 32] as const) {
      it(`${op}${w === 32 ? '32' : ''} is sound`, () => {
        fc.assert(
          fc.property(scalarWithMember, scalarWithMember, ([a, x], [b, y]) => {
            const r = scalarAlu(op, a, b, w);
            assert.ok(scalarContains(r, reference(op, x, y, w)), `${op}${w}(${x}, ${y}) = ${reference(op, x, y, w)}`);
          }),
          { numRuns: 400 },
        );
      });
    }
  }

  it('neg, truncation, sign extension and byte swap are sound', () => {
    fc.assert(
      fc.property(scalarWithMember, ([a, x]) => {
        assert.ok(scalarContains(scalarNeg(a, 64), BigInt.asUintN(64, -x)));
        assert.ok(scalarContains(scalarNeg(a, 32), BigInt.asUintN(32, -x)));
        for (const bytes of [1, 2, 4, 8] as const) {
          assert.ok(scalarContains(scalarTruncate(a, bytes), BigInt.asUintN(bytes * 8, x)));
        }
        for (const bits of [8, 16, 32] as const) {
          assert.ok(scalarContains(scalarSignExtend(a, bits), BigInt.asUintN(64, BigInt.asIntN(bits, x))));
        }
        const swap16 = ((x & 0xffn) << 8n) | ((x >> 8n) & 0xffn);
        assert.ok(scalarContains(scalarByteSwap(a, 2), swap16));
      }),
      { numRuns: 1000 },
    );
  });

  for (const w of [64, 32] as const) {
    it(`refinement on both branches keeps every satisfying pair (JMP${w === 32 ? '32' : ''})`, () => {
      fc.assert(
        fc.property(scalarWithMember, scalarWithMember, fc.constantFrom(...CMPS), ([a, x], [b, y], cmp) => {
          const holds = compare(cmp, x, y, w);
          const verdict = scalarCompare(cmp, a, b, w);
          assert.notEqual(verdict, holds ? 'never' : 'always');
          if (!holds) return;
          const r = scalarRefine(cmp, a, b, w);
          assert.ok(r, `${cmp}${w} refined to nothing for ${x}, ${y}`);
          assert.ok(scalarContains(r.a, x) && scalarContains(r.b, y));
          assert.ok(scalarIn(a, r.a) && scalarIn(b, r.b), 'refinement only narrows');
        }),
        { numRuns: 1500 },
      );
    });
  }

  it('two constants: refinement is exactly the concrete comparison (the fast path)', () => {
    const value = fc.oneof(
      bigUintN(64),
      bigUintN(32),
      bigUintN(4),
      fc.constantFrom(0n, 1n, 1n << 31n, 1n << 63n, (1n << 64n) - 1n),
    );
    fc.assert(
      fc.property(value, value, fc.constantFrom(...CMPS), fc.constantFrom(32 as const, 64 as const), (x, y, cmp, w) => {
        const a = scalarConst(x);
        const b = scalarConst(y);
        const r = scalarRefine(cmp, a, b, w);
        assert.equal(r !== undefined, compare(cmp, x, y, w), `${x} ${cmp}${w} ${y}`);
        if (r) assert.ok(scalarEquals(r.a, a) && scalarEquals(r.b, b), 'constants are not narrowed');
      }),
      { numRuns: 2000 },
    );
  });

  // Precision the verifier relies on.
  const cases: [string, () => void][] = [
    ['constants fold', () => assert.equal(scalarConstValue(scalarAlu('mul', scalarConst(6n), scalarConst(7n), 64)), 42n)],
    [
      'range + constant',
      () => {
        const r = scalarAlu('add', scalarFromRange(0n, 10n), scalarConst(5n), 64);
        assert.equal(r.umin, 5n);
        assert.equal(r.umax, 15n);
      },
    ],
    ['and with a mask bounds', () => assert.equal(scalarAlu('and', SCALAR_UNKNOWN, scalarConst(0xffn), 64).umax, 0xffn)],
    [
      'ALU32 zero-extends',
      () => {
        const r = scalarAlu('add', SCALAR_UNKNOWN, scalarConst(1n), 32);
        assert.equal(r.umax, 0xffffffffn);
        assert.equal(r.smin, 0n);
      },
    ],
    ['mov32 of -1 is 0xffffffff', () => assert.equal(scalarConstValue(scalarTruncate(scalarConst(-1n), 4)), 0xffffffffn)],
    [
      'x < 10 gives umax 9 and 10 > x',
      () => {
        const r = scalarRefine('lt', SCALAR_UNKNOWN, scalarConst(10n), 64);
        assert.equal(r?.a.umax, 9n);
      },
    ],
    [
      'signed x >= 0 and x s< 100 gives unsigned [0, 99]',
      () => {
        const r1 = scalarRefine('sge', SCALAR_UNKNOWN, scalarConst(0n), 64);
        const r2 = r1 && scalarRefine('slt', r1.a, scalarConst(100n), 64);
        assert.equal(r2?.a.umin, 0n);
        assert.equal(r2?.a.umax, 99n);
      },
    ],
    [
      'JMP32 refines the low half and, with zero high bits, the whole value',
      () => {
        const x = scalarTruncate(SCALAR_UNKNOWN, 4);
        const r = scalarRefine('lt', x, scalarConst(16n), 32);
        assert.equal(r?.a.umax, 15n);
      },
    ],
    ['eq on disjoint constants is never', () => assert.equal(scalarCompare('eq', scalarConst(1n), scalarConst(2n), 64), 'never')],
    [
      'lt with separated ranges is always',
      () => assert.equal(scalarCompare('lt', scalarFromRange(0n, 5n), scalarFromRange(6n, 9n), 64), 'always'),
    ],
    [
      'x != c excludes the bound',
      () => assert.equal(scalarRefine('ne', scalarFromRange(0n, 10n), scalarConst(10n), 64)?.a.umax, 9n),
    ],
    [
      'set with a single bit sets it',
      () =>
        assert.equal(
          scalarConstValue(scalarRefine('set', scalarFromRange(0n, 1n), scalarConst(1n), 64)?.a ?? SCALAR_UNKNOWN),
          1n,
        ),
    ],
    ['sync detects contradictions', () => assert.equal(scalarSync({ ...scalarConst(4n), umin: 5n }), undefined)],
  ];
  for (const [name, check] of cases) it(name, check);
});
