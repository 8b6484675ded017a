/**
 * The driver: depth-first exploration of every path through the program, one abstract state at a
 * time, as the Linux verifier does. At prune points a state is recorded (a checkpoint); a later state
 * that an already fully verified checkpoint covers needs no further exploration, and a state equal
 * to a checkpoint still open on the current path is a loop that makes no progress: rejected.
 * See README.md for why this terminates and why pruning cannot accept an infinite loop.
 */
import type { MemoryRegion } from '../abi/context.js';
import { MAX_CALL_DEPTH, MAX_STACK_SIZE_BYTES, MAX_VERIFIER_PROCESSED_INSNS } from '../abi/limits.js';
import type { MapDefinition } from '../abi/maps.js';
import type { ProgramType } from '../abi/program-types.js';
import { formatInstruction, type Instruction, type Program, type Register } from '../isa/index.js';
import { checkAlu, checkEndian, checkLddw, operandValue } from './alu.js';
import { type Analysis, clobberCallerSaved, Rejection, readReg, reject, writeReg } from './analysis.js';
import { checkJump } from './branch.js';
import { callDepth, checkCallx, checkExit, checkHelperCall, enterFunction, SUMMARY_ROOT_CALLSITE } from './calls.js';
import { analyzeControlFlow, type ControlFlow } from './cfg.js';
import { SCALAR_UNKNOWN, type Scalar, scalarFromRange, scalarJoin } from './domains/scalar.js';
import { VerifierError } from './errors.js';
import { analyzeLiveness, LIVE, type Liveness, MASK_SIZE, MASK_SLOTS, PRECISE } from './liveness.js';
import { VerifierLog } from './log.js';
import { checkMemoryAccess } from './memory.js';
import {
  isMarked,
  LOC_FRAME_SHIFT,
  LOC_SLOT,
  MARK_WORDS_PER_FRAME,
  markedLocs,
  NO_EXTRA,
  PrecisionTracker,
  regLoc,
  SUMMARIZED_CALL,
  slotLoc,
} from './precision.js';
import {
  type Checkpoint,
  clearSingularIds,
  cloneState,
  constantLocs,
  constantsHash,
  DATA_LENGTH_ID,
  FIRST_DYNAMIC_ID,
  fingerprint,
  formatState,
  joinState,
  lastShapeKey,
  newFrame,
  preciseNumbersCover,
  type RegValue,
  SMALL_KEY,
  scalarValue,
  stateCovers,
  UNKNOWN_SCALAR,
  type VerifierState,
  ZERO_OFFSET,
} from './state.js';

export interface VerifierOptions {
  readonly type: ProgramType;
  readonly maps?: readonly MapDefinition[];
  readonly logLevel?: 0 | 1 | 2;
  readonly lineInfo?: (pc: number) => string | undefined;
  readonly maxProcessedInsns?: number;
  /** Join paths that differ only in precise numbers (default true; see README.md, "Joins"). */
  readonly joins?: boolean;
  /** Verify local calls through function summaries where possible (default true; README.md, "Function summaries"). */
  readonly summaries?: boolean;
}

export interface VerificationStats {
  /** Instructions executed abstractly, over all paths (the kernel's "processed N insns"). */
  readonly processedInsns: number;
  /** Checkpoints recorded. */
  readonly states: number;
  /** Most checkpoints held at once. */
  readonly peakStates: number;
  readonly durationMs: number;
  /** Largest combined stack use of any chain of calls. */
  readonly maxStackDepthBytes: number;
  /** States widened by a join (-1: joins were off). */
  readonly joins: number;
  /** History entries walked backwards by precision tracking (linear in the processed instructions). */
  readonly backtrackSteps: number;
  /** Local calls verified through a function summary (-1: summaries were off). */
  readonly summaries: number;
}

export interface VerificationResult {
  readonly ok: true;
  readonly stats: VerificationStats;
  readonly log: string;
}

/**
 * A finished checkpoint that keeps missing is dropped (the kernel's heuristic, with a budget of 32
 * misses per hit instead of 3: unrolled loops with branches need their older checkpoints).
 */
const shouldEvict = (cp: Checkpoint) => cp.misses > (cp.hits + 1) * 32;
/**
 * Checkpoints kept per instruction. Beyond it no new one is recorded there: pruning gets weaker and a
 * loop making no progress is then caught by the processed-instruction limit instead, never accepted.
 * A loop unrolled N times keeps N open checkpoints at its head, so this must exceed the longest loop
 * the instruction limit lets through.
 */
const MAX_CHECKPOINTS_PER_INSN = 1 << 16;
/** History entries (two per instruction) a path gathers before an unregistered checkpoint cuts it. */
const MIN_UNREGISTERED_HISTORY = 2 * 8;
/** Finished checkpoints of the same iteration tried as join partners at a prune point. */
const MAX_JOIN_CANDIDATES = 4;
const NO_CHECKPOINTS: Checkpoint[] = [];
const NO_LOCS: number[] = [];

/** Summaries are kept per callee and call depth (a callee's own calls must fit under the depth limit). */
const summaryKey = (entryPc: number, depth: number) => entryPc * (MAX_CALL_DEPTH + 1) + depth;

/**
 * Entry pcs of the functions on a cycle of the static call graph. A summary's exploration does not
 * see the callers above it, so it could not detect recursion back into them: such callees are
 * always explored inline. A callee on no cycle can never call a function above it.
 */
function recursiveFunctions(program: Program, cfg: ControlFlow): number[] {
  const { functions, indexAt } = cfg.layout;
  const callees = functions.map((fn) => {
    const out = new Set<number>();
    for (let pc = fn.entryPc; pc < fn.endPc; pc++) {
      const insn = indexAt[pc] >= 0 ? program[indexAt[pc]] : undefined;
      if (insn?.kind === 'call' && insn.target === 'local') out.add(pc + insn.imm + 1);
    }
    return out;
  });
  const byEntry = new Map(functions.map((fn, k) => [fn.entryPc, k]));
  const recursive: number[] = [];
  functions.forEach((fn, k) => {
    const seen = new Set<number>();
    const work = [...callees[k]];
    while (work.length > 0) {
      const entry = work.pop() as number;
      if (entry === fn.entryPc) {
        recursive.push(entry);
        return;
      }
      if (seen.has(entry)) continue;
      seen.add(entry);
      const j = byEntry.get(entry);
      if (j !== undefined) work.push(...callees[j]);
    }
  });
  return recursive;
}
/**
 * Finished checkpoints of one shape compared with a state, newest first. Older ones are kept (they
 * count towards the per-instruction cap) but no longer tried: comparing with thousands of stale
 * states per visit cost more than the paths they could still prune.
 */
const MAX_PRUNE_CANDIDATES = 64;

/** Sets of precise locations indexed per shape; checkpoints with other sets are scanned. */
const MAX_INDEXED_LOC_SETS = 16;

/**
 * The finished checkpoints of one instruction and one shape (the types and pointer offsets covering
 * requires to be equal). Those whose precise numbers are all constants are found by hashing the
 * constants (a precise constant covers only itself); the others are compared one by one.
 */
interface FinishedShape {
  /** Not indexed: compared newest first (the newest MAX_PRUNE_CANDIDATES), evicted when they keep missing. */
  readonly scanned: Checkpoint[];
  /**
   * Checkpoints with precise constants: by the set of locations holding them (key: `locsKey`; a set
   * whose key another set already has is scanned instead), then by `constantsHash` of those constants.
   */
  readonly indexed: Map<number, { readonly locs: readonly number[]; readonly byHash: Map<number, Checkpoint[]> }>;
  /** The newest finished checkpoints, scanned or indexed: join partners. */
  readonly recent: Checkpoint[];
}

/** Join partners kept per shape (the newest). */
const RECENT_PER_SHAPE = 64;

/**
 * A frame's static mask combined with the precision marks of one finished checkpoint's frame: what
 * pruning compares. Interned per static mask and marks, since most checkpoints of an instruction
 * have the same marks (one mask and one list instead of two allocations per finished checkpoint).
 */
interface PruneMask {
  /** The frame's marks (MARK_WORDS_PER_FRAME words, see precision.ts). */
  readonly words: readonly number[];
  readonly mask: Uint8Array;
  /** The mask as the only frame (single-frame checkpoints share this array). */
  readonly single: readonly Uint8Array[];
  /** Mask indexes of the live precise locations. */
  readonly locs: readonly number[];
}

const mix = (h: number, x: number) => Math.imul(h ^ x, 0x9e3779b1) >>> 0;
/** A hash of a list of locations (the key of an indexed set). */
function locsKey(locs: readonly number[]): number {
  let h = locs.length;
  for (const loc of locs) h = mix(h, loc);
  return h & SMALL_KEY;
}
const sameLocs = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The checkpoints of one instruction: open ones by fingerprint (loop detection), finished ones by shape. */
interface InsnCheckpoints {
  readonly open: Map<number, Checkpoint[]>;
  readonly finished: Map<number, FinishedShape>;
  openCount: number;
  finishedCount: number;
}

export class Verifier implements Analysis {
  readonly type: ProgramType;
  readonly maps: readonly MapDefinition[];
  readonly mapValueRegions: readonly MemoryRegion[];
  private cfg: ControlFlow | undefined;
  private liveness: Liveness | undefined;
  private readonly log: VerifierLog;
  private readonly limit: number;
  /** By pc. */
  private checkpoints: (InsnCheckpoints | undefined)[] = [];
  private pending: VerifierState[] = [];
  private readonly stackDepth = new Map<number, number>();
  private readonly callees = new Map<number, Set<number>>();
  private nextId = FIRST_DYNAMIC_ID;
  private processed = 0;
  private stateCount = 0;
  /** Joins done; -1 when joins are disabled. */
  private joins: number;
  private liveStates = 0;
  private peakStates = 0;
  /** The path being explored (for the error report). */
  private current: VerifierState | undefined;
  private readonly precision: PrecisionTracker;
  /** What the current instruction touched that backtracking needs (history extra, precision.ts). */
  private insnExtra = NO_EXTRA;
  /** Calls verified through a summary; -1 when summaries are disabled. */
  private summarized: number;
  /** Per callee entry pc and call depth (`summaryKey`): the hull of r0 at every exit its summary explorations reached. */
  private readonly summaryResults = new Map<number, Scalar>();
  /** Callees never summarized: on a cycle of the call graph, or a summary exploration of theirs failed. */
  private readonly noSummary = new Set<number>();
  /** Static masks without their precision bits (`liveOnly`), by mask. */
  private readonly liveOnlyMasks = new Map<Uint8Array, Uint8Array>();
  /** Interned prune masks (`pruneMask`): per static mask, by a hash of the frame's marks. */
  private readonly pruneMaskCache = new Map<Uint8Array, Map<number, PruneMask[]>>();
  /** `masksFor` of single-frame states, by pc (the same array every time). */
  private singleFrameMasks: (Uint8Array[] | undefined)[] = [];

  constructor(
    private readonly program: Program,
    options: VerifierOptions,
  ) {
    this.type = options.type;
    this.maps = options.maps ?? [];
    this.mapValueRegions = this.maps.map((m) => ({
      name: m.readonly ? 'rdonly_map_value' : 'map_value',
      sizeBytes: m.valueSizeBytes,
      writable: !m.readonly,
      ...(m.readonly && m.initialValue ? { contents: m.initialValue } : {}),
    }));
    const format = (pc: number) => {
      const index = this.cfg?.layout.indexAt[pc] ?? -1;
      return index >= 0 ? formatInstruction(program[index]) : '';
    };
    this.log = new VerifierLog(options.logLevel ?? 0, format, options.lineInfo);
    this.limit = options.maxProcessedInsns ?? MAX_VERIFIER_PROCESSED_INSNS;
    this.lineInfo = options.lineInfo;
    this.joins = options.joins === false ? -1 : 0;
    this.summarized = options.summaries === false ? -1 : 0;
    this.precision = new PrecisionTracker((pc) => program[(this.cfg as ControlFlow).layout.indexAt[pc]]);
  }

  markPrecise(s: VerifierState, regs: readonly number[]): void {
    const frame = s.frames.length - 1;
    this.precision.markPrecise(
      s,
      regs.map((r) => regLoc(frame, r)),
    );
  }

  markPreciseLocs(s: VerifierState, locs: readonly number[]): void {
    this.precision.markPrecise(s, locs);
  }

  noteStackSlot(frame: number, slot: number): void {
    this.insnExtra = 1 + slotLoc(frame, slot);
  }

  noteLinked(locs: number[]): void {
    this.insnExtra = this.precision.linkedGroup(locs);
  }

  private readonly lineInfo?: (pc: number) => string | undefined;

  newId(): number {
    return this.nextId++;
  }

  recordStackDepth(entryPc: number, bytes: number): void {
    if (bytes > (this.stackDepth.get(entryPc) ?? 0)) this.stackDepth.set(entryPc, bytes);
  }

  recordCall(callerEntryPc: number, calleeEntryPc: number): void {
    let set = this.callees.get(callerEntryPc);
    if (!set) this.callees.set(callerEntryPc, (set = new Set()));
    set.add(calleeEntryPc);
  }

  /** Verify; returns statistics and log, or throws `VerifierError`. */
  run(): VerificationResult {
    const started = performance.now();
    try {
      const cfg = analyzeControlFlow(this.program);
      this.cfg = cfg;
      this.checkpoints = new Array(cfg.layout.slotCount);
      this.singleFrameMasks = new Array(cfg.layout.slotCount);
      this.liveness = analyzeLiveness(this.program, cfg.layout, this.type);
      for (const entry of recursiveFunctions(this.program, cfg)) this.noSummary.add(entry);
      this.pending.push(this.initialState());
      while (this.pending.length > 0) {
        const s = this.pending.pop() as VerifierState;
        this.current = s;
        this.log.newPath(() => `from ${s.prevPc} to ${s.pc}: ${formatState(s).join(' | ')}`);
        this.explorePath(cfg, s);
      }
      this.current = undefined;
      const maxStackDepthBytes = this.checkCombinedStack();
      const stats: VerificationStats = {
        processedInsns: this.processed,
        states: this.stateCount,
        peakStates: this.peakStates,
        durationMs: performance.now() - started,
        maxStackDepthBytes,
        joins: this.joins,
        backtrackSteps: this.precision.steps,
        summaries: this.summarized,
      };
      const log = this.log.finish([this.summary()], false);
      return { ok: true, stats, log };
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      throw this.error(e, e.pc ?? this.current?.pc ?? 0);
    }
  }

  private summary(): string {
    const joins = this.joins > 0 ? ` joins ${this.joins}` : '';
    const summaries = this.summarized > 0 ? ` summarized_calls ${this.summarized}` : '';
    return `processed ${this.processed} insns (limit ${this.limit}) total_states ${this.stateCount} peak_states ${this.peakStates}${joins}${summaries}`;
  }

  private error(e: Rejection, pc: number): VerifierError {
    const layout = this.cfg?.layout;
    const index = layout && pc >= 0 && pc < layout.slotCount ? layout.indexAt[pc] : -1;
    const insn: Instruction | undefined = index >= 0 ? this.program[index] : undefined;
    const state = e.pc === undefined && this.current ? formatState(this.current) : [];
    const instruction = insn ? formatInstruction(insn) : '';
    const where = this.log.lastPc === pc ? [] : [`${pc}: ${instruction}`];
    const log = this.log.finish([...where, e.reason, ...state.map((l) => `  ${l}`), this.summary()], true);
    return new VerifierError({
      pc,
      instruction,
      reason: e.reason,
      state,
      lineInfo: this.lineInfo?.(pc),
      log,
      processedInsns: Math.min(this.processed, this.limit + 1),
      states: this.stateCount,
      joins: this.joins,
      summaries: this.summarized,
    });
  }

  private initialState(): VerifierState {
    const frame = newFrame(0, -1, 0);
    const type = this.type;
    type.entryRegisters.forEach((kind, i) => {
      const r = (i + 1) as Register;
      let v: RegValue;
      switch (kind) {
        case 'ctx':
          if (!type.context) throw new Error(`program type ${type.name}: ctx entry register without a context layout`);
          v = { kind: 'ctx', off: 0 };
          break;
        case 'data':
          v = { kind: 'data', off: 0, varOff: ZERO_OFFSET, id: this.newId(), range: 0 };
          break;
        case 'data-end':
          v = { kind: 'data_end' };
          break;
        case 'data-length':
          v = scalarValue(scalarFromRange(0n, BigInt(type.data?.maxBytes ?? 0)), DATA_LENGTH_ID);
          break;
        case 'scalar':
          v = UNKNOWN_SCALAR;
          break;
      }
      frame.regs[r] = v;
    });
    return { frames: [frame], pc: 0, prevPc: -1, parent: undefined, minDataLen: 0, history: [] };
  }

  /** Follow one path until it exits, is pruned or cannot continue; branches push their other side. */
  private explorePath(cfg: ControlFlow, s: VerifierState): void {
    const { layout, prunePoints } = cfg;
    while (true) {
      if (++this.processed > this.limit) reject(`BPF program is too large. Processed ${this.processed} insn`);
      if (prunePoints[s.pc] && this.visitPrunePoint(s)) {
        this.log.add(1, `${s.pc}: safe`);
        this.finishPath(s);
        return;
      }
      const insn = this.program[layout.indexAt[s.pc]];
      this.log.instruction(s.pc);
      this.insnExtra = NO_EXTRA;
      const next = this.step(s, insn);
      if (next === undefined) {
        this.finishPath(s);
        return;
      }
      s.history.push(s.pc, this.insnExtra);
      s.prevPc = s.pc;
      s.pc = next;
      if (this.log.level >= 2) this.log.add(2, `  ${formatState(s).join(' | ')}`);
    }
  }

  /** Execute one instruction on `s`; returns the next pc, or undefined when the path ends. */
  private step(s: VerifierState, insn: Instruction): number | undefined {
    const pc = s.pc;
    const next = pc + (insn.kind === 'lddw' ? 2 : 1);
    switch (insn.kind) {
      case 'alu':
        checkAlu(this, s, insn);
        return next;
      case 'endian':
        checkEndian(s, insn);
        return next;
      case 'lddw':
        checkLddw(this, s, insn);
        return next;
      case 'load': {
        const base = readReg(s, insn.src);
        const value = checkMemoryAccess(this, s, insn.src, base, insn.offset, insn.size, 'read', undefined, insn.signed);
        writeReg(s, insn.dst, value);
        return next;
      }
      case 'store': {
        const base = readReg(s, insn.dst);
        const value = operandValue(s, insn.src);
        const stored = { reg: insn.src.kind === 'reg' ? insn.src.reg : undefined, value };
        checkMemoryAccess(this, s, insn.dst, base, insn.offset, insn.size, 'write', stored, false);
        return next;
      }
      case 'atomic': {
        const base = readReg(s, insn.dst);
        const value = readReg(s, insn.src);
        if (value.kind !== 'scalar') reject(`R${insn.src} leaks addr into mem`);
        if (insn.op === 'cmpxchg' && readReg(s, 0).kind !== 'scalar') reject('R0 leaks addr into mem');
        const old = checkMemoryAccess(this, s, insn.dst, base, insn.offset, insn.size, 'atomic', { reg: insn.src, value }, false);
        if (insn.op === 'cmpxchg') writeReg(s, 0, old);
        else if (insn.fetch) writeReg(s, insn.src, old);
        return next;
      }
      case 'ja':
        return pc + insn.offset + 1;
      case 'jump': {
        const target = pc + insn.offset + 1;
        const { taken, fallthrough } = checkJump(this, s, insn, this.type.data?.maxBytes ?? 0);
        if (taken && fallthrough) {
          this.push(taken, pc, target);
          return this.continueWith(s, fallthrough, next);
        }
        if (taken) return this.continueWith(s, taken, target);
        if (fallthrough) return this.continueWith(s, fallthrough, next);
        return undefined; // neither side is possible: this path cannot happen
      }
      case 'call':
        if (insn.target === 'helper') {
          checkHelperCall(this, s, insn.imm);
          return next;
        }
        if (insn.target === 'kfunc') return reject('kfunc calls are not supported');
        if (this.summarize(s, pc, pc + insn.imm + 1)) return next;
        enterFunction(this, s, pc, pc + insn.imm + 1);
        return pc + insn.imm + 1;
      case 'callx':
        checkCallx(this, s, insn.reg);
        return next;
      case 'exit':
        if (s.frames.length === 1 && s.frames[0].callsite <= SUMMARY_ROOT_CALLSITE) return this.summaryExit(s);
        return checkExit(this, s);
    }
  }

  /**
   * A local call from `pc` to `target`, verified through a function summary (README.md, "Function
   * summaries"): the callee is explored on its own, from a state holding only its frame with its
   * number arguments widened to any number, and the caller continues as after a helper call, with
   * r0 the hull of every value the callee may return. A later call whose arguments that exploration
   * covers is pruned at the callee's entry at once. False (the call is then explored inline) when a
   * summary cannot stand for the call: an argument points into a stack, the callee is recursive, or
   * its exploration failed (its checks may need what the widening forgot).
   */
  private summarize(s: VerifierState, pc: number, target: number): boolean {
    this.insnExtra = NO_EXTRA;
    if (this.summarized < 0 || this.noSummary.has(target)) return false;
    const caller = s.frames[s.frames.length - 1];
    for (let r = 1; r <= 5; r++) if (caller.regs[r].kind === 'stack') return false;
    const depth = callDepth(s);
    if (depth >= MAX_CALL_DEPTH) return false; // explored inline, which rejects it
    const frame = newFrame(0, SUMMARY_ROOT_CALLSITE - depth, target);
    for (let r = 1; r <= 5; r++) {
      const v = caller.regs[r];
      frame.regs[r] = v.kind === 'scalar' ? UNKNOWN_SCALAR : v;
    }
    const root: VerifierState = {
      frames: [frame],
      pc: target,
      prevPc: pc,
      parent: undefined,
      minDataLen: s.minDataLen,
      history: [],
    };
    const outer = this.pending;
    const current = this.current;
    this.pending = [root];
    try {
      while (this.pending.length > 0) {
        const p = this.pending.pop() as VerifierState;
        this.current = p;
        this.log.newPath(() => `summary of ${target} from ${p.prevPc} to ${p.pc}: ${formatState(p).join(' | ')}`);
        this.explorePath(this.cfg as ControlFlow, p);
      }
    } catch (e) {
      // Only a failed check means "no summary": the instruction limit and verifier bugs stand.
      if (!(e instanceof Rejection) || this.processed > this.limit) throw e;
      this.log.add(1, `${pc}: no summary of ${target}: ${e.reason}`);
      this.noSummary.add(target);
      return false;
    } finally {
      this.pending = outer;
      this.current = current;
    }
    const r0 = this.summaryResults.get(summaryKey(target, depth));
    if (!r0) {
      this.noSummary.add(target);
      return false;
    }
    this.recordCall(caller.entryPc, target);
    clobberCallerSaved(s);
    caller.regs[0] = scalarValue(r0);
    this.insnExtra = SUMMARIZED_CALL;
    this.summarized++;
    return true;
  }

  /**
   * `exit` of a summary's root function: r0 joins the summary's result. It is marked precise, so
   * that a path pruned in this exploration (or a later one of the same callee) returns a value
   * within what the path that proved it returned: the hull then holds every value the callee returns.
   */
  private summaryExit(s: VerifierState): undefined {
    const r0 = readReg(s, 0);
    if (r0.kind !== 'scalar') reject('a summarized function returns a pointer');
    // Static liveness: whether r0 after some call of this function may decide something. If not,
    // its value never matters: the summary returns any number, and nothing needs marking.
    const relevant = ((this.liveness as Liveness).at(s.pc)[0] & PRECISE) !== 0;
    if (relevant) this.markPrecise(s, [0]);
    const value = relevant ? r0.value : SCALAR_UNKNOWN;
    const root = s.frames[0];
    const key = summaryKey(root.entryPc, SUMMARY_ROOT_CALLSITE - root.callsite);
    const known = this.summaryResults.get(key);
    this.summaryResults.set(key, known ? scalarJoin(known, value) : value);
    return undefined;
  }

  /** Continue the current path in `successor` (which may be `s` itself or a refined copy). */
  private continueWith(s: VerifierState, successor: VerifierState, pc: number): number {
    if (successor !== s) {
      s.frames = successor.frames;
      s.parent = successor.parent;
      s.minDataLen = successor.minDataLen;
      s.relation = successor.relation;
    }
    return pc;
  }

  /** Queue the other side of a branch; it shares the current path's latest checkpoint. */
  private push(s: VerifierState, fromPc: number, toPc: number): void {
    s.history = s.history.slice();
    s.history.push(fromPc, this.insnExtra);
    s.prevPc = fromPc;
    s.pc = toPc;
    if (s.parent) s.parent.branches++;
    this.pending.push(s);
  }

  /** A path ended safely: its checkpoints with no other open path are now proven safe. */
  private finishPath(s: VerifierState): void {
    let cp = s.parent;
    while (cp) {
      cp.branches--;
      if (cp.branches > 0) break;
      this.markFinished(cp);
      cp = cp.parent;
    }
  }

  /** Every path from `cp` is proven safe: it may now prune, and no longer stands for a loop in progress. */
  private markFinished(cp: Checkpoint): void {
    if (cp.unregistered) return; // never prunes
    const at = this.checkpoints[cp.pc] as InsnCheckpoints;
    const same = at.open.get(cp.fingerprint) as Checkpoint[];
    if (same.length === 1) at.open.delete(cp.fingerprint);
    else same.splice(same.lastIndexOf(cp), 1);
    at.openCount--;
    at.finishedCount++;
    // Its precision marks are final now (only checkpoints on an open path get marks).
    const masks = this.masksFor(cp.state);
    const precise = cp.precise;
    let locs: readonly number[];
    if (masks.length === 1) {
      const pm = this.pruneMask(masks[0], precise, 0);
      cp.pruneMasks = pm.single as Uint8Array[];
      locs = pm.locs;
    } else {
      const pruneMasks = new Array<Uint8Array>(masks.length);
      let all: number[] | undefined;
      for (let f = 0; f < masks.length; f++) {
        const pm = this.pruneMask(masks[f], precise, f);
        pruneMasks[f] = pm.mask;
        if (pm.locs.length === 0) continue;
        all ??= [];
        for (const i of pm.locs) all.push(f * MASK_SIZE + i);
      }
      cp.pruneMasks = pruneMasks;
      locs = all ?? NO_LOCS;
    }
    cp.preciseLocs = locs as number[];
    let bucket = at.finished.get(cp.shape);
    if (!bucket) at.finished.set(cp.shape, (bucket = { scanned: [], indexed: new Map(), recent: [] }));
    bucket.recent.push(cp);
    if (bucket.recent.length >= 2 * RECENT_PER_SHAPE) bucket.recent.splice(0, RECENT_PER_SHAPE);
    const constant = locs.length > 0 ? constantLocs(cp.state, locs) : NO_LOCS;
    const hash = constant.length > 0 ? constantsHash(cp.state, constant) : undefined;
    if (hash !== undefined) {
      const key = locsKey(constant);
      let set = bucket.indexed.get(key);
      if (!set && bucket.indexed.size < MAX_INDEXED_LOC_SETS)
        bucket.indexed.set(key, (set = { locs: constant, byHash: new Map() }));
      if (set && sameLocs(set.locs, constant)) {
        const same = set.byHash.get(hash);
        if (same) same.push(cp);
        else set.byHash.set(hash, [cp]);
        return;
      }
    }
    bucket.scanned.push(cp);
  }

  /**
   * At a prune point: true if an already proven checkpoint covers `s` (stop this path). Rejects if a
   * checkpoint still open on this path equals `s`. Otherwise records `s` as a new checkpoint.
   */
  private visitPrunePoint(s: VerifierState): boolean {
    const pc = s.pc;
    let at = this.checkpoints[pc];
    if (!at) this.checkpoints[pc] = at = { open: new Map(), finished: new Map(), openCount: 0, finishedCount: 0 };
    clearSingularIds(s);
    const masks = this.masksFor(s);
    let fp = fingerprint(s, masks);
    // Open checkpoints are ancestors of this state: an equal one means the loop made no progress.
    for (const cp of at.open.get(fp) ?? []) {
      if (stateCovers(cp.state, s, true, masks)) reject(`back-edge from insn ${s.prevPc} to ${pc} forms an infinite loop`);
    }
    // Newest first: the latest proven state is the likeliest to match (e.g. the other side of a branch).
    const shape = lastShapeKey; // computed by `fingerprint`
    const bucket = at.finished.get(shape);
    const finished = bucket?.scanned ?? NO_CHECKPOINTS;
    let evicted = 0;
    let coveredBy: Checkpoint | undefined;
    if (bucket && bucket.indexed.size > 0) coveredBy = this.findIndexed(bucket, s, masks);
    const oldest = coveredBy ? finished.length : Math.max(0, finished.length - MAX_PRUNE_CANDIDATES);
    for (let i = finished.length - 1; i >= oldest; i--) {
      const cp = finished[i];
      if (preciseNumbersCover(cp.state, s, cp.preciseLocs as number[]) && stateCovers(cp.state, s, false, cp.pruneMasks, masks)) {
        cp.hits++;
        coveredBy = cp;
        break;
      }
      cp.misses++;
      if (shouldEvict(cp)) evicted++;
    }
    if (evicted > 0) {
      // Drop the evicted ones in one pass (splicing each would be quadratic in long lists).
      // Only the window just scanned can hold new evictions.
      let w = oldest;
      for (let i = oldest; i < finished.length; i++) if (!shouldEvict(finished[i])) finished[w++] = finished[i];
      this.liveStates -= finished.length - w;
      at.finishedCount -= finished.length - w;
      finished.length = w;
    }
    if (coveredBy) {
      // This path relies on what the old one proved, which relied on its precise numbers: the
      // numbers here were within them, so they must stay so for whoever prunes on this path.
      const marks = coveredBy.precise;
      if (marks) this.precision.markPrecise(s, markedLocs(marks));
      return true;
    }
    // Beyond the cap the state is not recorded for pruning or loop detection, but the path's history
    // is still cut here (an unregistered checkpoint): backtracking walks the history since the last
    // checkpoint, and a long loop past the cap would otherwise walk ever longer ones (quadratic).
    const unregistered = at.openCount + at.finishedCount >= MAX_CHECKPOINTS_PER_INSN;
    // Past the cap, a history a few instructions long is not worth a checkpoint yet: each precision
    // walk then covers at most that many more entries (still linear), for far fewer state copies.
    if (unregistered && s.history.length < MIN_UNREGISTERED_HISTORY) return false;
    const anchor = s.parent?.loopAnchor ?? null;
    // Not at loop heads: the hull of two successors of an iteration can contain its start (a binary
    // search moving lo or hi), which would look like a loop making no progress.
    const cfg = this.cfg as ControlFlow;
    if (!unregistered && this.joins >= 0 && bucket && !cfg.loopHeads[pc] && this.joinState(bucket.recent, s, anchor, masks))
      fp = fingerprint(s, masks);
    const cp: Checkpoint = {
      pc,
      state: cloneState(s),
      fingerprint: fp,
      parent: s.parent,
      branches: 1,
      hits: 0,
      misses: 0,
      history: s.history,
      anchor,
      loopAnchor: null,
      shape,
      // Declared up front: fields added later would give each checkpoint a separate property store.
      precise: undefined,
      pruneMasks: undefined,
      preciseLocs: undefined,
      unregistered: undefined,
    };
    cp.loopAnchor = cfg.loopHeads[pc] ? cp : anchor;
    s.history = [];
    s.parent = cp;
    if (unregistered) {
      cp.unregistered = true;
      return false;
    }
    const same = at.open.get(fp);
    if (same) same.push(cp);
    else at.open.set(fp, [cp]);
    at.openCount++;
    this.stateCount++;
    this.liveStates++;
    if (this.liveStates > this.peakStates) this.peakStates = this.liveStates;
    return false;
  }

  /** An indexed finished checkpoint covering `s` (its precise constants are those of `s`), newest first. */
  private findIndexed(bucket: FinishedShape, s: VerifierState, masks: readonly Uint8Array[]): Checkpoint | undefined {
    for (const set of bucket.indexed.values()) {
      const hash = constantsHash(s, set.locs);
      if (hash === undefined) continue;
      const same = set.byHash.get(hash);
      if (!same) continue;
      for (let i = same.length - 1; i >= 0; i--) {
        const cp = same[i];
        if (
          preciseNumbersCover(cp.state, s, cp.preciseLocs as number[]) &&
          stateCovers(cp.state, s, false, cp.pruneMasks, masks)
        ) {
          cp.hits++;
          return cp;
        }
      }
    }
    return undefined;
  }

  /**
   * Join `s` with a recent finished checkpoint of the same iteration that differs from it only in
   * precise numbers (state.ts `joinState`): `s` becomes their hull. True if it did.
   */
  private joinState(
    finished: readonly Checkpoint[],
    s: VerifierState,
    anchor: Checkpoint | null,
    masks: readonly Uint8Array[],
  ): boolean {
    let tries = 0;
    for (let i = finished.length - 1; i >= 0 && tries < MAX_JOIN_CANDIDATES; i--) {
      const cp = finished[i];
      if (cp.anchor !== anchor) continue;
      tries++;
      if (joinState(cp.state, s, cp.pruneMasks as Uint8Array[], masks)) {
        this.joins++;
        return true;
      }
    }
    return false;
  }

  /** Frame `f`'s static mask `m` combined with the marks `precise` of a finished checkpoint (interned). */
  private pruneMask(m: Uint8Array, precise: readonly number[] | undefined, f: number): PruneMask {
    const first = f * MARK_WORDS_PER_FRAME;
    let h = 0;
    if (precise) for (let w = 0; w < MARK_WORDS_PER_FRAME; w++) h = mix(h, precise[first + w]);
    let byHash = this.pruneMaskCache.get(m);
    if (!byHash) this.pruneMaskCache.set(m, (byHash = new Map()));
    let list = byHash.get(h);
    if (list) {
      for (const pm of list) {
        let same = true;
        for (let w = 0; w < MARK_WORDS_PER_FRAME && same; w++) same = pm.words[w] === (precise ? precise[first + w] : 0);
        if (same) return pm;
      }
    } else byHash.set(h, (list = []));
    const words = new Array<number>(MARK_WORDS_PER_FRAME).fill(0);
    let marked = false;
    if (precise)
      for (let w = 0; w < MARK_WORDS_PER_FRAME; w++) {
        words[w] = precise[first + w];
        if (words[w] !== 0) marked = true;
      }
    let mask: Uint8Array;
    const locs: number[] = [];
    if (!marked) {
      mask = this.liveOnly(m); // liveness alone
    } else {
      mask = new Uint8Array(m.length);
      const base = f << LOC_FRAME_SHIFT;
      for (let i = 0; i < m.length; i++) {
        const loc = base + (i < MASK_SLOTS ? i : LOC_SLOT + i - MASK_SLOTS);
        mask[i] = (m[i] & LIVE) | (isMarked(precise as number[], loc) ? PRECISE : 0);
        if (mask[i] === (LIVE | PRECISE)) locs.push(i);
      }
    }
    const pm: PruneMask = { words, mask, single: [mask], locs: locs.length > 0 ? locs : NO_LOCS };
    list.push(pm);
    return pm;
  }

  /** `mask` with its static precision bits cleared (what pruning uses where nothing was marked precise), cached. */
  private liveOnly(mask: Uint8Array): Uint8Array {
    let m = this.liveOnlyMasks.get(mask);
    if (!m) {
      m = mask.map((bits) => bits & LIVE);
      this.liveOnlyMasks.set(mask, m);
    }
    return m;
  }

  /** Liveness and precision masks of each frame of `s` (innermost frame at `s.pc`, callers at their return sites). */
  private masksFor(s: VerifierState): Uint8Array[] {
    const liveness = this.liveness as Liveness;
    const n = s.frames.length;
    if (n === 1) {
      let single = this.singleFrameMasks[s.pc];
      if (!single) this.singleFrameMasks[s.pc] = single = [liveness.at(s.pc)];
      return single;
    }
    const masks = new Array<Uint8Array>(n);
    masks[n - 1] = liveness.at(s.pc);
    for (let f = 0; f < n - 1; f++) masks[f] = liveness.callerAt(s.frames[f + 1].callsite);
    return masks;
  }

  /** Largest stack use of any explored chain of calls; rejects above the combined limit. */
  private checkCombinedStack(): number {
    const depthFrom = (entry: number, chain: number[]): number => {
      const own = Math.ceil((this.stackDepth.get(entry) ?? 0) / 8) * 8;
      let deepest = 0;
      for (const callee of this.callees.get(entry) ?? []) {
        if (!chain.includes(callee)) deepest = Math.max(deepest, depthFrom(callee, [...chain, callee]));
      }
      const total = own + deepest;
      if (total > MAX_STACK_SIZE_BYTES)
        throw new Rejection(`combined stack size of ${chain.length} calls is ${total}. Too large`, entry);
      return total;
    };
    return depthFrom(0, [0]);
  }
}
