import { type FileHandle, open } from 'node:fs/promises';
import { UsageError } from '../../errors.js';
import { describeFsError, expectPositionals, parseCommandArgs } from '../args.js';
import {
  activeNamespace,
  blocksPerCommand,
  CONNECTION_OPTIONS,
  connectionUsage,
  type InputStream,
  NVME_EXIT_STATUS,
  nvmeOperation,
  parseConnectionOptions,
  parseNsid,
  parseNumber,
  stdinOf,
  transferName,
  withHost,
} from '../nvme-options.js';
import type { Command } from './command.js';

/** The data to write: its length is known before anything is sent, so a partial last block is refused up front. */
interface Source {
  readonly length: number;
  /** Exactly `length` bytes at `offset`. */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

function bufferSource(data: Buffer): Source {
  return { length: data.length, read: async (offset, length) => data.subarray(offset, offset + length), close: async () => {} };
}

async function readAll(stream: InputStream, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  } catch (e) {
    throw new UsageError(`cannot read ${what}: ${describeFsError(e)}`);
  }
  return Buffer.concat(chunks);
}

/** A regular file is read piece by piece as the writes go; anything else (a FIFO, /dev/stdin) is read whole first. */
async function fileSource(path: string): Promise<Source> {
  const fail = (e: unknown): never => {
    throw new UsageError(`cannot read '${path}': ${describeFsError(e)}`);
  };
  const fh: FileHandle = await open(path, 'r').catch(fail);
  try {
    const stat = await fh.stat().catch(fail);
    if (stat.isDirectory()) throw new UsageError(`cannot read '${path}': is a directory`);
    if (!stat.isFile()) {
      const data = await fh.readFile().catch(fail);
      await fh.close();
      return bufferSource(data);
    }
    return {
      length: stat.size,
      async read(offset, length) {
        const buffer = Buffer.alloc(length);
        for (let at = 0; at < length; ) {
          const { bytesRead } = await fh.read(buffer, at, length - at, offset + at).catch(fail);
          if (bytesRead === 0) throw new UsageError(`cannot read '${path}': it shrank while being written out`);
          at += bytesRead;
        }
        return buffer;
      },
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close().catch(() => {});
    throw e;
  }
}

export const writeCommand: Command = {
  name: 'write',
  summary: 'write whole logical blocks from a file or stdin to an NVMe/TCP namespace',
  usage: `nearbpf write --nsid N --slba LBA [--input FILE] [--fua] [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN]

Writes the bytes of FILE (or of stdin, which must not be a terminal) to namespace N from LBA on.
Their length must be a whole, non-zero number of the namespace's blocks; anything else is refused
before a byte is written. Inputs above the controller's maximum transfer (MDTS) are split into
several Writes, issued in order; if one fails, the blocks before it have already been written.
  --nsid N           namespace ID, 1..0xfffffffe
  --slba LBA         first logical block
  -i, --input FILE   read the data from FILE instead of stdin
  --fua              force unit access: each Write completes only once its data is durable
${connectionUsage()}
Numbers are decimal or 0x hex.

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      ...CONNECTION_OPTIONS,
      nsid: { type: 'string' },
      slba: { type: 'string' },
      input: { type: 'string', short: 'i' },
      fua: { type: 'boolean', default: false },
    });
    expectPositionals(positionals, []);
    const nsid = parseNsid(values.nsid);
    const slba = parseNumber(values.slba, '--slba', 0, Number.MAX_SAFE_INTEGER);
    const connection = parseConnectionOptions(values);
    const fua = values.fua;
    let source: Source;
    if (values.input === undefined) {
      const stdin = stdinOf(io);
      if (stdin.isTTY) throw new UsageError('refusing to read data from a terminal; use --input FILE or pipe the data in');
      source = bufferSource(await readAll(stdin, 'stdin'));
    } else {
      source = await fileSource(values.input);
    }
    try {
      const what = values.input === undefined ? 'stdin' : `'${values.input}'`;
      if (source.length === 0) throw new UsageError(`nothing to write: ${what} is empty`);
      await withHost({ ...connection, ioQueues: 1 }, async (host) => {
        const { blockSize } = await activeNamespace(host, nsid);
        if (source.length % blockSize !== 0) {
          throw new UsageError(
            `${what} is ${source.length} bytes, not a whole number of the ${blockSize}-byte blocks of namespace ${nsid} ` +
              `(${Math.floor(source.length / blockSize)} blocks and ${source.length % blockSize} bytes); nothing was written`,
          );
        }
        const count = source.length / blockSize;
        if (count - 1 > Number.MAX_SAFE_INTEGER - slba) throw new UsageError(`--slba ${slba} + ${count} blocks overflows 2^53`);
        const perCommand = blocksPerCommand(host.controller.maxDataTransferBytes, blockSize);
        for (let done = 0; done < count; ) {
          const blocks = Math.min(perCommand, count - done);
          const lba = slba + done;
          const data = await source.read(done * blockSize, blocks * blockSize);
          await nvmeOperation(transferName('write', nsid, lba, blocks, done, count), 'io', () =>
            host.write(nsid, lba, data, { fua }),
          );
          done += blocks;
        }
      });
    } finally {
      await source.close();
    }
    return 0;
  },
};
