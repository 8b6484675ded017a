/**
 * Fuel is charged per basic block, on entry, by both engines: the block's instruction count. The
 * engines therefore agree exactly on when a budget runs out, and the JIT pays one check per block
 * rather than one per instruction.
 */
import { branchTarget, type ProgramLayout } from '../isa/index.js';

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

/** At each leader slot, the number of instructions in its block; 0 elsewhere. */
export function blockCosts(layout: ProgramLayout): Int32Array {
  const leaders = blockLeaders(layout);
  const costs = new Int32Array(layout.slotCount);
  let leader = 0;
  for (let pc = 0; pc < layout.slotCount; pc++) {
    if (leaders[pc]) leader = pc;
    if (layout.indexAt[pc] >= 0) costs[leader]++;
  }
  return costs;
}
