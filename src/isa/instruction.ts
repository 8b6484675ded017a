/**
 * The instruction model of RFC 9669 (eBPF ISA v1-v4) as plain, immutable data.
 *
 * One `Instruction` is one logical instruction; `lddw` is the only one that occupies two 8-byte
 * slots. Jump and call offsets count slots, as on the wire.
 */

export type Register = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export const FRAME_POINTER: Register = 10;
export const REGISTER_COUNT = 11;

export type Operand = { readonly kind: 'imm'; readonly value: number } | { readonly kind: 'reg'; readonly reg: Register };

export type AluOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'sdiv'
  | 'or'
  | 'and'
  | 'lsh'
  | 'rsh'
  | 'neg'
  | 'mod'
  | 'smod'
  | 'xor'
  | 'mov'
  | 'movsx8'
  | 'movsx16'
  | 'movsx32'
  | 'arsh';

export type JumpCondition = 'eq' | 'gt' | 'ge' | 'set' | 'ne' | 'sgt' | 'sge' | 'lt' | 'le' | 'slt' | 'sle';
export type AccessSize = 1 | 2 | 4 | 8;
export type AtomicOp = 'add' | 'or' | 'and' | 'xor' | 'xchg' | 'cmpxchg';
export type Width = 32 | 64;

/** What the immediate of an `lddw` means (RFC 9669 §5.4). The loader resolves 1-6. */
export type LddwSource = 0 | 1 | 2 | 3 | 4 | 5 | 6;
export const LDDW_SOURCE_NAMES: Record<LddwSource, string> = {
  0: 'imm64',
  1: 'map_by_fd',
  2: 'map_value_by_fd',
  3: 'variable_addr',
  4: 'code_addr',
  5: 'map_by_idx',
  6: 'map_value_by_idx',
};

export type AluInstruction = {
  readonly kind: 'alu';
  readonly width: Width;
  readonly op: AluOp;
  readonly dst: Register;
  /** Ignored by `neg` (always `imm 0`). */
  readonly src: Operand;
};
/** `le`/`be` convert between host (little-endian) and the given order then truncate; `swap` is BSWAP (v4). */
export type EndianInstruction = {
  readonly kind: 'endian';
  readonly order: 'le' | 'be' | 'swap';
  readonly bits: 16 | 32 | 64;
  readonly dst: Register;
};
/** Unconditional jump: `ja` (16-bit offset) or, with `wide`, JA32/gotol (32-bit offset in imm). */
export type JaInstruction = {
  readonly kind: 'ja';
  readonly offset: number;
  readonly wide: boolean;
};
export type JumpInstruction = {
  readonly kind: 'jump';
  readonly width: Width;
  readonly cond: JumpCondition;
  readonly dst: Register;
  readonly src: Operand;
  readonly offset: number;
};
/** `helper`: imm is a helper id; `local`: target slot = pc + imm + 1; `kfunc`: imm is a BTF id. */
export type CallInstruction = {
  readonly kind: 'call';
  readonly target: 'helper' | 'local' | 'kfunc';
  readonly imm: number;
};
/** Call through a register (opcode 0x8d, outside the RFC): the register holds a helper id. */
export type CallxInstruction = {
  readonly kind: 'callx';
  readonly reg: Register;
};
export type ExitInstruction = { readonly kind: 'exit' };
export type LddwInstruction = {
  readonly kind: 'lddw';
  readonly dst: Register;
  readonly source: LddwSource;
  /** Low 32 bits (source 0) or the reference the loader resolves. */
  readonly imm: number;
  /** Immediate of the second slot: the high 32 bits for source 0. */
  readonly nextImm: number;
};
export type LoadInstruction = {
  readonly kind: 'load';
  readonly size: AccessSize;
  readonly signed: boolean;
  readonly dst: Register;
  readonly src: Register;
  readonly offset: number;
};
export type StoreInstruction = {
  readonly kind: 'store';
  readonly size: AccessSize;
  readonly dst: Register;
  readonly offset: number;
  readonly src: Operand;
};
export type AtomicInstruction = {
  readonly kind: 'atomic';
  readonly size: 4 | 8;
  readonly op: AtomicOp;
  /** Load the old value into `src` (into r0 for cmpxchg). Always set for xchg and cmpxchg. */
  readonly fetch: boolean;
  readonly dst: Register;
  readonly src: Register;
  readonly offset: number;
};

export type Instruction =
  | AluInstruction
  | EndianInstruction
  | JaInstruction
  | JumpInstruction
  | CallInstruction
  | CallxInstruction
  | ExitInstruction
  | LddwInstruction
  | LoadInstruction
  | StoreInstruction
  | AtomicInstruction;

export type Program = readonly Instruction[];

/** Number of 8-byte slots an instruction occupies. */
export function slotCount(insn: Instruction): 1 | 2 {
  return insn.kind === 'lddw' ? 2 : 1;
}

/** Slot index of each instruction, plus the total number of slots at the end. */
export function slotIndexes(program: Program): Int32Array {
  const pcs = new Int32Array(program.length + 1);
  let pc = 0;
  for (let i = 0; i < program.length; i++) {
    pcs[i] = pc;
    pc += slotCount(program[i]);
  }
  pcs[program.length] = pc;
  return pcs;
}

/** The 64-bit value an `lddw` with source 0 loads. */
export function lddwValue(insn: LddwInstruction): bigint {
  return (BigInt(insn.nextImm >>> 0) << 32n) | BigInt(insn.imm >>> 0);
}

// Small constructors, so tests and generators read like assembly.
export const imm = (value: number): Operand => ({
  kind: 'imm',
  value: value | 0,
});
export const reg = (r: Register): Operand => ({ kind: 'reg', reg: r });
export const alu = (width: Width, op: AluOp, dst: Register, src: Operand): AluInstruction => ({
  kind: 'alu',
  width,
  op,
  dst,
  src,
});
export const mov64 = (dst: Register, src: Operand): AluInstruction => alu(64, 'mov', dst, src);
export const jump = (width: Width, cond: JumpCondition, dst: Register, src: Operand, offset: number): JumpInstruction => ({
  kind: 'jump',
  width,
  cond,
  dst,
  src,
  offset,
});
export const ja = (offset: number, wide = false): JaInstruction => ({
  kind: 'ja',
  offset,
  wide,
});
export const exit = (): ExitInstruction => ({ kind: 'exit' });
export const callHelper = (id: number): CallInstruction => ({
  kind: 'call',
  target: 'helper',
  imm: id,
});
export const callLocal = (offset: number): CallInstruction => ({
  kind: 'call',
  target: 'local',
  imm: offset,
});
export const lddw = (dst: Register, value: bigint): LddwInstruction => ({
  kind: 'lddw',
  dst,
  source: 0,
  imm: Number(BigInt.asIntN(32, value)),
  nextImm: Number(BigInt.asIntN(32, value >> 32n)),
});
export const load = (size: AccessSize, dst: Register, src: Register, offset: number, signed = false): LoadInstruction => ({
  kind: 'load',
  size,
  signed,
  dst,
  src,
  offset,
});
export const store = (size: AccessSize, dst: Register, offset: number, src: Operand): StoreInstruction => ({
  kind: 'store',
  size,
  dst,
  offset,
  src,
});
