import { type FileHandle, open } from 'node:fs/promises';
import { UsageError } from '../../errors.js';
import { describeFsError, expectPositionals, parseCommandArgs } from '../args.js';
import {
  activeNamespace,
  type ByteSink,
  blocksPerCommand,
  CONNECTION_OPTIONS,
  connectionUsage,
  NVME_EXIT_STATUS,
  nvmeOperation,
  parseConnectionOptions,
  parseLbaRange,
  parseNsid,
  streamSink,
  transferName,
  withHost,
} from '../nvme-options.js';
import type { Command } from './command.js';

async function fileSink(path: string): Promise<ByteSink> {
  const fail = (e: unknown): never => {
    throw new UsageError(`cannot write '${path}': ${describeFsError(e)}`);
  };
  const fh: FileHandle = await open(path, 'w').catch(fail);
  return {
    async write(data) {
      for (let at = 0; at < data.length; ) {
        const { bytesWritten } = await fh.write(data, at, data.length - at).catch(fail);
        at += bytesWritten;
      }
    },
    close: () => fh.close().catch(fail),
  };
}

export const readCommand: Command = {
  name: 'read',
  summary: 'read logical blocks from an NVMe/TCP namespace to a file or stdout',
  usage: `nearbpf read --nsid N --slba LBA --count BLOCKS [--output FILE] [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN]

Reads BLOCKS logical blocks starting at LBA and writes their raw bytes to FILE or to stdout (never
to a terminal). Counts above the controller's maximum transfer (MDTS) are split into several Reads,
issued in order; if one fails, the blocks before it have already been written out.
  --nsid N           namespace ID, 1..0xfffffffe
  --slba LBA         first logical block
  --count BLOCKS     number of blocks, at least 1
  -o, --output FILE  write to FILE (created or truncated) instead of stdout
${connectionUsage()}
Numbers are decimal or 0x hex.

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      ...CONNECTION_OPTIONS,
      nsid: { type: 'string' },
      slba: { type: 'string' },
      count: { type: 'string' },
      output: { type: 'string', short: 'o' },
    });
    expectPositionals(positionals, []);
    const nsid = parseNsid(values.nsid);
    const { slba, count } = parseLbaRange(values.slba, values.count);
    const connection = parseConnectionOptions(values);
    const output = values.output;
    // Raw blocks would garble a terminal; demand a file or a redirect.
    if (output === undefined && io.stdout.isTTY) {
      throw new UsageError('refusing to write binary data to a terminal; use --output FILE or redirect stdout');
    }
    await withHost({ ...connection, ioQueues: 1 }, async (host) => {
      const ns = await activeNamespace(host, nsid);
      const perCommand = blocksPerCommand(host.controller.maxDataTransferBytes, ns.blockSize);
      // Opened only once connected, so a refused connection leaves an existing file alone.
      const sink = output === undefined ? streamSink(io.stdout) : await fileSink(output);
      try {
        for (let done = 0; done < count; ) {
          const blocks = Math.min(perCommand, count - done);
          const lba = slba + done;
          const data = await nvmeOperation(transferName('read', nsid, lba, blocks, done, count), 'io', () =>
            host.read(nsid, lba, blocks),
          );
          await sink.write(data);
          done += blocks;
        }
      } catch (e) {
        await sink.close().catch(() => {}); // the transfer's failure is the one to report
        throw e;
      }
      await sink.close();
    });
    return 0;
  },
};
