import { expectPositionals, parseCommandArgs } from '../args.js';
import {
  activeNamespace,
  CONNECTION_OPTIONS,
  connectionUsage,
  NVME_EXIT_STATUS,
  nvmeOperation,
  parseConnectionOptions,
  parseNsid,
  withHost,
} from '../nvme-options.js';
import type { Command } from './command.js';

export const flushCommand: Command = {
  name: 'flush',
  summary: "make a namespace's completed writes durable (NVMe Flush)",
  usage: `nearbpf flush --nsid N [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN]

Sends a Flush for namespace N: every write completed before it is on stable storage when it succeeds.
  --nsid N           namespace ID, 1..0xfffffffe (decimal or 0x hex)
${connectionUsage()}

${NVME_EXIT_STATUS}`,

  async run(args, _io) {
    const { values, positionals } = parseCommandArgs(args, { ...CONNECTION_OPTIONS, nsid: { type: 'string' } });
    expectPositionals(positionals, []);
    const nsid = parseNsid(values.nsid);
    const connection = parseConnectionOptions(values);
    await withHost({ ...connection, ioQueues: 1 }, async (host) => {
      await activeNamespace(host, nsid);
      await nvmeOperation(`flush of namespace ${nsid}`, 'io', () => host.flush(nsid));
    });
    return 0;
  },
};
