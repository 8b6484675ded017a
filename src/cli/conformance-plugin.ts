/**
 * A bpf_conformance plugin: the suite's runner starts one process per test, writes the program as
 * hex bytes on stdin and passes the memory as hex in the first positional argument (absent or empty
 * when there is none). We print r0 as `0x<hex>` and exit 0, or print the error and exit 1 (2 for
 * bad usage). `bin/bpf-conformance-plugin` wraps this function.
 */
import { NearbpfError, UsageError } from '../errors.js';
import { decodeProgram } from '../isa/index.js';
import { parseHexBytes, runConformance } from '../vm/conformance.js';
import { parseCommandArgs, parseEngineKind } from './args.js';

export interface PluginOutcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export const PLUGIN_USAGE = 'usage: bpf-conformance-plugin [--engine interpreter|jit] [MEMORY_HEX] < PROGRAM_HEX';

/** One plugin invocation: `argv` without node and the script path, `stdinText` the program in hex. */
export function runConformancePlugin(argv: string[], stdinText: string): PluginOutcome {
  try {
    const { values, positionals } = parseCommandArgs(argv, { engine: { type: 'string', default: 'jit' } });
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const engine = parseEngineKind(values.engine);
    const memory = parseHexBytes(positionals[0] ?? '');
    const program = decodeProgram(parseHexBytes(stdinText));
    const { r0 } = runConformance(program, memory, { engine });
    return { stdout: `0x${r0.toString(16)}\n`, stderr: '', code: 0 };
  } catch (e) {
    if (!(e instanceof NearbpfError)) throw e;
    const usage = e instanceof UsageError ? `${PLUGIN_USAGE}\n` : '';
    return { stdout: '', stderr: `error[${e.code}]: ${e.message}\n${usage}`, code: e instanceof UsageError ? 2 : 1 };
  }
}
