/**
 * Pruning must never skip a path that differs from a proven checkpoint in something that matters.
 * Finished checkpoints are looked up through an index of their precise constants (verifier.ts,
 * `FinishedShape`): each program here joins two paths at a prune point whose states differ only in
 * what that index hashes or must still compare (the high half of a constant, a range next to an
 * equal constant), one path safe and one unsafe, in both orders. An index that pruned on a partial
 * match would accept the unsafe path unseen. The safe twins must be accepted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble } from '../isa/index.js';
import { VerifierError, verifyProgram } from './index.js';

interface PruningCase {
  readonly name: string;
  /** Assembly with `$FIRST` and `$SECOND`: the code setting the value on each path. */
  readonly asm: string;
  readonly safe: string;
  readonly unsafe: string;
  readonly reason: RegExp;
}

/** r9 (branched on) and r4: unknown numbers unrelated to the data length; stack -32..-1 written. */
const PROLOGUE =
  'stdw [%r10-8], 0\nstdw [%r10-16], 0\nstdw [%r10-24], 0\nstdw [%r10-32], 0\nmov %r9, %r2\nxor %r9, 3\nmov %r4, %r2\nxor %r4, 5';

const CASES: PruningCase[] = [
  {
    name: 'constants equal in their low 32 bits',
    asm: `${PROLOGUE}
jeq %r9, 0, other
$FIRST
ja join
other:
$SECOND
join:
mov %r3, %r10
add %r3, %r6
ldxdw %r0, [%r3]
exit`,
    safe: 'mov %r6, -8',
    unsafe: 'mov32 %r6, -8',
    reason: /invalid read of stack|invalid read from stack|out of bounds|min value is outside/,
  },
  {
    name: 'an equal precise constant beside a precise range',
    asm: `${PROLOGUE}
mov %r6, -32
jeq %r9, 0, other
$FIRST
ja join
other:
$SECOND
join:
mov %r3, %r10
add %r3, %r6
add %r3, %r7
ldxb %r0, [%r3]
exit`,
    safe: 'mov %r7, %r4\nand %r7, 7',
    unsafe: 'mov %r7, %r4\nand %r7, 63',
    reason: /invalid read of stack|invalid read from stack|out of bounds|invalid variable-offset/,
  },
  {
    name: 'equal precise constants in two frames, a different one in a spill',
    asm: `${PROLOGUE}
mov %r6, -16
jeq %r9, 0, other
$FIRST
ja join
other:
$SECOND
join:
stxdw [%r10-40], %r7
mov %r7, 0
ldxdw %r8, [%r10-40]
mov %r3, %r10
add %r3, %r6
add %r3, %r8
ldxdw %r0, [%r3]
exit`,
    safe: 'mov %r7, 8',
    unsafe: 'mov %r7, 16',
    reason: /invalid read of stack|invalid read from stack|out of bounds/,
  },
];

const program = (c: PruningCase, first: string, second: string) =>
  assemble(c.asm.replace('$FIRST', first).replace('$SECOND', second));

describe('pruning through the index of precise constants', () => {
  for (const c of CASES) {
    for (const [order, first, second] of [
      ['unsafe path explored second', c.safe, c.unsafe],
      ['unsafe path explored first', c.unsafe, c.safe],
    ] as const) {
      it(`${c.name}, ${order}: rejected`, () => {
        assert.throws(
          () => verifyProgram(program(c, first, second), { type: 'conformance' }),
          (e: unknown) => {
            assert.ok(e instanceof VerifierError, `expected VerifierError, got ${e}`);
            assert.match(e.reason, c.reason);
            return true;
          },
        );
      });
    }
    it(`${c.name}: the safe twin is accepted, the second path pruned`, () => {
      // Two paths reach the join with equal states: the second stops there ("N: safe").
      const { log } = verifyProgram(program(c, c.safe, c.safe), { type: 'conformance', logLevel: 1 });
      assert.match(log, /^\d+: safe$/m);
    });
  }
});

describe('past the per-instruction checkpoint cap', () => {
  it('a loop of 70,000 iterations (more checkpoints at its head than the cap of 65,536) is accepted with linear backtracking', () => {
    const program = assemble('mov %r1, 0\nL:\nadd %r1, 1\njlt %r1, 70000, L\nmov %r0, 0\nexit');
    const { stats } = verifyProgram(program, { type: 'conformance' });
    assert.ok(stats.processedInsns > 140_000, `processed ${stats.processedInsns}`);
    // The counter is precise (each comparison has one side ruled out): every iteration backtracks
    // to the previous checkpoint, which must exist past the cap too, or the walks grow quadratically.
    assert.ok(stats.backtrackSteps < 4 * stats.processedInsns, `${stats.backtrackSteps} steps`);
  });
});
