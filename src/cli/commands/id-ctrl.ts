import { parseIdentifyController } from '../../client/host.js';
import { Cns } from '../../protocol/constants.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import {
  CONNECTION_OPTIONS,
  connectionUsage,
  NVME_EXIT_STATUS,
  nvmeOperation,
  parseConnectionOptions,
  withHost,
} from '../nvme-options.js';
import type { Command } from './command.js';

const CONTROLLER_TYPES: Record<number, string> = { 0: 'unspecified', 1: 'io', 2: 'discovery', 3: 'admin' };

const hex = (value: number, digits: number) => `0x${value.toString(16).padStart(digits, '0')}`;

/** The fields of Identify Controller the CLI shows, in display order. */
export function controllerFields(raw: Buffer) {
  const c = parseIdentifyController(raw);
  const mdts = raw[77];
  return {
    model: c.model,
    serial: c.serial,
    firmware: c.firmware,
    cntlid: c.cntlid,
    cntrltype: CONTROLLER_TYPES[c.cntrltype] ?? String(c.cntrltype),
    version: `${c.version >>> 16}.${(c.version >>> 8) & 0xff}.${c.version & 0xff}`,
    subnqn: c.subnqn,
    mdts,
    /** Bytes, or null when MDTS = 0 (no limit); assumes the 4 KiB minimum page size. */
    maxDataTransferBytes: Number.isFinite(c.maxDataTransferBytes) ? c.maxDataTransferBytes : null,
    nn: c.nn,
    maxcmd: c.maxcmd,
    oncs: c.oncs,
    vwc: c.vwc,
    sgls: c.sgls,
    kas: c.kas,
    ioccszBytes: c.ioccszBytes,
    iorcszBytes: c.iorcszBytes,
    icdoff: c.icdoff,
  };
}

export function formatControllerText(f: ReturnType<typeof controllerFields>): string {
  const lines: [string, string | number][] = [
    ['model', f.model],
    ['serial', f.serial],
    ['firmware', f.firmware],
    ['cntlid', f.cntlid],
    ['cntrltype', f.cntrltype],
    ['version', f.version],
    ['subnqn', f.subnqn],
    ['mdts', f.maxDataTransferBytes === null ? `${f.mdts} (no limit)` : `${f.mdts} (${f.maxDataTransferBytes} bytes)`],
    ['nn', f.nn],
    ['maxcmd', f.maxcmd],
    ['oncs', hex(f.oncs, 4)],
    ['vwc', hex(f.vwc, 2)],
    ['sgls', hex(f.sgls, 8)],
    ['kas', `${f.kas} (${f.kas * 100} ms)`],
    ['ioccsz', `${f.ioccszBytes} bytes`],
    ['iorcsz', `${f.iorcszBytes} bytes`],
    ['icdoff', f.icdoff],
  ];
  return lines.map(([k, v]) => `${k}: ${v}\n`).join('');
}

export const idCtrlCommand: Command = {
  name: 'id-ctrl',
  summary: "print an NVMe/TCP controller's Identify Controller data",
  usage: `nearbpf id-ctrl [--addr HOST:PORT] [--nqn NQN] [--hostnqn NQN] [--json]

Connects to the subsystem and prints Identify Controller: model, serial, firmware, controller ID,
type, version, MDTS (maximum transfer), number of namespaces, MAXCMD, ONCS, VWC, SGLS, KAS and the
in-capsule sizes (IOCCSZ, IORCSZ, ICDOFF), one "key: value" a line.
${connectionUsage()}
  --json             the same fields as JSON (maxDataTransferBytes is null when MDTS = 0, no limit)

${NVME_EXIT_STATUS}`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { ...CONNECTION_OPTIONS, json: { type: 'boolean', default: false } });
    expectPositionals(positionals, []);
    const connection = parseConnectionOptions(values);
    const raw = await withHost({ ...connection, ioQueues: 0 }, (host) =>
      nvmeOperation('identify controller', 'admin', () => host.identify(Cns.Controller)),
    );
    const fields = controllerFields(raw);
    io.stdout.write(values.json ? `${JSON.stringify(fields, null, 2)}\n` : formatControllerText(fields));
    return 0;
  },
};
