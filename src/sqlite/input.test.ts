import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SqlValue } from './format.js';
import { encodeIndexArgs, keyBytes, writeKey } from './input.js';

/** struct sq_key as the C side reads it: tag, len, val (u64 little-endian each). */
function readKey(b: Buffer, at: number): [bigint, bigint, bigint] {
  return [b.readBigUInt64LE(at), b.readBigUInt64LE(at + 8), b.readBigUInt64LE(at + 16)];
}

describe('sqlite input: keys as struct sq_key', () => {
  it('writes integers as two’s-complement i64, reals as their IEEE bits, TEXT/BLOB as offset and length', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.maxSafeInteger(),
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          fc.double({ noNaN: true }).filter((d) => !Number.isSafeInteger(d)),
          fc.string({ maxLength: 40 }),
          fc.uint8Array({ maxLength: 40 }),
          fc.constant(null),
        ),
        (v: SqlValue) => {
          const b = Buffer.alloc(24 + 16 + keyBytes(v));
          const extra = writeKey(b, 0, v, 1000, 40);
          const [tag, len, val] = readKey(b, 0);
          if (v === null) assert.deepEqual([tag, len, val, extra], [0n, 0n, 0n, 40]);
          else if (typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v)))
            assert.deepEqual([tag, len, val], [1n, 0n, BigInt.asUintN(64, BigInt(v))]);
          else if (typeof v === 'number') {
            const f = Buffer.alloc(8);
            f.writeDoubleLE(v);
            assert.deepEqual([tag, len, val], [2n, 0n, f.readBigUInt64LE()]);
          } else {
            const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
            assert.deepEqual([tag, len, val], [typeof v === 'string' ? 3n : 4n, BigInt(bytes.length), 1040n]);
            assert.deepEqual(b.subarray(40, 40 + bytes.length), bytes);
            assert.equal(extra, 40 + Math.ceil(bytes.length / 8) * 8 + 8);
          }
        },
      ),
    );
  });

  it('lays out both bounds of sqlite_index’s arguments', () => {
    const b = encodeIndexArgs({ lo: ['ab', -3], hi: ['ab'], loExclusive: true, hiInclusive: true }, 2, 64);
    assert.deepEqual(
      [0, 8, 16, 24].map((at) => b.readBigUInt64LE(at)),
      [2n, 1n, 3n, 2n],
    );
    // Only the keys in use travel: lo's two, then hi's one, then the bytes of their text.
    const fixed = 32 + 3 * 24;
    assert.equal(b.length, fixed + 2 * 16);
    assert.deepEqual(readKey(b, 32), [3n, 2n, BigInt(64 + fixed)]);
    assert.deepEqual(readKey(b, 56), [1n, 0n, BigInt.asUintN(64, -3n)]);
    assert.deepEqual(readKey(b, 80), [3n, 2n, BigInt(64 + fixed + 16)]);
    assert.equal(b.toString('utf8', fixed, fixed + 2), 'ab');
    assert.equal(b.toString('utf8', fixed + 16, fixed + 18), 'ab');
  });
});
