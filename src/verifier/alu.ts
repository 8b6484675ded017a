/**
 * ALU, byte-swap and 64-bit-immediate instructions. Numbers go through the scalar domain; pointers
 * may only move by adding or subtracting a bounded number (the result keeps the pointer's type), or
 * be subtracted from a pointer into the same object (giving a number). Every other operation on a
 * pointer would turn an address into a number the program could leak, so it is rejected.
 */
import type { AluInstruction, EndianInstruction, LddwInstruction, Operand, Register, Width } from '../isa/index.js';
import { lddwValue } from '../isa/index.js';
import { LDDW_SOURCE_NAMES } from '../isa/instruction.js';
import { type Analysis, readReg, reject, writeReg } from './analysis.js';
import {
  SCALAR_UNKNOWN,
  type Scalar,
  scalarAlu,
  scalarByteSwap,
  scalarConst,
  scalarConstValue,
  scalarNeg,
  scalarSignExtend,
  scalarToString,
  scalarTruncate,
} from './domains/scalar.js';
import {
  DATA_LENGTH_ID,
  isPointer,
  LT_LEN,
  type PointerValue,
  type RegValue,
  scalarValue,
  typeName,
  type VerifierState,
  ZERO_OFFSET,
} from './state.js';

/** Largest magnitude of a pointer's offset (the kernel's BPF_MAX_VAR_OFF): keeps offset sums exact and far from wrapping. */
const MAX_POINTER_OFFSET = 1 << 29;

/** An instruction's second operand: immediates are sign-extended to 64 bits (ALU32 uses the low half). */
export function operandValue(s: VerifierState, src: Operand): RegValue {
  return src.kind === 'imm' ? scalarValue(scalarConst(BigInt(src.value))) : readReg(s, src.reg);
}

const DIVISIONS = new Set(['div', 'sdiv', 'mod', 'smod']);

export function checkAlu(a: Analysis, s: VerifierState, insn: AluInstruction): void {
  const { op, dst, width } = insn;
  if (op === 'mov') {
    let v = operandValue(s, insn.src);
    if (width === 64) {
      // A copy of an unknown number is linked to it: a comparison that narrows one narrows both.
      if (v.kind === 'scalar' && v.id === 0 && insn.src.kind === 'reg' && scalarConstValue(v.value) === undefined) {
        v = scalarValue(v.value, a.newId(), v.lenRel ?? 0, 0);
        writeReg(s, insn.src.reg, v);
      }
      writeReg(s, dst, v);
      return;
    }
    if (isPointer(v)) reject(`R${srcReg(insn)} partial copy of pointer`);
    writeReg(s, dst, scalarValue(scalarTruncate(scalarOf(v), 4)));
    return;
  }
  if (op === 'movsx8' || op === 'movsx16' || op === 'movsx32') {
    const v = operandValue(s, insn.src);
    if (isPointer(v)) reject(`R${srcReg(insn)} sign-extension of pointer prohibited`);
    const extended = scalarSignExtend(scalarOf(v), Number(op.slice(5)) as 8 | 16 | 32);
    writeReg(s, dst, scalarValue(width === 64 ? extended : scalarTruncate(extended, 4)));
    return;
  }
  const d = readReg(s, dst);
  if (op === 'neg') {
    if (isPointer(d)) reject(`R${dst} pointer arithmetic with neg operator prohibited`);
    writeReg(s, dst, scalarValue(scalarNeg(scalarOf(d), width)));
    return;
  }
  if (insn.src.kind === 'imm' && insn.src.value === 0 && DIVISIONS.has(op)) reject('division by zero');
  const v = operandValue(s, insn.src);
  // A linked number moved by a constant stays linked, with its offset from the others recorded.
  if (width === 64 && (op === 'add' || op === 'sub') && insn.src.kind === 'imm' && d.kind === 'scalar' && d.id !== 0) {
    const delta = (d.delta ?? 0) + (op === 'add' ? insn.src.value : -insn.src.value);
    const value = scalarAlu(op, d.value, scalarConst(BigInt(insn.src.value)), 64);
    writeReg(s, dst, Math.abs(delta) < 2 ** 31 ? scalarValue(value, d.id, 0, delta) : scalarValue(value));
    return;
  }
  if (!isPointer(d) && !isPointer(v)) {
    writeReg(s, dst, scalarValue(scalarAlu(op, scalarOf(d), scalarOf(v), width)));
    return;
  }
  // A number added to a pointer becomes part of its offset, which decides every later access.
  if (!isPointer(d)) a.markPrecise(s, [dst]);
  else if (!isPointer(v) && insn.src.kind === 'reg') a.markPrecise(s, [insn.src.reg]);
  const result = pointerArithmetic(a, insn, d, v, width);
  writeReg(s, dst, result);
}

const srcReg = (insn: AluInstruction) => (insn.src.kind === 'reg' ? insn.src.reg : insn.dst);
const scalarOf = (v: RegValue): Scalar => (v.kind === 'scalar' ? v.value : SCALAR_UNKNOWN);

function pointerArithmetic(a: Analysis, insn: AluInstruction, d: RegValue, v: RegValue, width: Width): RegValue {
  const { dst, op } = insn;
  const ptrReg = isPointer(d) ? dst : srcReg(insn);
  if (width === 32) reject(`R${ptrReg} 32-bit pointer arithmetic prohibited`);
  if (op === 'add') {
    if (isPointer(d) && isPointer(v)) reject(`R${dst} pointer += pointer prohibited`);
    return isPointer(d)
      ? movePointer(a, d, dst, v as ScalarReg, 1)
      : movePointer(a, v as PointerValue, ptrReg, d as ScalarReg, 1);
  }
  if (op === 'sub') {
    if (!isPointer(d)) reject(`R${dst} tried to subtract pointer from scalar`);
    return isPointer(v) ? pointerDifference(d, v, dst) : movePointer(a, d, dst, v as ScalarReg, -1);
  }
  return reject(`R${ptrReg} pointer arithmetic with ${op} operator prohibited`);
}

type ScalarReg = Extract<RegValue, { kind: 'scalar' }>;

/** `ptr + n` or `ptr - n` for a number `n`. */
function movePointer(a: Analysis, ptr: PointerValue, reg: Register, n: ScalarReg, sign: 1 | -1): RegValue {
  switch (ptr.kind) {
    case 'data_end':
    case 'map':
      return reject(`R${reg} pointer arithmetic on ${typeName(ptr)} prohibited`);
    case 'mem':
      if (ptr.nullable) reject(`R${reg} pointer arithmetic on ${typeName(ptr)} prohibited, null-check it first`);
      break;
    case 'data':
      // data + (the buffer's length) is the end pointer: the conformance type's r1 + r2.
      if (sign === 1 && n.id === DATA_LENGTH_ID && !n.delta && ptr.off === 0 && scalarConstValue(ptr.varOff) === 0n)
        return { kind: 'data_end' };
      break;
  }
  const c = scalarConstValue(n.value);
  if (c !== undefined) {
    const delta = Number(BigInt.asIntN(64, c)) * sign;
    const off = ptr.off + delta;
    if (Math.abs(delta) >= MAX_POINTER_OFFSET || Math.abs(off) >= MAX_POINTER_OFFSET) {
      reject(`value ${BigInt.asIntN(64, c)} makes ${typeName(ptr)} pointer be out of bounds`);
    }
    return { ...ptr, off } as RegValue;
  }
  if (ptr.kind === 'ctx') return reject(`R${reg} variable ctx access var_off=${scalarToString(n.value)} disallowed`);
  if (n.value.smin <= -MAX_POINTER_OFFSET)
    reject(`math between ${typeName(ptr)} pointer and register with unbounded min value is not allowed`);
  if (n.value.smax >= MAX_POINTER_OFFSET)
    reject(`math between ${typeName(ptr)} pointer and register with unbounded max value is not allowed`);
  const varOff = scalarAlu(sign === 1 ? 'add' : 'sub', ptr.varOff, n.value, 64);
  if (varOff.smin <= -MAX_POINTER_OFFSET || varOff.smax >= MAX_POINTER_OFFSET || Math.abs(ptr.off) >= MAX_POINTER_OFFSET) {
    reject(`R${reg} variable offset ${scalarToString(varOff)} makes ${typeName(ptr)} pointer be out of bounds`);
  }
  // A data pointer with a new variable part starts a new family: nothing is proven about it yet,
  // except when it is the buffer's start plus a number proven below the length: its first byte exists.
  if (ptr.kind === 'data') {
    const fromStart = sign === 1 && ptr.off === 0 && scalarConstValue(ptr.varOff) === 0n;
    return { ...ptr, varOff, id: a.newId(), range: fromStart && n.lenRel === LT_LEN ? 1 : 0 };
  }
  return { ...ptr, varOff } as RegValue;
}

/** `p - q` for two pointers into the same object: a number (the distance), not an address. */
function pointerDifference(p: PointerValue, q: PointerValue, reg: Register): RegValue {
  const dataFamily = (x: PointerValue) => x.kind === 'data' || x.kind === 'data_end';
  if (dataFamily(p) && dataFamily(q)) return scalarValue(SCALAR_UNKNOWN);
  if (p.kind === 'stack' && q.kind === 'stack' && p.frame === q.frame) {
    const pv = scalarConstValue(p.varOff);
    const qv = scalarConstValue(q.varOff);
    if (pv !== undefined && qv !== undefined) return scalarValue(scalarConst(BigInt(p.off - q.off) + pv - qv));
    return scalarValue(SCALAR_UNKNOWN);
  }
  return reject(`R${reg} pointer -= pointer prohibited`);
}

export function checkEndian(s: VerifierState, insn: EndianInstruction): void {
  const v = readReg(s, insn.dst);
  if (isPointer(v)) reject(`R${insn.dst} pointer arithmetic with byte swap prohibited`);
  const bytes = (insn.bits / 8) as 2 | 4 | 8;
  // On this little-endian machine `le` only truncates; `be` and `swap` reverse the bytes.
  const result = insn.order === 'le' ? scalarTruncate(scalarOf(v), bytes) : scalarByteSwap(scalarOf(v), bytes);
  writeReg(s, insn.dst, scalarValue(result));
}

export function checkLddw(a: Analysis, s: VerifierState, insn: LddwInstruction): void {
  writeReg(s, insn.dst, lddwValueOf(a, insn));
}

function lddwValueOf(a: Analysis, insn: LddwInstruction): RegValue {
  switch (insn.source) {
    case 0:
      return scalarValue(scalarConst(lddwValue(insn)));
    case 1:
    case 5:
      if (!a.maps[insn.imm]) reject(`${LDDW_SOURCE_NAMES[insn.source]} ${insn.imm} is not a valid map`);
      return { kind: 'map', map: insn.imm };
    case 2:
    case 6: {
      const map = a.maps[insn.imm];
      if (!map) reject(`${LDDW_SOURCE_NAMES[insn.source]} ${insn.imm} is not a valid map`);
      if (insn.nextImm < 0 || insn.nextImm >= map.valueSizeBytes)
        reject(`invalid access to map value pointer, value_size=${map.valueSizeBytes} off=${insn.nextImm}`);
      const region = a.mapValueRegions[insn.imm]; // read-only for .rodata maps
      return { kind: 'mem', region, off: insn.nextImm, varOff: ZERO_OFFSET, nullable: false, id: 0 };
    }
    default:
      return reject(`unsupported lddw source ${LDDW_SOURCE_NAMES[insn.source]}`);
  }
}
