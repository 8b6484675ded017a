/**
 * The classic precision-tracking bugs: in each program two paths join at a prune point with
 * different values of a number; the first path (the fall-through, explored first) has a safe value,
 * the second an unsafe one. The number is only used as a pointer offset later, after flowing
 * through a spill, a 32-bit subregister, a callee's argument, a linked copy or a comparison with
 * another register. Pruning the second path is only sound if backtracking marked that number (and
 * what it came from) precise at the join; otherwise the unsafe path would be accepted unseen.
 * Each case also has its safe twin (both values safe), which must be accepted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble } from '../isa/index.js';
import { VerifierError, verifyProgram } from './index.js';

interface PrecisionBugCase {
  name: string;
  /** Assembly with `$SAFE` and `$UNSAFE` where the two paths' values go. */
  asm: string;
  safe: number;
  unsafe: number;
  reason: RegExp;
  /** The safe twin when it is not the same program with both values safe. */
  twin?: string;
}

/** Stack slots -24..-1 written; r9 an unknown number unrelated to the data length (branching on
 * the length itself would prove a different length on each side and keep the paths apart). */
const INIT_STACK = 'stdw [%r10-8], 0\nstdw [%r10-16], 0\nstdw [%r10-24], 0\nmov %r9, %r2\nxor %r9, 3';

const CASES: PrecisionBugCase[] = [
  {
    name: 'through a spilled copy (the register is overwritten after the join)',
    asm: `${INIT_STACK}
jeq %r9, 0, other
mov %r6, $SAFE
stxdw [%r10-32], %r6
ja join
other:
mov %r6, $UNSAFE
stxdw [%r10-32], %r6
join:
mov %r6, 0
ldxdw %r7, [%r10-32]
mov %r3, %r10
add %r3, %r7
ldxdw %r0, [%r3]
exit`,
    safe: -8,
    unsafe: 8,
    reason: /invalid read of stack/,
  },
  {
    name: 'through a spill and fill by a copy of the frame pointer',
    asm: `${INIT_STACK}
mov %r8, %r10
add %r8, -32
mov %r6, $UNSAFE
jeq %r9, 0, join
mov %r6, $SAFE
join:
stxdw [%r8+0], %r6
mov %r6, 0
ldxdw %r7, [%r8+0]
mov %r3, %r10
add %r3, %r7
ldxdw %r0, [%r3]
exit`,
    safe: -16,
    unsafe: 16,
    reason: /invalid read of stack/,
  },
  {
    name: 'through a 32-bit subregister',
    asm: `${INIT_STACK}
mov %r6, $UNSAFE
jeq %r9, 0, join
mov %r6, $SAFE
join:
mov32 %r7, %r6
add32 %r7, 0
mov %r3, %r10
add %r3, -24
add %r3, %r7
ldxdw %r0, [%r3]
exit`,
    safe: 8,
    unsafe: 24,
    reason: /invalid read of stack/,
  },
  {
    name: 'through arithmetic with another register',
    asm: `${INIT_STACK}
mov %r6, $UNSAFE
jeq %r9, 0, join
mov %r6, $SAFE
join:
mov %r7, -24
add %r7, %r6
mov %r3, %r10
add %r3, %r7
ldxdw %r0, [%r3]
exit`,
    safe: 8,
    unsafe: 24,
    reason: /invalid read of stack/,
  },
  {
    name: "through a callee's argument",
    asm: `${INIT_STACK}
mov %r1, $UNSAFE
jeq %r9, 0, join
mov %r1, $SAFE
join:
mov %r2, %r10
call local f
exit
f:
add %r2, %r1
ldxdw %r0, [%r2]
exit`,
    safe: -8,
    unsafe: 8,
    reason: /invalid read of stack/,
  },
  {
    name: "through a callee's return value",
    asm: `${INIT_STACK}
mov %r1, $UNSAFE
jeq %r9, 0, join
mov %r1, $SAFE
join:
call local f
mov %r3, %r10
add %r3, %r0
ldxdw %r0, [%r3]
exit
f:
mov %r0, %r1
exit`,
    safe: -16,
    unsafe: 16,
    reason: /invalid read of stack/,
  },
  {
    name: 'through a conditional jump that links two registers (a copy refined by the comparison)',
    // Both paths reach the join with r6 unknown and linked to some copy; only on the first is the
    // copy r7, so only there does `r7 <= 8` bound r6.
    asm: `${INIT_STACK}
mov %r6, %r2
xor %r6, 1
mov %r7, %r2
xor %r7, 2
jeq %r9, 0, other
mov %r7, %r6
ja join
other:
mov %r8, %r6
mov %r5, %r8
join:
jgt %r7, $SAFE, out
mov %r3, %r10
add %r3, -24
add %r3, %r6
ldxb %r0, [%r3]
exit
out:
mov %r0, 0
exit`,
    safe: 8,
    unsafe: 8,
    reason: /invalid read of stack|unbounded|out of bounds/,
    twin: 'other:\nmov %r7, %r6\nmov %r5, %r7\njoin:',
  },
  {
    name: 'through a comparison of two registers (the bound comes from the other register)',
    asm: `${INIT_STACK}
mov %r6, %r2
xor %r6, 1
mov %r7, $UNSAFE
jeq %r9, 0, join
mov %r7, $SAFE
join:
jgt %r6, %r7, out
mov %r3, %r10
add %r3, -24
add %r3, %r6
ldxb %r0, [%r3]
exit
out:
mov %r0, 0
exit`,
    safe: 16,
    unsafe: 100,
    reason: /invalid read of stack/,
  },
  {
    name: 'through a helper size argument',
    asm: `${INIT_STACK}
mov %r7, $UNSAFE
jeq %r9, 0, join
mov %r7, $SAFE
join:
mov %r1, %r10
add %r1, -24
mov %r2, %r7
mov %r3, 0
mov %r4, 0
mov %r5, 0
call 6
mov %r0, 0
exit`,
    safe: 24,
    unsafe: 32,
    reason: /invalid read from stack|invalid read of stack/,
  },
  {
    name: 'through a zero stored as plain bytes and read back',
    asm: `${INIT_STACK}
mov %r6, $UNSAFE
jeq %r9, 0, join
mov %r6, $SAFE
join:
stxw [%r10-32], %r6
stw [%r10-28], 0
ldxdw %r7, [%r10-32]
mov %r3, %r10
add %r3, -8
add %r3, %r7
ldxdw %r0, [%r3]
exit`,
    safe: 0,
    unsafe: 8,
    reason: /invalid read of stack|unbounded|out of bounds/,
  },
];

const substitute = (asm: string, first: number, second: number) =>
  asm.replaceAll('$SAFE', String(first)).replaceAll('$UNSAFE', String(second));

describe('precision tracking: the classic bugs stay rejected', () => {
  for (const c of CASES) {
    it(`${c.name}: rejected`, () => {
      const program = assemble(substitute(c.asm, c.safe, c.unsafe));
      assert.throws(
        () => verifyProgram(program, { type: 'conformance' }),
        (e: unknown) => {
          assert.ok(e instanceof VerifierError, `expected VerifierError, got ${e}`);
          assert.match(e.reason, c.reason);
          return true;
        },
      );
    });
    it(`${c.name}: the safe twin is accepted`, () => {
      const asm = c.twin ? c.asm.replace(/other:\n[\s\S]*?join:/, c.twin) : c.asm;
      const program = assemble(substitute(asm, c.safe, c.safe));
      verifyProgram(program, { type: 'conformance' });
    });
  }
});
