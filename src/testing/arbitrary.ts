/** fast-check arbitraries for every valid RFC 9669 instruction. */
import fc from 'fast-check';
import type { AluOp, Instruction, JumpCondition, LddwSource, Operand, Register } from '../isa/index.js';

export const register: fc.Arbitrary<Register> = fc.integer({ min: 0, max: 10 }) as fc.Arbitrary<Register>;
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const operand: fc.Arbitrary<Operand> = fc.oneof(
  int32.map((value) => ({ kind: 'imm', value }) as Operand),
  register.map((reg) => ({ kind: 'reg', reg }) as Operand),
);
const size = fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const);
const plainAluOps: AluOp[] = ['add', 'sub', 'mul', 'div', 'sdiv', 'or', 'and', 'lsh', 'rsh', 'mod', 'smod', 'xor', 'mov', 'arsh'];
const conds: JumpCondition[] = ['eq', 'gt', 'ge', 'set', 'ne', 'sgt', 'sge', 'lt', 'le', 'slt', 'sle'];

export const instruction: fc.Arbitrary<Instruction> = fc
  .oneof(
    fc.record({
      kind: fc.constant('alu' as const),
      width: fc.constantFrom(32 as const, 64 as const),
      op: fc.constantFrom(...plainAluOps),
      dst: register,
      src: operand,
    }),
    fc
      .record({ width: fc.constantFrom(32 as const, 64 as const), dst: register })
      .map(({ width, dst }) => ({ kind: 'alu', width, op: 'neg', dst, src: { kind: 'imm', value: 0 } }) as Instruction),
    fc
      .record({
        width: fc.constantFrom(32 as const, 64 as const),
        bits: fc.constantFrom(8, 16, 32),
        dst: register,
        src: register,
      })
      .filter(({ width, bits }) => !(width === 32 && bits === 32))
      .map(
        ({ width, bits, dst, src }) =>
          ({ kind: 'alu', width, op: `movsx${bits}` as AluOp, dst, src: { kind: 'reg', reg: src } }) as Instruction,
      ),
    fc.record({
      kind: fc.constant('endian' as const),
      order: fc.constantFrom('le' as const, 'be' as const, 'swap' as const),
      bits: fc.constantFrom(16 as const, 32 as const, 64 as const),
      dst: register,
    }),
    fc.record({ kind: fc.constant('ja' as const), offset: int16, wide: fc.constant(false) }),
    fc.record({ kind: fc.constant('ja' as const), offset: int32, wide: fc.constant(true) }),
    fc.record({
      kind: fc.constant('jump' as const),
      width: fc.constantFrom(32 as const, 64 as const),
      cond: fc.constantFrom(...conds),
      dst: register,
      src: operand,
      offset: int16,
    }),
    fc.record({
      kind: fc.constant('call' as const),
      target: fc.constantFrom('helper' as const, 'local' as const, 'kfunc' as const),
      imm: int32,
    }),
    fc.record({ kind: fc.constant('callx' as const), reg: register }),
    fc.constant({ kind: 'exit' } as Instruction),
    fc.record({
      kind: fc.constant('lddw' as const),
      dst: register,
      source: fc.integer({ min: 0, max: 6 }) as fc.Arbitrary<LddwSource>,
      imm: int32,
      nextImm: int32,
    }),
    fc
      .record({ kind: fc.constant('load' as const), size, signed: fc.boolean(), dst: register, src: register, offset: int16 })
      .filter((i) => !(i.signed && i.size === 8)),
    fc.record({ kind: fc.constant('store' as const), size, dst: register, offset: int16, src: operand }),
    fc
      .record({
        kind: fc.constant('atomic' as const),
        size: fc.constantFrom(4 as const, 8 as const),
        op: fc.constantFrom('add' as const, 'or' as const, 'and' as const, 'xor' as const, 'xchg' as const, 'cmpxchg' as const),
        fetch: fc.boolean(),
        dst: register,
        src: register,
        offset: int16,
      })
      .map((i) => (i.op === 'xchg' || i.op === 'cmpxchg' ? { ...i, fetch: true } : i)),
  )
  // fast-check builds null-prototype records; instructions are plain objects.
  .map((i) => structuredClone(i) as Instruction);
