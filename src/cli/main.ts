/**
 * The `nearbpf` command: dispatches to the subcommands in `commands/` and turns typed errors into
 * exit statuses (`UsageError` → 2, any other `NearbpfError` → 1). Anything else is a bug and is
 * rethrown with its stack.
 */
import { NearbpfError, UsageError } from '../errors.js';
import { COMMANDS, type Command, type CommandEntry } from './commands/index.js';
import { type CliIo, processIo } from './io.js';

export type { CliIo, OutputStream } from './io.js';

const HELP_FLAGS = new Set(['--help', '-h']);

export function usageText(): string {
  const width = Math.max(...[...COMMANDS.keys()].map((name) => name.length));
  const list = [...COMMANDS.values()].map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `usage: nearbpf COMMAND [ARGS...]

Runs eBPF programs next to their data.

Commands:
${list}
  ${'help'.padEnd(width)}  show this text, or 'nearbpf help COMMAND' for one command

Exit status: 0 on success, 1 if a program fails to assemble, load or run, 2 on bad usage.
`;
}

function commandUsage(command: Command): string {
  return `usage: ${command.usage}\n`;
}

function lookup(name: string): CommandEntry {
  const command = COMMANDS.get(name);
  if (command === undefined) throw new UsageError(`unknown command '${name}'`);
  return command;
}

/** Run `nearbpf` with `argv` (without node and the script path); returns the exit status. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...args] = argv;
  try {
    if (name === undefined) {
      io.stderr.write(usageText());
      return 2;
    }
    if (name === 'help' || HELP_FLAGS.has(name)) {
      if (args.length > 1) throw new UsageError(`unexpected argument '${args[1]}'`);
      io.stdout.write(args.length === 0 ? usageText() : commandUsage(await lookup(args[0]).load()));
      return 0;
    }
    const command = await lookup(name).load();
    if (args.some((a) => HELP_FLAGS.has(a))) {
      io.stdout.write(commandUsage(command));
      return 0;
    }
    return await command.run(args, io);
  } catch (e) {
    if (!(e instanceof NearbpfError)) throw e;
    io.stderr.write(`error[${e.code}]: ${e.message}\n`);
    if (e instanceof UsageError) {
      const topic = name !== undefined && COMMANDS.has(name) ? `help ${name}` : 'help';
      io.stderr.write(`run 'nearbpf ${topic}' for usage\n`);
      return 2;
    }
    return 1;
  }
}
