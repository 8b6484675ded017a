/** fast-check generators shared by the domain tests (imported only by `*.test.ts`). */
import fc from 'fast-check';
import type { Tnum } from './tnum.js';

export const bigUintN = (bits: number): fc.Arbitrary<bigint> => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });

/** A concrete value and a tnum containing it: some of its bits forgotten. */
export const tnumWithMember: fc.Arbitrary<[Tnum, bigint]> = fc
  .tuple(
    bigUintN(64),
    fc.oneof(
      fc.constant(0n),
      bigUintN(64),
      bigUintN(8),
      fc.nat(63).map((k) => (1n << BigInt(k)) - 1n),
    ),
  )
  .map(([x, mask]): [Tnum, bigint] => [{ value: x & ~mask, mask }, x]);
