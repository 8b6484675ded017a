/** `nearbpf hostnqn`: the host identity the NVMe commands connect as (see src/client/identity.ts). */
import { resolveHostIdentity } from '../../client/identity.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import type { Command } from './command.js';

const uuidText = (b: Buffer) => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export const hostnqnCommand: Command = {
  name: 'hostnqn',
  summary: 'print the host NQN and Host Identifier the NVMe commands connect as (created once if needed)',
  usage: `nearbpf hostnqn [--json]

Prints this machine's host NQN: /etc/nvme/hostnqn (and hostid) when present, as nvme-cli uses them;
otherwise a UUID-based NQN created once in $XDG_CONFIG_HOME/nearbpf (or ~/.config/nearbpf).
Access rules and host keys on a target name this NQN.
  --json             print {"hostNqn", "hostId", "source"}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' } });
    expectPositionals(positionals, []);
    const id = resolveHostIdentity();
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ hostNqn: id.hostNqn, hostId: uuidText(id.hostId), source: id.source })}\n`);
    } else {
      io.stdout.write(`${id.hostNqn}\nhostid ${uuidText(id.hostId)} (from ${id.source})\n`);
    }
    return 0;
  },
};
