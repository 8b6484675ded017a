/** What the instruction checkers share: the program type, maps, id source and rejection. */
import type { MemoryRegion } from '../abi/context.js';
import type { MapDefinition } from '../abi/maps.js';
import type { ProgramType } from '../abi/program-types.js';
import type { Register } from '../isa/index.js';
import { type RegValue, UNINIT, type VerifierState } from './state.js';

/** Thrown by checkers to reject the program; the driver adds pc, instruction, state and log. */
export class Rejection extends Error {
  constructor(
    readonly reason: string,
    /** Overrides the pc of the current instruction (structural errors). */
    readonly pc?: number,
  ) {
    super(reason);
  }
}

export function reject(reason: string): never {
  throw new Rejection(reason);
}

export interface Analysis {
  readonly type: ProgramType;
  readonly maps: readonly MapDefinition[];
  /** The value region of each map (one object per map, so regions compare by identity). */
  readonly mapValueRegions: readonly MemoryRegion[];
  /** A fresh id for a data pointer or a lookup result. */
  newId(): number;
  /** Note that the function at `entryPc` uses `bytes` bytes of its stack frame. */
  recordStackDepth(entryPc: number, bytes: number): void;
  /** Note a local call, for the combined stack size check. */
  recordCall(callerEntryPc: number, calleeEntryPc: number): void;
  /**
   * The values of these registers of the current frame (before the current instruction) decide
   * something safety depends on: mark them, and what they were computed from, precise (precision.ts).
   */
  markPrecise(s: VerifierState, regs: readonly number[]): void;
  /** The same for locations of any frame (registers and stack slots, precision.ts). */
  markPreciseLocs(s: VerifierState, locs: readonly number[]): void;
  /** The current instruction spills a register to, or fills one from, slot `slot` of frame `frame` (precision.ts). */
  noteStackSlot(frame: number, slot: number): void;
  /** The current conditional jump refines these linked locations together (precision.ts). */
  noteLinked(locs: number[]): void;
}

export const currentFrame = (s: VerifierState) => s.frames[s.frames.length - 1];

/** The value of a register, which must have been written. */
export function readReg(s: VerifierState, r: Register): RegValue {
  const v = currentFrame(s).regs[r];
  if (v.kind === 'uninit') reject(`R${r} !read_ok`);
  return v;
}

export function writeReg(s: VerifierState, r: Register, v: RegValue): void {
  if (r === 10) reject('frame pointer is read only');
  currentFrame(s).regs[r] = v;
}

/** r1-r5 after any call: clobbered. */
export function clobberCallerSaved(s: VerifierState): void {
  const regs = currentFrame(s).regs;
  for (let r = 1; r <= 5; r++) regs[r] = UNINIT;
}
