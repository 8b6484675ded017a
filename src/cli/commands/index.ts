/** The command table. A new subcommand is one module here and one entry below. */

import { benchIoCommand, interopCommand, serveCommand } from '../../target/index.js';
import { asmCommand } from './asm.js';
import { benchPushdownCommand } from './bench-pushdown.js';
import type { Command } from './command.js';
import { demoCommand } from './demo.js';
import { checkDhchapKeyCommand, genDhchapKeyCommand } from './dhchap-key.js';
import { disasmCommand } from './disasm.js';
import { discoverCommand } from './discover.js';
import { flushCommand } from './flush.js';
import { hostnqnCommand } from './hostnqn.js';
import { idCtrlCommand } from './id-ctrl.js';
import { idNsCommand } from './id-ns.js';
import { inspectCommand } from './inspect.js';
import { execCommand, loadCommand, programsCommand, unloadCommand } from './programs.js';
import { readCommand } from './read.js';
import { runCommand } from './run.js';
import { verifyCommand } from './verify.js';
import { writeCommand } from './write.js';

export type { Command } from './command.js';

export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [
    asmCommand,
    disasmCommand,
    runCommand,
    verifyCommand,
    inspectCommand,
    serveCommand,
    benchIoCommand,
    benchPushdownCommand,
    interopCommand,
    demoCommand,
    discoverCommand,
    idCtrlCommand,
    idNsCommand,
    readCommand,
    writeCommand,
    flushCommand,
    hostnqnCommand,
    genDhchapKeyCommand,
    checkDhchapKeyCommand,
    loadCommand,
    execCommand,
    programsCommand,
    unloadCommand,
  ].map((command) => [command.name, command]),
);
