/**
 * Function summaries (README.md, "Function summaries"): a local call is verified by exploring the
 * callee once on its own, with number arguments widened, and the caller continues with r0 the hull
 * of what the callee returns. Each unsafe program below would be accepted if one rule of the
 * summaries were wrong (named in the case); each has a safe twin that must be accepted, most of them
 * through a summary (`stats.summaries`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CALL_DEPTH } from '../abi/limits.js';
import { assemble } from '../isa/index.js';
import { VerifierError, verifyProgram } from './index.js';

interface SummaryCase {
  name: string;
  /** Assembly with `$VALUE`, safe or unsafe. */
  asm: string;
  safe: number;
  unsafe: number;
  reason: RegExp;
  /** Whether the safe twin is accepted through at least one summary (else it needs the call inline). */
  summarized: boolean;
  /** Calls the safe twin verifies through a summary, when checked exactly. */
  summaries?: number;
}

/** Stack slots -24..-1 written; r9 an unknown number. */
const INIT = 'stdw [%r10-8], 0\nstdw [%r10-16], 0\nstdw [%r10-24], 0\nmov %r9, %r2\nxor %r9, 3';
/** Reads the stack at r10 + r0 (r0 the callee's result). */
const USE_R0 = 'mov %r3, %r10\nadd %r3, %r0\nldxdw %r0, [%r3]\nexit';

const CASES: SummaryCase[] = [
  {
    // The callee's two paths meet before its exit with different values in r6, which only flows
    // into r0. Unless r0 is made precise at the summary's exit, the second path is pruned at the
    // meeting point and its value never reaches the hull the caller sees.
    name: 'a value returned only on a path pruned inside the callee',
    asm: `${INIT}
mov %r1, %r9
call local f
${USE_R0}
f:
mov %r6, $VALUE
jeq %r1, 0, join
mov %r6, -8
join:
mov %r0, %r6
exit`,
    safe: -16,
    unsafe: 8,
    reason: /invalid read of stack/,
    summarized: true,
  },
  {
    // The hull of every exit, not the last one: the callee returns on two paths.
    name: 'a value returned on one of two exits',
    asm: `${INIT}
mov %r1, %r9
call local f
${USE_R0}
f:
jeq %r1, 0, other
mov %r0, -8
exit
other:
mov %r0, $VALUE
exit`,
    safe: -24,
    unsafe: 0,
    reason: /invalid read of stack/,
    summarized: true,
  },
  {
    // A second call whose arguments the first exploration covers is pruned at the callee's entry:
    // its result must still be the hull of what that exploration returned (kept per callee; the
    // safe twin checks that the second call was summarized, not explored inline).
    name: 'a second call pruned at the entry of the callee',
    asm: `${INIT}
mov %r1, %r9
call local f
mov %r1, %r9
call local f
${USE_R0}
f:
jeq %r1, 0, other
mov %r0, -8
exit
other:
mov %r0, $VALUE
exit`,
    safe: -16,
    unsafe: 16,
    reason: /invalid read of stack/,
    summarized: true,
    summaries: 2,
  },
  {
    // Arguments are widened: a callee whose safety needs its argument's value cannot be summarized
    // with the value the caller has; it is explored inline, where the caller's bound counts.
    name: 'a callee using its argument as a stack offset',
    asm: `${INIT}
mov %r1, $VALUE
call local f
exit
f:
stdw [%r10-16], 0
mov %r3, %r10
add %r3, %r1
ldxdw %r0, [%r3]
exit`,
    safe: -16,
    unsafe: 8,
    reason: /invalid read of stack/,
    summarized: false,
  },
  {
    // A callee reached through a pointer into the caller's stack can change the caller's slots: such
    // calls are never summarized (the caller would keep the 0 it stored).
    name: "a callee writing through a pointer into the caller's stack",
    asm: `${INIT}
mov %r1, %r10
add %r1, -8
call local f
ldxdw %r6, [%r10-8]
mov %r3, %r10
add %r3, -16
add %r3, %r6
ldxdw %r0, [%r3]
exit
f:
stdw [%r1+0], $VALUE
mov %r0, 0
exit`,
    safe: 8,
    unsafe: 16,
    reason: /invalid read of stack/,
    summarized: false,
  },
  {
    // Pointer arguments are kept as they are: the data pointer proven 8 bytes long at the first
    // call is not at the second; the summary of the first does not cover the second.
    name: 'a data pointer with a shorter proven range at a second call',
    summaries: 2,
    asm: `mov %r3, %r1
add %r3, %r2
mov %r4, %r1
add %r4, 8
jgt %r4, %r3, out
mov %r6, %r1
call local f
mov %r1, %r6
add %r1, $VALUE
call local f
out:
mov %r0, 0
exit
f:
ldxdw %r0, [%r1+0]
exit`,
    safe: 0,
    unsafe: 1,
    reason: /invalid access to data/,
    summarized: true,
  },
];

const substitute = (asm: string, value: number) => asm.replaceAll('$VALUE', String(value));

describe('function summaries: unsafe programs stay rejected', () => {
  for (const c of CASES) {
    it(`${c.name}: rejected`, () => {
      const program = assemble(substitute(c.asm, c.unsafe));
      assert.throws(
        () => verifyProgram(program, { type: 'conformance' }),
        (e: unknown) => {
          assert.ok(e instanceof VerifierError, `expected VerifierError, got ${e}`);
          assert.match(e.reason, c.reason);
          return true;
        },
      );
    });
    it(`${c.name}: the safe twin is accepted${c.summarized ? ' through a summary' : ''}`, () => {
      const program = assemble(substitute(c.asm, c.safe));
      const { stats } = verifyProgram(program, { type: 'conformance' });
      if (c.summarized) assert.ok(stats.summaries > 0, `summaries: ${stats.summaries}`);
      if (c.summaries !== undefined) assert.equal(stats.summaries, c.summaries);
    });
  }

  it('the call depth counts the callers a summary does not see', () => {
    // f calls g. Called from the entry, f's summary fits; called at the bottom of a chain of
    // MAX_CALL_DEPTH - 2 functions, g would be frame MAX_CALL_DEPTH + 1: rejected, even though a
    // summary of f (at a smaller depth) was proven first.
    const chain = MAX_CALL_DEPTH - 2;
    const links = Array.from({ length: chain }, (_, i) => `c${i}:\ncall local ${i + 1 < chain ? `c${i + 1}` : 'f'}\nexit`);
    const program = assemble(
      [
        'mov %r1, 0',
        'call local f',
        'call local c0',
        'exit',
        ...links,
        'f:',
        'call local g',
        'exit',
        'g:',
        'mov %r0, 0',
        'exit',
      ].join('\n'),
    );
    assert.throws(
      () => verifyProgram(program, { type: 'conformance' }),
      (e: unknown) => e instanceof VerifierError && e.reason === `the call stack of ${MAX_CALL_DEPTH + 1} frames is too deep`,
    );
    // One link fewer fits.
    const fits = assemble(
      [
        'mov %r1, 0',
        'call local f',
        'call local c1',
        'exit',
        ...links.slice(1),
        'f:',
        'call local g',
        'exit',
        'g:',
        'mov %r0, 0',
        'exit',
      ].join('\n'),
    );
    assert.ok(verifyProgram(fits, { type: 'conformance' }).stats.summaries > 0);
  });

  it('recursion through a summarized call is still found', () => {
    // f and g call each other: neither is summarized (a summary does not see its callers).
    const program = assemble('mov %r1, 0\ncall local f\nexit\nf:\ncall local g\nexit\ng:\ncall local f\nexit');
    assert.throws(
      () => verifyProgram(program, { type: 'conformance' }),
      (e: unknown) => e instanceof VerifierError && /^recursive call/.test(e.reason),
    );
  });

  it('a callee returning a pointer is explored inline (and accepted)', () => {
    const program = assemble(
      'mov %r3, %r1\nadd %r3, %r2\nmov %r4, %r1\nadd %r4, 8\njgt %r4, %r3, out\ncall local f\nldxdw %r0, [%r0+0]\nexit\nout:\nmov %r0, 0\nexit\nf:\nmov %r0, %r1\nexit',
    );
    verifyProgram(program, { type: 'conformance' });
  });

  it('a callee called in a loop is explored once', () => {
    // 64 calls with different counters: inline, the callee's 16 branches are explored per call.
    const body = Array.from({ length: 16 }, (_, i) => `jeq %r1, ${i}, +1\nadd %r0, ${i}`).join('\n');
    const program = assemble(
      `mov %r6, 0\nmov %r7, 0\nL:\nmov %r1, %r6\ncall local f\nadd %r7, %r0\nadd %r6, 1\njlt %r6, 64, L\nmov %r0, %r7\nexit\nf:\nmov %r0, 0\n${body}\nexit`,
    );
    const summarized = verifyProgram(program, { type: 'conformance' }).stats;
    const inline = verifyProgram(program, { type: 'conformance', summaries: false }).stats;
    assert.equal(summarized.summaries, 64);
    assert.equal(inline.summaries, -1);
    assert.ok(summarized.processedInsns * 2 < inline.processedInsns, `${summarized.processedInsns} vs ${inline.processedInsns}`);
  });
});
