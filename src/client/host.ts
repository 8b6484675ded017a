/**
 * NvmeTcpHost: a TypeScript NVMe/TCP initiator. Connects the admin queue (ICReq, Connect, CC.EN,
 * CSTS.RDY, Identify Controller, Set Features Number of Queues), then N I/O queues, and keeps the
 * association alive with Keep Alive commands. Depends only on src/protocol.
 */
import {
  ADMIN_IN_CAPSULE_BYTES,
  AdminOpcode,
  CC_EN,
  CNTLID_DYNAMIC,
  Cns,
  CSTS_RDY,
  CSTS_SHST_COMPLETE,
  CSTS_SHST_MASK,
  DISCOVERY_NQN,
  DSM_DEALLOCATE,
  DSM_RANGE_BYTES,
  FabricsType,
  Feature,
  IDENTIFY_BYTES,
  IoOpcode,
  LogPage,
  Property,
  RW_FUA,
  SQE_BYTES,
} from '../protocol/constants.js';
import { AuthenticationError, CONNECT_AUTHREQ_ASCR, CONNECT_AUTHREQ_ATR } from '../protocol/dhchap.js';
import { TransportError } from '../protocol/errors.js';
import { type DiscoveryLog, encodeConnectData, parseDiscoveryLog } from '../protocol/fabrics.js';
import { makeSqe, type Sqe } from '../protocol/sqe.js';
import { type AuthResult, authenticateQueue, type DhchapOptions, resolveDhchap } from './auth.js';
import { hostIdForNqn, type IdentityPaths, resolveHostIdentity } from './identity.js';
import { type CommandData, type CommandResult, HostQueue } from './queue.js';

export interface HostOptions {
  host: string;
  port: number;
  subsystemNqn: string;
  /** Default: this machine's identity (`resolveHostIdentity`: /etc/nvme, else one created once per user). */
  hostNqn?: string;
  /** 16 bytes; default: the identity's, or derived from `hostNqn` (stable across reconnects). */
  hostId?: Buffer;
  /** Where the default identity is looked up (tests point these at temporary folders). */
  identityPaths?: IdentityPaths;
  /** I/O queues to connect (0 for discovery or admin-only use). */
  ioQueues?: number;
  /** Entries per I/O queue (SQSIZE + 1). */
  queueDepth?: number;
  adminQueueDepth?: number;
  /** KATO sent in Connect; 0 disables keep-alive. */
  keepAliveTimeoutMs?: number;
  /** How often Keep Alive is sent; default KATO / 2. */
  keepAliveIntervalMs?: number;
  headerDigest?: boolean;
  dataDigest?: boolean;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Largest PDU accepted from the target. */
  maxPduBytes?: number;
  /** DH-HMAC-CHAP secrets: used on every queue whose Connect asks for authentication. */
  dhchap?: DhchapOptions;
}

export interface ControllerInfo {
  cntlid: number;
  serial: string;
  model: string;
  firmware: string;
  /** Bytes, or Infinity when MDTS = 0. */
  maxDataTransferBytes: number;
  ioccszBytes: number;
  iorcszBytes: number;
  icdoff: number;
  maxcmd: number;
  nn: number;
  oncs: number;
  vwc: number;
  sgls: number;
  kas: number;
  cntrltype: number;
  subnqn: string;
  version: number;
}

export interface NamespaceInfo {
  nsid: number;
  blockCount: number;
  blockSize: number;
  nguid: Buffer;
}

/** A space-padded ASCII field; some targets pad with NULs instead. */
const ascii = (b: Buffer, at: number, n: number) =>
  b
    .subarray(at, at + n)
    .toString('ascii')
    .replace(/[\0\s]+$/, '');
const cstr = (b: Buffer, at: number, n: number) => {
  const s = b.subarray(at, at + n);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? n : z).toString('utf8');
};
const u64 = (b: Buffer, at: number) => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 0x1_0000_0000;

export function parseIdentifyController(b: Buffer): ControllerInfo {
  const mdts = b[77];
  return {
    cntlid: b.readUInt16LE(78),
    serial: ascii(b, 4, 20),
    model: ascii(b, 24, 40),
    firmware: ascii(b, 64, 8),
    maxDataTransferBytes: mdts === 0 ? Number.POSITIVE_INFINITY : 4096 * 2 ** mdts,
    version: b.readUInt32LE(80),
    cntrltype: b[111],
    kas: b.readUInt16LE(320),
    maxcmd: b.readUInt16LE(514),
    nn: b.readUInt32LE(516),
    oncs: b.readUInt16LE(520),
    vwc: b[525],
    sgls: b.readUInt32LE(536),
    subnqn: cstr(b, 768, 256),
    ioccszBytes: b.readUInt32LE(1792) * 16,
    iorcszBytes: b.readUInt32LE(1796) * 16,
    icdoff: b.readUInt16LE(1800),
  };
}

export function parseIdentifyNamespace(nsid: number, b: Buffer): NamespaceInfo {
  const flbas = b[26] & 0xf;
  const lbads = (b.readUInt32LE(128 + flbas * 4) >>> 16) & 0xff;
  return { nsid, blockCount: u64(b, 0), blockSize: lbads ? 2 ** lbads : 0, nguid: Buffer.from(b.subarray(104, 120)) };
}

const DEFAULTS = {
  ioQueues: 1,
  queueDepth: 32,
  adminQueueDepth: 32,
  keepAliveTimeoutMs: 5000,
  commandTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  maxPduBytes: (4 << 20) + 1024,
};
/** What a host has put on and taken off the wire: NVMe/TCP bytes both ways and commands (round trips). */
export interface HostTraffic {
  bytesSent: number;
  bytesReceived: number;
  commands: number;
}

/** `after - before`, field by field: the traffic of what happened in between. */
export function trafficDelta(before: HostTraffic, after: HostTraffic): HostTraffic {
  return {
    bytesSent: after.bytesSent - before.bytesSent,
    bytesReceived: after.bytesReceived - before.bytesReceived,
    commands: after.commands - before.commands,
  };
}

/** CSTS.RDY / SHST polling: interval and a bound on iterations. */
const POLL_INTERVAL_MS = 5;
const POLL_MAX_ITERATIONS = 2000;

export class NvmeTcpHost {
  readonly hostNqn: string;
  readonly hostId: Buffer;
  cntlid = 0;
  controller!: ControllerInfo;
  private readonly ioQueues: HostQueue[] = [];
  private nextIoQueue = 0;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private readonly namespaces = new Map<number, NamespaceInfo>();
  private closing = false;
  private readonly dhchap: ReturnType<typeof resolveDhchap> | null;
  /** How the admin queue authenticated (null: the target did not ask). */
  authentication: AuthResult | null = null;

  private constructor(
    readonly options: HostOptions,
    readonly admin: HostQueue,
  ) {
    // connect() has resolved the machine identity when no hostNqn was given.
    this.hostNqn = options.hostNqn ?? '';
    this.hostId = options.hostId ?? hostIdForNqn(this.hostNqn);
    this.dhchap = options.dhchap ? resolveDhchap(options.dhchap) : null;
  }

  /** Connect the admin queue, enable the controller, identify it, and connect the I/O queues. */
  static async connect(options: HostOptions): Promise<NvmeTcpHost> {
    if (options.hostNqn === undefined) {
      // Resolve the machine identity before opening a socket (it may fail on unreadable files).
      const identity = resolveHostIdentity(options.identityPaths);
      options = { ...options, hostNqn: identity.hostNqn, hostId: options.hostId ?? identity.hostId };
    }
    if (options.dhchap) resolveDhchap(options.dhchap); // a malformed secret fails before any socket opens
    const o = { ...DEFAULTS, ...options };
    const discovery = o.subsystemNqn === DISCOVERY_NQN;
    const queueOptions = (qid: number, depth: number) => ({
      host: o.host,
      port: o.port,
      qid,
      depth,
      headerDigest: o.headerDigest ?? false,
      dataDigest: o.dataDigest ?? false,
      maxPduBytes: o.maxPduBytes,
      commandTimeoutMs: o.commandTimeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
    });
    const admin = await HostQueue.open(queueOptions(0, o.adminQueueDepth));
    admin.inCapsuleBytes = ADMIN_IN_CAPSULE_BYTES;
    const host = new NvmeTcpHost(options, admin);
    try {
      host.cntlid = await host.connectQueue(admin, 0, o.adminQueueDepth, o.keepAliveTimeoutMs, CNTLID_DYNAMIC);
      const cap = await host.propertyGet(Property.CAP, 8);
      const timeoutMs = Math.max(500, ((cap.lo >>> 24) & 0xff) * 500);
      await host.propertySet(Property.CC, CC_EN | (6 << 16) | (4 << 20));
      await host.pollCsts((csts) => (csts & CSTS_RDY) !== 0, timeoutMs, 'CSTS.RDY');
      host.controller = await host.identifyController();
      if (host.controller.cntlid !== host.cntlid) throw new TransportError('Identify CNTLID differs from Connect');
      const wanted = discovery ? 0 : o.ioQueues;
      if (wanted > 0) {
        const r = await host.admin.submit(
          makeSqe({
            opcode: AdminOpcode.SetFeatures,
            cdw10: Feature.NumberOfQueues,
            cdw11: ((wanted - 1) | ((wanted - 1) << 16)) >>> 0,
          }),
        );
        const granted = Math.min(r.cqe.dw0 & 0xffff, r.cqe.dw0 >>> 16) + 1;
        const count = Math.min(wanted, granted);
        const depth = Math.min(o.queueDepth, host.controller.maxcmd || o.queueDepth);
        for (let qid = 1; qid <= count; qid++) {
          const q = await HostQueue.open(queueOptions(qid, depth));
          host.ioQueues.push(q);
          q.inCapsuleBytes = Math.max(0, host.controller.ioccszBytes - SQE_BYTES);
          await host.connectQueue(q, qid, depth, o.keepAliveTimeoutMs, host.cntlid);
        }
      }
      if (o.keepAliveTimeoutMs > 0) {
        const every = o.keepAliveIntervalMs ?? Math.max(100, Math.floor(o.keepAliveTimeoutMs / 2));
        host.keepAliveTimer = setInterval(() => {
          host.keepAlive().catch(() => {});
        }, every);
        host.keepAliveTimer.unref();
      }
      return host;
    } catch (e) {
      host.disconnect();
      throw e;
    }
  }

  get ioQueueCount(): number {
    return this.ioQueues.length;
  }

  /**
   * Traffic so far, summed over the queues' sockets: `'all'` (default) includes the admin queue
   * (connect, identify, keep-alive, program loads); `'io'` counts only the I/O queues. Take two
   * snapshots and `trafficDelta` them (or use `trafficSince`) to cost an operation.
   */
  traffic(scope: 'all' | 'io' = 'all'): HostTraffic {
    const queues = scope === 'io' ? this.ioQueues : [this.admin, ...this.ioQueues];
    const t: HostTraffic = { bytesSent: 0, bytesReceived: 0, commands: 0 };
    for (const q of queues) {
      const { sent, received } = q.wireBytes;
      t.bytesSent += sent;
      t.bytesReceived += received;
      t.commands += q.commandsSubmitted;
    }
    return t;
  }

  /** Traffic since a `traffic(scope)` snapshot. */
  trafficSince(before: HostTraffic, scope: 'all' | 'io' = 'all'): HostTraffic {
    return trafficDelta(before, this.traffic(scope));
  }

  get digests(): { header: boolean; data: boolean } {
    return this.admin.digestsGranted;
  }

  /** Connect, then DH-HMAC-CHAP when the target asks for it (AUTHREQ.ATR); returns the CNTLID. */
  private async connectQueue(q: HostQueue, qid: number, depth: number, katoMs: number, cntlid: number): Promise<number> {
    const dw0 = await this.fabricsConnect(q, qid, depth, katoMs, cntlid);
    if (dw0 & CONNECT_AUTHREQ_ASCR)
      throw new AuthenticationError('the target asks for a secure channel (TLS), which is not supported');
    if (dw0 & CONNECT_AUTHREQ_ATR) {
      if (!this.dhchap) throw new AuthenticationError('the target requires authentication: give a DH-HMAC-CHAP secret');
      let result: AuthResult;
      try {
        result = await authenticateQueue(q, this.dhchap, this.hostNqn, this.options.subsystemNqn);
      } catch (e) {
        // Some controllers (Linux nvmet) drop the connection instead of answering with Failure1.
        if (e instanceof TransportError) {
          throw new AuthenticationError(`the controller ended the connection during authentication (refused?): ${e.message}`);
        }
        throw e;
      }
      if (qid === 0) this.authentication = result;
    } else if (this.dhchap?.controllerKey) {
      // The controller key means "verify the target": one that does not authenticate cannot be verified.
      throw new AuthenticationError('the target did not ask for authentication, so it cannot prove it knows the controller key');
    }
    return dw0 & 0xffff;
  }

  /** Connect on a queue; returns the response's DW0 (CNTLID and AUTHREQ). */
  private async fabricsConnect(q: HostQueue, qid: number, depth: number, katoMs: number, cntlid: number): Promise<number> {
    const data = encodeConnectData({ hostId: this.hostId, cntlid, subnqn: this.options.subsystemNqn, hostnqn: this.hostNqn });
    const r = await q.submit(
      makeSqe({
        opcode: AdminOpcode.Fabrics,
        nsid: FabricsType.Connect,
        cdw10: (qid << 16) >>> 0,
        cdw11: depth - 1,
        cdw12: katoMs,
      }),
      { dataOut: data },
    );
    return r.cqe.dw0 >>> 0;
  }

  async propertyGet(offset: number, sizeBytes: 4 | 8 = 4): Promise<{ lo: number; hi: number }> {
    const r = await this.admin.submit(
      makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.PropertyGet, cdw10: sizeBytes === 8 ? 1 : 0, cdw11: offset }),
    );
    return { lo: r.cqe.dw0, hi: r.cqe.dw1 };
  }

  async propertySet(offset: number, value: number): Promise<void> {
    await this.admin.submit(
      makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.PropertySet, cdw11: offset, cdw12: value >>> 0 }),
    );
  }

  private async pollCsts(done: (csts: number) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < POLL_MAX_ITERATIONS; i++) {
      if (done((await this.propertyGet(Property.CSTS)).lo)) return;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
    }
    throw new TransportError(`timed out waiting for ${what}`);
  }

  /** Raw admin command. */
  adminCommand(sqe: Sqe, io?: CommandData): Promise<CommandResult> {
    return this.admin.submit(sqe, io);
  }

  /** Raw I/O command on a queue (round-robin when `qid` is omitted). */
  ioCommand(sqe: Sqe, io?: CommandData, qid?: number): Promise<CommandResult> {
    if (this.ioQueues.length === 0) return Promise.reject(new TransportError('no I/O queues connected'));
    const q = qid === undefined ? this.ioQueues[this.nextIoQueue++ % this.ioQueues.length] : this.ioQueues[qid - 1];
    if (!q) return Promise.reject(new TransportError(`no I/O queue ${qid}`));
    return q.submit(sqe, io);
  }

  async identify(cns: number, nsid = 0, cdw11 = 0): Promise<Buffer> {
    const r = await this.admin.submit(makeSqe({ opcode: AdminOpcode.Identify, nsid, cdw10: cns, cdw11 }), {
      dataInBytes: IDENTIFY_BYTES,
    });
    return r.data!;
  }

  async identifyController(): Promise<ControllerInfo> {
    return parseIdentifyController(await this.identify(Cns.Controller));
  }

  async identifyNamespace(nsid: number): Promise<NamespaceInfo> {
    const info = parseIdentifyNamespace(nsid, await this.identify(Cns.Namespace, nsid));
    this.namespaces.set(nsid, info);
    return info;
  }

  async activeNamespaces(after = 0): Promise<number[]> {
    const b = await this.identify(Cns.ActiveNamespaceList, after);
    const out: number[] = [];
    for (let i = 0; i < b.length; i += 4) {
      const n = b.readUInt32LE(i);
      if (n === 0) break;
      out.push(n);
    }
    return out;
  }

  async namespaceIds(nsid: number): Promise<{ nguid?: Buffer; uuid?: Buffer; csi?: number }> {
    const b = await this.identify(Cns.NamespaceDescriptors, nsid);
    const out: { nguid?: Buffer; uuid?: Buffer; csi?: number } = {};
    for (let at = 0; at + 4 <= b.length && b[at] !== 0; ) {
      const [type, len] = [b[at], b[at + 1]];
      const v = Buffer.from(b.subarray(at + 4, at + 4 + len));
      if (type === 2) out.nguid = v;
      else if (type === 3) out.uuid = v;
      else if (type === 4) out.csi = v[0];
      at += 4 + len;
    }
    return out;
  }

  async getLogPage(lid: number, bytes: number, offset = 0): Promise<Buffer> {
    const numd = bytes / 4 - 1;
    const r = await this.admin.submit(
      makeSqe({
        opcode: AdminOpcode.GetLogPage,
        cdw10: (lid | ((numd & 0xffff) << 16)) >>> 0,
        cdw11: Math.floor(numd / 0x10000),
        cdw12: offset % 0x1_0000_0000,
        cdw13: Math.floor(offset / 0x1_0000_0000),
      }),
      { dataInBytes: bytes },
    );
    return r.data!;
  }

  /** The discovery log (on a connection to the discovery NQN): header first, then all entries. */
  async discoveryLog(): Promise<DiscoveryLog> {
    const head = parseDiscoveryLog(await this.getLogPage(LogPage.Discovery, 1024));
    return parseDiscoveryLog(await this.getLogPage(LogPage.Discovery, 1024 * (head.records + 1)));
  }

  async setFeatures(fid: number, cdw11: number): Promise<number> {
    return (await this.admin.submit(makeSqe({ opcode: AdminOpcode.SetFeatures, cdw10: fid, cdw11 }))).cqe.dw0;
  }

  async getFeatures(fid: number, select = 0): Promise<number> {
    return (await this.admin.submit(makeSqe({ opcode: AdminOpcode.GetFeatures, cdw10: (fid | (select << 8)) >>> 0 }))).cqe.dw0;
  }

  async keepAlive(): Promise<void> {
    await this.admin.submit(makeSqe({ opcode: AdminOpcode.KeepAlive }));
  }

  private async ns(nsid: number): Promise<NamespaceInfo> {
    return this.namespaces.get(nsid) ?? this.identifyNamespace(nsid);
  }

  private rwSqe(opcode: number, nsid: number, slba: number, blocks: number, fua = false): Sqe {
    return makeSqe({
      opcode,
      nsid,
      cdw10: slba % 0x1_0000_0000,
      cdw11: Math.floor(slba / 0x1_0000_0000),
      cdw12: ((blocks - 1) | (fua ? RW_FUA : 0)) >>> 0,
    });
  }

  /** Read `blocks` logical blocks starting at `slba`. */
  async read(nsid: number, slba: number, blocks: number, qid?: number): Promise<Buffer> {
    const { blockSize } = await this.ns(nsid);
    const r = await this.ioCommand(this.rwSqe(IoOpcode.Read, nsid, slba, blocks), { dataInBytes: blocks * blockSize }, qid);
    return r.data!;
  }

  /** Write whole blocks; `fua` makes the data durable before completion. */
  async write(nsid: number, slba: number, data: Buffer, options: { fua?: boolean; qid?: number } = {}): Promise<void> {
    const { blockSize } = await this.ns(nsid);
    if (data.length === 0 || data.length % blockSize !== 0)
      throw new RangeError(`write length must be a non-zero multiple of ${blockSize}`);
    await this.ioCommand(
      this.rwSqe(IoOpcode.Write, nsid, slba, data.length / blockSize, options.fua),
      { dataOut: data },
      options.qid,
    );
  }

  async flush(nsid: number, qid?: number): Promise<void> {
    await this.ioCommand(makeSqe({ opcode: IoOpcode.Flush, nsid }), {}, qid);
  }

  async writeZeroes(nsid: number, slba: number, blocks: number, qid?: number): Promise<void> {
    await this.ioCommand(this.rwSqe(IoOpcode.WriteZeroes, nsid, slba, blocks), {}, qid);
  }

  /** Dataset Management with the deallocate attribute. */
  async deallocate(nsid: number, ranges: readonly { slba: number; blocks: number }[], qid?: number): Promise<void> {
    const data = Buffer.alloc(ranges.length * DSM_RANGE_BYTES);
    ranges.forEach((r, i) => {
      data.writeUInt32LE(r.blocks, i * 16 + 4);
      data.writeUInt32LE(r.slba % 0x1_0000_0000, i * 16 + 8);
      data.writeUInt32LE(Math.floor(r.slba / 0x1_0000_0000), i * 16 + 12);
    });
    await this.ioCommand(
      makeSqe({ opcode: IoOpcode.DatasetManagement, nsid, cdw10: ranges.length - 1, cdw11: DSM_DEALLOCATE }),
      { dataOut: data },
      qid,
    );
  }

  /** Orderly shutdown (CC.SHN, wait for SHST complete), then close every queue. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    try {
      if (!this.admin.closed) {
        await this.propertySet(Property.CC, CC_EN | (6 << 16) | (4 << 20) | (1 << 14));
        await this.pollCsts((c) => (c & CSTS_SHST_MASK) === CSTS_SHST_COMPLETE, 10_000, 'CSTS.SHST');
      }
    } finally {
      this.disconnect();
    }
  }

  /** Drop every connection at once (no shutdown). */
  disconnect(): void {
    this.closing = true;
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    for (const q of this.ioQueues) q.close();
    this.admin.close();
  }
}
