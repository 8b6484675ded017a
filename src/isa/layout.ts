/**
 * Control-flow layout of a decoded program: slot numbering, functions (the entry and every
 * local-call target) and the structural rules every engine relies on. The verifier checks much more;
 * these are the rules without which a program has no meaning at all.
 */
import { DecodeError } from '../errors.js';
import type { Instruction, Program } from './instruction.js';

export interface FunctionRange {
  /** First slot of the function. */
  readonly entryPc: number;
  /** One past its last slot. */
  readonly endPc: number;
}

export interface ProgramLayout {
  readonly program: Program;
  readonly slotCount: number;
  /** Slot of each instruction. */
  readonly pcOf: Int32Array;
  /** Instruction index at each slot; -1 on the second slot of an lddw. */
  readonly indexAt: Int32Array;
  /** Functions sorted by entry; the first is the program's entry point. */
  readonly functions: readonly FunctionRange[];
}

/** Slot a jump or local call lands on, relative to the slot after it. */
export function branchTarget(pc: number, insn: Instruction): number | undefined {
  if (insn.kind === 'ja' || insn.kind === 'jump') return pc + insn.offset + 1;
  if (insn.kind === 'call' && insn.target === 'local') return pc + insn.imm + 1;
  return undefined;
}

/** Whether control can continue to the next slot after `insn`. */
export function fallsThrough(insn: Instruction): boolean {
  return insn.kind !== 'exit' && insn.kind !== 'ja';
}

/**
 * Check the structural rules and number the slots: every jump lands on an instruction of its own
 * function (not on the second slot of an lddw), every local call on an instruction, and no function
 * lets control fall off its end.
 */
export function layoutProgram(program: Program): ProgramLayout {
  if (program.length === 0) throw new DecodeError(0, 'program is empty');
  const pcOf = new Int32Array(program.length);
  let slotCount = 0;
  for (let i = 0; i < program.length; i++) {
    pcOf[i] = slotCount;
    slotCount += program[i].kind === 'lddw' ? 2 : 1;
  }
  const indexAt = new Int32Array(slotCount).fill(-1);
  for (let i = 0; i < program.length; i++) indexAt[pcOf[i]] = i;

  const isInstruction = (pc: number) => pc >= 0 && pc < slotCount && indexAt[pc] >= 0;
  const entries = new Set<number>([0]);
  program.forEach((insn, i) => {
    if (insn.kind !== 'call' || insn.target !== 'local') return;
    const t = branchTarget(pcOf[i], insn) as number;
    if (!isInstruction(t)) throw new DecodeError(pcOf[i], `local call target ${t} is not an instruction`);
    entries.add(t);
  });
  const sorted = [...entries].sort((a, b) => a - b);
  const functions = sorted.map((entryPc, k) => ({
    entryPc,
    endPc: sorted[k + 1] ?? slotCount,
  }));

  for (const fn of functions) {
    for (let pc = fn.entryPc; pc < fn.endPc; pc++) {
      const i = indexAt[pc];
      if (i < 0) continue;
      const insn = program[i];
      if (insn.kind === 'ja' || insn.kind === 'jump') {
        const t = pc + insn.offset + 1;
        if (t < 0 || t >= slotCount) throw new DecodeError(pc, `jump target ${t} is out of range`);
        if (indexAt[t] < 0) throw new DecodeError(pc, `jump target ${t} is the middle of an lddw`);
        if (t < fn.entryPc || t >= fn.endPc)
          throw new DecodeError(pc, `jump target ${t} is outside the function at ${fn.entryPc}`);
      }
    }
    const last = program[indexAt[fn.endPc - 1] >= 0 ? indexAt[fn.endPc - 1] : indexAt[fn.endPc - 2]];
    if (fallsThrough(last)) {
      throw new DecodeError(fn.endPc - 1, 'control falls off the end of the function (last instruction must be exit or ja)');
    }
  }
  return { program, slotCount, pcOf, indexAt, functions };
}
