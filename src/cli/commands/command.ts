import type { CliIo } from '../io.js';

/** One `nearbpf` subcommand. Handlers throw `UsageError` (exit 2) or another `NearbpfError` (exit 1). */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Synopsis and options, printed by `nearbpf help NAME` and `nearbpf NAME --help`. */
  readonly usage: string;
  /** Returns the exit status. */
  run(args: string[], io: CliIo): Promise<number>;
}
