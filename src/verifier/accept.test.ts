/**
 * Programs the verifier must accept: the precision it needs for real code (bounded loops, bounds
 * checks, spills across calls, 32-bit arithmetic, calls with stack pointers).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble } from '../isa/index.js';
import { TEST_MAPS, TEST_TYPE } from './fixtures.js';
import { VerifierError, verifyProgram } from './index.js';

interface AcceptCase {
  name: string;
  type?: 'conformance' | 'test';
  asm: string;
  /** Upper bound on processed instructions, to catch exploration blow-ups. */
  maxProcessed?: number;
}

/** Binary search for the key in r6 over the 31 sorted 8-byte keys at the start of the data buffer; r0 = index or 255. */
const BINARY_SEARCH = `
ldxdw %r2, [%r1+0]        # data
ldxdw %r3, [%r1+8]        # data_end
ldxw %r6, [%r1+16]        # key to find
mov %r4, %r2
add %r4, 248              # 31 keys of 8 bytes
jgt %r4, %r3, notfound
mov %r7, 0                # lo
mov %r8, 31               # hi
loop:
jge %r7, %r8, notfound
mov %r9, %r7
add %r9, %r8
rsh %r9, 1                # mid
mov %r5, %r9
lsh %r5, 3
mov %r4, %r2
add %r4, %r5
ldxdw %r5, [%r4]          # keys[mid]
jeq %r5, %r6, found
jgt %r5, %r6, left
mov %r7, %r9
add %r7, 1
ja loop
left:
mov %r8, %r9
ja loop
found:
mov %r0, %r9
exit
notfound:
mov %r0, 255
exit`;

const CASES: AcceptCase[] = [
  { name: 'minimal program', asm: 'mov %r0, 0\nexit' },
  { name: 'returns the buffer length (mem-len)', asm: 'mov %r0, %r2\nexit' },
  {
    name: 'bounds-checked loop summing the bytes of the buffer (length in r2, at most 64 bytes)',
    asm: `
mov %r0, 0
mov %r3, %r1
add %r3, %r2              # r3 = data + len = end
mov %r6, 0                # bytes summed
loop:
jge %r6, 64, done
mov %r4, %r1
add %r4, 1
jgt %r4, %r3, done        # r1 + 1 > end: no byte left
ldxb %r5, [%r1]
add %r0, %r5
mov %r1, %r4
add %r6, 1
ja loop
done:
exit`,
    maxProcessed: 2000,
  },
  {
    name: 'loop walking the whole buffer is bounded by its maximum size (test type: 4096 bytes, 512 words)',
    type: 'test',
    asm: `
ldxdw %r2, [%r1+0]
ldxdw %r3, [%r1+8]
mov %r0, 0
loop:
mov %r4, %r2
add %r4, 8
jgt %r4, %r3, done
ldxdw %r5, [%r2]
xor %r0, %r5
mov %r2, %r4
ja loop
done:
and %r0, 255
exit`,
  },
  { name: 'binary search over a sorted node of 31 keys', type: 'test', asm: BINARY_SEARCH, maxProcessed: 5000 },
  {
    name: 'spill and fill around helper calls keep pointer types and scalar bounds',
    type: 'test',
    asm: `
stxdw [%r10-8], %r1       # spill ctx
ldxw %r2, [%r1+16]
and %r2, 15
stxdw [%r10-16], %r2      # spill a bounded scalar
mov %r2, 7
call 102                  # ctx_info(ctx, 7): clobbers r1-r5
call 103                  # returns nothing
ldxdw %r1, [%r10-8]       # fill: still ctx
ldxdw %r2, [%r10-16]      # fill: still in [0, 15]
ldxdw %r3, [%r1+24]       # scratch
add %r3, %r2
ldxdw %r0, [%r3+40]       # 15 + 40 + 8 <= 64
and %r0, 1
exit`,
  },
  {
    name: '32-bit subregister arithmetic: wrap-around, zero-extension and JMP32 refinement',
    asm: `
mov32 %r2, -1             # 0xffffffff, high half zero
add32 %r2, 1              # wraps to exactly 0
mov %r3, %r10
add %r3, %r2
stdw [%r3-8], 7           # fp-8: only possible if r2 is exactly 0
lddw %r4, 0x1234567800000005
mov32 %r4, %r4            # zero-extends: 5
lsh %r4, 3                # 40
mov %r5, %r10
sub %r5, %r4
stdw [%r5+0], 1           # fp-40
mov %r6, %r2
add %r6, %r1              # hmm: r6 = 0 + data (not the length): still a data pointer at offset 0
mov %r7, %r2
sub32 %r7, 1              # 0xffffffff
jgt32 %r7, 0xfffffffe, ok # always taken
ldxdw %r0, [%r10+0]       # would be rejected if explored
exit
ok:
ldxdw %r0, [%r10-8]
exit`,
  },
  {
    name: 'JMP32 bound on a 32-bit value indexes the stack',
    asm: `
mov %r1, 3
call 5
mov32 %r6, %r0            # unknown u32
jge32 %r6, 8, out
lsh %r6, 3                # 0..56, multiple of 8
stdw [%r10-64], 0
stdw [%r10-56], 0
stdw [%r10-48], 0
stdw [%r10-40], 0
stdw [%r10-32], 0
stdw [%r10-24], 0
stdw [%r10-16], 0
stdw [%r10-8], 0
mov %r2, %r10
add %r2, %r6
ldxdw %r0, [%r2-64]       # variable-offset read of initialised stack
exit
out:
mov %r0, 0
exit`,
  },
  {
    name: 'a loop of 4096 iterations',
    asm: 'mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, 4096, loop\nexit',
    maxProcessed: 20_000,
  },
  {
    name: 'local calls passing a stack pointer',
    asm: `
stdw [%r10-8], 41
mov %r1, %r10
add %r1, -8
call local inc
ldxdw %r0, [%r10-8]       # written by the callee
exit
inc:
ldxdw %r2, [%r1]
add %r2, 1
stxdw [%r1], %r2
mov %r3, %r1
call local twice          # nested call with the caller's pointer
mov %r0, 0
exit
twice:
ldxdw %r2, [%r3]
stxdw [%r10-8], %r2       # the callee's own frame
mov %r0, %r2
exit`,
  },
  { name: 'division and modulo by a register that may be zero', asm: 'mov %r0, 10\ndiv %r0, %r2\nmod32 %r0, %r2\nexit' },
  {
    name: 'map lookup with a null check, then read and write of the value',
    type: 'test',
    asm: `
stw [%r10-4], 3
lddw %r1, map_by_idx 0
mov %r2, %r10
add %r2, -4
call 1
mov %r6, %r0              # a copy shares the null check
jeq %r0, 0, out
ldxdw %r1, [%r6+8]
add %r1, 1
stxdw [%r6+8], %r1
out:
mov %r0, 0
exit`,
  },
  {
    name: 'helper fills stack memory that is then read; helper reads data proven in bounds',
    type: 'test',
    asm: `
mov %r6, %r1
mov %r1, %r10
add %r1, -16
mov %r2, 16
call 101                  # fills fp-16..fp-1
ldxdw %r0, [%r10-16]
ldxdw %r2, [%r6+0]
ldxdw %r3, [%r6+8]
mov %r4, %r2
add %r4, 32
jgt %r4, %r3, out
mov %r1, %r2
mov %r2, 32
call 100                  # emit 32 bytes of data
out:
mov %r0, 0
exit`,
  },
  {
    name: 'ctx fields: read-only read, writable write, data_end - data',
    type: 'test',
    asm: `
ldxw %r2, [%r1+16]
stxw [%r1+20], %r2
ldxdw %r3, [%r1+0]
ldxdw %r4, [%r1+8]
sub %r4, %r3              # the buffer length, a number
stxw [%r1+20], %r4
mov %r0, 1
exit`,
  },
  {
    name: 'sign-extending loads and movsx',
    asm: 'stb [%r10-1], 0x80\nldxsb %r0, [%r10-1]\nmovsx1632 %r1, %r0\nexit',
  },
];

describe('verifier accepts safe programs', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const program = assemble(c.asm);
      try {
        const result = verifyProgram(program, { type: c.type === 'test' ? TEST_TYPE : 'conformance', maps: TEST_MAPS });
        assert.equal(result.ok, true);
        if (c.maxProcessed !== undefined)
          assert.ok(result.stats.processedInsns <= c.maxProcessed, `processed ${result.stats.processedInsns}`);
      } catch (e) {
        if (e instanceof VerifierError) assert.fail(`rejected: ${e.format()}`);
        throw e;
      }
    });
  }
});
