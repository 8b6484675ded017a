/**
 * Command lines of the benchmark scripts run as `npm run bench:NAME -- ...`: node's `parseArgs`, and a
 * bad command line is a usage error (its message and the usage on stderr, exit status 2), never a
 * stack trace; `--help` prints the usage (exit 0).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
/** What an option parsed to: a string, a boolean flag, or (for `multiple`) several. */
export type BenchArgValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

/** The values of `argv` under `options`, or throws BenchUsageError (unknown option, missing value, positional). */
export function parseBenchArgs(argv: readonly string[], options: Options): BenchArgValues {
  try {
    return parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean' } }, strict: true }).values;
  } catch (e) {
    throw new BenchUsageError((e as Error).message);
  }
}

/** An integer option in `min..max`, `fallback` when absent. */
export function integerOption(values: BenchArgValues, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new BenchUsageError(`--${name} must be an integer in ${min}..${max}, got '${String(raw)}'`);
  return n;
}

/**
 * Parse `process.argv` for a benchmark script: on `--help` print `usage` and exit 0; on a bad command
 * line print the reason and `usage` to stderr and exit 2. `read` turns the values into the script's
 * options (and may throw BenchUsageError for a bad value).
 */
export function benchCommandLine<R>(
  usage: string,
  options: Options,
  read: (values: BenchArgValues) => R,
  argv: readonly string[] = process.argv.slice(2),
): R {
  try {
    const values = parseBenchArgs(argv, options);
    if (values.help === true) {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    return read(values);
  } catch (e) {
    if (!(e instanceof BenchUsageError)) throw e;
    process.stderr.write(`${e.message}\n${usage}\n`);
    process.exit(2);
  }
}
