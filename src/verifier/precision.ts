/**
 * Precision tracking, as the Linux verifier's `mark_chain_precision`: every number starts
 * *imprecise* (pruning treats any number as covering any number) and becomes *precise* in a recorded
 * checkpoint only when backtracking proves that its value decided something the safety of the path
 * depended on. Backtracking walks the instruction history of the current path backwards (through
 * copies, arithmetic, spills and fills, calls and returns, and the registers a comparison linked),
 * marking what each checkpoint on the way held; see README.md, "Precision", for the list of uses and
 * why pruning on the marks is sound.
 *
 * A location is a register or a stack slot of one frame of the call chain:
 * `frame << 7 | index` for register `index`, `frame << 7 | 64 | slot` for stack slot `slot`.
 */
import { MAX_CALL_DEPTH } from '../abi/limits.js';
import type { Instruction } from '../isa/index.js';
import type { Checkpoint, VerifierState } from './state.js';

export const LOC_FRAME_SHIFT = 7;
export const LOC_SLOT = 64;
/** Locations per frame (registers 0-10, then 64 slots from `LOC_SLOT`). */
export const LOCS_PER_FRAME = 1 << LOC_FRAME_SHIFT;

export const regLoc = (frame: number, reg: number) => (frame << LOC_FRAME_SHIFT) | reg;
/**
 * A checkpoint's precision marks: one bit per location, 16 per word (small integers, so the array
 * stays a compact array of small integers; a Uint8Array per checkpoint was a tenth of the heap).
 */
export const MARK_WORDS_PER_FRAME = LOCS_PER_FRAME >> 4;
export const isMarked = (marks: readonly number[], loc: number): boolean => ((marks[loc >> 4] >> (loc & 15)) & 1) !== 0;
/** The marked locations, in increasing order. */
export function markedLocs(marks: readonly number[]): number[] {
  const locs: number[] = [];
  for (let w = 0; w < marks.length; w++) {
    const bits = marks[w];
    if (bits !== 0) for (let b = 0; b < 16; b++) if ((bits >> b) & 1) locs.push((w << 4) | b);
  }
  return locs;
}
export const slotLoc = (frame: number, slot: number) => (frame << LOC_FRAME_SHIFT) | LOC_SLOT | slot;

/**
 * History entries are pairs (pc, extra). `extra` says what the instruction touched that the
 * instruction alone does not tell: for a spill or fill (whole or narrow, see memory.ts), 1 + the slot's location; for a
 * conditional jump that refined linked numbers, -(1 + index of the linked group). 0 otherwise.
 */
export const NO_EXTRA = 0;
/** History extra of a local call verified through a function summary: r0 comes from the summary. */
export const SUMMARIZED_CALL = 1 << 30;

/** Thrown when the history contradicts the recorded states: a verifier bug, never a user error. */
export class PrecisionBug extends Error {}

export class PrecisionTracker {
  /** The locations being backtracked (1 = in the set), for every frame. */
  private readonly set = new Uint8Array(MAX_CALL_DEPTH * LOCS_PER_FRAME);
  private count = 0;
  /** Locations in the set per frame (so that empty frames are skipped without a scan). */
  private readonly frameCount = new Int32Array(MAX_CALL_DEPTH + 1);
  /** Linked groups recorded at conditional jumps (see `noteLinked`). */
  private readonly groups: number[][] = [];
  /** Backtracking steps taken, for the statistics. */
  steps = 0;

  constructor(private readonly insnAt: (pc: number) => Instruction) {}

  /** Register the locations a comparison refined together; returns the history extra naming them. */
  linkedGroup(locs: number[]): number {
    this.groups.push(locs);
    return -this.groups.length;
  }

  /**
   * Mark `locs` (locations holding numbers in `s` before its current instruction) precise: in every
   * checkpoint up the path, whatever their values were computed from.
   */
  markPrecise(s: VerifierState, locs: readonly number[]): void {
    for (const loc of locs) this.add(loc);
    if (this.count === 0) return;
    let frame = s.frames.length - 1;
    let history = s.history;
    let cp = s.parent;
    try {
      while (true) {
        for (let i = history.length - 2; i >= 0; i -= 2) {
          frame = this.backtrack(history[i], history[i + 1], frame);
          this.steps++;
          if (this.count === 0) return;
        }
        if (!cp) return; // the entry state: its values are the program's inputs
        if (frame !== cp.state.frames.length - 1)
          throw new PrecisionBug(`backtracking reached checkpoint at ${cp.pc} in frame ${frame}`);
        this.markCheckpoint(cp);
        if (this.count === 0) return;
        history = cp.history;
        cp = cp.parent;
      }
    } finally {
      if (this.count > 0) this.clear();
    }
  }

  private add(loc: number): void {
    if (this.set[loc] === 0) {
      this.set[loc] = 1;
      this.count++;
      this.frameCount[loc >> LOC_FRAME_SHIFT]++;
    }
  }

  private del(loc: number): void {
    if (this.set[loc] !== 0) {
      this.set[loc] = 0;
      this.count--;
      this.frameCount[loc >> LOC_FRAME_SHIFT]--;
    }
  }

  private clear(): void {
    this.set.fill(0);
    this.frameCount.fill(0);
    this.count = 0;
  }

  private clearFrame(frame: number): void {
    if (frame >= MAX_CALL_DEPTH || this.frameCount[frame] === 0) return;
    const base = frame << LOC_FRAME_SHIFT;
    for (let i = base; i < base + LOCS_PER_FRAME; i++) this.del(i);
  }

  /**
   * Record the set in checkpoint `cp`: a location holding a number there becomes precise. One
   * already precise leaves the set: its sources were marked when it became precise (backtracking
   * distributes over the locations, so each needs walking up once). Pointers leave the set: they are
   * always compared whole.
   */
  private markCheckpoint(cp: Checkpoint): void {
    const frames = cp.state.frames;
    for (let f = 0; f < frames.length; f++) {
      if (this.frameCount[f] === 0) continue;
      const frame = frames[f];
      const base = f << LOC_FRAME_SHIFT;
      // Stop once every location of the frame in the set was seen (usually one or two registers).
      let left = this.frameCount[f];
      for (let i = 0; i < LOCS_PER_FRAME && left > 0; i++) {
        if (i === 11) i = LOC_SLOT; // registers 0-10, then the slots
        const loc = base + i;
        if (this.set[loc] === 0) continue;
        left--;
        const v = i & LOC_SLOT ? frame.spills[i & 63] : frame.regs[i];
        if (v?.kind !== 'scalar') {
          this.del(loc);
          continue;
        }
        if (!cp.precise) cp.precise = new Array<number>(frames.length * MARK_WORDS_PER_FRAME).fill(0);
        if (isMarked(cp.precise, loc)) this.del(loc);
        else cp.precise[loc >> 4] |= 1 << (loc & 15);
      }
    }
    // Nothing may remain for frames the checkpoint does not have.
    if (this.count > 0) for (let f = frames.length; f < MAX_CALL_DEPTH; f++) this.clearFrame(f);
  }

  /** Undo one instruction: the set before it, given the set after it. Returns the frame before it. */
  private backtrack(pc: number, extra: number, frame: number): number {
    const insn = this.insnAt(pc);
    const base = frame << LOC_FRAME_SHIFT;
    const set = this.set;
    switch (insn.kind) {
      case 'alu': {
        const { dst, op } = insn;
        if (set[base | dst] === 0) return frame;
        if (op === 'mov' || op === 'movsx8' || op === 'movsx16' || op === 'movsx32') {
          // dst = f(src): dst's old value did not matter, src's does.
          this.del(base | dst);
          if (insn.src.kind === 'reg') this.add(base | insn.src.reg);
        } else if (insn.src.kind === 'reg') {
          this.add(base | insn.src.reg); // dst = dst op src: both matter
        }
        return frame;
      }
      case 'endian':
        return frame; // dst = f(dst)
      case 'lddw':
        this.del(base | insn.dst); // a constant or a pointer
        return frame;
      case 'load':
        if (set[base | insn.dst] !== 0) {
          this.del(base | insn.dst);
          if (extra > 0) this.add(extra - 1); // filled from a spilled register: the spill matters
        }
        return frame;
      case 'store':
        if (extra > 0 && this.set[extra - 1]) {
          this.del(extra - 1);
          if (insn.src.kind === 'reg') this.add(base | insn.src.reg);
        }
        return frame;
      case 'atomic':
        if (insn.op === 'cmpxchg') this.del(base);
        else if (insn.fetch) this.del(base | insn.src);
        return frame;
      case 'jump': {
        const src = insn.src.kind === 'reg' ? insn.src.reg : -1;
        const group = extra < 0 ? this.groups[-extra - 1] : undefined;
        let any = set[base | insn.dst] !== 0 || (src >= 0 && set[base | src] !== 0);
        if (group && !any) any = group.some((loc) => this.set[loc] !== 0);
        if (!any) return frame;
        // A refined value depends on both operands before the jump, and on every linked copy.
        if (src >= 0) {
          this.add(base | insn.dst);
          this.add(base | src);
        }
        if (group) for (const loc of group) this.add(loc);
        return frame;
      }
      case 'ja':
        return frame;
      case 'call':
        if (insn.target === 'local' && extra !== SUMMARIZED_CALL) {
          // Backwards into the caller: the callee's arguments are the caller's r1-r5.
          if (frame === 0) throw new PrecisionBug(`backtracking a call at ${pc} from the entry frame`);
          const callerBase = (frame - 1) << LOC_FRAME_SHIFT;
          for (let r = 1; r <= 5; r++) if (set[base | r] !== 0) this.add(callerBase | r);
          this.clearFrame(frame);
          return frame - 1;
        }
        for (let r = 0; r <= 5; r++) this.del(base | r); // r0 comes from the helper
        return frame;
      case 'callx':
        for (let r = 0; r <= 5; r++) this.del(base | r);
        return frame;
      case 'exit': {
        // A return into this frame: backwards into the callee, whose r0 it received.
        const r0 = set[base] !== 0;
        for (let r = 0; r <= 5; r++) this.del(base | r);
        this.clearFrame(frame + 1);
        if (r0) this.add((frame + 1) << LOC_FRAME_SHIFT);
        return frame + 1;
      }
    }
  }
}
