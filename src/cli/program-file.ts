/**
 * A program given on the command line: assembly text (`.s`) or raw bytecode (any other name; its
 * length must be a multiple of 8, which `decodeProgram` checks).
 */
// Single modules rather than the isa index: `nearbpf run` starts faster without the disassembler.
import { assemble } from '../isa/asm.js';
import { decodeProgram } from '../isa/codec.js';
import type { Instruction } from '../isa/instruction.js';
import { readInputFile } from './args.js';

export function isAssemblyPath(path: string): boolean {
  return path.toLowerCase().endsWith('.s');
}

/** Load and parse `path`. Throws `UsageError` if unreadable, `AssembleError`/`DecodeError` if invalid. */
export async function readProgramFile(path: string): Promise<Instruction[]> {
  return parseProgram(path, await readInputFile(path));
}

/** Parse the contents of `path`: assembly text if its name ends in .s, bytecode otherwise. */
export function parseProgram(path: string, bytes: Uint8Array): Instruction[] {
  return isAssemblyPath(path) ? assemble(Buffer.from(bytes).toString('utf8')) : decodeProgram(bytes);
}
