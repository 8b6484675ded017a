import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble, type Instruction, layoutProgram } from '../../isa/index.js';
import { type CopyBlock, type HoistedBoundsCheck, hoistBoundsChecks, MAX_HOISTED_CHECKS } from './bounds.js';

const BOUNDS = { lowAddress: 0x10000, writableEnd: 0x20000, readableEnd: 0x30000 };

/** The analysis over `copies` back-to-back copies of a one-block body (the whole program but its last instruction). */
function analyse(source: string, copies = 4) {
  const layout = layoutProgram(assemble(source));
  const instructionAt = (pc: number): Instruction | undefined => {
    const i = layout.indexAt[pc];
    return i < 0 ? undefined : layout.program[i];
  };
  const end = layout.slotCount - 1; // the final exit is not part of the body
  const blocks: CopyBlock[] = Array.from({ length: copies }, (_, j) => ({
    startPc: 0,
    endPc: end,
    next: j + 1 < copies ? [j + 1] : [],
  }));
  return hoistBoundsChecks(blocks, instructionAt, BOUNDS);
}

describe('hoisted bounds checks: the ranges a guard checks', () => {
  const cases: { name: string; body: string; checks: HoistedBoundsCheck[]; covered: number }[] = [
    {
      name: 'a byte walk: base r1 + r4, stride 1',
      body: 'mov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5+2]\nadd %r4, 1',
      checks: [{ registers: [1, 4], lowOffset: 2, spanBytes: 4, write: false }],
      covered: 1,
    },
    {
      name: 'a word walk down with a store: stride -12',
      body: 'stxw [%r5+0], %r4\nsub %r5, 12',
      checks: [{ registers: [5], lowOffset: -36, spanBytes: 40, write: true }],
      covered: 1,
    },
    {
      name: 'a masked index into a stack table (read then write: one comparison for both)',
      body: 'ldxb %r6, [%r1]\nand %r6, 60\nmov %r7, %r10\nadd %r7, -64\nadd %r7, %r6\nldxw %r8, [%r7]\nstxw [%r7], %r8',
      checks: [
        { registers: [1], lowOffset: 0, spanBytes: 1, write: false },
        { registers: [10], lowOffset: -64, spanBytes: 64, write: true },
      ],
      covered: 3,
    },
    {
      name: 'reads and writes through one base whose joint range exceeds the writable span stay apart',
      body: 'mov %r2, %r1\nadd %r2, 0x18000\nldxb %r6, [%r2]\nstxb [%r1], %r6',
      checks: [
        { registers: [1], lowOffset: 0x18000, spanBytes: 1, write: false },
        { registers: [1], lowOffset: 0, spanBytes: 1, write: true },
      ],
      covered: 2,
    },
    {
      name: 'a 32-bit product as index: not affine, nothing hoisted',
      body: 'mov32 %r5, %r4\nmul32 %r5, 7\nadd %r5, %r1\nldxb %r6, [%r5]\nadd %r4, 1',
      checks: [],
      covered: 0,
    },
    {
      name: 'a base loaded in the body: only the load through r10 is hoisted',
      body: 'ldxdw %r5, [%r10-8]\nldxb %r6, [%r5]',
      checks: [{ registers: [10], lowOffset: -8, spanBytes: 8, write: false }],
      covered: 1,
    },
    {
      name: 'a range wider than the sandbox: left to the per-access checks',
      body: 'ldxb %r6, [%r1]\nadd %r1, 0x10000',
      checks: [],
      covered: 0,
    },
  ];
  for (const { name, body, checks, covered } of cases) {
    it(name, () => {
      const result = analyse(`${body}\nexit`);
      assert.deepEqual(
        [...result.checks].sort((a, b) => Number(a.write) - Number(b.write) || a.registers[0] - b.registers[0]),
        checks,
      );
      for (const set of result.covered) assert.equal(set.size, covered);
    });
  }

  it('joins paths: the same registers with different constants widen the range; different registers give up', () => {
    // Block 0 branches to 1 or 2, both go to 3, which loads through r5.
    const layout = layoutProgram(assemble('jeq %r2, 0, +2\nadd %r5, 8\nja +1\nadd %r5, 24\nldxdw %r6, [%r5]\nexit'));
    const at = (pc: number) => layout.program[layout.indexAt[pc]];
    const blocks: CopyBlock[] = [
      { startPc: 0, endPc: 1, next: [1, 2] },
      { startPc: 1, endPc: 3, next: [3] },
      { startPc: 3, endPc: 4, next: [3] },
      { startPc: 4, endPc: 5, next: [] },
    ];
    const widened = hoistBoundsChecks(blocks, at, BOUNDS);
    assert.deepEqual(widened.checks, [{ registers: [5], lowOffset: 8, spanBytes: 24, write: false }]);
    const other = layoutProgram(assemble('jeq %r2, 0, +2\nmov %r5, %r1\nja +1\nmov %r5, %r3\nldxdw %r6, [%r5]\nexit'));
    const none = hoistBoundsChecks(blocks, (pc) => other.program[other.indexAt[pc]], BOUNDS);
    assert.deepEqual(none.checks, []);
  });

  it(`hoists at most ${MAX_HOISTED_CHECKS} ranges, keeping those with most accesses`, () => {
    const body = [1, 2, 3, 4, 5, 6].map((r) => `ldxb %r0, [%r${r}]`).join('\n');
    const result = analyse(`${body}\nldxb %r0, [%r6+1]\nexit`);
    assert.equal(result.checks.length, MAX_HOISTED_CHECKS);
    assert.deepEqual(result.checks[0].registers, [6]);
  });
});
