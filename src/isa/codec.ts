/**
 * Strict decoding and encoding of RFC 9669 bytecode. Every reserved field must be zero and every
 * opcode known; anything else is a `DecodeError` naming the instruction (slot) index.
 */
import { DecodeError } from '../errors.js';
import type {
  AccessSize,
  AluOp,
  AtomicOp,
  Instruction,
  JumpCondition,
  LddwSource,
  Operand,
  Program,
  Register,
} from './instruction.js';
import {
  ALU_CODES,
  ATOMIC_CODES,
  ATOMIC_FETCH,
  CLASS_ALU,
  CLASS_ALU64,
  CLASS_JMP,
  CLASS_JMP32,
  CLASS_LDX,
  CLASS_ST,
  CLASS_STX,
  INSTRUCTION_SIZE_BYTES,
  JMP_CODES,
  MODE_ATOMIC,
  MODE_IMM,
  MODE_MEM,
  MODE_MEMSX,
  OP_CALL,
  OP_CALLX,
  OP_EXIT,
  OP_LDDW,
  type RawSlot,
  SIZE_BYTES,
  SIZE_DW,
  SIZE_FIELD,
  SRC_K,
  SRC_X,
} from './opcodes.js';

/** Upper bound on program size accepted by the decoder (the kernel's limit for privileged programs). */
export const MAX_PROGRAM_SLOTS = 1_000_000;

const ALU_OP_BY_CODE = new Map<number, keyof typeof ALU_CODES>(
  Object.entries(ALU_CODES).map(([k, v]) => [v, k as keyof typeof ALU_CODES]),
);
const JMP_OP_BY_CODE = new Map<number, keyof typeof JMP_CODES>(
  Object.entries(JMP_CODES).map(([k, v]) => [v, k as keyof typeof JMP_CODES]),
);
const ATOMIC_OP_BY_CODE = new Map<number, AtomicOp>(Object.entries(ATOMIC_CODES).map(([k, v]) => [v, k as AtomicOp]));

export function readSlot(bytes: Uint8Array, slot: number): RawSlot {
  const view = new DataView(bytes.buffer, bytes.byteOffset + slot * INSTRUCTION_SIZE_BYTES, INSTRUCTION_SIZE_BYTES);
  const regs = view.getUint8(1);
  return {
    opcode: view.getUint8(0),
    dst: regs & 0x0f,
    src: regs >> 4,
    offset: view.getInt16(2, true),
    imm: view.getInt32(4, true),
  };
}

function writeSlot(view: DataView, slot: number, raw: RawSlot): void {
  const at = slot * INSTRUCTION_SIZE_BYTES;
  view.setUint8(at, raw.opcode);
  view.setUint8(at + 1, (raw.src << 4) | raw.dst);
  view.setInt16(at + 2, raw.offset, true);
  view.setInt32(at + 4, raw.imm, true);
}

/** Decode a whole program. Throws `DecodeError` on the first invalid slot. */
export function decodeProgram(bytes: Uint8Array): Instruction[] {
  if (bytes.length % INSTRUCTION_SIZE_BYTES !== 0) {
    throw new DecodeError(Math.floor(bytes.length / 8), `program length ${bytes.length} is not a multiple of 8 bytes`);
  }
  const slots = bytes.length / INSTRUCTION_SIZE_BYTES;
  if (slots === 0) throw new DecodeError(0, 'program is empty');
  if (slots > MAX_PROGRAM_SLOTS) throw new DecodeError(MAX_PROGRAM_SLOTS, `program exceeds ${MAX_PROGRAM_SLOTS} instructions`);
  const out: Instruction[] = [];
  for (let pc = 0; pc < slots; ) {
    const raw = readSlot(bytes, pc);
    if (raw.opcode === OP_LDDW) {
      if (pc + 1 >= slots) throw new DecodeError(pc, 'lddw is missing its second slot');
      out.push(decodeLddw(pc, raw, readSlot(bytes, pc + 1)));
      pc += 2;
    } else {
      out.push(decodeInstruction(pc, raw));
      pc += 1;
    }
  }
  return out;
}

function reject(pc: number, raw: RawSlot, what: string): never {
  throw new DecodeError(pc, `${what} (opcode 0x${raw.opcode.toString(16).padStart(2, '0')})`);
}

function register(pc: number, raw: RawSlot, field: 'dst' | 'src'): Register {
  const r = raw[field];
  if (r > 10) reject(pc, raw, `invalid ${field} register r${r}`);
  return r as Register;
}

function requireZero(pc: number, raw: RawSlot, ...fields: (keyof RawSlot)[]): void {
  for (const f of fields) if (raw[f] !== 0) reject(pc, raw, `reserved field ${f} must be 0, is ${raw[f]}`);
}

function decodeLddw(pc: number, raw: RawSlot, next: RawSlot): Instruction {
  requireZero(pc, raw, 'offset');
  if (raw.src > 6) reject(pc, raw, `unknown lddw source ${raw.src}`);
  if (next.opcode !== 0 || next.dst !== 0 || next.src !== 0 || next.offset !== 0) {
    throw new DecodeError(pc + 1, 'second slot of lddw must have opcode, registers and offset 0');
  }
  return {
    kind: 'lddw',
    dst: register(pc, raw, 'dst'),
    source: raw.src as LddwSource,
    imm: raw.imm,
    nextImm: next.imm,
  };
}

/** Decode one slot that is not an lddw. `pc` only labels errors. */
export function decodeInstruction(pc: number, raw: RawSlot): Instruction {
  const cls = raw.opcode & 0x07;
  switch (cls) {
    case CLASS_ALU:
    case CLASS_ALU64:
      return decodeAlu(pc, raw, cls === CLASS_ALU64 ? 64 : 32);
    case CLASS_JMP:
    case CLASS_JMP32:
      return decodeJump(pc, raw, cls === CLASS_JMP32 ? 32 : 64);
    case CLASS_LDX: {
      const mode = raw.opcode & 0xe0;
      const size = SIZE_BYTES[raw.opcode & 0x18];
      if (mode !== MODE_MEM && !(mode === MODE_MEMSX && size !== 8)) reject(pc, raw, 'unknown load mode');
      requireZero(pc, raw, 'imm');
      return {
        kind: 'load',
        size,
        signed: mode === MODE_MEMSX,
        dst: register(pc, raw, 'dst'),
        src: register(pc, raw, 'src'),
        offset: raw.offset,
      };
    }
    case CLASS_ST:
    case CLASS_STX: {
      const mode = raw.opcode & 0xe0;
      const size = SIZE_BYTES[raw.opcode & 0x18];
      if (cls === CLASS_STX && mode === MODE_ATOMIC) return decodeAtomic(pc, raw, size);
      if (mode !== MODE_MEM) reject(pc, raw, 'unknown store mode');
      if (cls === CLASS_ST) requireZero(pc, raw, 'src');
      else requireZero(pc, raw, 'imm');
      return {
        kind: 'store',
        size,
        dst: register(pc, raw, 'dst'),
        offset: raw.offset,
        src: cls === CLASS_ST ? { kind: 'imm', value: raw.imm } : { kind: 'reg', reg: register(pc, raw, 'src') },
      };
    }
    default: // CLASS_LD other than lddw: legacy packet access (RFC 9669 §5.5) is deprecated and unsupported.
      if ((raw.opcode & 0xe0) !== MODE_IMM) reject(pc, raw, 'legacy packet access instructions are not supported');
      return reject(pc, raw, 'unknown opcode');
  }
}

function decodeAtomic(pc: number, raw: RawSlot, size: AccessSize): Instruction {
  if (size !== 4 && size !== 8) reject(pc, raw, 'atomic operations must be 32 or 64 bits wide');
  const op = ATOMIC_OP_BY_CODE.get(raw.imm & ~ATOMIC_FETCH);
  const fetch = (raw.imm & ATOMIC_FETCH) !== 0;
  if (op === undefined || ((op === 'xchg' || op === 'cmpxchg') && !fetch)) {
    reject(pc, raw, `unknown atomic operation 0x${(raw.imm >>> 0).toString(16)}`);
  }
  return {
    kind: 'atomic',
    size,
    op,
    fetch,
    dst: register(pc, raw, 'dst'),
    src: register(pc, raw, 'src'),
    offset: raw.offset,
  };
}

function decodeAlu(pc: number, raw: RawSlot, width: 32 | 64): Instruction {
  const code = raw.opcode & 0xf0;
  const name = ALU_OP_BY_CODE.get(code);
  const fromReg = (raw.opcode & SRC_X) !== 0;
  if (name === undefined) return reject(pc, raw, 'unknown ALU operation');
  const dst = register(pc, raw, 'dst');
  if (name === 'end') {
    requireZero(pc, raw, 'src', 'offset');
    if (raw.imm !== 16 && raw.imm !== 32 && raw.imm !== 64) reject(pc, raw, `invalid byte swap width ${raw.imm}`);
    if (width === 64 && fromReg) reject(pc, raw, 'bswap has no register form');
    const order = width === 64 ? 'swap' : fromReg ? 'be' : 'le';
    return { kind: 'endian', order, bits: raw.imm as 16 | 32 | 64, dst };
  }
  if (name === 'neg') {
    if (fromReg) reject(pc, raw, 'neg has no register form');
    requireZero(pc, raw, 'src', 'offset', 'imm');
    return {
      kind: 'alu',
      width,
      op: 'neg',
      dst,
      src: { kind: 'imm', value: 0 },
    };
  }
  let op: AluOp = name;
  if (raw.offset !== 0) {
    if ((name === 'div' || name === 'mod') && raw.offset === 1) op = name === 'div' ? 'sdiv' : 'smod';
    else if (name === 'mov' && fromReg && (raw.offset === 8 || raw.offset === 16 || (raw.offset === 32 && width === 64))) {
      op = `movsx${raw.offset}` as AluOp;
    } else reject(pc, raw, `reserved field offset must be 0, is ${raw.offset}`);
  }
  let src: Operand;
  if (fromReg) {
    requireZero(pc, raw, 'imm');
    src = { kind: 'reg', reg: register(pc, raw, 'src') };
  } else {
    requireZero(pc, raw, 'src');
    src = { kind: 'imm', value: raw.imm };
  }
  return { kind: 'alu', width, op, dst, src };
}

function decodeJump(pc: number, raw: RawSlot, width: 32 | 64): Instruction {
  const name = JMP_OP_BY_CODE.get(raw.opcode & 0xf0);
  const fromReg = (raw.opcode & SRC_X) !== 0;
  if (name === undefined) return reject(pc, raw, 'unknown jump operation');
  switch (name) {
    case 'ja':
      if (fromReg) reject(pc, raw, 'ja has no register form');
      requireZero(pc, raw, 'dst', 'src');
      if (width === 64) {
        requireZero(pc, raw, 'imm');
        return { kind: 'ja', offset: raw.offset, wide: false };
      }
      requireZero(pc, raw, 'offset');
      return { kind: 'ja', offset: raw.imm, wide: true };
    case 'call':
      if (width === 32) reject(pc, raw, 'call is not a JMP32 operation');
      if (raw.opcode === OP_CALLX) {
        requireZero(pc, raw, 'src', 'offset', 'imm');
        return { kind: 'callx', reg: register(pc, raw, 'dst') };
      }
      requireZero(pc, raw, 'dst', 'offset');
      if (raw.src > 2) reject(pc, raw, `unknown call source ${raw.src}`);
      return {
        kind: 'call',
        target: raw.src === 0 ? 'helper' : raw.src === 1 ? 'local' : 'kfunc',
        imm: raw.imm,
      };
    case 'exit':
      if (width === 32 || raw.opcode !== OP_EXIT) reject(pc, raw, 'unknown exit form');
      requireZero(pc, raw, 'dst', 'src', 'offset', 'imm');
      return { kind: 'exit' };
    default: {
      const dst = register(pc, raw, 'dst');
      let src: Operand;
      if (fromReg) {
        requireZero(pc, raw, 'imm');
        src = { kind: 'reg', reg: register(pc, raw, 'src') };
      } else {
        requireZero(pc, raw, 'src');
        src = { kind: 'imm', value: raw.imm };
      }
      return {
        kind: 'jump',
        width,
        cond: name as JumpCondition,
        dst,
        src,
        offset: raw.offset,
      };
    }
  }
}

/** The raw slot(s) of one instruction. */
export function encodeInstruction(insn: Instruction): RawSlot[] {
  const slot = (opcode: number, dst: number, src: number, offset: number, imm: number): RawSlot => ({
    opcode,
    dst,
    src,
    offset,
    imm,
  });
  const operand = (o: Operand): { bit: number; src: number; imm: number } =>
    o.kind === 'reg' ? { bit: SRC_X, src: o.reg, imm: 0 } : { bit: SRC_K, src: 0, imm: o.value };
  switch (insn.kind) {
    case 'alu': {
      const cls = insn.width === 64 ? CLASS_ALU64 : CLASS_ALU;
      if (insn.op === 'neg') return [slot(cls | ALU_CODES.neg, insn.dst, 0, 0, 0)];
      const o = operand(insn.src);
      let code: number;
      let offset = 0;
      switch (insn.op) {
        case 'sdiv':
          code = ALU_CODES.div;
          offset = 1;
          break;
        case 'smod':
          code = ALU_CODES.mod;
          offset = 1;
          break;
        case 'movsx8':
        case 'movsx16':
        case 'movsx32':
          code = ALU_CODES.mov;
          offset = Number(insn.op.slice(5));
          break;
        default:
          code = ALU_CODES[insn.op];
      }
      return [slot(cls | code | o.bit, insn.dst, o.src, offset, o.imm)];
    }
    case 'endian': {
      const op = insn.order === 'swap' ? CLASS_ALU64 : CLASS_ALU | (insn.order === 'be' ? SRC_X : SRC_K);
      return [slot(op | ALU_CODES.end, insn.dst, 0, 0, insn.bits)];
    }
    case 'ja':
      return insn.wide ? [slot(CLASS_JMP32, 0, 0, 0, insn.offset)] : [slot(CLASS_JMP, 0, 0, insn.offset, 0)];
    case 'jump': {
      const o = operand(insn.src);
      const cls = insn.width === 64 ? CLASS_JMP : CLASS_JMP32;
      return [slot(cls | JMP_CODES[insn.cond] | o.bit, insn.dst, o.src, insn.offset, o.imm)];
    }
    case 'call':
      return [slot(OP_CALL, 0, insn.target === 'helper' ? 0 : insn.target === 'local' ? 1 : 2, 0, insn.imm)];
    case 'callx':
      return [slot(OP_CALLX, insn.reg, 0, 0, 0)];
    case 'exit':
      return [slot(OP_EXIT, 0, 0, 0, 0)];
    case 'lddw':
      return [slot(OP_LDDW, insn.dst, insn.source, 0, insn.imm), slot(0, 0, 0, 0, insn.nextImm)];
    case 'load':
      return [
        slot(CLASS_LDX | (insn.signed ? MODE_MEMSX : MODE_MEM) | SIZE_FIELD[insn.size], insn.dst, insn.src, insn.offset, 0),
      ];
    case 'store': {
      const o = operand(insn.src);
      const cls = insn.src.kind === 'reg' ? CLASS_STX : CLASS_ST;
      return [slot(cls | MODE_MEM | SIZE_FIELD[insn.size], insn.dst, o.src, insn.offset, o.imm)];
    }
    case 'atomic':
      return [
        slot(
          CLASS_STX | MODE_ATOMIC | (insn.size === 8 ? SIZE_DW : 0),
          insn.dst,
          insn.src,
          insn.offset,
          ATOMIC_CODES[insn.op] | (insn.fetch ? ATOMIC_FETCH : 0),
        ),
      ];
  }
}

/** Encode a program to bytecode. */
export function encodeProgram(program: Program): Uint8Array {
  const slots = program.flatMap(encodeInstruction);
  const bytes = new Uint8Array(slots.length * INSTRUCTION_SIZE_BYTES);
  const view = new DataView(bytes.buffer);
  for (const [i, raw] of slots.entries()) writeSlot(view, i, raw);
  return bytes;
}
