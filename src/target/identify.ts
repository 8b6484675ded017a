/**
 * Pure builders for the data structures the admin commands return: Identify (controller, namespace,
 * active namespace list, namespace identification descriptors, NVM I/O command set controller) and the
 * log pages (error information, SMART, commands supported and effects, discovery).
 */
import {
  AdminOpcode,
  DISCOVERY_LOG_ENTRY_BYTES,
  IDENTIFY_BYTES,
  IoOpcode,
  NVME_VERSION,
  SQE_BYTES,
} from '../protocol/constants.js';

export interface ControllerIdentity {
  cntlid: number;
  subsystemNqn: string;
  serial: string;
  model: string;
  firmware: string;
  discovery: boolean;
  /** MDTS as a power of two of 4 KiB pages (0 = no limit). */
  mdts: number;
  maxQueueDepth: number;
  inCapsuleDataBytes: number;
  /** Highest NSID (NN). */
  maxNsid: number;
  /** The target listens on more than one port (CMIC.MPORTS). */
  multiPort: boolean;
}

function putAscii(buf: Buffer, at: number, width: number, s: string): void {
  buf.fill(0x20, at, at + width);
  buf.write(s.slice(0, width), at, 'ascii');
}

function putU64(buf: Buffer, at: number, v: number): void {
  buf.writeUInt32LE(v % 0x1_0000_0000, at);
  buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}

/** CMIC bit 0 (MPORTS): the subsystem may be reached through two or more ports. */
const MULTI_PORT = 0x01;
/** CMIC bit 1 (MCTRS): the subsystem may have several controllers (one per host association) sharing namespaces. */
const MULTI_CONTROLLER = 0x02;

/** Identify Controller (CNS 01h) with every field the Linux initiator checks. */
export function identifyController(c: ControllerIdentity): Buffer {
  const b = Buffer.alloc(IDENTIFY_BYTES);
  putAscii(b, 4, 20, c.serial); // SN
  putAscii(b, 24, 40, c.model); // MN
  putAscii(b, 64, 8, c.firmware); // FR
  b[72] = 6; // RAB
  b[76] = c.discovery ? 0 : MULTI_CONTROLLER | (c.multiPort ? MULTI_PORT : 0); // CMIC
  b[77] = c.mdts; // MDTS
  b.writeUInt16LE(c.cntlid, 78);
  b.writeUInt32LE(NVME_VERSION, 80); // VER
  b.writeUInt32LE(0, 92); // OAES: no asynchronous events are ever reported
  b[111] = c.discovery ? 2 : 1; // CNTRLTYPE: 1 I/O, 2 discovery
  b.writeUInt16LE(0, 256); // OACS
  b[258] = 3; // ACL (0's based)
  b[259] = 3; // AERL (0's based): 4 outstanding AERs, held until the association ends
  b[260] = 0x03; // FRMW: one read-only slot
  b[261] = 0x06; // LPA: commands supported and effects log, extended Get Log Page (offsets)
  b[262] = 0; // ELPE: one error log entry
  b.writeUInt16LE(1, 320); // KAS: keep-alive granularity 100 ms
  b[512] = 0x66; // SQES
  b[513] = 0x44; // CQES
  b.writeUInt16LE(c.maxQueueDepth, 514); // MAXCMD
  b.writeUInt32LE(c.maxNsid, 516); // NN
  b.writeUInt16LE(c.discovery ? 0 : 0x0c, 520); // ONCS: Dataset Management, Write Zeroes
  b[525] = c.discovery ? 0 : 0x01; // VWC present: Flush is meaningful
  // SGLS: SGLs without alignment constraints (bit 0), offset in-capsule data descriptors (bit 20).
  b.writeUInt32LE(0x1 | (1 << 20), 536);
  b.write(c.subsystemNqn, 768, 256, 'utf8'); // SUBNQN
  b.writeUInt32LE((SQE_BYTES + c.inCapsuleDataBytes) / 16, 1792); // IOCCSZ (16-byte units, SQE included)
  b.writeUInt32LE(1, 1796); // IORCSZ: 16-byte CQE only
  b.writeUInt16LE(0, 1800); // ICDOFF: in-capsule data right after the SQE
  b[1802] = 0; // FCATT: dynamic controller model
  b[1803] = 1; // MSDBD: one SGL data block descriptor
  return b;
}

export interface NamespaceIdentity {
  blockCount: number;
  lbads: number;
  nguid: Buffer;
}

/** Identify Namespace (CNS 00h). */
export function identifyNamespace(ns: NamespaceIdentity): Buffer {
  const b = Buffer.alloc(IDENTIFY_BYTES);
  putU64(b, 0, ns.blockCount); // NSZE
  putU64(b, 8, ns.blockCount); // NCAP
  putU64(b, 16, ns.blockCount); // NUSE
  b[25] = 0; // NLBAF: one format
  b[26] = 0; // FLBAS: format 0
  b[30] = 0x01; // NMIC: may be shared by several controllers
  b[33] = 0x01; // DLFEAT: deallocated blocks read as zeros
  ns.nguid.copy(b, 104); // NGUID
  b.writeUInt32LE(ns.lbads << 16, 128); // LBAF0: no metadata, LBADS
  return b;
}

/** Active Namespace ID list (CNS 02h): NSIDs greater than `after`, ascending, up to 1024. */
export function activeNamespaceList(nsids: readonly number[], after: number): Buffer {
  const b = Buffer.alloc(IDENTIFY_BYTES);
  const list = nsids.filter((n) => n > after).sort((x, y) => x - y);
  list.slice(0, IDENTIFY_BYTES / 4).forEach((n, i) => {
    b.writeUInt32LE(n, i * 4);
  });
  return b;
}

/** Namespace Identification Descriptor list (CNS 03h): NGUID, UUID and command set (NVM). */
export function namespaceDescriptors(ids: { nguid: Buffer; uuid: Buffer }): Buffer {
  const b = Buffer.alloc(IDENTIFY_BYTES);
  let at = 0;
  const put = (type: number, value: Buffer) => {
    b[at] = type;
    b[at + 1] = value.length;
    value.copy(b, at + 4);
    at += 4 + value.length;
  };
  put(2, ids.nguid);
  put(3, ids.uuid);
  put(4, Buffer.of(0));
  return b;
}

/** I/O command set specific Identify Controller for the NVM command set (CNS 06h, CSI 0). */
export function nvmIoControllerIdentify(limits: { mdts: number; maxDeallocateRangeBlocks: number }): Buffer {
  const b = Buffer.alloc(IDENTIFY_BYTES);
  b[1] = limits.mdts; // WZSL: Write Zeroes size limit, as MDTS
  b[3] = 0; // DMRL: no limit beyond the 256 ranges of the command
  b.writeUInt32LE(Math.min(limits.maxDeallocateRangeBlocks, 0xffffffff), 4); // DMRSL (logical blocks)
  return b;
}

/** SMART / Health Information (log 02h), with the counters we keep. */
export function smartLog(stats: IoStats): Buffer {
  const b = Buffer.alloc(512);
  b.writeUInt16LE(293 + 20, 1); // composite temperature, kelvin
  b[3] = 100; // available spare %
  b[4] = 10; // available spare threshold %
  // Data units are thousands of 512-byte units, rounded up.
  putU64(b, 32, Math.ceil(stats.bytesRead / 512_000));
  putU64(b, 48, Math.ceil(stats.bytesWritten / 512_000));
  putU64(b, 64, stats.readCommands);
  putU64(b, 80, stats.writeCommands);
  return b;
}

export interface IoStats {
  bytesRead: number;
  bytesWritten: number;
  readCommands: number;
  writeCommands: number;
}

/** Commands Supported and Effects (log 05h). */
export function commandsSupportedLog(): Buffer {
  const b = Buffer.alloc(4096);
  const CSUPP = 1;
  const LBCC = 2; // logical block content change
  for (const op of [
    AdminOpcode.GetLogPage,
    AdminOpcode.Identify,
    AdminOpcode.Abort,
    AdminOpcode.SetFeatures,
    AdminOpcode.GetFeatures,
    AdminOpcode.AsyncEventRequest,
    AdminOpcode.KeepAlive,
  ]) {
    b.writeUInt32LE(CSUPP, op * 4);
  }
  b.writeUInt32LE(CSUPP, 1024 + IoOpcode.Flush * 4);
  b.writeUInt32LE(CSUPP, 1024 + IoOpcode.Read * 4);
  for (const op of [IoOpcode.Write, IoOpcode.WriteZeroes, IoOpcode.DatasetManagement])
    b.writeUInt32LE(CSUPP | LBCC, 1024 + op * 4);
  return b;
}

export interface DiscoveryEntry {
  subsystemNqn: string;
  address: string;
  port: number;
  portId: number;
}

/** Discovery log page (70h): header then one 1024-byte entry per subsystem. */
export function discoveryLog(entries: readonly DiscoveryEntry[], generation: number): Buffer {
  const b = Buffer.alloc(DISCOVERY_LOG_ENTRY_BYTES * (entries.length + 1));
  putU64(b, 0, generation); // GENCTR
  putU64(b, 8, entries.length); // NUMREC
  b.writeUInt16LE(0, 16); // RECFMT
  entries.forEach((e, i) => {
    const at = DISCOVERY_LOG_ENTRY_BYTES * (i + 1);
    b[at] = 3; // TRTYPE: TCP
    b[at + 1] = e.address.includes(':') ? 2 : 1; // ADRFAM: IPv6 / IPv4
    b[at + 2] = 2; // SUBTYPE: NVM subsystem
    b[at + 3] = 0; // TREQ: secure channel not specified
    b.writeUInt16LE(e.portId, at + 4);
    b.writeUInt16LE(0xffff, at + 6); // CNTLID: dynamic
    b.writeUInt16LE(32, at + 8); // ASQSZ
    putAscii(b, at + 32, 32, String(e.port)); // TRSVCID
    b.write(e.subsystemNqn, at + 256, 256, 'utf8'); // SUBNQN
    putAscii(b, at + 512, 256, e.address); // TRADDR
    b[at + 768] = 0; // TSAS.SECTYPE: none
  });
  return b;
}
