/**
 * A program given on the command line: assembly text (`.s`) or raw bytecode (any other name; its
 * length must be a multiple of 8, which `decodeProgram` checks).
 */
// Single modules rather than the isa index, and the assembler only for assembly text: `nearbpf run`
// of bytecode or an object starts faster without them.
import { decodeProgram } from '../isa/codec.js';
import type { Instruction } from '../isa/instruction.js';
import { readInputFile } from './args.js';

export function isAssemblyPath(path: string): boolean {
  return path.toLowerCase().endsWith('.s');
}

/** Load and parse `path`. Throws `UsageError` if unreadable, `AssembleError`/`DecodeError` if invalid. */
export async function readProgramFile(path: string): Promise<Instruction[]> {
  return await parseProgram(path, await readInputFile(path));
}

/** Parse the contents of `path`: assembly text if its name ends in .s, bytecode otherwise. */
export async function parseProgram(path: string, bytes: Uint8Array): Promise<Instruction[]> {
  if (!isAssemblyPath(path)) return decodeProgram(bytes);
  const { assemble } = await import('../isa/asm.js');
  return assemble(Buffer.from(bytes).toString('utf8'));
}
