/**
 * Static checks of the control-flow graph, before any path is explored: the structural rules of
 * `layoutProgram` (jumps in range, not into an lddw, no falling off a function), every instruction
 * reachable, and the prune points where exploration records states.
 */
import { DecodeError } from '../errors.js';
import { branchTarget, fallsThrough, layoutProgram, type Program, type ProgramLayout } from '../isa/index.js';
import { Rejection } from './analysis.js';

export interface ControlFlow {
  readonly layout: ProgramLayout;
  /** 1 at every slot where states are recorded: jump targets, branch fall-throughs, call returns, function entries. */
  readonly prunePoints: Uint8Array;
  /** 1 at the target of every backward jump (loop heads). */
  readonly loopHeads: Uint8Array;
}

export function analyzeControlFlow(program: Program): ControlFlow {
  let layout: ProgramLayout;
  try {
    layout = layoutProgram(program);
  } catch (e) {
    if (e instanceof DecodeError) throw new Rejection(e.reason, e.index);
    throw e;
  }
  const { slotCount, indexAt } = layout;
  const prunePoints = new Uint8Array(slotCount);
  const reached = new Uint8Array(slotCount);
  const loopHeads = new Uint8Array(slotCount);
  const work = [0];
  reached[0] = 1;
  const visit = (pc: number) => {
    if (!reached[pc]) {
      reached[pc] = 1;
      work.push(pc);
    }
  };
  while (work.length > 0) {
    const pc = work.pop() as number;
    const insn = program[indexAt[pc]];
    const next = pc + (insn.kind === 'lddw' ? 2 : 1);
    const target = branchTarget(pc, insn);
    if (target !== undefined) {
      prunePoints[target] = 1;
      if (target <= pc && insn.kind !== 'call') loopHeads[target] = 1;
      visit(target);
    }
    if (fallsThrough(insn)) {
      if (insn.kind === 'jump' || insn.kind === 'call') prunePoints[next] = 1;
      visit(next);
    }
  }
  for (let pc = 0; pc < slotCount; pc++) {
    if (indexAt[pc] >= 0 && !reached[pc]) throw new Rejection(`unreachable insn ${pc}`, pc);
  }
  return { layout, prunePoints, loopHeads };
}
