/**
 * Static liveness and precision ("relevance") of registers and stack slots, computed once before
 * exploration. Pruning compares only what matters: a register or stack slot that no path reads
 * before overwriting it is *dead* and ignored; a live number whose value can never influence a safety
 * decision is *imprecise*: any number is as good as any other (only "it is a number" is compared).
 *
 * A number's value influences safety when it flows (through copies, arithmetic, spills and fills,
 * call arguments and return values) into: a conditional jump (which side is possible), pointer
 * arithmetic (the pointer's offset), the size argument of a helper, a `callx` target, or the return
 * value of a program type with a return range. This is the kernel's precision tracking, computed
 * statically as a backward may-analysis (so a superset of what the kernel marks precise, by path).
 * Why pruning on it is sound: from a state that differs from a proven one only in dead registers or
 * in imprecise numbers, every instruction takes the same decisions (same branch sides, same
 * addresses, same helper sizes), so every path is one the proven state's exploration already took.
 *
 * Stack slots are tracked only in functions whose own stack is addressed exclusively as
 * `r10 + constant` (copies included) and whose stack pointers never escape (stored to memory, passed
 * to a local call, returned); in any other function every slot counts as live and precise.
 */
import type { ProgramType } from '../abi/program-types.js';
import type { Instruction, Program, ProgramLayout } from '../isa/index.js';

/** Bits of a mask entry. */
export const LIVE = 1;
export const PRECISE = 2;
const BOTH = LIVE | PRECISE;
/** Mask layout: 11 registers then 64 stack slots (slot = (off + 512) >> 3). */
export const MASK_SLOTS = 11;
export const MASK_SIZE = 11 + 64;
/** Bytes per pc in the analysis's own table: MASK_SIZE rounded up to whole 32-bit words (the rest stays 0). */
const STRIDE = 80;
const WORDS = Math.ceil(MASK_SIZE / 4);
const FRAME_BYTES = 512;

// Static kinds of a register's content.
const S = 1; // number
const F = 2; // pointer into the function's own stack frame
const P = 4; // other pointer whose 8-byte loads may yield a pointer (ctx, a caller's stack, unknown)
const D = 8; // other pointer whose loads yield numbers (data, map values, map references)
const ANY = S | F | P | D;

export interface Liveness {
  /** Per function whose stack slots are not tracked (all live and precise): the instruction that prevents it. */
  readonly untrackedStackAt: readonly number[];
  /** The mask at `pc` for the frame executing it: 11 register entries then 64 slot entries. */
  at(pc: number): Uint8Array;
  /** The mask of a caller's frame suspended at the local call `callsite` (r0-r5 dead). */
  callerAt(callsite: number): Uint8Array;
}

export function analyzeLiveness(program: Program, layout: ProgramLayout, type: ProgramType): Liveness {
  const { slotCount, indexAt, functions } = layout;
  const insnAt = (pc: number): Instruction | undefined => (indexAt[pc] >= 0 ? program[indexAt[pc]] : undefined);
  const fnOf = new Int32Array(slotCount);
  functions.forEach((fn, k) => {
    for (let pc = fn.entryPc; pc < fn.endPc; pc++) fnOf[pc] = k;
  });

  // ---- forward: static kinds of registers ----
  // Per pc, 11 registers: kinds and own-frame offsets, flat (no object per instruction).
  const kindsAt = new Uint8Array(slotCount * 11);
  const offAt = new Float64Array(slotCount * 11);
  const reached = new Uint8Array(slotCount);
  const work: number[] = [];
  const kk = new Uint8Array(11);
  const ko = new Float64Array(11);
  /** Merge the kinds in `kk`/`ko` into those of `pc`; queue it when they grew. */
  const mergeInto = (pc: number) => {
    const base = pc * 11;
    if (!reached[pc]) {
      reached[pc] = 1;
      kindsAt.set(kk, base);
      offAt.set(ko, base);
      work.push(pc);
      return;
    }
    let changed = false;
    for (let r = 0; r < 11; r++) {
      const oldKind = kindsAt[base + r];
      const nk = oldKind | kk[r];
      let off = offAt[base + r];
      if (kk[r] & F) {
        if (!(oldKind & F)) off = ko[r];
        else if (!(off === ko[r])) off = Number.NaN;
      }
      if (nk !== oldKind || !Object.is(off, offAt[base + r])) {
        kindsAt[base + r] = nk;
        offAt[base + r] = off;
        changed = true;
      }
    }
    if (changed) work.push(pc);
  };
  for (const fn of functions) {
    kk.fill(0);
    ko.fill(Number.NaN);
    kk[10] = F;
    ko[10] = 0;
    if (fn.entryPc === 0) {
      type.entryRegisters.forEach((e, i) => {
        kk[i + 1] = e === 'scalar' || e === 'data-length' ? S : e === 'ctx' ? P : D;
      });
    } else {
      for (let r = 1; r <= 5; r++) kk[r] = S | P | D;
    }
    mergeInto(fn.entryPc);
  }
  const simple = new Uint8Array(functions.length).fill(1);
  const untracked: number[] = [];
  const set = (r: number, kind: number, off = Number.NaN) => {
    kk[r] = kind;
    ko[r] = off;
  };
  while (work.length > 0) {
    const pc = work.pop() as number;
    const insn = insnAt(pc);
    if (!insn) continue;
    const base = pc * 11;
    for (let r = 0; r < 11; r++) {
      kk[r] = kindsAt[base + r];
      ko[r] = offAt[base + r];
    }
    const next = pc + (insn.kind === 'lddw' ? 2 : 1);
    switch (insn.kind) {
      case 'alu': {
        const src = insn.src.kind === 'reg' ? insn.src.reg : -1;
        if (insn.op === 'mov' && insn.width === 64) {
          if (src >= 0) set(insn.dst, kindsAt[base + src], offAt[base + src]);
          else set(insn.dst, S);
        } else if ((insn.op === 'add' || insn.op === 'sub') && insn.width === 64) {
          const d = kindsAt[base + insn.dst];
          if (insn.src.kind === 'reg') set(insn.dst, d | kindsAt[base + insn.src.reg] | (insn.op === 'sub' ? S : 0));
          else set(insn.dst, d, offAt[base + insn.dst] + (insn.op === 'add' ? insn.src.value : -insn.src.value));
        } else set(insn.dst, S);
        break;
      }
      case 'endian':
        set(insn.dst, S);
        break;
      case 'lddw':
        set(
          insn.dst,
          insn.source === 0 ? S : insn.source === 1 || insn.source === 5 || insn.source === 2 || insn.source === 6 ? D : P,
        );
        break;
      case 'load': {
        const b = kindsAt[base + insn.src];
        // Never an own-stack pointer: spilling one makes the function untracked (below) anyway.
        set(insn.dst, insn.size !== 8 || (b & (F | P)) === 0 ? S : S | P);
        break;
      }
      case 'atomic':
        if (insn.op === 'cmpxchg') set(0, S);
        else if (insn.fetch) set(insn.src, S);
        break;
      case 'call':
      case 'callx': {
        const helper = insn.kind === 'callx' || insn.target !== 'local';
        const proto = insn.kind === 'call' && helper ? type.helpers.get(insn.imm) : undefined;
        for (let r = 1; r <= 5; r++) set(r, 0);
        set(0, helper ? (proto?.returns === 'map-value-or-null' ? S | D : S) : ANY);
        break;
      }
      default:
        break;
    }
    if (insn.kind === 'jump' || insn.kind === 'ja') mergeInto(pc + insn.offset + 1);
    if (insn.kind !== 'exit' && insn.kind !== 'ja' && next < slotCount) mergeInto(next);
  }
  // Functions whose own stack is always addressed as r10 + constant, with no escaping stack pointer.
  // `k` below is the base of a pc's 11 registers in kindsAt/offAt (no object per instruction).
  const resolved = (k: number, r: number) => !(kindsAt[k + r] & F) || !Number.isNaN(offAt[k + r]);
  const mayBeFp = (k: number, r: number) => (kindsAt[k + r] & F) !== 0;
  for (let pc = 0; pc < slotCount; pc++) {
    const insn = insnAt(pc);
    if (!insn || !reached[pc]) continue;
    const k = pc * 11;
    let ok = true;
    switch (insn.kind) {
      case 'load':
        ok = resolved(k, insn.src);
        break;
      case 'store':
        ok = resolved(k, insn.dst) && !(insn.src.kind === 'reg' && mayBeFp(k, insn.src.reg));
        break;
      case 'atomic':
        ok = resolved(k, insn.dst) && !mayBeFp(k, insn.src) && !(insn.op === 'cmpxchg' && mayBeFp(k, 0));
        break;
      case 'call':
      case 'callx':
        for (let r = 1; r <= 5; r++) {
          if (insn.kind === 'call' && insn.target === 'local' ? mayBeFp(k, r) : !resolved(k, r)) ok = false;
        }
        break;
      case 'exit':
        ok = !mayBeFp(k, 0);
        break;
      default:
        break;
    }
    if (!ok && simple[fnOf[pc]]) {
      simple[fnOf[pc]] = 0;
      untracked.push(pc);
    }
  }

  // ---- backward: liveness and precision ----
  // Combined with successors and compared a 32-bit word at a time (the byte loops were most of the time).
  const masks = new Uint8Array(slotCount * STRIDE);
  const masksW = new Uint32Array(masks.buffer);
  const callSites = new Map<number, number[]>(); // callee entry -> call pcs
  for (let pc = 0; pc < slotCount; pc++) {
    const insn = insnAt(pc);
    if (insn?.kind === 'call' && insn.target === 'local') {
      const t = pc + insn.imm + 1;
      const list = callSites.get(t) ?? [];
      list.push(pc);
      callSites.set(t, list);
    }
  }
  const slotOf = (off: number) => (off + FRAME_BYTES) >> 3;
  const out = new Uint8Array(STRIDE);
  const inn = new Uint8Array(STRIDE);
  const outW = new Uint32Array(out.buffer);
  const innW = new Uint32Array(inn.buffer);
  /** The slots of the own stack that `size` bytes at R[r] + off may touch (empty unless R[r] is r10 + a known constant). */
  let touchedLo = 0;
  let touchedHi = -1;
  const touched = (k: number, r: number, off: number, size: number) => {
    touchedLo = 0;
    touchedHi = -1;
    if (!(kindsAt[k + r] & F) || Number.isNaN(offAt[k + r])) return;
    const lo = offAt[k + r] + off;
    touchedLo = Math.max(0, slotOf(lo));
    touchedHi = Math.min(63, slotOf(lo + size - 1));
  };
  const genTouched = (bits: number) => {
    for (let s = touchedLo; s <= touchedHi; s++) inn[MASK_SLOTS + s] |= bits;
  };
  // Without backward jumps or local calls every successor of a pc comes after it: one backward
  // pass reaches the fixpoint, and the confirming pass is skipped.
  let acyclic = functions.length === 1;
  for (let pc = 0; pc < slotCount && acyclic; pc++) {
    const insn = insnAt(pc);
    if (insn && (insn.kind === 'jump' || insn.kind === 'ja') && insn.offset < 0) acyclic = false;
  }
  const addSucc = (t: number) => {
    const w = (t * STRIDE) >> 2;
    for (let i = 0; i < WORDS; i++) outW[i] |= masksW[w + i];
  };
  const gen = (r: number, bits: number) => {
    inn[r] |= bits;
  };
  const isRelevant = (r: number) => (out[r] & PRECISE) !== 0;
  let changed = true;
  while (changed) {
    changed = false;
    for (let pc = slotCount - 1; pc >= 0; pc--) {
      const insn = insnAt(pc);
      if (!insn || !reached[pc]) continue;
      const k = pc * 11;
      const fn = fnOf[pc];
      const next = pc + (insn.kind === 'lddw' ? 2 : 1);
      out.fill(0);
      if (insn.kind === 'jump' || insn.kind === 'ja') addSucc(pc + insn.offset + 1);
      if (insn.kind !== 'exit' && insn.kind !== 'ja' && next < slotCount) addSucc(next);
      inn.set(out);
      switch (insn.kind) {
        case 'alu': {
          const { dst, op } = insn;
          const src = insn.src.kind === 'reg' ? insn.src.reg : -1;
          const rel = isRelevant(dst);
          if (op === 'mov' || op === 'movsx8' || op === 'movsx16' || op === 'movsx32') {
            inn[dst] = 0;
            if (src >= 0) gen(src, rel ? BOTH : LIVE);
          } else {
            const ptrArith = (op === 'add' || op === 'sub') && src >= 0;
            const dstPtr = (kindsAt[k + dst] & (F | P | D)) !== 0;
            const srcPtr = src >= 0 && (kindsAt[k + src] & (F | P | D)) !== 0;
            gen(dst, rel || (ptrArith && srcPtr) ? BOTH : LIVE);
            if (src >= 0) gen(src, rel || (ptrArith && dstPtr) ? BOTH : LIVE);
          }
          break;
        }
        case 'endian':
          gen(insn.dst, LIVE);
          break;
        case 'lddw':
          inn[insn.dst] = 0;
          break;
        case 'load': {
          const rel = isRelevant(insn.dst);
          inn[insn.dst] = 0;
          gen(insn.src, BOTH);
          touched(k, insn.src, insn.offset, insn.size);
          genTouched(rel ? BOTH : LIVE);
          break;
        }
        case 'store': {
          let rel = false;
          touched(k, insn.dst, insn.offset, insn.size);
          for (let s = touchedLo; s <= touchedHi; s++) if (out[MASK_SLOTS + s] & PRECISE) rel = true;
          const b = insn.dst;
          const exactSlot =
            insn.size === 8 && kindsAt[k + b] === F && !Number.isNaN(offAt[k + b]) && (offAt[k + b] + insn.offset) % 8 === 0;
          if (exactSlot) {
            const s = slotOf(offAt[k + b] + insn.offset);
            if (s >= 0 && s < 64) inn[MASK_SLOTS + s] = 0;
          }
          gen(b, BOTH);
          if (insn.src.kind === 'reg') gen(insn.src.reg, rel ? BOTH : LIVE);
          break;
        }
        case 'atomic': {
          if (insn.op === 'cmpxchg') inn[0] = 0;
          else if (insn.fetch) inn[insn.src] = 0;
          gen(insn.dst, BOTH);
          gen(insn.src, BOTH);
          if (insn.op === 'cmpxchg') gen(0, BOTH);
          touched(k, insn.dst, insn.offset, insn.size);
          genTouched(BOTH);
          break;
        }
        case 'jump':
          gen(insn.dst, BOTH);
          if (insn.src.kind === 'reg') gen(insn.src.reg, BOTH);
          break;
        case 'exit': {
          let rel = false;
          if (fn === 0) rel = type.returns.kind === 'range';
          else {
            for (const site of callSites.get(functions[fn].entryPc) ?? []) {
              const after = site + 1;
              if (after < slotCount && masks[after * STRIDE] & PRECISE) rel = true;
            }
          }
          gen(0, rel ? BOTH : LIVE);
          break;
        }
        case 'call':
        case 'callx': {
          for (let r = 0; r <= 5; r++) inn[r] = 0;
          if (insn.kind === 'call' && insn.target === 'local') {
            const entry = (pc + insn.imm + 1) * STRIDE;
            for (let r = 1; r <= 5; r++) inn[r] |= masks[entry + r];
          } else if (insn.kind === 'callx') {
            for (let r = 1; r <= 5; r++) gen(r, BOTH);
            gen(insn.reg, BOTH);
            for (let r = 1; r <= 5; r++) {
              touched(k, r, 0, -offAt[k + r]);
              genTouched(LIVE);
            }
          } else {
            const proto = type.helpers.get(insn.imm);
            const args = proto?.args ?? ['scalar', 'scalar', 'scalar', 'scalar', 'scalar'];
            args.forEach((a, i) => {
              const r = i + 1;
              gen(r, a === 'mem-size' || a === 'mem-size-or-zero' ? BOTH : LIVE);
              // A helper reads or fills memory from the pointer up: every slot above it may be read.
              touched(k, r, 0, -offAt[k + r]);
              genTouched(LIVE);
            });
          }
          break;
        }
        default:
          break;
      }
      if (!simple[fn]) inn.fill(BOTH, MASK_SLOTS, MASK_SIZE);
      inn[10] = 0; // r10 never changes: nothing to compare
      const base = (pc * STRIDE) >> 2;
      for (let i = 0; i < WORDS; i++) {
        if (masksW[base + i] !== innW[i]) {
          masksW[base + i] = innW[i];
          changed = !acyclic;
        }
      }
    }
  }
  const callerMasks = new Map<number, Uint8Array>();
  // One view per pc, made on first use: `at` is called at every prune point.
  const views: (Uint8Array | undefined)[] = new Array(slotCount);
  return {
    untrackedStackAt: untracked,
    at(pc) {
      let v = views[pc];
      if (!v) views[pc] = v = masks.subarray(pc * STRIDE, pc * STRIDE + MASK_SIZE);
      return v;
    },
    callerAt(callsite) {
      let m = callerMasks.get(callsite);
      if (!m) {
        m = masks.slice((callsite + 1) * STRIDE, (callsite + 1) * STRIDE + MASK_SIZE);
        for (let r = 0; r <= 5; r++) m[r] = 0;
        callerMasks.set(callsite, m);
      }
      return m;
    },
  };
}
