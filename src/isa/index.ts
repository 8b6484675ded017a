export { assemble } from './asm.js';
export {
  decodeInstruction,
  decodeProgram,
  encodeInstruction,
  encodeProgram,
  MAX_PROGRAM_SLOTS,
  readSlot,
} from './codec.js';
export { disassemble, formatInstruction } from './disasm.js';
export * from './instruction.js';
export {
  branchTarget,
  type FunctionRange,
  fallsThrough,
  layoutProgram,
  type ProgramLayout,
} from './layout.js';
export * from './opcodes.js';
