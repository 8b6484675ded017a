/**
 * Every unsafe class the verifier must reject, each with the reason it must give. Programs are
 * assembled from text; `conformance` is r1 = data, r2 = its length; `test` is the ctx type of
 * fixtures.ts (returns 0-255, map 0 has 4-byte keys and 16-byte values).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble } from '../isa/index.js';
import { TEST_MAPS, TEST_TYPE } from './fixtures.js';
import { VerifierError, verifyProgram } from './index.js';

interface RejectCase {
  name: string;
  type?: 'conformance' | 'test';
  asm: string;
  reason: string | RegExp;
  pc?: number;
  maxProcessedInsns?: number;
}

/** `ret0` ends a program returning 0. */
const RET0 = 'mov %r0, 0\nexit';
/** Test type: r2 = data, r3 = data_end, and the first 8 bytes proven readable; jumps to `out` otherwise. */
const DATA8 = `
ldxdw %r2, [%r1+0]
ldxdw %r3, [%r1+8]
mov %r4, %r2
add %r4, 8
jgt %r4, %r3, out`;
const LOOKUP = `
stw [%r10-4], 0
lddw %r1, map_by_idx 0
mov %r2, %r10
add %r2, -4
call 1`;

const CASES: RejectCase[] = [
  // Uninitialised registers and stack.
  { name: 'read of an uninitialised register', asm: 'mov %r0, %r5\nexit', reason: 'R5 !read_ok', pc: 0 },
  { name: 'exit without r0 set', asm: 'exit', reason: 'R0 !read_ok', pc: 0 },
  { name: 'r0 unset on one path only', asm: 'jeq %r2, 0, L\nmov %r0, 0\nL:\nexit', reason: 'R0 !read_ok', pc: 2 },
  {
    name: 'stack written on one path only (neither pruning nor shared stacks may hide it)',
    asm: 'jeq %r2, 0, L\nstdw [%r10-8], 1\nL:\nldxdw %r0, [%r10-8]\nexit',
    reason: 'invalid read from stack off -8+0 size 8',
    pc: 2,
  },
  {
    name: 'spilled pointer on one path, number on the other, then returned',
    asm: 'stdw [%r10-8], 0\njeq %r2, 0, L\nstxdw [%r10-8], %r10\nL:\nldxdw %r0, [%r10-8]\nexit',
    reason: 'R0 leaks addr as return value',
  },
  {
    name: 'read of uninitialised stack',
    asm: 'ldxdw %r0, [%r10-8]\nexit',
    reason: 'invalid read from stack off -8+0 size 8',
    pc: 0,
  },
  {
    name: 'read of partly initialised stack',
    asm: 'stw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit',
    reason: 'invalid read from stack off -8+4 size 8',
  },
  {
    name: 'r1-r5 are clobbered by a helper call',
    asm: 'mov %r6, 1\nmov %r1, 1\ncall 5\nmov %r0, %r1\nexit',
    reason: 'R1 !read_ok',
  },
  // Stack bounds and alignment.
  {
    name: 'stack write below the frame',
    asm: `stdw [%r10-520], 1\n${RET0}`,
    reason: 'invalid write of stack R10 off=-520 size=8',
  },
  {
    name: 'stack read above the frame pointer',
    asm: 'ldxdw %r0, [%r10+0]\nexit',
    reason: 'invalid read of stack R10 off=0 size=8',
  },
  { name: 'misaligned stack access', asm: `stdw [%r10-15], 1\n${RET0}`, reason: 'misaligned stack access off -15 size 8' },
  // Registers.
  { name: 'write to r10', asm: `mov %r10, 0\n${RET0}`, reason: 'frame pointer is read only' },
  { name: 'load into r10', asm: `stdw [%r10-8], 0\nldxdw %r10, [%r10-8]\n${RET0}`, reason: 'frame pointer is read only' },
  // Pointer arithmetic.
  { name: 'pointer + pointer', asm: `mov %r0, %r10\nadd %r0, %r10\n${RET0}`, reason: 'R0 pointer += pointer prohibited' },
  {
    name: 'pointer + unbounded scalar',
    asm: `mov %r1, 1\ncall 5\nmov %r2, %r10\nadd %r2, %r0\n${RET0}`,
    reason: 'math between fp pointer and register with unbounded min value is not allowed',
  },
  {
    name: 'bitwise operation on a pointer',
    asm: `mov %r3, %r10\nand %r3, 7\n${RET0}`,
    reason: 'R3 pointer arithmetic with and operator prohibited',
  },
  { name: '32-bit pointer arithmetic', asm: `add32 %r1, 1\n${RET0}`, reason: 'R1 32-bit pointer arithmetic prohibited' },
  { name: 'mov32 of a pointer', asm: `mov32 %r0, %r10\nexit`, reason: 'R10 partial copy of pointer' },
  { name: 'scalar - pointer', asm: `mov %r0, 1\nsub %r0, %r10\nexit`, reason: 'R0 tried to subtract pointer from scalar' },
  {
    name: 'arithmetic on data_end',
    asm: `mov %r3, %r1\nadd %r3, %r2\nadd %r3, 1\n${RET0}`,
    reason: 'R3 pointer arithmetic on data_end prohibited',
  },
  // Dereferences.
  { name: 'dereference of a scalar', asm: 'mov %r1, 0\nldxdw %r0, [%r1]\nexit', reason: "R1 invalid mem access 'scalar'" },
  {
    name: 'dereference of data_end',
    asm: 'mov %r3, %r1\nadd %r3, %r2\nldxb %r0, [%r3]\nexit',
    reason: "R3 invalid mem access 'data_end'",
  },
  {
    name: 'data read without a bounds check',
    asm: 'ldxb %r0, [%r1]\nexit',
    reason: /^invalid access to data, off=0 size=1, R1\(id=\d+,off=0,r=0\)$/,
  },
  {
    name: 'data read beyond the proven range',
    asm: 'mov %r3, %r1\nadd %r3, %r2\nmov %r4, %r1\nadd %r4, 4\njgt %r4, %r3, out\nldxw %r0, [%r1+2]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /^invalid access to data, off=2 size=4/,
  },
  {
    name: 'data check with the wrong comparison',
    asm: 'mov %r3, %r1\nadd %r3, %r2\nmov %r4, %r1\nadd %r4, 4\njlt %r4, %r3, out\nldxw %r0, [%r1]\nexit\nout:\nmov %r0, 0\nexit',
    reason: /^invalid access to data, off=0 size=4/,
  },
  // Context rules (test type).
  {
    name: 'misaligned ctx access',
    type: 'test',
    asm: 'ldxh %r0, [%r1+17]\nexit',
    reason: 'misaligned context access off=17 size=2',
  },
  {
    name: 'write to a read-only ctx field',
    type: 'test',
    asm: `stw [%r1+16], 0\n${RET0}`,
    reason: "write to read-only ctx field 'len' off=16 size=4",
  },
  {
    name: 'write to a ctx pointer field',
    type: 'test',
    asm: `stdw [%r1+0], 0\n${RET0}`,
    reason: "write to read-only ctx field 'data' off=0 size=8",
  },
  {
    name: 'ctx access past the struct',
    type: 'test',
    asm: 'ldxw %r0, [%r1+40]\nexit',
    reason: 'invalid bpf_context access off=40 size=4',
  },
  {
    name: 'partial read of a ctx pointer field',
    type: 'test',
    asm: 'ldxw %r0, [%r1+0]\nexit',
    reason: /^invalid bpf_context access off=0 size=4 \(pointer field 'data'/,
  },
  {
    name: 'atomic on ctx',
    type: 'test',
    asm: `mov %r2, 1\nlock add32 [%r1+20], %r2\n${RET0}`,
    reason: 'BPF_ATOMIC stores into R1 ctx is not allowed',
  },
  {
    name: 'write to the read-only data buffer',
    type: 'test',
    asm: `${DATA8}\nstb [%r2], 0\nout:\n${RET0}`,
    reason: 'write into the read-only data buffer',
  },
  {
    name: 'write to read-only rodata',
    type: 'test',
    asm: `ldxdw %r2, [%r1+32]\nstb [%r2], 0\n${RET0}`,
    reason: 'write into read-only rodata',
  },
  {
    name: 'scratch access out of bounds',
    type: 'test',
    asm: 'ldxdw %r2, [%r1+24]\nldxdw %r0, [%r2+60]\nexit',
    reason: 'invalid access to scratch, size=64 off=60 size=8',
  },
  // Leaks.
  { name: 'pointer as return value', asm: 'mov %r0, %r10\nexit', reason: 'R0 leaks addr as return value' },
  { name: 'ctx pointer as return value', type: 'test', asm: 'mov %r0, %r1\nexit', reason: 'R0 leaks addr as return value' },
  { name: 'pointer stored into ctx', type: 'test', asm: `stxw [%r1+20], %r10\n${RET0}`, reason: 'R10 leaks addr into ctx' },
  {
    name: 'pointer stored into data',
    asm: 'mov %r3, %r1\nadd %r3, %r2\nmov %r4, %r1\nadd %r4, 8\njgt %r4, %r3, out\nstxdw [%r1], %r10\nout:\nmov %r0, 0\nexit',
    reason: 'R10 leaks addr into data',
  },
  {
    name: 'pointer stored into scratch',
    type: 'test',
    asm: `ldxdw %r2, [%r1+24]\nstxdw [%r2], %r1\n${RET0}`,
    reason: 'R1 leaks addr into mem',
  },
  {
    name: 'pointer stored into a map value',
    type: 'test',
    asm: `${LOOKUP}\njeq %r0, 0, out\nstxdw [%r0], %r10\nout:\n${RET0}`,
    reason: 'R10 leaks addr into mem',
  },
  {
    name: 'pointer passed as a helper scalar',
    asm: `mov %r1, %r10\ncall 5\nexit`,
    reason: 'R1 leaks addr into helper function unwind',
  },
  {
    name: 'atomic with a pointer operand',
    asm: `stdw [%r10-8], 0\nlock add [%r10-8], %r10\n${RET0}`,
    reason: 'R10 leaks addr into mem',
  },
  { name: 'pointer compared with a number', asm: `jeq %r10, 5, L\nL:\n${RET0}`, reason: 'R10 pointer comparison prohibited' },
  {
    name: 'partial overwrite of a spilled pointer',
    asm: `stxdw [%r10-8], %r10\nstb [%r10-8], 0\n${RET0}`,
    reason: 'attempt to corrupt spilled pointer on stack at off -8',
  },
  {
    name: 'partial read of a spilled pointer',
    asm: 'stxdw [%r10-8], %r10\nldxw %r0, [%r10-8]\nexit',
    reason: /^invalid size of register fill/,
  },
  // Maps and helpers.
  {
    name: 'map value used before the null check',
    type: 'test',
    asm: `${LOOKUP}\nldxb %r0, [%r0]\nexit`,
    reason: "R0 invalid mem access 'map_value_or_null'",
  },
  {
    name: 'map value read out of bounds',
    type: 'test',
    asm: `${LOOKUP}\njeq %r0, 0, out\nldxb %r0, [%r0+16]\nexit\nout:\n${RET0}`,
    reason: 'invalid access to map_value, size=16 off=16 size=1',
  },
  {
    name: 'map key from uninitialised stack',
    type: 'test',
    asm: `lddw %r1, map_by_idx 0\nmov %r2, %r10\nadd %r2, -8\ncall 1\n${RET0}`,
    reason: 'invalid read from stack R2 off -8+0 size 4',
  },
  { name: 'unknown helper', asm: `call 99\n${RET0}`, reason: 'invalid func unknown#99' },
  { name: 'helper not offered by the program type', type: 'test', asm: `call 5\n${RET0}`, reason: 'invalid func unknown#5' },
  {
    name: 'helper memory of unbounded size',
    type: 'test',
    asm: `ldxdw %r2, [%r1+24]\nmov %r1, %r2\nmov %r2, -1\ncall 100\n${RET0}`,
    reason: "R2 min value is negative, either use unsigned or 'var &= const'",
  },
  {
    name: 'helper memory larger than the object',
    type: 'test',
    asm: `ldxdw %r1, [%r1+24]\nmov %r2, 65\ncall 100\n${RET0}`,
    reason: 'invalid access to scratch, size=64 off=0 size=65',
  },
  {
    name: 'helper reads uninitialised stack',
    type: 'test',
    asm: `mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 100\n${RET0}`,
    reason: 'invalid read from stack R1 off -8+0 size 8',
  },
  {
    name: 'helper ctx argument is not ctx',
    type: 'test',
    asm: `mov %r1, %r10\nmov %r2, 0\ncall 102\n${RET0}`,
    reason: 'R1 type=fp expected=ctx',
  },
  { name: 'void helper leaves r0 unreadable', type: 'test', asm: 'call 103\nexit', reason: 'R0 !read_ok' },
  { name: 'kfunc call', asm: `call kfunc 1\n${RET0}`, reason: 'kfunc calls are not supported' },
  {
    name: 'return value outside the type range',
    type: 'test',
    asm: 'mov %r0, 256\nexit',
    reason: 'At program exit the register R0 has 256 should have been in [0, 255]',
  },
  // Arithmetic.
  { name: 'division by immediate zero', asm: 'mov %r0, 1\ndiv %r0, 0\nexit', reason: 'division by zero' },
  { name: 'modulo by immediate zero (32-bit)', asm: 'mov %r0, 1\nmod32 %r0, 0\nexit', reason: 'division by zero' },
  // Control flow.
  { name: 'jump out of range', asm: 'ja +5\nexit', reason: /^jump target 6 is out of range/, pc: 0 },
  { name: 'jump into the middle of lddw', asm: 'ja +1\nlddw %r0, 1\nexit', reason: /middle of an lddw/, pc: 0 },
  { name: 'falling off the end', asm: 'mov %r0, 0', reason: /falls off the end/ },
  { name: 'unreachable instruction', asm: 'mov %r0, 0\nexit\nmov %r0, 1\nexit', reason: 'unreachable insn 2', pc: 2 },
  {
    name: 'loop that makes no progress',
    asm: 'mov %r0, 0\nL:\nmov %r1, 1\njne %r0, 1, L\nexit',
    reason: 'back-edge from insn 2 to 1 forms an infinite loop',
    pc: 1,
  },
  {
    name: 'loop whose exit never happens (state unchanged on an unknown branch)',
    asm: 'mov %r1, 1\ncall 5\nL:\nmov %r1, 0\njne %r0, 7, L\nexit',
    reason: 'back-edge from insn 3 to 2 forms an infinite loop',
  },
  {
    name: 'unbounded counting loop hits the processed-instruction limit',
    asm: 'mov %r0, 0\nL:\nadd %r0, 1\njgt %r0, 0, L\nexit',
    reason: 'BPF program is too large. Processed 10001 insn',
    maxProcessedInsns: 10_000,
  },
  {
    // The counter is never read: modulo dead registers the loop comes back to the same state.
    name: 'loop whose only progress is a dead counter is an infinite loop',
    asm: 'mov %r0, 0\nL:\nadd %r0, 1\nja L',
    reason: 'back-edge from insn 2 to 1 forms an infinite loop',
    maxProcessedInsns: 10_000,
  },
  // Calls.
  {
    name: 'recursion',
    asm: 'mov %r0, 0\ncall local f\nexit\nf:\ncall local f\nmov %r0, 0\nexit',
    reason: 'recursive call from insn 3 to 3',
  },
  {
    name: 'calls nested too deep',
    asm: `call local f1\nexit\n${[1, 2, 3, 4, 5, 6, 7, 8].map((i) => `f${i}:\ncall local f${i + 1}\nexit`).join('\n')}\nf9:\nmov %r0, 0\nexit`,
    reason: 'the call stack of 9 frames is too deep',
  },
  {
    name: 'returning a pointer to the callee stack',
    asm: 'call local f\nexit\nf:\nmov %r0, %r10\nexit',
    reason: 'cannot return stack pointer to the caller',
  },
  {
    name: 'callee stores its stack pointer into the caller frame',
    asm: `mov %r1, %r10\ncall local f\n${RET0}\nf:\nstxdw [%r1-8], %r10\n${RET0}`,
    reason: 'cannot spill pointers to stack into stack frame of the caller',
  },
];

describe('verifier rejects unsafe programs', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const program = assemble(c.asm);
      const type = c.type === 'test' ? TEST_TYPE : 'conformance';
      assert.throws(
        () => verifyProgram(program, { type, maps: TEST_MAPS, maxProcessedInsns: c.maxProcessedInsns }),
        (e: unknown) => {
          assert.ok(e instanceof VerifierError, `expected VerifierError, got ${e}`);
          if (typeof c.reason === 'string') assert.equal(e.reason, c.reason);
          else assert.match(e.reason, c.reason);
          if (c.pc !== undefined) assert.equal(e.pc, c.pc);
          assert.equal(e.code, 'ERR_VERIFIER_REJECTED');
          return true;
        },
      );
    });
  }
});
