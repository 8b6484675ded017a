/**
 * `nearbpf inspect FILE.o`: a readable dump of a loaded object (programs, maps, relocations,
 * disassembly interleaved with C source lines), and `loadProgramFile` for commands that accept
 * `.o` files (`run`, `verify`).
 */
import { readFile } from 'node:fs/promises';
import { formatInstruction } from '../isa/disasm.js';
import { slotCount } from '../isa/instruction.js';
import { LoaderLimitError, ProgramNotFoundError } from './errors.js';
import { MAX_OBJECT_SIZE_BYTES } from './limits.js';
import { type LoadedObject, type LoadedProgram, loadObject } from './object.js';

export interface InspectOptions {
  /** Only this program (default: all). */
  readonly program?: string;
  /** Interleave C source lines from BTF line info (default true). */
  readonly source?: boolean;
}

function hexPreview(bytes: Uint8Array, maxBytes = 32): string {
  const hex = Buffer.from(bytes.subarray(0, maxBytes))
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
  return bytes.length > maxBytes ? `${hex} ... (${bytes.length} bytes)` : hex;
}

/** Disassembly of one program: `pc: instruction`, function labels, call targets by name, source lines. */
export function disassembleProgram(program: LoadedProgram, options: { source?: boolean } = {}): string {
  const lines: string[] = [];
  const fnAt = new Map(program.functions.map((f) => [f.pc, f.name]));
  const lineAt = new Map(program.lineInfo.map((l) => [l.pc, l]));
  const relocAt = new Map(program.relocations.map((r) => [r.pc, r]));
  const width = String(program.instructions.reduce((n, i) => n + slotCount(i), 0)).length;
  let pc = 0;
  let lastSource = '';
  for (const insn of program.instructions) {
    const fn = fnAt.get(pc);
    if (fn !== undefined) lines.push(`${pc === 0 ? '' : '\n'}<${fn}>:`);
    const li = lineAt.get(pc);
    if (li !== undefined && options.source !== false) {
      const where = `${li.file.split('/').pop()}:${li.line}`;
      const text = `; ${where}: ${li.source.trim()}`;
      // Consecutive records of one line (clang emits them per column) are shown once.
      if (text !== lastSource) lines.push(`    ${text}`);
      lastSource = text;
    }
    const here = pc;
    const label = (offset: number) => {
      if (insn.kind !== 'call') return undefined;
      const name = fnAt.get(here + offset + 1);
      return name === undefined ? undefined : `${name}`;
    };
    const reloc = relocAt.get(pc);
    const note = reloc !== undefined && reloc.kind !== 'call' ? `  ; ${reloc.target}` : '';
    lines.push(`  ${String(pc).padStart(width)}: ${formatInstruction(insn, label)}${note}`);
    pc += slotCount(insn);
  }
  return lines.join('\n');
}

/** The text of `nearbpf inspect`. */
export function inspectObject(object: LoadedObject, options: InspectOptions = {}): string {
  const programs = options.program === undefined ? object.programs : object.programs.filter((p) => p.name === options.program);
  if (programs.length === 0)
    throw new ProgramNotFoundError(
      options.program,
      object.programs.map((p) => p.name),
    );
  const out: string[] = [];
  out.push(`license: ${object.license === '' ? '(none)' : object.license}`);
  out.push('', `programs (${object.programs.length}):`);
  for (const p of object.programs) {
    const slots = p.instructions.reduce((n, i) => n + slotCount(i), 0);
    const subs = p.functions.slice(1).map((f) => f.name);
    out.push(
      `  ${p.name}  section ${p.section}  type ${p.programType}  ${slots} slots${subs.length ? `  subprograms: ${subs.join(', ')}` : ''}`,
    );
  }
  out.push('', `maps (${object.maps.length}):`);
  object.maps.forEach((m, i) => {
    const flags = [m.readonly ? 'read-only' : '', m.flags ? `flags 0x${m.flags.toString(16)}` : ''].filter(Boolean).join(', ');
    out.push(
      `  #${i} ${m.name}  ${m.type}  key ${m.keySizeBytes}  value ${m.valueSizeBytes}  max_entries ${m.maxEntries}  from ${m.section}${flags ? `  (${flags})` : ''}`,
    );
    if (m.initialValue?.some((b) => b !== 0)) out.push(`      initial: ${hexPreview(m.initialValue)}`);
  });
  for (const p of programs) {
    out.push('', `relocations of ${p.name} (${p.relocations.length}):`);
    for (const r of p.relocations) out.push(`  pc ${r.pc}: ${r.type} ${r.symbol} -> ${r.description}`);
    out.push('', `disassembly of ${p.name}:`, disassembleProgram(p, { source: options.source }));
  }
  return `${out.join('\n')}\n`;
}

/** Handler for `nearbpf inspect FILE.o [--program NAME] [--no-source]`: the text to print. */
export async function inspectFile(path: string, options: InspectOptions = {}): Promise<string> {
  const bytes = await readFile(path);
  if (bytes.length > MAX_OBJECT_SIZE_BYTES)
    throw new LoaderLimitError('object size in bytes', MAX_OBJECT_SIZE_BYTES, bytes.length);
  const object = loadObject(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  return `${path}\n${inspectObject(object, options)}`;
}
