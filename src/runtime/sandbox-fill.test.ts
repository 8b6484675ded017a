import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sandboxZero } from './sandbox-fill.js';

describe('sandboxZero', () => {
  for (const shared of [false, true]) {
    it(`zeroes exactly the range asked for (${shared ? 'shared' : 'unshared'} memory)`, () => {
      const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared });
      const bytes = new Uint8Array(memory.buffer);
      const zero = sandboxZero(memory);
      for (const [at, length] of [
        [0, 1],
        [4096, 4096],
        [65535, 2],
        [100, 0],
        [131072 - 7, 7],
      ]) {
        bytes.fill(0xee);
        zero(at, length);
        for (const i of [at - 1, at, at + length - 1, at + length]) {
          if (i < 0 || i >= bytes.length) continue;
          const inside = i >= at && i < at + length;
          assert.equal(bytes[i], inside ? 0 : 0xee, `byte ${i} after zeroing ${length} at ${at}`);
        }
        assert.equal(
          bytes.subarray(at, at + length).every((b) => b === 0),
          true,
        );
      }
    });
  }

  it('refuses a range outside a shared memory instead of trapping half way', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const zero = sandboxZero(memory);
    assert.throws(() => zero(65530, 7), RangeError);
    assert.throws(() => zero(-1, 1), RangeError);
  });
});
