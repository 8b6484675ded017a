/**
 * The precision features real clang output needs, each with the programs that must be accepted and
 * the abuses that must stay rejected: linked scalars (copies of the length, copies moved by a
 * constant), the proven data length, "index < length", liveness and precision in pruning, format
 * strings of trace_printk, read-only global data; and the example objects of examples/build.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { MapDefinition } from '../abi/maps.js';
import { STORAGE_FUNCTION } from '../abi/storage.js';
import { assemble } from '../isa/index.js';
import { loadObject } from '../loader/index.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { VerifierError, verifyProgram } from './index.js';

const FORMAT = (text: string): MapDefinition => {
  const initialValue = new Uint8Array(16);
  initialValue.set(Buffer.from(text, 'latin1'));
  return { name: '.rodata', keySizeBytes: 4, valueSizeBytes: 16, maxEntries: 1, readonly: true, initialValue };
};
const MAPS: MapDefinition[] = [FORMAT('x=%d y=%d\0'), { name: '.bss', keySizeBytes: 4, valueSizeBytes: 8, maxEntries: 1 }];

interface Case {
  name: string;
  asm: string;
  /** Accept cases: upper bound on processed instructions (catches exploration blow-ups). */
  maxProcessed?: number;
  /** Reject cases: the reason. */
  reason?: string | RegExp;
}

const ACCEPT: Case[] = [
  {
    name: 'a copy of the length compared with a constant proves the bytes',
    asm: 'mov %r3, %r2\njlt %r3, 8, out\nldxdw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
  },
  {
    name: 'a copy of the length moved by a constant (clang: len - 1 > 1023)',
    asm: 'mov %r3, %r2\nadd %r3, -1\njgt %r3, 1023, out\nldxb %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
  },
  {
    name: 'the length compared through a spilled and filled copy',
    asm: 'stxdw [%r10-8], %r2\nldxdw %r3, [%r10-8]\njlt %r3, 4, out\nldxw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
  },
  {
    name: 'an index proven below the length indexes the buffer',
    asm: 'mov %r3, %r2\nrsh %r3, 1\njge %r3, %r2, out\nmov %r4, %r1\nadd %r4, %r3\nldxb %r0, [%r4]\nexit\nout:\nmov %r0, 0\nexit',
  },
  {
    name: 'for (i = 0; i < len; i++) sum += mem[i], len bounded',
    asm: `mov %r0, 0
jgt %r2, 4096, out
mov %r3, 0
loop:
jge %r3, %r2, out
mov %r4, %r1
add %r4, %r3
ldxb %r5, [%r4]
add %r0, %r5
add %r3, 1
ja loop
out:
exit`,
    maxProcessed: 60_000,
  },
  {
    name: 'a loop with a data-dependent branch and an imprecise counter converges',
    asm: `mov %r0, 0
mov %r6, 0
jlt %r2, 1, out
loop:
ldxb %r3, [%r1]
jeq %r3, %r6, skip
add %r0, 1
skip:
add %r6, 1
jlt %r6, 1000, loop
out:
exit`,
    maxProcessed: 20_000,
  },
  {
    name: 'a dead stack slot holding different values does not block pruning',
    asm: `mov %r6, 0
jlt %r2, 1, out
loop:
ldxb %r3, [%r1]
stxdw [%r10-8], %r3
jeq %r3, 0, skip
mov %r4, 7
stxdw [%r10-8], %r4
skip:
ldxdw %r4, [%r10-8]
add %r6, 1
jlt %r6, 1000, loop
out:
mov %r0, 0
exit`,
    maxProcessed: 30_000,
  },
  {
    name: 'trace_printk with a known format ignores the registers it does not consume',
    asm: `lddw %r1, map_value_by_idx 0, 0
mov %r2, 10
mov %r3, 1
mov %r4, 2
mov %r5, %r10
call 6
mov %r0, 0
exit`,
  },
  {
    name: 'a comparison repeated on unchanged registers takes the side the first one proved',
    asm: `mov %r0, 0
jlt %r2, 16, out
ldxdw %r3, [%r1]
ldxdw %r4, [%r1+8]
mov %r5, 0
jle %r3, %r4, L1
mov %r5, 100
L1:
jgt %r3, %r4, out
add %r1, %r5
ldxb %r0, [%r1]
out:
exit`,
  },
];

const REJECT: Case[] = [
  {
    name: 'a copy of the length scaled after the copy proves nothing',
    asm: 'mov %r3, %r2\nmul %r3, 2\njlt %r3, 8, out\nldxdw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'a copy of the length moved up proves less',
    asm: 'mov %r3, %r2\nadd %r3, 8\njlt %r3, 8, out\nldxdw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'a copy of the length overwritten after the copy proves nothing',
    asm: 'mov %r3, %r2\nmov %r3, 100\njlt %r3, 8, out\nldxdw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'a 32-bit copy of the length is not linked',
    asm: 'mov32 %r3, %r2\njlt %r3, 8, out\nldxdw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'len - 1 >= 7 does not exclude len = 0 (the subtraction wraps)',
    asm: 'mov %r3, %r2\nadd %r3, -1\njlt %r3, 7, out\nldxdw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'an index below the length moved after the comparison proves nothing',
    asm: 'mov %r3, %r2\nrsh %r3, 1\njge %r3, %r2, out\nadd %r3, 1\nmov %r4, %r1\nadd %r4, %r3\nldxb %r0, [%r4]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'an index at most the length may be one past the end',
    asm: 'mov %r3, %r2\nrsh %r3, 1\njgt %r3, %r2, out\nmov %r4, %r1\nadd %r4, %r3\nldxb %r0, [%r4]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'an index compared with the length in 32 bits proves nothing',
    asm: 'mov %r3, %r2\nrsh %r3, 1\njge32 %r3, %r2, out\nmov %r4, %r1\nadd %r4, %r3\nldxb %r0, [%r4]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'one byte proven, two read',
    asm: 'mov %r3, %r2\njlt %r3, 1, out\nldxh %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /invalid access to data/,
  },
  {
    name: 'a loop over the buffer that does not advance is an infinite loop',
    asm: `mov %r3, 0
loop:
jge %r3, %r2, out
mov %r4, %r1
add %r4, %r3
ldxb %r5, [%r4]
ja loop
out:
mov %r0, 0
exit`,
    reason: /infinite loop/,
  },
  {
    name: 'a counter bumped in a branch stays precise when it later indexes the stack',
    asm: `mov %r6, 0
mov %r7, 0
stxdw [%r10-8], %r7
jlt %r2, 1, out
loop:
ldxb %r3, [%r1]
jeq %r3, %r7, skip
add %r6, 1
skip:
add %r7, 1
jlt %r7, 16, loop
out:
mov %r1, %r10
add %r1, -8
add %r1, %r6
ldxb %r0, [%r1]
exit`,
    reason: /invalid read of stack|invalid read from stack|misaligned|invalid/,
  },
  {
    name: 'a stack slot written on one side of a branch only is still unreadable on the other',
    asm: `mov %r6, 0
jlt %r2, 1, out
ldxb %r3, [%r1]
jeq %r3, 0, skip
stxdw [%r10-8], %r3
skip:
ldxdw %r0, [%r10-8]
exit
out:
mov %r0, 0
exit`,
    reason: 'invalid read from stack off -8+0 size 8',
  },
  {
    name: 'trace_printk: a pointer in an argument the known format consumes leaks',
    asm: `lddw %r1, map_value_by_idx 0, 0
mov %r2, 10
mov %r3, %r10
mov %r4, 2
call 6
mov %r0, 0
exit`,
    reason: 'R3 leaks addr into helper function trace_printk',
  },
  {
    name: 'trace_printk: with a format of unknown contents every argument is checked',
    asm: `mov %r1, 0x6425
stxdw [%r10-8], %r1
mov %r1, %r10
add %r1, -8
mov %r2, 8
mov %r3, 1
mov %r4, 2
mov %r5, %r10
call 6
mov %r0, 0
exit`,
    reason: 'R5 leaks addr into helper function trace_printk',
  },
  {
    name: 'a repeated comparison after one register changed decides nothing',
    asm: `mov %r0, 0
jlt %r2, 16, out
ldxdw %r3, [%r1]
ldxdw %r4, [%r1+8]
mov %r5, 0
jle %r3, %r4, L1
mov %r5, 100
L1:
add %r3, 1
jgt %r3, %r4, out
add %r1, %r5
ldxb %r0, [%r1]
out:
exit`,
    reason: /invalid access to data/,
  },
  {
    name: 'a store into read-only global data',
    asm: 'lddw %r1, map_value_by_idx 0, 0\nstb [%r1], 0\nmov %r0, 0\nexit',
    reason: /write into read-only/,
  },
];

describe('verifier precision', () => {
  for (const c of ACCEPT) {
    it(`accepts: ${c.name}`, () => {
      let result: ReturnType<typeof verifyProgram>;
      try {
        result = verifyProgram(assemble(c.asm), { type: 'conformance', maps: MAPS });
      } catch (e) {
        if (e instanceof VerifierError) assert.fail(e.format());
        throw e;
      }
      if (c.maxProcessed !== undefined) {
        assert.ok(result.stats.processedInsns <= c.maxProcessed, `processed ${result.stats.processedInsns} > ${c.maxProcessed}`);
      }
    });
  }
  for (const c of REJECT) {
    it(`rejects: ${c.name}`, () => {
      assert.throws(
        () => verifyProgram(assemble(c.asm), { type: 'conformance', maps: MAPS, maxProcessedInsns: 200_000 }),
        (e: unknown) => {
          assert.ok(e instanceof VerifierError, `expected VerifierError, got ${e}`);
          if (typeof c.reason === 'string') assert.equal(e.reason, c.reason);
          else assert.match(e.reason, c.reason as RegExp);
          return true;
        },
      );
    });
  }
});

const EXAMPLES = join(REPO_ROOT, 'examples', 'build');

/** Example programs and the most instructions their verification may process. */
const EXAMPLE_BUDGET: Record<string, number> = {
  btree_lookup: 50_000,
  btree_range: 50_000,
  btree_batch: 1_000_000,
  table_scan: 500_000,
  bsearch: 50_000,
  sum: 300_000,
  count_calls: 1_000,
  squares: 100_000,
  squares_plus_one: 100_000,
  five_args: 1_000,
  count_bytes: 300_000,
  popcount: 200_000,
};

describe('verifier accepts the example objects', () => {
  for (const file of ['btree.o', 'scan.o', 'counter.o', 'sum.o', 'bsearch.o', 'calls.o', 'hashmap.o', 'globals.o']) {
    const object = loadObject(readFileSync(join(EXAMPLES, file)));
    for (const program of object.programs) {
      it(`${file} ${program.name}`, () => {
        const type = program.programType === 'storage' ? STORAGE_FUNCTION : 'conformance';
        let result: ReturnType<typeof verifyProgram>;
        try {
          result = verifyProgram(program.instructions, { type, maps: object.maps });
        } catch (e) {
          if (e instanceof VerifierError) assert.fail(e.format());
          throw e;
        }
        const budget = EXAMPLE_BUDGET[program.name] ?? 100_000;
        assert.ok(result.stats.processedInsns <= budget, `processed ${result.stats.processedInsns} > ${budget}`);
      });
    }
  }

  it('a loop bounded only by len (up to the 1 MiB buffer) exceeds the instruction limit', () => {
    // for (i = 0; i < len; i++) sum += mem[i], without a smaller bound on len: unrolled once per
    // possible length; see README ("Loops"). examples/sum.c bounds len first for this reason.
    const program = assemble(`
        mov %r0, 0
        mov %r3, 0
      loop:
        jge %r3, %r2, done
        mov %r4, %r1
        add %r4, %r3
        ldxb %r5, [%r4]
        add %r0, %r5
        add %r3, 1
        ja loop
      done:
        exit`);
    assert.throws(
      () => verifyProgram(program, { type: 'conformance', maxProcessedInsns: 50_000 }),
      (e: unknown) => e instanceof VerifierError && /too large/.test(e.reason),
    );
  });
});
