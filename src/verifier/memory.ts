/**
 * Loads, stores and atomics, and the memory arguments of helpers. Each access first yields its
 * safety assertions (the base is a dereferenceable pointer; the bytes are inside the object; the
 * access is aligned where it must be; the object is writable; no pointer leaks into it; read stack
 * bytes were written), checked against the state; the message names the one that failed.
 */
import { fieldAt } from '../abi/context.js';
import { STACK_FRAME_SIZE_BYTES } from '../abi/limits.js';
import type { AccessSize, Register } from '../isa/index.js';
import { type Analysis, reject } from './analysis.js';
import {
  SCALAR_UNKNOWN,
  scalarConst,
  scalarConstValue,
  scalarOfSize,
  scalarSignExtend,
  scalarToString,
  scalarTruncate,
} from './domains/scalar.js';
import { slotLoc } from './precision.js';
import {
  type FrameState,
  isPointer,
  type RegValue,
  STACK_INVALID,
  STACK_MISC,
  STACK_SPILL,
  STACK_ZERO,
  scalarValue,
  spillBytes,
  typeName,
  type VerifierState,
  writableStack,
  ZERO_OFFSET,
} from './state.js';

export type AccessKind = 'read' | 'write' | 'atomic';

/** What a store writes: the register it comes from (undefined for an immediate) and its value. */
export interface StoredValue {
  readonly reg?: Register;
  readonly value: RegValue;
}

type StackPointer = Extract<RegValue, { kind: 'stack' }>;
type DataPointer = Extract<RegValue, { kind: 'data' }>;
type MemPointer = Extract<RegValue, { kind: 'mem' }>;

const loadedScalar = (size: AccessSize, signed: boolean): RegValue => scalarValue(scalarOfSize(size, signed));

/** Offsets [lo, hi) an access of `size` bytes at `insnOff` from a pointer may touch. */
function touchedRange(ptr: { off: number; varOff: { smin: bigint; smax: bigint } }, insnOff: number, size: number) {
  const fixed = ptr.off + insnOff;
  return { fixed, lo: fixed + Number(ptr.varOff.smin), hi: fixed + Number(ptr.varOff.smax) + size };
}

function leakCheck(stored: StoredValue | undefined, into: string): void {
  if (stored && isPointer(stored.value)) reject(`R${stored.reg} leaks addr into ${into}`);
}

/** Check one load, store or atomic through register `regno`; returns what a read yields. */
export function checkMemoryAccess(
  a: Analysis,
  s: VerifierState,
  regno: Register,
  base: RegValue,
  insnOff: number,
  size: AccessSize,
  access: AccessKind,
  stored: StoredValue | undefined,
  signed: boolean,
): RegValue {
  switch (base.kind) {
    case 'uninit':
      return reject(`R${regno} !read_ok`);
    case 'scalar':
    case 'data_end':
    case 'map':
      return reject(`R${regno} invalid mem access '${typeName(base)}'`);
    case 'stack':
      return stackAccess(a, s, regno, base, insnOff, size, access, stored, signed);
    case 'ctx':
      return ctxAccess(a, regno, base.off + insnOff, size, access, stored, signed);
    case 'data':
      return dataAccess(a, s, regno, base, insnOff, size, access, stored, signed);
    case 'mem':
      return memAccess(regno, base, insnOff, size, access, stored, signed);
  }
}

function ctxAccess(
  a: Analysis,
  regno: Register,
  off: number,
  size: AccessSize,
  access: AccessKind,
  stored: StoredValue | undefined,
  signed: boolean,
): RegValue {
  const layout = a.type.context;
  if (!layout) return reject(`R${regno} invalid mem access 'ctx'`);
  if (access === 'atomic') reject(`BPF_ATOMIC stores into R${regno} ctx is not allowed`);
  const field = fieldAt(layout, off);
  if (!field || off + size > field.offset + field.sizeBytes) reject(`invalid bpf_context access off=${off} size=${size}`);
  if (off % size !== 0) reject(`misaligned context access off=${off} size=${size}`);
  if (access === 'write') {
    if (!field.writable) reject(`write to read-only ctx field '${field.name}' off=${off} size=${size}`);
    leakCheck(stored, 'ctx');
    return stored?.value ?? SCALAR_UNKNOWN_VALUE;
  }
  const value = field.value;
  if (value.kind === 'scalar') return loadedScalar(size, signed);
  // A pointer field is read whole, or a part of the address would leak as a number.
  if (off !== field.offset || size !== 8 || signed)
    reject(`invalid bpf_context access off=${off} size=${size} (pointer field '${field.name}' must be read whole)`);
  switch (value.kind) {
    case 'data':
      return { kind: 'data', off: 0, varOff: ZERO_OFFSET, id: a.newId(), range: 0 };
    case 'data-end':
      return { kind: 'data_end' };
    case 'region':
      return { kind: 'mem', region: value.region, off: 0, varOff: ZERO_OFFSET, nullable: false, id: 0 };
  }
}

const SCALAR_UNKNOWN_VALUE = scalarValue(SCALAR_UNKNOWN);

/**
 * Whether bytes [off + varOff + insnOff, + size) of a data pointer are in bounds: inside the range
 * proven for its family, or inside the buffer's proven minimum length (data pointers are the buffer's
 * start + off + varOff).
 */
function dataInBounds(s: VerifierState, ptr: DataPointer, insnOff: number, size: number): boolean {
  const fixed = ptr.off + insnOff;
  if (ptr.varOff.smin >= 0n && fixed >= 0 && fixed + size <= ptr.range) return true;
  const lo = fixed + Number(ptr.varOff.smin);
  const hi = fixed + Number(ptr.varOff.smax) + size;
  return ptr.varOff.smin >= 0n && lo >= 0 && hi <= s.minDataLen;
}

function dataAccess(
  a: Analysis,
  s: VerifierState,
  regno: Register,
  ptr: DataPointer,
  insnOff: number,
  size: AccessSize,
  access: AccessKind,
  stored: StoredValue | undefined,
  signed: boolean,
): RegValue {
  const { fixed } = touchedRange(ptr, insnOff, size);
  // Bytes [start + var, start + var + range) are proven in bounds; the access must lie inside.
  if (!dataInBounds(s, ptr, insnOff, size)) {
    reject(`invalid access to data, off=${fixed} size=${size}, R${regno}(id=${ptr.id},off=${ptr.off},r=${ptr.range})`);
  }
  if (access !== 'read') {
    if (!a.type.data?.writable) reject('write into the read-only data buffer');
    leakCheck(stored, 'data');
  }
  return loadedScalar(size, signed);
}

function memAccess(
  regno: Register,
  ptr: MemPointer,
  insnOff: number,
  size: AccessSize,
  access: AccessKind,
  stored: StoredValue | undefined,
  signed: boolean,
): RegValue {
  if (ptr.nullable) reject(`R${regno} invalid mem access '${typeName(ptr)}'`);
  const { fixed, lo, hi } = touchedRange(ptr, insnOff, size);
  if (lo < 0 || hi > ptr.region.sizeBytes) {
    reject(`invalid access to ${ptr.region.name}, size=${ptr.region.sizeBytes} off=${fixed}${varText(ptr)} size=${size}`);
  }
  if (access !== 'read') {
    if (!ptr.region.writable) reject(`write into read-only ${ptr.region.name}`);
    leakCheck(stored, 'mem');
  }
  return loadedScalar(size, signed);
}

const varText = (ptr: { varOff: typeof ZERO_OFFSET }) =>
  scalarConstValue(ptr.varOff) === 0n ? '' : ` var_off=${scalarToString(ptr.varOff)}`;

// ---- stack ----

const byteIndex = (off: number) => off + STACK_FRAME_SIZE_BYTES;

function stackBounds(
  a: Analysis,
  s: VerifierState,
  regno: Register,
  ptr: StackPointer,
  insnOff: number,
  size: number,
  access: string,
) {
  const { fixed, lo, hi } = touchedRange(ptr, insnOff, size);
  if (lo < -STACK_FRAME_SIZE_BYTES || hi > 0)
    reject(`invalid ${access} of stack R${regno} off=${fixed}${varText(ptr)} size=${size}`);
  const frame = s.frames[ptr.frame];
  a.recordStackDepth(frame.entryPc, -lo);
  return { fixed, lo, hi, frame };
}

function checkAligned(ptr: StackPointer, fixed: number, size: number): void {
  const lowBits = BigInt(size - 1);
  const varAligned = (ptr.varOff.t.value & lowBits) === 0n && (ptr.varOff.t.mask & lowBits) === 0n;
  if (fixed % size !== 0 || !varAligned) reject(`misaligned stack access off ${fixed}${varText(ptr)} size ${size}`);
}

function stackAccess(
  a: Analysis,
  s: VerifierState,
  regno: Register,
  ptr: StackPointer,
  insnOff: number,
  size: AccessSize,
  access: AccessKind,
  stored: StoredValue | undefined,
  signed: boolean,
): RegValue {
  const { fixed, lo, hi, frame } = stackBounds(a, s, regno, ptr, insnOff, size, access === 'read' ? 'read' : 'write');
  checkAligned(ptr, fixed, size);
  const exact = hi - lo === size;
  // Zero bytes read back as the number 0: the spilled 0 they come from must stay 0 (precision.ts).
  const keepZero = (slot: number) => a.markPreciseLocs(s, [slotLoc(ptr.frame, slot)]);
  if (access === 'read') {
    const filled = exact ? fill(frame, lo, size, signed) : undefined;
    if (filled) {
      a.noteStackSlot(ptr.frame, byteIndex(lo) >> 3);
      return filled;
    }
    return readStack(frame, lo, hi, size, signed, keepZero);
  }
  if (access === 'atomic') {
    const old = readStack(frame, lo, hi, size, false, keepZero);
    if (old.kind !== 'scalar') reject(`atomic operation on a spilled pointer at off ${fixed}`);
    writeStackBytes(frame, lo, hi, STACK_MISC, keepZero);
    return loadedScalar(size, false);
  }
  const value = stored?.value ?? SCALAR_UNKNOWN_VALUE;
  if (!exact) {
    // A variable-offset write may leave any byte of the range untouched: the range must already be
    // initialised (or an uninitialised byte could look written), and it can only hold a number.
    if (isPointer(value)) reject(`R${stored?.reg} variable-offset spill of a pointer prohibited`);
    for (let off = lo; off < hi; off++) {
      if (frame.stack[byteIndex(off)] === STACK_INVALID)
        reject(`uninitialized stack in range of variable-offset write off ${off}`);
    }
    writeStackBytes(frame, lo, hi, STACK_MISC, keepZero);
    return value;
  }
  if (isPointer(value)) {
    if (size !== 8) reject(`invalid size of register spill`);
    if (value.kind === 'stack' && value.frame > ptr.frame)
      reject('cannot spill pointers to stack into stack frame of the caller');
  }
  if (size === 8 && value.kind !== 'uninit') {
    // A whole register spilled to an aligned slot keeps its type and bounds when filled back.
    releaseSlots(writableStack(frame), lo, hi, keepZero);
    frame.stack.fill(STACK_SPILL, byteIndex(lo), byteIndex(hi));
    frame.spills[byteIndex(lo) >> 3] = value;
    a.noteStackSlot(ptr.frame, byteIndex(lo) >> 3);
    return value;
  }
  const zero = value.kind === 'scalar' && scalarConstValue(value.value) === 0n;
  if (value.kind === 'scalar' && !zero && lo % 8 === 0) {
    // A number stored in the low bytes of a slot (a u32 counter spilled with stxw) is kept too, as
    // the kernel does: a fill of those bytes gets it back (see `fill`). The slot holds its low
    // `size` bytes; a value that fits in them stays the same value (and keeps its links).
    const fits = value.value.umax < 1n << BigInt(size * 8);
    const spilled = fits ? value : scalarValue(scalarTruncate(value.value, size));
    releaseSlots(writableStack(frame), lo, hi, keepZero);
    frame.stack.fill(STACK_SPILL, byteIndex(lo), byteIndex(hi));
    frame.spills[byteIndex(lo) >> 3] = spilled;
    a.noteStackSlot(ptr.frame, byteIndex(lo) >> 3);
    return value;
  }
  // Zero bytes read back as the number 0: the stored register must stay 0 for that.
  if (zero && stored?.reg !== undefined) a.markPrecise(s, [stored.reg]);
  writeStackBytes(frame, lo, hi, zero ? STACK_ZERO : STACK_MISC, keepZero);
  return value;
}

/**
 * A fill: `size` bytes read at `lo`, the start of a slot holding a spill at least that wide. The
 * spilled value itself when the sizes match (a whole register, or a number stored as `size` bytes),
 * else its low bytes (zero- or sign-extended as the load does). Undefined for any other read.
 */
function fill(frame: FrameState, lo: number, size: AccessSize, signed: boolean): RegValue | undefined {
  if (lo % 8 !== 0) return undefined;
  const slot = byteIndex(lo) >> 3;
  const spill = frame.spills[slot];
  if (!spill) return undefined;
  const bytes = spillBytes(frame, slot);
  if (size === bytes && !signed) return spill;
  if (size > bytes || spill.kind !== 'scalar') return undefined; // a part of a pointer is rejected by readStack
  const low = scalarTruncate(spill.value, size);
  return scalarValue(signed && size < 8 ? scalarSignExtend(low, (size * 8) as 8 | 16 | 32) : low);
}

/** Called with a slot whose spilled number 0 now stands as zero bytes or yields the number 0. */
type KeepZero = (slot: number) => void;

function readStack(frame: FrameState, lo: number, hi: number, size: AccessSize, signed: boolean, keepZero: KeepZero): RegValue {
  let allZero = true;
  let zeroSpills: number[] | undefined;
  for (let off = lo; off < hi; off++) {
    const kind = frame.stack[byteIndex(off)];
    if (kind === STACK_INVALID) reject(`invalid read from stack off ${lo}+${off - lo} size ${size}`);
    if (kind === STACK_SPILL) {
      const slotValue = frame.spills[byteIndex(off) >> 3];
      if (slotValue && isPointer(slotValue))
        reject(`invalid size of register fill: part of a spilled pointer at off ${lo}+${off - lo}`);
      if (slotValue?.kind !== 'scalar' || scalarConstValue(slotValue.value) !== 0n) allZero = false;
      else if (!zeroSpills?.includes(byteIndex(off) >> 3)) (zeroSpills ??= []).push(byteIndex(off) >> 3);
    } else if (kind !== STACK_ZERO) allZero = false;
  }
  if (!allZero) return loadedScalar(size, signed);
  for (const slot of zeroSpills ?? []) keepZero(slot);
  return scalarValue(scalarConst(0n));
}

/** Turn spilled registers in the slots overlapping [lo, hi) into plain bytes (pointers may not be cut). */
function releaseSlots(frame: FrameState, lo: number, hi: number, keepZero: KeepZero): void {
  writableStack(frame);
  for (let slot = byteIndex(lo) >> 3; slot <= (byteIndex(hi) - 1) >> 3; slot++) {
    const spill = frame.spills[slot];
    if (!spill) continue;
    if (isPointer(spill) && !(lo <= slot * 8 - STACK_FRAME_SIZE_BYTES && hi >= slot * 8 - STACK_FRAME_SIZE_BYTES + 8)) {
      reject(`attempt to corrupt spilled pointer on stack at off ${slot * 8 - STACK_FRAME_SIZE_BYTES}`);
    }
    const kind = spill.kind === 'scalar' && scalarConstValue(spill.value) === 0n ? STACK_ZERO : STACK_MISC;
    const bytes = spillBytes(frame, slot);
    const whole = lo <= slot * 8 - STACK_FRAME_SIZE_BYTES && hi >= slot * 8 - STACK_FRAME_SIZE_BYTES + bytes;
    if (kind === STACK_ZERO && !whole) keepZero(slot); // some of its zero bytes stay
    frame.stack.fill(kind, slot * 8, slot * 8 + bytes);
    frame.spills[slot] = undefined;
  }
}

function writeStackBytes(frame: FrameState, lo: number, hi: number, kind: number, keepZero: KeepZero): void {
  releaseSlots(writableStack(frame), lo, hi, keepZero);
  frame.stack.fill(kind, byteIndex(lo), byteIndex(hi));
}

// ---- helper memory arguments ----

/**
 * A helper will read (or fill) between `minSize` and `maxSize` bytes at `ptr`. Reads need every
 * byte up to `maxSize` readable; a write initialises the bytes it surely writes (`minSize`).
 */
export function checkHelperMemory(
  a: Analysis,
  s: VerifierState,
  regno: Register,
  ptr: RegValue,
  minSize: number,
  maxSize: number,
  access: 'read' | 'write',
): void {
  if (maxSize === 0) return;
  switch (ptr.kind) {
    case 'stack': {
      const { lo, hi, frame } = stackBounds(a, s, regno, ptr, 0, maxSize, access);
      if (access === 'read') {
        for (let off = lo; off < hi; off++) {
          const kind = frame.stack[byteIndex(off)];
          if (kind === STACK_INVALID) reject(`invalid read from stack R${regno} off ${lo}+${off - lo} size ${maxSize}`);
          const spill = kind === STACK_SPILL ? frame.spills[byteIndex(off) >> 3] : undefined;
          if (spill && isPointer(spill)) reject(`R${regno} helper would read a spilled pointer at off ${off}`);
        }
      } else if (scalarConstValue(ptr.varOff) !== undefined && minSize > 0) {
        // The helper overwrites these bytes with data (a whole spilled pointer too; never half of one).
        writeStackBytes(frame, lo, lo + minSize, STACK_MISC, (slot) => a.markPreciseLocs(s, [slotLoc(ptr.frame, slot)]));
      }
      return;
    }
    case 'data': {
      const { fixed } = touchedRange(ptr, 0, maxSize);
      if (!dataInBounds(s, ptr, 0, maxSize))
        reject(`invalid access to data, off=${fixed} size=${maxSize}, R${regno}(id=${ptr.id},off=${ptr.off},r=${ptr.range})`);
      if (access === 'write' && !a.type.data?.writable) reject('write into the read-only data buffer');
      return;
    }
    case 'mem': {
      memAccessRange(regno, ptr, maxSize, access);
      return;
    }
    default:
      reject(`R${regno} type=${typeName(ptr)} expected=fp, data, map_value or mem`);
  }
}

function memAccessRange(regno: Register, ptr: MemPointer, size: number, access: 'read' | 'write'): void {
  if (ptr.nullable) reject(`R${regno} invalid mem access '${typeName(ptr)}'`);
  const { fixed, lo, hi } = touchedRange(ptr, 0, size);
  if (lo < 0 || hi > ptr.region.sizeBytes)
    reject(`invalid access to ${ptr.region.name}, size=${ptr.region.sizeBytes} off=${fixed}${varText(ptr)} size=${size}`);
  if (access === 'write' && !ptr.region.writable) reject(`write into read-only ${ptr.region.name}`);
}
