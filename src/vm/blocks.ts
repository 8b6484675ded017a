/**
 * Fuel, identically in both engines:
 * - every basic block is charged its instruction count on entry, so `fuelUsed` is exact;
 * - exhaustion (fuel below zero) is checked only at checkpoints: on entering a function's first
 *   block or a loop header, at each `exit`, and before each helper call. Every cycle passes a loop
 *   header, so a program overruns its budget by at most one acyclic path of blocks before it
 *   faults, and never calls a helper or returns with the budget gone. The JIT pays one subtraction per block and a test only at checkpoints.
 */
import { branchTarget, type ProgramLayout } from '../isa/layout.js';
import { analyzeControlFlow } from './jit/cfg.js';

/** Slots that start a basic block: entries, jump and call targets, and every slot after a jump, call or exit. */
export function blockLeaders(layout: ProgramLayout): Uint8Array {
  const leaders = new Uint8Array(layout.slotCount + 1);
  for (const fn of layout.functions) leaders[fn.entryPc] = 1;
  layout.program.forEach((insn, i) => {
    const pc = layout.pcOf[i];
    const target = branchTarget(pc, insn);
    if (target !== undefined) leaders[target] = 1;
    if (insn.kind === 'ja' || insn.kind === 'jump' || insn.kind === 'call' || insn.kind === 'callx' || insn.kind === 'exit') {
      leaders[pc + 1] = 1;
    }
  });
  return leaders.subarray(0, layout.slotCount);
}

/** At each leader slot, the number of instructions in its block; 0 elsewhere. `leaders`: `blockLeaders(layout)`, if known. */
export function blockCosts(layout: ProgramLayout, leaders = blockLeaders(layout)): Int32Array {
  const costs = new Int32Array(layout.slotCount);
  let leader = 0;
  for (let pc = 0; pc < layout.slotCount; pc++) {
    if (leaders[pc]) leader = pc;
    if (layout.indexAt[pc] >= 0) costs[leader]++;
  }
  return costs;
}

/**
 * Slots where exhaustion is checked on block entry: each function's entry and its loop headers (the
 * targets of back edges of a depth-first search from the entry, over blocks; `cfg.ts` is
 * deterministic, so both engines get the same set even for irreducible graphs). Every cycle contains
 * a back edge, so every cycle passes a checkpoint.
 */
export function fuelCheckpoints(layout: ProgramLayout, leaders = blockLeaders(layout)): Uint8Array {
  const check = new Uint8Array(layout.slotCount);
  for (const fn of layout.functions) {
    const starts: number[] = [];
    const nodeAt = new Map<number, number>();
    for (let pc = fn.entryPc; pc < fn.endPc; pc++) {
      if (pc === fn.entryPc || leaders[pc]) {
        nodeAt.set(pc, starts.length);
        starts.push(pc);
      }
    }
    const successors = starts.map((_start, n) => {
      const end = starts[n + 1] ?? fn.endPc;
      let lastPc = end - 1;
      if (layout.indexAt[lastPc] < 0) lastPc--;
      const last = layout.program[layout.indexAt[lastPc]];
      const out: number[] = [];
      const target = branchTarget(lastPc, last);
      if (target !== undefined && last.kind !== 'call') out.push(nodeAt.get(target) ?? -1);
      if (last.kind !== 'ja' && last.kind !== 'exit' && end < fn.endPc) out.push(n + 1);
      return out.filter((x) => x >= 0);
    });
    const facts = analyzeControlFlow(successors);
    check[fn.entryPc] = 1;
    starts.forEach((start, n) => {
      if (facts.loopHeader[n]) check[start] = 1;
    });
  }
  return check;
}
