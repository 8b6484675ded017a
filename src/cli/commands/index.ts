/**
 * The command table. A new subcommand is one module here and one entry below.
 *
 * Entries load their module on first use: `nearbpf run` should not pay for importing the target,
 * the showcase and the interop runner. `index.test.ts` checks each summary against its module's.
 */
import type { Command } from './command.js';

export type { Command } from './command.js';

export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

function entry(name: string, summary: string, load: () => Promise<Command>): CommandEntry {
  return { name, summary, load };
}

export const COMMANDS: ReadonlyMap<string, CommandEntry> = new Map(
  [
    entry('asm', 'assemble eBPF assembly text into bytecode', async () => (await import('./asm.js')).asmCommand),
    entry(
      'disasm',
      'print bytecode (or assembly) as canonical assembly text',
      async () => (await import('./disasm.js')).disasmCommand,
    ),
    entry('run', 'run a program once over a memory buffer and print r0', async () => (await import('./run.js')).runCommand),
    entry(
      'verify',
      'run the static verifier on the programs of an object (or a program) and report why one is rejected',
      async () => (await import('./verify.js')).verifyCommand,
    ),
    entry(
      'inspect',
      'show the programs, maps, relocations and disassembly of an ELF object',
      async () => (await import('./inspect.js')).inspectCommand,
    ),
    entry('serve', 'run the NVMe/TCP storage target', async () => (await import('../../target/index.js')).serveCommand),
    entry(
      'top',
      'a live view of a running target through its metrics endpoint: programs, tenants, namespaces',
      async () => (await import('./top.js')).topCommand,
    ),
    entry(
      'bench-io',
      'benchmark NVMe/TCP random 4 KiB I/O over loopback against a minimal-server floor',
      async () => (await import('../../bench/io-bench.js')).benchIoCommand,
    ),
    entry(
      'bench-pushdown',
      'benchmark storage functions pushed down to the target vs fetched (figures in results/)',
      async () => (await import('./bench-pushdown.js')).benchPushdownCommand,
    ),
    entry(
      'interop',
      'test the target against the Linux NVMe/TCP initiator under QEMU',
      async () => (await import('../../target/index.js')).interopCommand,
    ),
    entry(
      'demo',
      'storage demo: B+-tree lookups and a scan pushed down to an NVMe/TCP target vs fetched',
      async () => (await import('./demo.js')).demoCommand,
    ),
    entry(
      'sqlite',
      'query a SQLite database on a namespace with storage functions (put, tables, get, lookup, scan)',
      async () => (await import('./sqlite.js')).sqliteCommand,
    ),
    entry(
      'discover',
      'list the subsystems an NVMe/TCP discovery controller offers',
      async () => (await import('./discover.js')).discoverCommand,
    ),
    entry(
      'id-ctrl',
      "print an NVMe/TCP controller's Identify Controller data",
      async () => (await import('./id-ctrl.js')).idCtrlCommand,
    ),
    entry(
      'id-ns',
      "print a namespace's size, capacity, block size and identifiers",
      async () => (await import('./id-ns.js')).idNsCommand,
    ),
    entry(
      'read',
      'read logical blocks from an NVMe/TCP namespace to a file or stdout',
      async () => (await import('./read.js')).readCommand,
    ),
    entry(
      'write',
      'write whole logical blocks from a file or stdin to an NVMe/TCP namespace',
      async () => (await import('./write.js')).writeCommand,
    ),
    entry(
      'flush',
      "make a namespace's completed writes durable (NVMe Flush)",
      async () => (await import('./flush.js')).flushCommand,
    ),
    entry(
      'hostnqn',
      'print the host NQN and Host Identifier the NVMe commands connect as (created once if needed)',
      async () => (await import('./hostnqn.js')).hostnqnCommand,
    ),
    entry(
      'gen-dhchap-key',
      'generate a DH-HMAC-CHAP secret (DHHC-1:...) for a host or controller key',
      async () => (await import('./dhchap-key.js')).genDhchapKeyCommand,
    ),
    entry(
      'check-dhchap-key',
      'check a DH-HMAC-CHAP secret: format, length, CRC and transformation',
      async () => (await import('./dhchap-key.js')).checkDhchapKeyCommand,
    ),
    entry(
      'load',
      'load a storage function (ELF object or bytecode) into the target; it is verified there',
      async () => (await import('./programs.js')).loadCommand,
    ),
    entry(
      'exec',
      'execute a loaded storage function next to a namespace',
      async () => (await import('./programs.js')).execCommand,
    ),
    entry(
      'programs',
      'list the storage functions this host has loaded, with their statistics',
      async () => (await import('./programs.js')).programsCommand,
    ),
    entry('unload', 'unload a storage function', async () => (await import('./programs.js')).unloadCommand),
  ].map((e) => [e.name, e]),
);
