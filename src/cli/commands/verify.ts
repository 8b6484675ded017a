import { basename } from 'node:path';
import type { MapDefinition } from '../../abi/maps.js';
import { type ProgramType, programTypeByName } from '../../abi/program-types.js';
import { DecodeError, NearbpfError, UsageError } from '../../errors.js';
import type { Instruction } from '../../isa/index.js';
import { isElf, type LineInfo, type LoadedObject, type LoadedProgram, loadObject } from '../../loader/index.js';
import { VerifierError, verifyProgram } from '../../verifier/index.js';
import { expectPositionals, parseCommandArgs, readInputFile } from '../args.js';
import type { CliIo } from '../io.js';
import { isAssemblyPath, parseProgram } from '../program-file.js';
import type { Command } from './command.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'run the static verifier on the programs of an object (or a program) and report why one is rejected',
  usage: `nearbpf verify FILE [--type TYPE] [--program NAME] [--json] [--log-level N]

Verifies FILE (an ELF object from clang -target bpf, assembly text if it ends in .s, raw bytecode
otherwise) as the server does before running it. Every program of an object is verified, as
veristat does; one line per program on stdout: name, verdict, program type, processed
instructions, states, milliseconds.
  --type TYPE        program type: conformance or storage (default: each ELF program's section
                     prefix; conformance for bytecode and assembly)
  --program NAME     only this program of an ELF object
  --json             one JSON object per program on stdout (statistics, or the rejection with its log)
  --log-level N      0: the failing instruction and state; 1: every processed instruction; 2: and
                     the state after each (printed on stderr)

Exit status: 0 if every program is accepted, 1 if one is rejected (the reason, the C source line
when the object has line info, and the state on stderr; malformed bytecode, such as an unknown
opcode, an invalid register, a nonzero reserved field or a broken lddw, is a rejected program), 2
on bad usage or unreadable input.`,

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
    const json = values.json === true;

    const targets: VerifyTarget[] = [];
    if (isElf(file)) {
      let object: LoadedObject;
      try {
        object = loadObject(file);
      } catch (e) {
        // A program's instructions that do not decode: rejected; any other defect of the file: unreadable.
        if (e instanceof DecodeError) return reportMalformed(io, basename(path), explicitType, e, json);
        return unreadable(path, () => {
          throw e;
        });
      }
      const programs = values.program === undefined ? object.programs : [findProgramOrFail(object, values.program)];
      if (programs.length === 0) throw new UsageError(`'${path}' holds no program`);
      for (const program of programs) {
        targets.push({
          name: program.name,
          instructions: program.instructions,
          maps: object.maps,
          lineInfo: lineInfoLookup(program.lineInfo),
          type: explicitType ?? parseType(program.programType, `program '${program.name}' is in section '${program.section}': `),
        });
      }
    } else {
      if (values.program !== undefined) throw new UsageError('--program applies to ELF objects only');
      const type = explicitType ?? (programTypeByName('conformance') as ProgramType);
      let instructions: readonly Instruction[];
      try {
        instructions = await parseProgram(path, file);
      } catch (e) {
        // Instructions that do not decode are a rejected program; a file that cannot even be cut
        // into 8-byte instructions (or bad assembly text) is unreadable input.
        if (e instanceof DecodeError && !isAssemblyPath(path) && file.length % 8 === 0 && file.length > 0)
          return reportMalformed(io, basename(path), type, e, json, file);
        return unreadable(path, () => {
          throw e;
        });
      }
      targets.push({ name: basename(path), instructions, maps: [], lineInfo: undefined, type });
    }

    let rejected = 0;
    for (const t of targets) if (!verifyOne(io, t, logLevel, json)) rejected++;
    return rejected > 0 ? 1 : 0;
  },
};

interface VerifyTarget {
  readonly name: string;
  readonly instructions: readonly Instruction[];
  readonly maps: readonly MapDefinition[];
  readonly lineInfo: ((pc: number) => string | undefined) | undefined;
  readonly type: ProgramType;
}

/** Verify one program and print its line (and, when rejected, the details on stderr). */
function verifyOne(io: CliIo, t: VerifyTarget, logLevel: 0 | 1 | 2, json: boolean): boolean {
  const { name, type } = t;
  try {
    const result = verifyProgram(t.instructions, { type, maps: t.maps, logLevel, lineInfo: t.lineInfo });
    const { processedInsns, states, peakStates, durationMs } = result.stats;
    if (logLevel > 0) io.stderr.write(`${result.log}\n`);
    if (json) io.stdout.write(`${JSON.stringify({ ok: true, program: name, type: type.name, stats: result.stats })}\n`);
    else
      io.stdout.write(
        `${name}: accepted as ${type.name}: processed ${processedInsns} insns, ${states} states (peak ${peakStates}), ${durationMs.toFixed(1)} ms\n`,
      );
    return true;
  } catch (e) {
    if (!(e instanceof VerifierError)) throw e;
    if (json) {
      io.stdout.write(`${JSON.stringify({ ok: false, program: name, type: type.name, ...e.toJSON() })}\n`);
    } else {
      io.stdout.write(
        `${name}: rejected as ${type.name}: processed ${e.processedInsns ?? 0} insns, ${e.states ?? 0} states: ${e.reason}\n`,
      );
      io.stderr.write(`${name}: rejected as ${type.name}\n${e.format({ verbose: logLevel > 0 })}\n`);
    }
    return false;
  }
}

/** Bytecode that does not decode: rejected, with a kernel-style line naming the instruction. */
function reportMalformed(
  io: CliIo,
  name: string,
  type: ProgramType | undefined,
  e: DecodeError,
  json: boolean,
  bytes?: Uint8Array,
): number {
  const typeName = type?.name ?? 'any type';
  const slot = bytes && (e.index + 1) * 8 <= bytes.length ? Buffer.from(bytes.subarray(e.index * 8, e.index * 8 + 8)) : undefined;
  const raw = slot ? ` (${slot.toString('hex').replace(/(..)(?!$)/g, '$1 ')})` : '';
  if (json) {
    io.stdout.write(
      `${JSON.stringify({ ok: false, program: name, type: typeName, code: e.code, pc: e.index, reason: e.reason })}\n`,
    );
  } else {
    io.stdout.write(`${name}: rejected as ${typeName}: malformed instruction ${e.index}: ${e.reason}\n`);
    io.stderr.write(`${name}: rejected as ${typeName}\n${e.index}:${raw} ${e.reason}\n`);
  }
  return 1;
}

function findProgramOrFail(object: LoadedObject, name: string): LoadedProgram {
  const program = object.programs.find((p) => p.name === name);
  if (!program)
    throw new UsageError(`no program '${name}' in the object (programs: ${object.programs.map((p) => p.name).join(', ')})`);
  return program;
}

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
