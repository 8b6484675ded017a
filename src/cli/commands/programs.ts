/**
 * `nearbpf load`, `exec`, `programs` and `unload`: storage functions on a running target, through
 * the host library's `ProgramClient` (vendor commands, see src/protocol/programs.ts).
 */
import { writeFile } from 'node:fs/promises';
import { ProgramClient, ProgramCommandError } from '../../client/programs.js';
import { UsageError } from '../../errors.js';
import { expectPositionals, parseCommandArgs, readInputFile } from '../args.js';
import type { CliIo } from '../io.js';
import {
  CONNECTION_OPTIONS,
  connectionUsage,
  NVME_EXIT_STATUS,
  parseConnectionOptions,
  parseNsid,
  withHost,
} from '../nvme-options.js';
import type { Command } from './command.js';

/** A verifier rejection is only useful with its log: print it before the one-line error. */
async function explained<T>(io: CliIo, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ProgramCommandError && e.log) io.stderr.write(`${e.log.trimEnd()}\n`);
    throw e;
  }
}

async function handleOf(programs: ProgramClient, name: string): Promise<number> {
  const handle = await programs.find(name);
  if (handle === undefined) throw new ProgramCommandError('UnknownProgram', 0x02, `no program named '${name}' is loaded`);
  return handle;
}

function parseU64(value: string | undefined, flag: string): bigint {
  if (value === undefined) return 0n;
  if (!/^(0x[0-9a-f]+|-?\d+)$/i.test(value)) throw new UsageError(`${flag} must be a number (decimal or 0x hex), got '${value}'`);
  const n = BigInt(value);
  if (n < -(1n << 63n) || n >= 1n << 64n) throw new UsageError(`${flag} does not fit in 64 bits`);
  return BigInt.asUintN(64, n);
}

export const loadCommand: Command = {
  name: 'load',
  summary: 'load a storage function (ELF object or bytecode) into the target; it is verified there',
  usage: `nearbpf load FILE [--program NAME] [--name NAME] [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN]

Sends FILE (an ELF object built with clang -target bpf, or raw bytecode) to the target, which
verifies and compiles it. Prints the program's handle. A rejected program's verifier log is printed.
  --program NAME     program of the object (default: its first)
  --name NAME        name on the target (default: the program name, or the file name)
${connectionUsage()}

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      ...CONNECTION_OPTIONS,
      program: { type: 'string' },
      name: { type: 'string' },
    });
    const [path] = expectPositionals(positionals, ['FILE']);
    const bytes = await readInputFile(path);
    const name = values.name ?? values.program ?? (path.split('/').pop() ?? 'program').replace(/\.[^.]*$/, '');
    const connection = parseConnectionOptions(values);
    await withHost({ ...connection, ioQueues: 0 }, async (host) => {
      const handle = await explained(io, () => new ProgramClient(host).load(bytes, { name, objectProgram: values.program }));
      io.stdout.write(`loaded '${name}' as handle ${handle}\n`);
    });
    return 0;
  },
};

export const execCommand: Command = {
  name: 'exec',
  summary: 'execute a loaded storage function next to a namespace',
  usage: `nearbpf exec NAME --nsid N [--param0 X] [--param1 Y] [--input FILE] [--scan LBA:BLOCKS] [--out FILE] [--stats]

Runs the program NAME on namespace N and prints its 64-bit return value; its output goes to --out
(or is printed as hex).
  --param0 X, --param1 Y   the two 64-bit parameters (decimal or 0x hex)
  --input FILE             parameter blob (at most 4 KiB)
  --scan LBA:BLOCKS        scan mode over that block range
  --out FILE               write the output bytes to FILE
  --stats                  print steps, reads, bytes read, instructions and time on stderr
${connectionUsage()}

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      ...CONNECTION_OPTIONS,
      nsid: { type: 'string' },
      param0: { type: 'string' },
      param1: { type: 'string' },
      input: { type: 'string' },
      scan: { type: 'string' },
      out: { type: 'string' },
      stats: { type: 'boolean', default: false },
    });
    const [name] = expectPositionals(positionals, ['NAME']);
    const nsid = parseNsid(values.nsid);
    const params: [bigint, bigint] = [parseU64(values.param0, '--param0'), parseU64(values.param1, '--param1')];
    let scan: { startLba: number; blocks: number } | undefined;
    if (values.scan !== undefined) {
      const m = /^(\d+):(\d+)$/.exec(values.scan);
      if (!m || Number(m[1]) > 0xffffffff || Number(m[2]) > 0xffffffff)
        throw new UsageError(`--scan must be LBA:BLOCKS, got '${values.scan}'`);
      scan = { startLba: Number(m[1]), blocks: Number(m[2]) };
    }
    const input = values.input !== undefined ? await readInputFile(values.input) : undefined;
    const connection = parseConnectionOptions(values);
    await withHost({ ...connection, ioQueues: 1 }, async (host) => {
      const programs = new ProgramClient(host);
      const handle = await handleOf(programs, name);
      const r = await programs.execute(handle, { nsid, params, input, scan });
      io.stdout.write(`0x${r.returnValue.toString(16)}\n`);
      if (values.out !== undefined) await writeFile(values.out, r.output);
      else if (r.output.length > 0) io.stdout.write(`${r.output.toString('hex')}\n`);
      if (values.stats) {
        const s = r.stats;
        io.stderr.write(
          `steps: ${s.steps}\nreads: ${s.reads}\nbytes read: ${s.bytesRead}\ninstructions: ${s.instructions}\ntime: ${s.durationUs} µs\n`,
        );
      }
    });
    return 0;
  },
};

export const programsCommand: Command = {
  name: 'programs',
  summary: 'list the storage functions this host has loaded, with their statistics',
  usage: `nearbpf programs [--json] [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN]

${connectionUsage()}

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { ...CONNECTION_OPTIONS, json: { type: 'boolean', default: false } });
    expectPositionals(positionals, []);
    const connection = parseConnectionOptions(values);
    await withHost({ ...connection, ioQueues: 0 }, async (host) => {
      const list = await new ProgramClient(host).list();
      if (values.json) {
        io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        `${'handle'.padStart(6)}  ${'name'.padEnd(24)} ${'insns'.padStart(6)} ${'execs'.padStart(8)} ${'fails'.padStart(6)} ${'steps'.padStart(8)} ${'bytes read'.padStart(12)}\n`,
      );
      for (const p of list) {
        io.stdout.write(
          `${String(p.handle).padStart(6)}  ${p.name.padEnd(24)} ${String(p.instructions).padStart(6)} ${String(p.executions).padStart(8)} ${String(p.failures).padStart(6)} ${String(p.steps).padStart(8)} ${String(p.bytesRead).padStart(12)}\n`,
        );
      }
    });
    return 0;
  },
};

export const unloadCommand: Command = {
  name: 'unload',
  summary: 'unload a storage function',
  usage: `nearbpf unload NAME [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN]

${connectionUsage()}

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { ...CONNECTION_OPTIONS });
    const [name] = expectPositionals(positionals, ['NAME']);
    const connection = parseConnectionOptions(values);
    await withHost({ ...connection, ioQueues: 0 }, async (host) => {
      const programs = new ProgramClient(host);
      await programs.unload(await handleOf(programs, name));
      io.stdout.write(`unloaded '${name}'\n`);
    });
    return 0;
  },
};
