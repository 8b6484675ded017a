/**
 * Numbers stored in the low 1, 2 or 4 bytes of a stack slot (clang spills `__u32` counters with
 * `stxw`) are kept, as the kernel keeps them: a fill of those bytes gets the number back, its low
 * bytes when narrower, sign-extended by a signed load. What the slot's other bytes hold stays what it
 * was, and any write over the spilled bytes turns them into plain bytes. Each rejection case is
 * unsafe only if the verifier reads more into a narrow spill than memory holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble } from '../isa/index.js';
import { VerifierError, verifyProgram } from './index.js';

/** r9 and r4: unknown numbers unrelated to the data length; stack -32..-17 written. */
const PROLOGUE = 'stdw [%r10-24], 0\nstdw [%r10-32], 0\nmov %r9, %r2\nxor %r9, 3\nmov %r4, %r2\nxor %r4, 5';

interface Case {
  readonly name: string;
  readonly asm: string;
  /** Rejected with this reason; accepted when absent. */
  readonly reason?: RegExp;
  readonly maxProcessed?: number;
}

const CASES: Case[] = [
  {
    name: 'a u32 loop counter spilled and filled with stxw/ldxw each iteration ends (no "infinite loop")',
    asm: `${PROLOGUE}
mov %r0, 0
stw [%r10-8], 0
loop:
ldxw %r6, [%r10-8]
add %r0, %r6
add32 %r6, 1
stxw [%r10-8], %r6
jlt %r6, 10, loop
exit`,
    maxProcessed: 200,
  },
  {
    name: 'a bounded number spilled as 4 bytes keeps its bounds (a stack index)',
    asm: `${PROLOGUE}
mov %r6, %r4
and %r6, 15
stxw [%r10-8], %r6
ldxw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
  },
  {
    name: 'a 2-byte spill filled as 1 byte gives its low byte',
    asm: `${PROLOGUE}
mov %r6, %r4
and %r6, 0x10f
stxh [%r10-8], %r6
ldxb %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
  },
  {
    name: 'a signed fill sign-extends the spilled bytes',
    asm: `${PROLOGUE}
mov32 %r6, -8
stxw [%r10-8], %r6
ldxsw %r7, [%r10-8]
mov %r3, %r10
add %r3, -24
add %r3, %r7
ldxb %r0, [%r3]
exit`,
  },
  {
    name: 'the same bytes filled unsigned are 0xfffffff8, not -8',
    asm: `${PROLOGUE}
mov32 %r6, -8
stxw [%r10-8], %r6
ldxw %r7, [%r10-8]
mov %r3, %r10
add %r3, -24
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|out of bounds|outside/,
  },
  {
    name: 'a number too wide for the slot bytes is truncated (0x1_0000_0008 stored as 4 bytes is 8)',
    asm: `${PROLOGUE}
lddw %r6, 0x100000008
stxw [%r10-8], %r6
ldxw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
  },
  {
    name: 'an 8-byte read of a 4-byte spill reads the 4 bytes never written',
    asm: `${PROLOGUE}
mov %r6, %r4
and %r6, 7
stxw [%r10-8], %r6
ldxdw %r7, [%r10-8]
mov %r0, 0
exit`,
    reason: /invalid read from stack/,
  },
  {
    name: 'an 8-byte read of a 4-byte spill over other bytes is any number',
    asm: `${PROLOGUE}
stdw [%r10-8], -1
mov %r6, %r4
and %r6, 7
stxw [%r10-8], %r6
ldxdw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|unbounded|outside|out of bounds/,
  },
  {
    name: 'a write over the upper bytes of the slot keeps the spill only as plain bytes',
    asm: `${PROLOGUE}
mov %r6, %r4
and %r6, 7
stxdw [%r10-8], %r6
stw [%r10-4], 1
ldxdw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|unbounded|outside|out of bounds/,
  },
  {
    name: 'a write over the spilled bytes forgets the number',
    asm: `${PROLOGUE}
mov %r6, %r4
and %r6, 7
stxw [%r10-8], %r6
stxb [%r10-7], %r4
ldxw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|unbounded|outside|out of bounds/,
  },
  {
    name: 'paths joining with the same number spilled as 4 and as 8 bytes are not pruned as one',
    asm: `${PROLOGUE}
stdw [%r10-8], -1
mov %r6, 8
jeq %r9, 0, narrow
stxdw [%r10-8], %r6
ja join
narrow:
stxw [%r10-8], %r6
join:
ldxdw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|unbounded|outside|out of bounds/,
  },
  {
    name: 'the same, the narrow spill on the path explored first',
    asm: `${PROLOGUE}
stdw [%r10-8], -1
mov %r6, 8
jne %r9, 0, narrow
stxdw [%r10-8], %r6
ja join
narrow:
stxw [%r10-8], %r6
join:
ldxdw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|unbounded|outside|out of bounds/,
  },
  {
    name: 'paths joining with different numbers in a 4-byte spill: the unsafe one is seen',
    asm: `${PROLOGUE}
jeq %r9, 0, other
mov %r6, 8
stxw [%r10-8], %r6
ja join
other:
mov %r6, 40
stxw [%r10-8], %r6
join:
mov %r6, 0
ldxw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|outside|out of bounds/,
  },
  {
    name: 'the same with the unsafe number on the path explored first',
    asm: `${PROLOGUE}
jeq %r9, 0, other
mov %r6, 40
stxw [%r10-8], %r6
ja join
other:
mov %r6, 8
stxw [%r10-8], %r6
join:
mov %r6, 0
ldxw %r7, [%r10-8]
mov %r3, %r10
add %r3, -32
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    reason: /invalid|outside|out of bounds/,
  },
];

describe('narrow spills of numbers', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.reason ? 'rejected' : 'accepted'}`, () => {
      const program = assemble(c.asm);
      if (!c.reason) {
        const { stats } = verifyProgram(program, { type: 'conformance' });
        if (c.maxProcessed) assert.ok(stats.processedInsns <= c.maxProcessed, `processed ${stats.processedInsns}`);
        return;
      }
      assert.throws(
        () => verifyProgram(program, { type: 'conformance' }),
        (e: unknown) => {
          assert.ok(e instanceof VerifierError, `expected VerifierError, got ${e}`);
          assert.match(e.reason, c.reason as RegExp);
          return true;
        },
      );
    });
  }
});
