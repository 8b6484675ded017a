/**
 * The abstract state of one path: per call frame, what each register holds and what each stack byte
 * holds. Plus the two relations exploration needs: "this state covers that one" (pruning) and
 * "these states are equal" (infinite-loop detection).
 */
import type { MemoryRegion } from '../abi/context.js';
import { STACK_FRAME_SIZE_BYTES } from '../abi/limits.js';
import {
  SCALAR_UNKNOWN,
  type Scalar,
  scalarConst,
  scalarConstValue,
  scalarEquals,
  scalarIn,
  scalarJoin,
  scalarToString,
} from './domains/scalar.js';
import { LIVE, MASK_SIZE, MASK_SLOTS, PRECISE } from './liveness.js';

/**
 * What a register holds.
 * - `scalar`: a number. `id` links registers holding the same value (copies: a comparison that
 *   narrows one narrows all); DATA_LENGTH_ID when it is exactly the data buffer's length; 0 when
 *   unlinked. `lenRel` records a proven relation to the data length: LT_LEN (value < length) or
 *   LE_LEN (value <= length); it belongs to the value, so it survives copies and refinements.
 *   `delta`: registers with the same id hold `base + delta` for one unknown base (a copy moved by a
 *   constant, `r1 = r6; r1 += -1`), so narrowing one narrows the others shifted by the difference.
 * - `ctx`: the context pointer plus a constant offset.
 * - `stack`: a pointer into the stack of frame `frame` (index in the call chain), `off + varOff`
 *   bytes from its top (offsets are negative).
 * - `data`: a pointer into the data buffer: `start + varOff + off`; pointers with the same `id` share
 *   `start + varOff`, and `range` says the bytes up to `start + varOff + range` are proven in bounds.
 * - `data_end`: one past the end of the data buffer.
 * - `mem`: a pointer `off + varOff` bytes into a fixed-size region; `nullable` until tested against 0
 *   (pointers from the same lookup share `id`, so one test settles them all).
 * - `map`: a reference to map number `map`.
 */
export type RegValue =
  | { readonly kind: 'uninit' }
  | { readonly kind: 'scalar'; readonly value: Scalar; readonly id: number; readonly lenRel?: number; readonly delta?: number }
  | { readonly kind: 'ctx'; readonly off: number }
  | { readonly kind: 'stack'; readonly frame: number; readonly off: number; readonly varOff: Scalar }
  | { readonly kind: 'data'; readonly off: number; readonly varOff: Scalar; readonly id: number; readonly range: number }
  | { readonly kind: 'data_end' }
  | {
      readonly kind: 'mem';
      readonly region: MemoryRegion;
      readonly off: number;
      readonly varOff: Scalar;
      readonly nullable: boolean;
      readonly id: number;
    }
  | { readonly kind: 'map'; readonly map: number };

export type PointerValue = Exclude<RegValue, { kind: 'uninit' } | { kind: 'scalar' }>;

/** Scalar id marking "exactly the length of the data buffer" (see the conformance program type). */
export const DATA_LENGTH_ID = 1;
/** First id handed out for pointers and lookups; ids below it have a fixed meaning. */
export const FIRST_DYNAMIC_ID = 2;

export const UNINIT: RegValue = { kind: 'uninit' };
export const ZERO_OFFSET: Scalar = scalarConst(0n);
export const scalarValue = (value: Scalar, id = 0, lenRel = 0, delta = 0): RegValue =>
  lenRel || delta ? { kind: 'scalar', value, id, lenRel, delta } : { kind: 'scalar', value, id };
/** `lenRel` values: the number is at most / below the data buffer's length. */
export const LE_LEN = 1;
export const LT_LEN = 2;
export const UNKNOWN_SCALAR: RegValue = scalarValue(SCALAR_UNKNOWN);

// What each stack byte holds.
export const STACK_INVALID = 0; // never written: reading it is an error
export const STACK_MISC = 1; // some number
export const STACK_ZERO = 2; // the number 0
export const STACK_SPILL = 3; // part of a spilled register (see `spills`)

export interface FrameState {
  readonly regs: RegValue[];
  /** One entry per byte; index = offset from the frame pointer + STACK_FRAME_SIZE_BYTES. */
  stack: Uint8Array;
  /**
   * The register spilled in each 8-byte slot whose first bytes are STACK_SPILL: a whole register
   * (8 bytes), or a number stored in the slot's low 1, 2 or 4 bytes (`spillBytes`), held as the
   * value those bytes read back as (zero-extended).
   */
  spills: (RegValue | undefined)[];
  /** `stack` and `spills` may be shared with another state: copy before writing (see `writableStack`). */
  stackShared: boolean;
  /** pc of the `call` that created the frame; -1 for the entry function. */
  readonly callsite: number;
  /** First pc of the function the frame runs. */
  readonly entryPc: number;
}

export interface Checkpoint {
  readonly pc: number;
  readonly state: VerifierState;
  readonly fingerprint: number;
  readonly parent: Checkpoint | undefined;
  /** Paths still being explored from here; 0 once every path from it is proven safe. */
  branches: number;
  hits: number;
  misses: number;
  /** The instructions from the parent checkpoint to this one: (pc, extra) pairs (see precision.ts). */
  readonly history: number[];
  /** Locations (precision.ts) whose numbers were proven to matter (bits, `isMarked`); allocated on the first mark. */
  precise?: number[];
  /** Once finished: per frame, static liveness combined with the final precision marks. */
  pruneMasks?: Uint8Array[];
  /** Once finished: the live precise locations, frame * MASK_SIZE + mask index (`preciseNumbersCover`). */
  preciseLocs?: number[];
  /**
   * Joins pair states with the same anchor only: the nearest checkpoint above at a loop head (null
   * if none). Every iteration of a loop records a checkpoint at its head, so states with one anchor
   * are in the same iteration of every loop around them: a join never merges two iterations.
   */
  readonly anchor: Checkpoint | null;
  /** This checkpoint if it is at a loop head, else its anchor (what children take as theirs). */
  loopAnchor: Checkpoint | null;
  /** Shape key of the state (`lastShapeKey`): only checkpoints of the same shape can cover each other. */
  readonly shape: number;
  /**
   * Recorded past the per-instruction cap only to cut the path's history for backtracking: never
   * used for pruning, joins or loop detection.
   */
  unregistered?: true;
}

export interface VerifierState {
  frames: FrameState[];
  pc: number;
  /** pc of the instruction executed just before (the source of a back-edge). */
  prevPc: number;
  /** Latest checkpoint on this path. */
  parent: Checkpoint | undefined;
  /** Proven lower bound of the data buffer's length: bytes [0, minDataLen) of it exist. */
  minDataLen: number;
  /** The outcome of the latest comparison of two registers, while they still hold the same values. */
  relation?: Relation;
  /** Instructions executed since `parent` was recorded: (pc, extra) pairs, for backtracking. */
  history: number[];
}

/**
 * `R[a] cmp R[b]` (in `width` bits) held when the registers got the values `va` and `vb` (objects
 * created by that comparison's refinement, so any register holding them holds those same values):
 * valid while frame `frame`'s registers still hold exactly those objects. Lets clang's repeated
 * comparisons (`if (k > want) ...; if (k > want) ...`) skip the side that cannot happen.
 */
export interface Relation {
  readonly frame: number;
  readonly a: number;
  readonly b: number;
  readonly va: RegValue;
  readonly vb: RegValue;
  readonly cmp: string;
  readonly width: number;
}

/** The state's relation if it still holds (its registers were not rewritten). */
export function validRelation(s: VerifierState): Relation | undefined {
  const r = s.relation;
  if (!r || r.frame >= s.frames.length) return undefined;
  const regs = s.frames[r.frame].regs;
  return regs[r.a] === r.va && regs[r.b] === r.vb ? r : undefined;
}

function relationCovers(old: VerifierState, cur: VerifierState, exact: boolean, masks: readonly Uint8Array[]): boolean {
  const live = (r: Relation | undefined) => (r && masks[r.frame][r.a] & LIVE && masks[r.frame][r.b] & LIVE ? r : undefined);
  const o = live(validRelation(old));
  const c = live(validRelation(cur));
  if (!o) return !exact || !c;
  return !!c && c.frame === o.frame && c.a === o.a && c.b === o.b && c.cmp === o.cmp && c.width === o.width;
}

export const SLOT_COUNT = STACK_FRAME_SIZE_BYTES / 8;

export function newFrame(index: number, callsite: number, entryPc: number): FrameState {
  const regs: RegValue[] = new Array(11).fill(UNINIT);
  regs[10] = { kind: 'stack', frame: index, off: 0, varOff: ZERO_OFFSET };
  const stack = new Uint8Array(STACK_FRAME_SIZE_BYTES);
  return { regs, stack, spills: new Array(SLOT_COUNT).fill(undefined), stackShared: false, callsite, entryPc };
}

/** A copy of the state; stacks are shared copy-on-write, since most states are snapshots never written. */
export function cloneState(s: VerifierState): VerifierState {
  const frames = new Array<FrameState>(s.frames.length);
  for (let i = 0; i < frames.length; i++) {
    const f = s.frames[i];
    f.stackShared = true;
    // An explicit literal (not a spread): one object shape for every frame, no per-copy property lookups.
    frames[i] = {
      regs: f.regs.slice(),
      stack: f.stack,
      spills: f.spills,
      stackShared: true,
      callsite: f.callsite,
      entryPc: f.entryPc,
    };
  }
  return {
    frames,
    pc: s.pc,
    prevPc: s.prevPc,
    parent: s.parent,
    minDataLen: s.minDataLen,
    relation: s.relation,
    history: s.history,
  };
}

/** The frame, with a stack of its own that may be written. */
export function writableStack(frame: FrameState): FrameState {
  if (frame.stackShared) {
    frame.stack = frame.stack.slice();
    frame.spills = frame.spills.slice();
    frame.stackShared = false;
  }
  return frame;
}

export const isPointer = (v: RegValue): v is PointerValue => v.kind !== 'uninit' && v.kind !== 'scalar';

/** Kernel-style type name, used in messages. */
export function typeName(v: RegValue): string {
  switch (v.kind) {
    case 'uninit':
      return 'uninit';
    case 'scalar':
      return 'scalar';
    case 'ctx':
      return 'ctx';
    case 'stack':
      return 'fp';
    case 'data':
      return 'data';
    case 'data_end':
      return 'data_end';
    case 'mem':
      return v.nullable ? `${v.region.name}_or_null` : v.region.name;
    case 'map':
      return 'map_ptr';
  }
}

const varText = (s: Scalar) => (scalarConstValue(s) === 0n ? '' : `,var=${scalarToString(s)}`);

export function formatValue(v: RegValue): string {
  switch (v.kind) {
    case 'uninit':
      return '?';
    case 'scalar':
      return `${scalarToString(v.value)}${v.id === DATA_LENGTH_ID ? '(data_len' : v.id ? `(id=${v.id}` : ''}${
        v.id ? `${v.delta ? `${v.delta > 0 ? '+' : ''}${v.delta}` : ''})` : ''
      }${v.lenRel === LT_LEN ? '(<len)' : v.lenRel === LE_LEN ? '(<=len)' : ''}`;
    case 'ctx':
      return `ctx(off=${v.off})`;
    case 'stack':
      return `fp[${v.frame}](off=${v.off}${varText(v.varOff)})`;
    case 'data':
      return `data(id=${v.id},off=${v.off},r=${v.range}${varText(v.varOff)})`;
    case 'data_end':
      return 'data_end';
    case 'mem':
      return `${typeName(v)}(${v.nullable ? `id=${v.id},` : ''}off=${v.off},size=${v.region.sizeBytes}${varText(v.varOff)})`;
    case 'map':
      return `map_ptr(${v.map})`;
  }
}

const BYTE_CHARS = ['?', 'm', '0', 's'];

/** Registers and initialised stack slots of every frame, innermost frame first. */
export function formatState(s: VerifierState): string[] {
  const lines: string[] = [];
  for (let f = s.frames.length - 1; f >= 0; f--) {
    const frame = s.frames[f];
    const parts: string[] = [];
    frame.regs.forEach((v, r) => {
      if (v.kind !== 'uninit') parts.push(`R${r}=${formatValue(v)}`);
    });
    for (let slot = SLOT_COUNT - 1; slot >= 0; slot--) {
      const bytes = frame.stack.subarray(slot * 8, slot * 8 + 8);
      if (bytes.every((b) => b === STACK_INVALID)) continue;
      const off = slot * 8 - STACK_FRAME_SIZE_BYTES;
      const spill = frame.spills[slot];
      const spilled = spill ? spillBytes(frame, slot) : 0;
      const plain = [...bytes.subarray(spilled)].map((b) => BYTE_CHARS[b]).join('');
      // A narrow spill: its value, then the other bytes of the slot (`fp-8=5/4+mmmm`).
      parts.push(spill ? `fp${off}=${formatValue(spill)}${spilled < 8 ? `/${spilled}+${plain}` : ''}` : `fp${off}=${plain}`);
    }
    if (f === 0 && s.minDataLen > 0) parts.push(`data_len>=${s.minDataLen}`);
    lines.push(`${s.frames.length > 1 ? `frame${f}: ` : ''}${parts.join(' ')}`);
  }
  return lines;
}

/**
 * Consistent renaming of ids between an old and a current state: an id of the old state must always
 * correspond to the same id of the current one (and the other way round), or the facts shared
 * through the id (range of data pointers, null-ness of a lookup) would not carry over.
 */
class IdMap {
  // Allocated on first use: most comparisons fail or succeed before any id is compared.
  private forward: Map<number, number> | undefined;
  private backward: Map<number, number> | undefined;
  check(oldId: number, curId: number): boolean {
    if (oldId < FIRST_DYNAMIC_ID || curId < FIRST_DYNAMIC_ID) return oldId === curId;
    if (!this.forward || !this.backward) {
      this.forward = new Map();
      this.backward = new Map();
    }
    const f = this.forward.get(oldId);
    const b = this.backward.get(curId);
    if (f === undefined && b === undefined) {
      this.forward.set(oldId, curId);
      this.backward.set(curId, oldId);
      return true;
    }
    return f === curId && b === oldId;
  }
}

/**
 * Whether every concrete value `cur` stands for is one `old` stands for (or equal, when `exact`).
 * `bits` (see liveness.ts): without LIVE the register is never read again: anything goes; without
 * PRECISE a number's value never matters: any number covers any number.
 */
function valueCovers(old: RegValue, cur: RegValue, ids: IdMap, exact: boolean, bits: number): boolean {
  if (!(bits & LIVE)) return true;
  // States share value objects (copies are shallow): the same object covers itself, unless it
  // carries an id whose renaming must stay consistent with the other registers.
  if (old === cur && !carriesId(old)) return true;
  // A register the old state never had initialised was never read on any path from it.
  if (old.kind === 'uninit') return !exact || cur.kind === 'uninit';
  const within = (o: Scalar, c: Scalar) => (exact ? scalarEquals(o, c) : scalarIn(o, c));
  switch (old.kind) {
    case 'scalar':
      if (cur.kind !== 'scalar') return false;
      if (!(bits & PRECISE)) return true;
      return (
        within(old.value, cur.value) &&
        (exact ? (old.lenRel ?? 0) === (cur.lenRel ?? 0) : (old.lenRel ?? 0) <= (cur.lenRel ?? 0)) &&
        (exact ? ids.check(old.id, cur.id) : old.id === 0 || ids.check(old.id, cur.id)) &&
        (old.id === 0 || (old.delta ?? 0) === (cur.delta ?? 0))
      );
    case 'ctx':
      return cur.kind === 'ctx' && cur.off === old.off;
    case 'stack':
      return cur.kind === 'stack' && cur.frame === old.frame && cur.off === old.off && within(old.varOff, cur.varOff);
    case 'data':
      return (
        cur.kind === 'data' &&
        cur.off === old.off &&
        (exact ? cur.range === old.range : cur.range >= old.range) &&
        within(old.varOff, cur.varOff) &&
        ids.check(old.id, cur.id)
      );
    case 'data_end':
      return cur.kind === 'data_end';
    case 'mem':
      return (
        cur.kind === 'mem' &&
        cur.region === old.region &&
        cur.off === old.off &&
        cur.nullable === old.nullable &&
        within(old.varOff, cur.varOff) &&
        (!old.nullable || ids.check(old.id, cur.id))
      );
    case 'map':
      return cur.kind === 'map' && cur.map === old.map;
  }
}

const carriesId = (v: RegValue) =>
  (v.kind === 'scalar' && v.id >= FIRST_DYNAMIC_ID) || v.kind === 'data' || (v.kind === 'mem' && v.nullable);

/** Bytes of the spill in `slot` (its leading STACK_SPILL bytes): 8, or 1, 2 or 4 for a narrow number. */
export function spillBytes(frame: FrameState, slot: number): number {
  const base = slot * 8;
  const stack = frame.stack;
  if (stack[base + 7] === STACK_SPILL) return 8;
  let n = 0;
  while (n < 8 && stack[base + n] === STACK_SPILL) n++;
  return n;
}

/** The kind of byte a spilled register reads as when read partially. */
function spilledByteKind(spill: RegValue): number {
  if (spill.kind !== 'scalar') return STACK_SPILL;
  return scalarConstValue(spill.value) === 0n ? STACK_ZERO : STACK_MISC;
}

function stackCovers(
  old: FrameState,
  cur: FrameState,
  ids: IdMap,
  exact: boolean,
  mask: Uint8Array,
  byteMask: Uint8Array,
): boolean {
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const bits = mask[MASK_SLOTS + slot];
    if (!(bits & LIVE)) continue;
    const oldSpill = old.spills[slot];
    const curSpill = cur.spills[slot];
    // Spilled bytes (a whole register, or the low bytes of a narrow number); the rest are plain.
    const oldEnd = slot * 8 + (oldSpill ? spillBytes(old, slot) : 0);
    const curEnd = slot * 8 + (curSpill ? spillBytes(cur, slot) : 0);
    // Whether the spilled number's value matters, and whether zero bytes must stay zero.
    const precise = (bits & PRECISE) !== 0;
    const bytesPrecise = (byteMask[MASK_SLOTS + slot] & PRECISE) !== 0;
    let from = slot * 8;
    if (oldSpill && (precise || oldSpill.kind !== 'scalar')) {
      if (!curSpill || curEnd !== oldEnd || !valueCovers(oldSpill, curSpill, ids, exact, bits)) return false;
      if (oldEnd === slot * 8 + 8) continue;
      from = oldEnd; // the plain bytes after a narrow spill are compared below
    } else {
      if (exact && precise && curSpill) return false;
      if (curSpill && !precise && curSpill.kind !== 'scalar') return false;
    }
    for (let i = from; i < slot * 8 + 8; i++) {
      let o = i < oldEnd ? STACK_MISC : old.stack[i];
      let c = i < curEnd ? spilledByteKind(curSpill as RegValue) : cur.stack[i];
      // The value of an imprecise slot does not matter: 0 is any number.
      if (!bytesPrecise) {
        if (o === STACK_ZERO) o = STACK_MISC;
        if (c === STACK_ZERO) c = STACK_MISC;
      }
      if (exact ? o !== c : o !== STACK_INVALID && o !== c && !(o === STACK_MISC && c === STACK_ZERO)) return false;
    }
  }
  return true;
}

/**
 * Whether `old` (at the same pc) covers `cur`: every execution from `cur` is one from `old`. With
 * `exact`, whether they are the same abstract state (up to renaming of ids). `masks` (one per frame)
 * say which registers and slots are live and which numbers (in registers and spills) are precise;
 * by default all are. `byteMasks` say which plain stack bytes must keep zero apart from other
 * numbers (static, liveness.ts); by default `masks`. Pruning passes the checkpoint's precision marks
 * in `masks` (precision.ts); loop detection the static masks in both.
 */
export function stateCovers(
  old: VerifierState,
  cur: VerifierState,
  exact: boolean,
  masks: readonly Uint8Array[] = old.frames.map(() => ALL_LIVE),
  byteMasks: readonly Uint8Array[] = masks,
): boolean {
  if (old.frames.length !== cur.frames.length) return false;
  if (exact ? old.minDataLen !== cur.minDataLen : old.minDataLen > cur.minDataLen) return false;
  if ((old.relation || cur.relation) && !relationCovers(old, cur, exact, masks)) return false;
  for (let f = 0; f < old.frames.length; f++) if (old.frames[f].callsite !== cur.frames[f].callsite) return false;
  const ids = new IdMap();
  // Registers before stacks (a register is one comparison, a slot up to eight), innermost frame
  // first: that is where states differ most.
  for (let f = old.frames.length - 1; f >= 0; f--) {
    const o = old.frames[f].regs;
    const c = cur.frames[f].regs;
    const mask = masks[f];
    for (let r = 0; r < 11; r++) if (!valueCovers(o[r], c[r], ids, exact, mask[r])) return false;
  }
  for (let f = old.frames.length - 1; f >= 0; f--) {
    const o = old.frames[f];
    const c = cur.frames[f];
    if (!stackCovers(o, c, ids, exact, masks[f], byteMasks[f])) return false;
  }
  return true;
}

/** A mask with every register and slot live and precise. */
export const ALL_LIVE: Uint8Array = new Uint8Array(MASK_SLOTS + SLOT_COUNT).fill(LIVE | PRECISE);

/**
 * Forget scalar ids held by a single register or spill: they link nothing, and keeping them would
 * make equal states look different (the kernel's clear_singular_ids).
 */
export function clearSingularIds(s: VerifierState): void {
  // Most states hold no linked number: find out without allocating.
  let any = false;
  for (const f of s.frames) {
    for (let r = 0; r < 11 && !any; r++) any = isLinked(f.regs[r]);
    for (let i = 0; i < SLOT_COUNT && !any; i++) any = isLinked(f.spills[i]);
    if (any) break;
  }
  if (!any) return;
  const count = new Map<number, number>();
  const note = (v: RegValue | undefined) => {
    if (v?.kind === 'scalar' && v.id >= FIRST_DYNAMIC_ID) count.set(v.id, (count.get(v.id) ?? 0) + 1);
  };
  for (const f of s.frames) {
    f.regs.forEach(note);
    f.spills.forEach(note);
  }
  const singular = (v: RegValue | undefined) => v?.kind === 'scalar' && v.id >= FIRST_DYNAMIC_ID && count.get(v.id) === 1;
  const unlink = (v: RegValue) => {
    const sv = v as Extract<RegValue, { kind: 'scalar' }>;
    return scalarValue(sv.value, 0, sv.lenRel ?? 0);
  };
  for (const f of s.frames) {
    for (let r = 0; r < f.regs.length; r++) if (singular(f.regs[r])) f.regs[r] = unlink(f.regs[r]);
    for (let i = 0; i < f.spills.length; i++) {
      const v = f.spills[i];
      if (v && singular(v)) writableStack(f).spills[i] = unlink(v);
    }
  }
}

const isLinked = (v: RegValue | undefined) => v !== undefined && v.kind === 'scalar' && v.id >= FIRST_DYNAMIC_ID;

const mix = (h: number, x: number) => Math.imul(h ^ x, 0x9e3779b1) >>> 0;
/**
 * Hashes used as Map keys are cut to 30 bits: small integers are stored and hashed inline, while a
 * full 32-bit hash is a heap number (a lookup among 65,536 open checkpoints was a fifth of the time).
 */
export const SMALL_KEY = 0x3fffffff;
const mixBig = (h: number, x: bigint) => mix(h, Number(x & 0xffffffffn));
const mixScalar = (h: number, s: Scalar) => mixBig(mixBig(h, s.umin), s.umax);

function mixValue(h: number, v: RegValue, bits: number): number {
  if (!(bits & LIVE)) return h;
  h = mix(h, v.kind.charCodeAt(0) + v.kind.length);
  switch (v.kind) {
    case 'scalar':
      return bits & PRECISE ? mixScalar(h, v.value) : h;
    case 'stack':
    case 'mem':
      return mixScalar(mix(h, v.off), v.varOff);
    case 'data':
      return mixScalar(mix(mix(h, v.off), v.range), v.varOff);
    case 'ctx':
      return mix(h, v.off);
    default:
      return h;
  }
}

/**
 * A hash equal for states that `stateCovers(.., exact)` finds equal: a cheap first test. It hashes
 * registers and spilled registers only; states differing in plain stack bytes merely collide.
 * Computes the shape key in the same pass and leaves it in `lastShapeKey` (one walk per prune point).
 */
export function fingerprint(s: VerifierState, masks: readonly Uint8Array[] = s.frames.map(() => ALL_LIVE)): number {
  let h = mix(s.frames.length, s.minDataLen);
  let shape = s.frames.length;
  for (let k = 0; k < s.frames.length; k++) {
    const f = s.frames[k];
    const mask = masks[k];
    h = mix(h, f.callsite);
    shape = mix(shape, f.callsite);
    for (let r = 0; r < 11; r++) {
      const bits = mask[r];
      if (!(bits & LIVE)) continue;
      const v = f.regs[r];
      h = mixValue(h, v, bits);
      shape = mixShape(shape, v);
    }
    for (let i = 0; i < SLOT_COUNT; i++) {
      const v = f.spills[i];
      if (v === undefined) continue;
      const bits = mask[MASK_SLOTS + i];
      if (!(bits & LIVE)) continue;
      // An imprecise slot holding a number may equal one of plain bytes: hash only precise spills.
      if (bits & PRECISE || v.kind !== 'scalar') h = mixValue(mix(h, i), v, bits);
      if (v.kind !== 'scalar') shape = mixShape(mix(shape, i), v);
    }
  }
  lastShapeKey = shape & SMALL_KEY;
  return h & SMALL_KEY;
}

/**
 * The shape key of the state the latest `fingerprint` hashed: a hash of what covering requires to be
 * equal whatever the precision: the call chain, the kinds of the live registers and spilled pointers,
 * and the pointers' constant offsets. States of different shapes never cover each other (except
 * through a live register never written in the old state, which then only misses a prune), so
 * finished checkpoints are kept per shape.
 */
export let lastShapeKey = 0;

/**
 * Widen `cur` so that it also contains the finished checkpoint `old` where they differ only in
 * precise numbers: each precise number of `old` that does not cover `cur`'s becomes the hull of both
 * (unlinked). Returns false, leaving `cur` unchanged, when anything else keeps `old` from covering
 * `cur` (types, pointers, stack bytes, ids of pointers, the proven length, relations) or when nothing
 * would change. The result contains `cur`, so exploring it instead of `cur` is sound; it is what lets
 * paths that differ in a compared counter or flag meet (see README.md, "Joins").
 */
export function joinState(
  old: VerifierState,
  cur: VerifierState,
  masks: readonly Uint8Array[],
  byteMasks: readonly Uint8Array[],
): boolean {
  if (old.frames.length !== cur.frames.length || old.minDataLen > cur.minDataLen) return false;
  if ((old.relation || cur.relation) && !relationCovers(old, cur, false, masks)) return false;
  for (let f = 0; f < old.frames.length; f++) if (old.frames[f].callsite !== cur.frames[f].callsite) return false;
  const ids = new IdMap();
  const widened: { frame: number; loc: number; value: RegValue }[] = [];
  // Whether `o` covers `c`, or both are numbers whose hull is taken instead.
  const joinable = (o: RegValue, c: RegValue, bits: number, frame: number, loc: number): boolean => {
    if (valueCovers(o, c, ids, false, bits)) return true;
    if (o.kind !== 'scalar' || c.kind !== 'scalar' || !(bits & PRECISE)) return false;
    widened.push({ frame, loc, value: scalarValue(scalarJoin(o.value, c.value)) });
    return true;
  };
  for (let f = old.frames.length - 1; f >= 0; f--) {
    const o = old.frames[f];
    const c = cur.frames[f];
    const mask = masks[f];
    for (let r = 0; r < 11; r++) if (!joinable(o.regs[r], c.regs[r], mask[r], f, r)) return false;
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const bits = mask[MASK_SLOTS + slot];
      const os = o.spills[slot];
      const cs = c.spills[slot];
      if (!(bits & LIVE) || !(os?.kind === 'scalar' && cs?.kind === 'scalar' && bits & PRECISE)) continue;
      if (!joinable(os, cs, bits, f, MASK_SLOTS + slot)) return false;
    }
  }
  if (widened.length === 0) return false;
  // Everything but the widened numbers must be covered (stack bytes and spills included).
  const trial = cloneState(cur);
  for (const w of widened) {
    const frame = trial.frames[w.frame];
    if (w.loc < MASK_SLOTS) frame.regs[w.loc] = w.value;
    else writableStack(frame).spills[w.loc - MASK_SLOTS] = w.value;
  }
  const relaxed = masks.map((m, f) => {
    const r = m.slice();
    for (const w of widened) if (w.frame === f) r[w.loc] &= ~PRECISE;
    return r;
  });
  if (!stateCovers(old, trial, false, relaxed, byteMasks)) return false;
  for (const w of widened) {
    const frame = cur.frames[w.frame];
    if (w.loc < MASK_SLOTS) frame.regs[w.loc] = w.value;
    else writableStack(frame).spills[w.loc - MASK_SLOTS] = w.value;
  }
  return true;
}

function mixShape(h: number, v: RegValue): number {
  h = mix(h, v.kind.charCodeAt(0) + v.kind.length);
  switch (v.kind) {
    case 'ctx':
    case 'data':
      return mix(h, v.off);
    case 'stack':
      return mix(mix(h, v.off), v.frame);
    case 'mem':
      return mix(mix(mix(h, v.off), v.region.sizeBytes), v.nullable ? 1 : 0);
    case 'map':
      return mix(h, v.map);
    default:
      return h;
  }
}

/** The number at `loc` (frame * MASK_SIZE + mask index, as `preciseNumbersCover`) if it is a constant. */
function constantAt(s: VerifierState, loc: number): bigint | undefined {
  const f = (loc / MASK_SIZE) | 0;
  const i = loc - f * MASK_SIZE;
  const frame = s.frames[f];
  if (!frame) return undefined;
  const v = i < MASK_SLOTS ? frame.regs[i] : frame.spills[i - MASK_SLOTS];
  return v?.kind === 'scalar' ? scalarConstValue(v.value) : undefined;
}

/** The locations among `locs` holding constant numbers in `s`. */
export const constantLocs = (s: VerifierState, locs: readonly number[]): number[] =>
  locs.filter((loc) => constantAt(s, loc) !== undefined);

/**
 * A hash of the constants held at `locs`, or undefined when one of them is not a constant number. A
 * precise constant covers only the same constant, so a finished checkpoint can cover `cur` only if
 * they hash alike on the checkpoint's precise constants: the verifier indexes checkpoints by it
 * instead of comparing each.
 */
export function constantsHash(s: VerifierState, locs: readonly number[]): number | undefined {
  let h = locs.length;
  for (const loc of locs) {
    const c = constantAt(s, loc);
    if (c === undefined) return undefined;
    h = mix(mix(h, Number(c & 0xffffffffn)), Number(c >> 32n));
  }
  return h & SMALL_KEY;
}

/**
 * A quick necessary condition for `old` covering `cur` under the pruning masks: every precise number
 * of `old` (registers and spills, listed in `preciseLocs` as frame * MASK_SIZE + mask index) holds a
 * number of `cur` within it. Most failed comparisons fail here, before the whole state is walked.
 */
export function preciseNumbersCover(old: VerifierState, cur: VerifierState, preciseLocs: readonly number[]): boolean {
  for (const loc of preciseLocs) {
    const f = (loc / MASK_SIZE) | 0;
    const i = loc - f * MASK_SIZE;
    const of = old.frames[f];
    const cf = cur.frames[f];
    if (!cf) return false;
    const o = i < MASK_SLOTS ? of.regs[i] : of.spills[i - MASK_SLOTS];
    const c = i < MASK_SLOTS ? cf.regs[i] : cf.spills[i - MASK_SLOTS];
    if (o === c || o?.kind !== 'scalar') continue;
    if (c?.kind !== 'scalar' || !scalarIn(o.value, c.value)) return false;
  }
  return true;
}
