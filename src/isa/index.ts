export * from './instruction.js';
export * from './opcodes.js';
export { decodeProgram, decodeInstruction, encodeInstruction, encodeProgram, readSlot, MAX_PROGRAM_SLOTS } from './codec.js';
export { disassemble, formatInstruction } from './disasm.js';
export { assemble } from './asm.js';
export { layoutProgram, branchTarget, fallsThrough, type ProgramLayout, type FunctionRange } from './layout.js';
