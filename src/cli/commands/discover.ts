import type { DiscoveryLogEntry } from '../../protocol/fabrics.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import {
  CONNECTION_OPTIONS,
  connectionUsage,
  DISCOVERY_NQN,
  NVME_EXIT_STATUS,
  nvmeOperation,
  parseConnectionOptions,
  withHost,
} from '../nvme-options.js';
import type { Command } from './command.js';

const TRTYPE: Record<number, string> = { 1: 'rdma', 2: 'fc', 3: 'tcp', 254: 'loop' };
const ADRFAM: Record<number, string> = { 1: 'ipv4', 2: 'ipv6', 3: 'ib', 4: 'fc', 254: 'loop' };
const SUBTYPE: Record<number, string> = { 1: 'referral', 2: 'nvme', 3: 'discovery' };

const named = (names: Record<number, string>, value: number) => names[value] ?? String(value);

/** The discovery log entries as an aligned table with a header row. */
export function formatDiscoveryTable(entries: readonly DiscoveryLogEntry[]): string {
  const header = ['trtype', 'adrfam', 'traddr', 'trsvcid', 'subnqn'];
  const rows = entries.map((e) => [named(TRTYPE, e.trtype), named(ADRFAM, e.adrfam), e.traddr, e.trsvcid, e.subnqn]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

export const discoverCommand: Command = {
  name: 'discover',
  summary: 'list the subsystems an NVMe/TCP discovery controller offers',
  usage: `nearbpf discover [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN] [--json]

Connects to the discovery subsystem and prints its discovery log: one row per subsystem with its
transport type, address family, address, port and NQN.
${connectionUsage(DISCOVERY_NQN)}
  --json             the log (generation and every entry field) as JSON

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { ...CONNECTION_OPTIONS, json: { type: 'boolean', default: false } });
    expectPositionals(positionals, []);
    const connection = parseConnectionOptions(values, DISCOVERY_NQN);
    const log = await withHost({ ...connection, ioQueues: 0 }, (host) =>
      nvmeOperation('get discovery log page', 'admin', () => host.discoveryLog()),
    );
    if (values.json) {
      const entries = log.entries.map((e) => ({
        trtype: named(TRTYPE, e.trtype),
        adrfam: named(ADRFAM, e.adrfam),
        subtype: named(SUBTYPE, e.subtype),
        portId: e.portId,
        cntlid: e.cntlid,
        traddr: e.traddr,
        trsvcid: e.trsvcid,
        subnqn: e.subnqn,
      }));
      io.stdout.write(`${JSON.stringify({ generation: log.generation, records: log.records, entries }, null, 2)}\n`);
    } else {
      io.stdout.write(formatDiscoveryTable(log.entries));
    }
    return 0;
  },
};
