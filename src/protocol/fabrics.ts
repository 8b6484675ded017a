/**
 * Fabrics data structures shared by host and target: Connect data, discovery log entries.
 */
import { CONNECT_DATA_BYTES, DISCOVERY_LOG_ENTRY_BYTES } from './constants.js';

/** Parsed Connect data (1024 bytes). */
export interface ConnectData {
  hostId: Buffer;
  cntlid: number;
  subnqn: string;
  hostnqn: string;
}

const cString = (b: Buffer, at: number, width: number) => {
  const s = b.subarray(at, at + width);
  const end = s.indexOf(0);
  return s.subarray(0, end < 0 ? width : end).toString('utf8');
};

export function parseConnectData(b: Buffer): ConnectData | null {
  if (b.length < CONNECT_DATA_BYTES) return null;
  return {
    hostId: Buffer.from(b.subarray(0, 16)),
    cntlid: b.readUInt16LE(16),
    subnqn: cString(b, 256, 256),
    hostnqn: cString(b, 512, 256),
  };
}

/** Connect data from its fields; NQNs longer than 255 bytes are cut (validate them first). */
export function encodeConnectData(d: ConnectData): Buffer {
  const b = Buffer.alloc(CONNECT_DATA_BYTES);
  d.hostId.copy(b, 0, 0, 16);
  b.writeUInt16LE(d.cntlid, 16);
  b.write(d.subnqn, 256, 255, 'utf8');
  b.write(d.hostnqn, 512, 255, 'utf8');
  return b;
}

export interface DiscoveryLogEntry {
  trtype: number;
  adrfam: number;
  subtype: number;
  portId: number;
  cntlid: number;
  trsvcid: string;
  subnqn: string;
  traddr: string;
}

export interface DiscoveryLog {
  generation: number;
  records: number;
  entries: DiscoveryLogEntry[];
}

const u64 = (b: Buffer, at: number) => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 0x1_0000_0000;

/** Parse a discovery log page (header and as many whole entries as `b` holds). */
export function parseDiscoveryLog(b: Buffer): DiscoveryLog {
  const records = u64(b, 8);
  const entries: DiscoveryLogEntry[] = [];
  for (let i = 0; i < records && DISCOVERY_LOG_ENTRY_BYTES * (i + 2) <= b.length; i++) {
    const at = DISCOVERY_LOG_ENTRY_BYTES * (i + 1);
    entries.push({
      trtype: b[at],
      adrfam: b[at + 1],
      subtype: b[at + 2],
      portId: b.readUInt16LE(at + 4),
      cntlid: b.readUInt16LE(at + 6),
      trsvcid: cString(b, at + 32, 32).trim(),
      subnqn: cString(b, at + 256, 256),
      traddr: cString(b, at + 512, 256).trim(),
    });
  }
  return { generation: u64(b, 0), records, entries };
}
