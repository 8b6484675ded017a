/** The command table. A new subcommand is one module here and one entry below. */

import { benchIoCommand, interopCommand, serveCommand } from '../../target/index.js';
import { asmCommand } from './asm.js';
import type { Command } from './command.js';
import { demoCommand } from './demo.js';
import { disasmCommand } from './disasm.js';
import { inspectCommand } from './inspect.js';
import { runCommand } from './run.js';

export type { Command } from './command.js';

export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [asmCommand, disasmCommand, runCommand, inspectCommand, serveCommand, benchIoCommand, interopCommand, demoCommand].map(
    (command) => [command.name, command],
  ),
);
