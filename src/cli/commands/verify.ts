import { basename } from 'node:path';
import type { MapDefinition } from '../../abi/maps.js';
import { type ProgramType, programTypeByName } from '../../abi/program-types.js';
import { NearbpfError, UsageError } from '../../errors.js';
import type { Instruction } from '../../isa/index.js';
import { isElf, type LineInfo, loadProgramBytes } from '../../loader/index.js';
import { VerifierError, verifyProgram } from '../../verifier/index.js';
import { expectPositionals, parseCommandArgs, readInputFile } from '../args.js';
import { parseProgram } from '../program-file.js';
import type { Command } from './command.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'run the static verifier on a program and report why it is rejected',
  usage: `nearbpf verify FILE [--type TYPE] [--program NAME] [--json] [--log-level N]

Verifies FILE (an ELF object from clang -target bpf, assembly text if it ends in .s, raw bytecode
otherwise) as the server does before running it.
  --type TYPE        program type: conformance or storage (default: the ELF program's section
                     prefix; conformance for bytecode and assembly)
  --program NAME     which program of an ELF object (default: its only or first one)
  --json             print the result (statistics, or the rejection with its log) as JSON on stdout
  --log-level N      0: the failing instruction and state; 1: every processed instruction; 2: and
                     the state after each (printed on stderr)

Exit status: 0 if accepted (one-line summary on stdout), 1 if rejected (the reason, the C source
line when the object has line info, and the state on stderr), 2 on bad usage or unreadable input.`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      type: { type: 'string' },
      program: { type: 'string' },
      json: { type: 'boolean', default: false },
      'log-level': { type: 'string' },
    });
    const [path] = expectPositionals(positionals, ['FILE']);
    const logLevel = parseLogLevel(values['log-level']);
    const explicitType = values.type === undefined ? undefined : parseType(values.type);
    const file = await readInputFile(path);

    let instructions: readonly Instruction[];
    let maps: readonly MapDefinition[] = [];
    let lineInfo: ((pc: number) => string | undefined) | undefined;
    let name: string;
    let type: ProgramType;
    if (isElf(file)) {
      const { object, program } = unreadable(path, () => loadProgramBytes(file, { program: values.program }, path));
      instructions = program.instructions;
      maps = object.maps;
      lineInfo = lineInfoLookup(program.lineInfo);
      name = program.name;
      type = explicitType ?? parseType(program.programType, `program '${program.name}' is in section '${program.section}': `);
    } else {
      if (values.program !== undefined) throw new UsageError('--program applies to ELF objects only');
      instructions = unreadable(path, () => parseProgram(path, file));
      name = basename(path);
      type = explicitType ?? (programTypeByName('conformance') as ProgramType);
    }

    try {
      const result = verifyProgram(instructions, { type, maps, logLevel, lineInfo });
      const { processedInsns, states, peakStates, durationMs } = result.stats;
      if (logLevel > 0) io.stderr.write(`${result.log}\n`);
      if (values.json) {
        io.stdout.write(`${JSON.stringify({ ok: true, program: name, type: type.name, stats: result.stats })}\n`);
      } else {
        io.stdout.write(
          `${name}: accepted as ${type.name}: processed ${processedInsns} insns, ${states} states (peak ${peakStates}), ${durationMs.toFixed(1)} ms\n`,
        );
      }
      return 0;
    } catch (e) {
      if (!(e instanceof VerifierError)) throw e;
      if (values.json) {
        io.stdout.write(`${JSON.stringify({ ok: false, program: name, type: type.name, ...e.toJSON() })}\n`);
      } else {
        io.stderr.write(`${name}: rejected as ${type.name}\n${e.format({ verbose: logLevel > 0 })}\n`);
      }
      return 1;
    }
  },
};

function parseLogLevel(value: string | undefined): 0 | 1 | 2 {
  if (value === undefined) return 0;
  if (value !== '0' && value !== '1' && value !== '2') throw new UsageError(`--log-level must be 0, 1 or 2, got '${value}'`);
  return Number(value) as 0 | 1 | 2;
}

function parseType(name: string, context = ''): ProgramType {
  const type = programTypeByName(name);
  if (!type) throw new UsageError(`${context}unknown program type '${name}' (known: conformance, storage)`);
  return type;
}

/** A file that does not parse as a program is unreadable input (exit 2), not a rejected program. */
function unreadable<T>(path: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof NearbpfError && !(e instanceof UsageError)) throw new UsageError(`cannot load '${path}': ${e.message}`);
    throw e;
  }
}

/** The C source line of a pc: the line-info entry at or before it (entries are sorted by pc). */
function lineInfoLookup(entries: readonly LineInfo[]): ((pc: number) => string | undefined) | undefined {
  if (entries.length === 0) return undefined;
  return (pc) => {
    let lo = 0;
    let hi = entries.length - 1;
    let found: LineInfo | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (entries[mid].pc <= pc) {
        found = entries[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found ? `${basename(found.file)}:${found.line}: ${found.source.trim()}` : undefined;
  };
}
