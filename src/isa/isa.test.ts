import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AssembleError, DecodeError } from '../errors.js';
import { instruction } from '../testing/arbitrary.js';
import { CONFORMANCE_DIR, readConformanceCases } from '../testing/conformance-data.js';
import {
  assemble,
  decodeProgram,
  disassemble,
  encodeProgram,
  formatInstruction,
  type Instruction,
  layoutProgram,
} from './index.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const bytesOf = (...slots: string[]) => Uint8Array.from(Buffer.from(slots.join('').replace(/\s+/g, ''), 'hex'));

describe('assembler', () => {
  const golden = JSON.parse(readFileSync(join(CONFORMANCE_DIR, 'compiled.json'), 'utf8')) as { name: string; code: string }[];
  const cases = new Map(readConformanceCases().map((c) => [c.name, c]));

  it('assembles every conformance program to the suite’s own bytes', () => {
    assert.equal(golden.length, 313);
    for (const g of golden) {
      const c = cases.get(g.name);
      assert.ok(c, g.name);
      const bytes = c.asm !== undefined ? encodeProgram(assemble(c.asm)) : (c.raw as Uint8Array);
      assert.equal(hex(bytes), g.code, g.name);
    }
  });

  it('round-trips every conformance program through the disassembler', () => {
    for (const g of golden) {
      const program = decodeProgram(bytesOf(g.code));
      assert.equal(hex(encodeProgram(assemble(disassemble(program)))), g.code, g.name);
      assert.equal(hex(encodeProgram(assemble(disassemble(program, { labels: true })))), g.code, g.name);
    }
  });

  const rejects: [string, string, RegExp][] = [
    ['unknown mnemonic', 'ldxq %r0, %r1\nexit', /unknown mnemonic 'ldxq'/],
    ['register out of range', 'or %r0, %r50\nexit', /invalid register %r50/],
    ['decimal immediate too large', 'mov32 %r0, 2147483648\nexit', /does not fit in 32 bits/],
    ['hex immediate too large', 'mov32 %r0, 0x100000000\nexit', /does not fit in 32 bits/],
    ['offset too large', 'ldxb %r0, [%r1+0x10000]\nexit', /offset .* does not fit in 16 bits/],
    ['memory operand without brackets', 'ldxb %r0, %r1\nexit', /expected a memory operand/],
    ['unknown label', 'ja NOT_A_LABEL\nexit', /unknown label 'NOT_A_LABEL'/],
    ['missing operands', 'lddw %r0\nexit', /takes 2 operands/],
    ['lock without operands', 'lock\nexit', /Invalid number of operands for lock/],
    ['lock with one operand', 'lock or [%r10-8]\nexit', /takes 2 operands/],
    ['duplicate label', 'a:\na:\nexit', /defined twice/],
    ['empty program', '# nothing\n', /no instructions/],
    ['jump too far for ja', `ja +40000\nexit`, /does not fit in 16 bits/],
  ];
  for (const [name, text, message] of rejects) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => assemble(text),
        (e: unknown) => e instanceof AssembleError && message.test(e.message),
      );
    });
  }

  it('reports the line of the error', () => {
    assert.throws(
      () => assemble('mov %r0, 1\n\nfoo %r1\nexit'),
      (e: unknown) => e instanceof AssembleError && e.line === 3,
    );
  });

  it('accepts the syntax variants of the suite', () => {
    const p = assemble(`
      start: mov %r1, 2   # comment
      lock fetch add32 [%r10-4], %r1
      call local f
      ja32 +0
      swap16 %r1
      lddw %r1, 0xffffffffffffffff
      exit
      f: exit`);
    assert.deepEqual(
      p.map((i) => formatInstruction(i)),
      [
        'mov %r1, 2',
        'lock fetch add32 [%r10-4], %r1',
        'call local +5',
        'ja32 +0',
        'bswap16 %r1',
        'lddw %r1, 0xffffffffffffffff',
        'exit',
        'exit',
      ],
    );
  });
});

describe('codec', () => {
  it('decode(encode(i)) = i for every valid instruction', () => {
    fc.assert(
      fc.property(instruction, (insn: Instruction) => {
        assert.deepEqual(decodeProgram(encodeProgram([insn])), [insn]);
      }),
      { numRuns: 20000 },
    );
  });

  it('assemble(disassemble(p)) = p for every valid instruction sequence', () => {
    fc.assert(
      fc.property(fc.array(instruction, { minLength: 1, maxLength: 20 }), (program: Instruction[]) => {
        assert.deepEqual(assemble(disassemble(program)), program);
      }),
      { numRuns: 3000 },
    );
  });

  const invalid: [string, string, RegExp, number][] = [
    ['add64 imm with offset', '07000100 01000000', /reserved field offset must be 0/, 0],
    ['add64 imm with src', '07100000 01000000', /reserved field src must be 0/, 0],
    ['add64 reg with imm', '0f100000 01000000', /reserved field imm must be 0/, 0],
    ['neg with imm', '87000000 01000000', /reserved field imm must be 0/, 0],
    ['neg with register source', '8f100000 00000000', /neg has no register form/, 0],
    ['exit with dst', '95010000 00000000', /reserved field dst must be 0/, 0],
    ['ja with imm', '05000000 01000000', /reserved field imm must be 0/, 0],
    ['ja32 with offset', '06000100 00000000', /reserved field offset must be 0/, 0],
    ['call with dst', '85010000 05000000', /reserved field dst must be 0/, 0],
    ['call with unknown source', '85300000 05000000', /unknown call source 3/, 0],
    ['le with width 8', 'd4000000 08000000', /invalid byte swap width 8/, 0],
    ['bswap register form', 'df000000 10000000', /bswap has no register form/, 0],
    ['unknown ALU operation', 'e7000000 00000000', /unknown ALU operation/, 0],
    ['unknown jump operation', 'e5000000 00000000', /unknown jump operation/, 0],
    ['call in JMP32', '86000000 00000000', /not a JMP32 operation/, 0],
    ['register 11', 'b70b0000 00000000', /invalid dst register r11/, 0],
    ['sign-extending 64-bit load', '99100000 00000000', /unknown load mode/, 0],
    ['ldx with imm', '61100000 01000000', /reserved field imm must be 0/, 0],
    ['st with src', '62100000 01000000', /reserved field src must be 0/, 0],
    ['atomic on a byte', 'd3100000 00000000', /must be 32 or 64 bits/, 0],
    ['xchg without fetch', 'db100000 e0000000', /unknown atomic operation 0xe0/, 0],
    ['unknown atomic', 'db100000 10000000', /unknown atomic operation 0x10/, 0],
    ['legacy packet access', '20000000 00000000', /legacy packet access/, 0],
    ['movsx32 in ALU32', 'bc102000 00000000', /reserved field offset must be 0/, 0],
    ['movsx with immediate', 'b7000800 00000000', /reserved field offset must be 0/, 0],
    ['lddw missing second slot', '18000000 00000000', /missing its second slot/, 0],
    ['lddw second slot with opcode', '18000000 00000000 95000000 00000000', /second slot of lddw/, 1],
    ['lddw unknown source', '18700000 00000000 00000000 00000000', /unknown lddw source 7/, 0],
    ['bad opcode at index 1', 'b7000000 00000000 ff000000 00000000', /unknown/, 1],
  ];
  for (const [name, slots, message, index] of invalid) {
    it(`rejects ${name} with the instruction index`, () => {
      assert.throws(
        () => decodeProgram(bytesOf(slots)),
        (e: unknown) => e instanceof DecodeError && message.test(e.message) && e.index === index,
      );
    });
  }

  it('rejects a length that is not a multiple of 8 and an empty program', () => {
    assert.throws(() => decodeProgram(new Uint8Array(12)), DecodeError);
    assert.throws(() => decodeProgram(new Uint8Array(0)), /empty/);
  });
});

describe('layout', () => {
  const cases: [string, string, RegExp][] = [
    ['jump out of range', 'ja +5\nexit', /jump target 6 is out of range/],
    ['jump before the start', 'ja -2\nexit', /jump target -1 is out of range/],
    ['jump into lddw', 'ja +1\nlddw %r0, 1\nexit', /middle of an lddw/],
    ['falling off the end', 'mov %r0, 0', /falls off the end/],
    ['conditional jump as last instruction', 'jeq %r0, 0, -1', /falls off the end/],
    ['jump into another function', 'call local f\nja +1\nexit\nf: exit', /outside the function/],
    ['local call out of range', 'call local +7\nexit', /local call target 8 is not an instruction/],
  ];
  for (const [name, text, message] of cases) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => layoutProgram(assemble(text)),
        (e: unknown) => e instanceof DecodeError && message.test(e.message),
      );
    });
  }

  it('finds functions and slot numbers', () => {
    const layout = layoutProgram(assemble('lddw %r0, 1\ncall local f\nexit\nf: mov %r0, 2\nexit'));
    assert.deepEqual(layout.functions, [
      { entryPc: 0, endPc: 4 },
      { entryPc: 4, endPc: 6 },
    ]);
    assert.deepEqual([...layout.pcOf], [0, 2, 3, 4, 5]);
    assert.equal(layout.indexAt[1], -1);
  });
});
