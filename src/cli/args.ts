/**
 * Argument parsing shared by the commands: `node:util` `parseArgs` in strict mode, with its errors
 * turned into `UsageError`s (exit 2), and the parsers of flag values.
 */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import type { EngineKind } from '../vm/engine.js';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
type StrictConfig<T extends OptionsConfig> = { args: string[]; options: T; strict: true; allowPositionals: true };
/** Spelled out because @types/node does not export the name of parseArgs' result type. */
export type ParsedCommandArgs<T extends OptionsConfig> = ReturnType<typeof parseArgs<StrictConfig<T>>>;

/** Parse `args` strictly: unknown flags and missing values are usage errors; commands check positionals. */
export function parseCommandArgs<T extends OptionsConfig>(args: string[], options: T): ParsedCommandArgs<T> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    // parseArgs reports bad usage as a TypeError whose code starts with ERR_PARSE_ARGS.
    if (e instanceof Error && String((e as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(e.message);
    }
    throw e;
  }
}

/** Exactly `count` positionals named by `names` (for the message), or a usage error. */
export function expectPositionals(positionals: string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) throw new UsageError(`missing ${names[positionals.length]}`);
  if (positionals.length > names.length) throw new UsageError(`unexpected argument '${positionals[names.length]}'`);
  return positionals;
}

export const ENGINE_KINDS: readonly EngineKind[] = ['interpreter', 'jit'];

export function parseEngineKind(value: string): EngineKind {
  if ((ENGINE_KINDS as readonly string[]).includes(value)) return value as EngineKind;
  throw new UsageError(`--engine must be one of ${ENGINE_KINDS.join(', ')}, got '${value}'`);
}

export function parseFuel(value: string): number {
  const fuel = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(fuel)) throw new UsageError(`--fuel must be a non-negative integer, got '${value}'`);
  return fuel;
}

/**
 * Read a whole file; a file that cannot be read is a usage error (exit 2), not a program failure.
 * Synchronous: a command reads its inputs before doing anything else, and `node:fs/promises` alone
 * costs a short command (`nearbpf run`) about a tenth of its start-up.
 */
export async function readInputFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UsageError(`cannot read '${path}': ${describeFsError(e)}`);
  }
}

export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}
