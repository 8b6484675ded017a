import { GenericStatus } from '../../protocol/constants.js';
import { NvmeStatusError } from '../../protocol/errors.js';
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

/** A u64 field; exact up to 2^53, which covers any namespace a JavaScript host can address. */
const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));

/** Hex, or null for an identifier that is all zeros (not reported). */
function hexId(bytes: Buffer | undefined): string | null {
  return bytes === undefined || bytes.every((b) => b === 0) ? null : bytes.toString('hex');
}

function uuidText(bytes: Buffer | undefined): string | null {
  const h = hexId(bytes);
  return h === null ? null : `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface NamespaceFields {
  nsid: number;
  sizeBlocks: number;
  sizeBytes: number;
  capacityBlocks: number;
  capacityBytes: number;
  utilizationBlocks: number;
  utilizationBytes: number;
  blockSize: number;
  metadataBytes: number;
  nguid: string | null;
  eui64: string | null;
  uuid: string | null;
}

/** Identify Namespace (NSZE, NCAP, NUSE, the LBA format in use, EUI64) plus the descriptor list's NGUID/UUID. */
export function namespaceFields(nsid: number, raw: Buffer, ids: { nguid?: Buffer; uuid?: Buffer }): NamespaceFields {
  const format = raw.readUInt32LE(128 + (raw[26] & 0xf) * 4);
  const blockSize = 2 ** ((format >>> 16) & 0xff);
  const [nsze, ncap, nuse] = [u64(raw, 0), u64(raw, 8), u64(raw, 16)];
  return {
    nsid,
    sizeBlocks: nsze,
    sizeBytes: nsze * blockSize,
    capacityBlocks: ncap,
    capacityBytes: ncap * blockSize,
    utilizationBlocks: nuse,
    utilizationBytes: nuse * blockSize,
    blockSize,
    metadataBytes: format & 0xffff,
    nguid: hexId(ids.nguid ?? raw.subarray(104, 120)),
    eui64: hexId(raw.subarray(120, 128)),
    uuid: uuidText(ids.uuid),
  };
}

export function formatNamespaceText(f: NamespaceFields): string {
  const blocks = (n: number, bytes: number) => `${n} blocks (${bytes} bytes)`;
  const lines: [string, string | number][] = [
    ['nsid', f.nsid],
    ['nsze', blocks(f.sizeBlocks, f.sizeBytes)],
    ['ncap', blocks(f.capacityBlocks, f.capacityBytes)],
    ['nuse', blocks(f.utilizationBlocks, f.utilizationBytes)],
    ['block size', `${f.blockSize} bytes`],
    ['metadata size', `${f.metadataBytes} bytes`],
    ['nguid', f.nguid ?? '(none)'],
    ['eui64', f.eui64 ?? '(none)'],
    ['uuid', f.uuid ?? '(none)'],
  ];
  return lines.map(([k, v]) => `${k}: ${v}\n`).join('');
}

export const idNsCommand: Command = {
  name: 'id-ns',
  summary: "print a namespace's size, capacity, block size and identifiers",
  usage: `nearbpf id-ns --nsid N [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN] [--json]

Prints Identify Namespace for namespace N: size (NSZE), capacity (NCAP) and utilisation (NUSE) in
blocks and bytes, the block and metadata size of the LBA format in use, and the NGUID, EUI-64 and
UUID (from the namespace identification descriptors), one "key: value" a line.
  --nsid N           namespace ID, 1..0xfffffffe (decimal or 0x hex)
${connectionUsage()}
  --json             the same fields as JSON (absent identifiers are null)

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      ...CONNECTION_OPTIONS,
      nsid: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    expectPositionals(positionals, []);
    const nsid = parseNsid(values.nsid);
    const connection = parseConnectionOptions(values);
    const fields = await withHost({ ...connection, ioQueues: 0 }, async (host) => {
      const ns = await activeNamespace(host, nsid);
      const ids = await nvmeOperation(`identify namespace ${nsid} descriptors`, 'admin', () => host.namespaceIds(nsid)).catch(
        (e: unknown) => {
          // Controllers before NVMe 1.3 may not know CNS 03h; Identify Namespace still has the NGUID.
          if (e instanceof NvmeStatusError && e.sct === 0 && e.sc === GenericStatus.InvalidField) return {};
          throw e;
        },
      );
      return namespaceFields(nsid, ns.raw, ids);
    });
    io.stdout.write(values.json ? `${JSON.stringify(fields, null, 2)}\n` : formatNamespaceText(fields));
    return 0;
  },
};
