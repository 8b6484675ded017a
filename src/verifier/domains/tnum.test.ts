import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bigUintN, tnumWithMember } from './arbitraries.js';
import {
  type Tnum,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumByteSwap,
  tnumCast,
  tnumConst,
  tnumContains,
  tnumIn,
  tnumIntersect,
  tnumLshift,
  tnumMul,
  tnumOr,
  tnumRange,
  tnumRshift,
  tnumSignExtend,
  tnumSub,
  tnumUnion,
  tnumXor,
  U64_MAX,
} from './tnum.js';

const u64 = (x: bigint) => BigInt.asUintN(64, x);

describe('tnum', () => {
  it('table: known results', () => {
    assert.deepEqual(tnumAdd(tnumConst(3n), tnumConst(4n)), tnumConst(7n));
    assert.deepEqual(tnumRange(0n, 7n), { value: 0n, mask: 7n });
    assert.deepEqual(tnumRange(8n, 15n), { value: 8n, mask: 7n });
    assert.deepEqual(tnumAnd({ value: 0n, mask: U64_MAX }, tnumConst(0xffn)), { value: 0n, mask: 0xffn });
    assert.deepEqual(tnumOr({ value: 0n, mask: 0xffn }, tnumConst(0x100n)), { value: 0x100n, mask: 0xffn });
    assert.deepEqual(tnumLshift({ value: 1n, mask: 2n }, 4), { value: 0x10n, mask: 0x20n });
    assert.deepEqual(tnumArshift(tnumConst(0x80000000n), 4, 32), tnumConst(0xf8000000n));
    assert.deepEqual(tnumByteSwap(tnumConst(0x1234n), 2), tnumConst(0x3412n));
    assert.equal(tnumIntersect(tnumConst(1n), tnumConst(2n)), undefined);
    assert.ok(tnumIn({ value: 0n, mask: 0xffn }, tnumConst(0x42n)));
    assert.ok(!tnumIn(tnumConst(0x42n), { value: 0n, mask: 0xffn }));
  });

  const binary: [string, (a: Tnum, b: Tnum) => Tnum, (x: bigint, y: bigint) => bigint][] = [
    ['add', tnumAdd, (x, y) => u64(x + y)],
    ['sub', tnumSub, (x, y) => u64(x - y)],
    ['mul', tnumMul, (x, y) => u64(x * y)],
    ['and', tnumAnd, (x, y) => x & y],
    ['or', tnumOr, (x, y) => x | y],
    ['xor', tnumXor, (x, y) => x ^ y],
    ['union', tnumUnion, (x) => x],
  ];
  for (const [name, abstract, concrete] of binary) {
    it(`${name} is sound`, () => {
      fc.assert(
        fc.property(tnumWithMember, tnumWithMember, ([a, x], [b, y]) => {
          const r = abstract(a, b);
          assert.equal(r.value & r.mask, 0n);
          assert.ok(tnumContains(r, concrete(x, y)));
        }),
        { numRuns: 500 },
      );
    });
  }

  it('shifts, casts, sign extension and byte swaps are sound', () => {
    fc.assert(
      fc.property(tnumWithMember, fc.nat(63), ([a, x], k) => {
        const s = BigInt(k);
        assert.ok(tnumContains(tnumLshift(a, k), u64(x << s)));
        assert.ok(tnumContains(tnumRshift(a, k), x >> s));
        assert.ok(tnumContains(tnumArshift(a, k, 64), u64(BigInt.asIntN(64, x) >> s)));
        const k32 = BigInt(k & 31);
        assert.ok(tnumContains(tnumArshift(tnumCast(a, 4), k & 31, 32), BigInt.asUintN(32, BigInt.asIntN(32, x) >> k32)));
        assert.ok(tnumContains(tnumCast(a, 2), x & 0xffffn));
        assert.ok(tnumContains(tnumSignExtend(tnumCast(a, 1), 8), u64(BigInt.asIntN(8, x))));
        const swapped = BigInt(`0x${(x & 0xffffffffn).toString(16).padStart(8, '0').match(/../g)?.reverse().join('')}`);
        assert.ok(tnumContains(tnumByteSwap(tnumCast(a, 4), 4), swapped));
      }),
      { numRuns: 500 },
    );
  });

  it('range contains its bounds and intersect keeps common members', () => {
    fc.assert(
      fc.property(bigUintN(64), bigUintN(64), tnumWithMember, (p, q, [a, x]) => {
        const [lo, hi] = p < q ? [p, q] : [q, p];
        const r = tnumRange(lo, hi);
        assert.ok(tnumContains(r, lo) && tnumContains(r, hi));
        if (x >= lo && x <= hi) {
          const i = tnumIntersect(a, r);
          assert.ok(i && tnumContains(i, x));
        }
      }),
      { numRuns: 500 },
    );
  });
});
