/**
 * A controller = one association: the admin queue plus its I/O queues, bound by CNTLID. Holds the
 * controller properties (CC/CSTS), features, the keep-alive timer, and answers admin commands.
 *
 * Asynchronous events: OAES = 0 (we never report any). Asynchronous Event Requests are still accepted,
 * up to AERL + 1 = 4, and stay outstanding until the association ends, which is what the base spec
 * asks of a controller that has nothing to report.
 */
import {
  AdminOpcode,
  CC_EN,
  CC_SHN_MASK,
  Cns,
  CommandSpecificStatus,
  CSTS_RDY,
  CSTS_SHST_COMPLETE,
  CSTS_SHST_MASK,
  FabricsType,
  Feature,
  LogPage,
  NVME_VERSION,
  Property,
} from '../protocol/constants.js';
import { type Sqe, sqeFctype } from '../protocol/sqe.js';
import {
  type Completion,
  INVALID_FIELD,
  INVALID_NAMESPACE,
  INVALID_OPCODE,
  SEQUENCE_ERROR,
  specific,
  success,
} from './completion.js';
import type { HostAccess, TargetLimits } from './config.js';
import type { TargetConnection } from './connection.js';
import {
  activeNamespaceList,
  commandsSupportedLog,
  type DiscoveryEntry,
  discoveryLog,
  type IoStats,
  identifyController,
  identifyNamespace,
  namespaceDescriptors,
  nvmIoControllerIdentify,
  smartLog,
} from './identify.js';
import type { IoContext } from './io.js';
import { type Logger, logEvent } from './logger.js';
import type { Namespace } from './namespace.js';

export interface Subsystem {
  nqn: string;
  serial: string;
  model: string;
  discovery: boolean;
  namespaces: Map<number, Namespace>;
  stats: IoStats;
}

export interface ControllerEnv {
  limits: TargetLimits;
  log: Logger;
  firmware: string;
  /** Subsystems this host may see, for the discovery log. */
  discoveryEntries(hostNqn: string, local: { address: string; port: number }): DiscoveryEntry[];
  discoveryGeneration(): number;
  /** Ports the target listens on (configured), for CMIC.MPORTS. */
  portCount(): number;
  destroyed(ctl: Controller): void;
  /** The keep-alive timer ended the association (metrics). */
  keepAliveExpired?(ctl: Controller): void;
}

/** Outstanding Asynchronous Event Requests we hold (AERL + 1). */
const MAX_AERS = 4;
/** CAP.TO: worst-case time to ready, 500 ms units. */
const CAP_TIMEOUT_UNITS = 15;
const CHANGEABLE = 0x4;

export class Controller {
  cc = 0;
  csts = 0;
  readonly ioQueues = new Map<number, TargetConnection>();
  ioQueueCount: number;
  readonly io: IoContext;
  private readonly aers: number[] = [];
  private readonly features = new Map<number, number>([
    [Feature.Arbitration, 0],
    [Feature.PowerManagement, 0],
    [Feature.TemperatureThreshold, 343],
    [Feature.ErrorRecovery, 0],
    [Feature.VolatileWriteCache, 1],
    [Feature.InterruptCoalescing, 0],
    [Feature.InterruptVectorConfig, 0],
    [Feature.WriteAtomicity, 0],
    [Feature.AsyncEventConfig, 0],
  ]);
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private destroyed = false;

  constructor(
    readonly cntlid: number,
    readonly subsystem: Subsystem,
    readonly hostNqn: string,
    readonly hostId: Buffer,
    readonly access: HostAccess,
    private katoMs: number,
    readonly admin: TargetConnection,
    private readonly env: ControllerEnv,
    /** Counters of the port this association lives on (its identity too: one object per port). */
    readonly port: IoStats,
  ) {
    this.ioQueueCount = env.limits.maxIoQueues;
    this.io = {
      namespaces: subsystem.namespaces,
      readOnly: access === 'read-only',
      maxDataTransferBytes: env.limits.maxDataTransferBytes,
      maxDeallocateRangeBytes: env.limits.maxDeallocateRangeBytes,
      stats: subsystem.stats,
      portStats: port,
    };
    this.armKeepAlive();
  }

  get ready(): boolean {
    return (this.csts & CSTS_RDY) !== 0;
  }

  /** Keep-alive: any command on any queue of the association restarts the timer. */
  touch(): void {
    this.keepAliveTimer?.refresh();
  }

  private armKeepAlive(): void {
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    // KATO 0 disables keep-alive; we still drop an association idle for idleTimeoutMs.
    const ms = this.katoMs > 0 ? this.katoMs : this.env.limits.idleTimeoutMs;
    this.keepAliveTimer = setTimeout(() => {
      logEvent(this.env.log, 'keepalive.expired', { ...this.logIds(), timeoutMs: ms });
      this.env.keepAliveExpired?.(this);
      this.destroy('keep_alive_expired');
    }, ms);
    this.keepAliveTimer.unref();
  }

  /** What identifies this association in the log. */
  logIds(): { host: string; subsystem: string; cntlid: number; remote: string } {
    return { host: this.hostNqn, subsystem: this.subsystem.nqn, cntlid: this.cntlid, remote: this.admin.remote };
  }

  /** Why the association ended (for the log), once it has. */
  endReason = '';

  /** End the association: close every queue. Idempotent. */
  destroy(reason: string): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.endReason = reason;
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    this.admin.shutdown();
    for (const q of this.ioQueues.values()) q.shutdown();
    this.env.destroyed(this);
  }

  queueClosed(conn: TargetConnection): void {
    if (conn === this.admin) this.destroy('admin_queue_closed');
    else if (conn.binding) this.ioQueues.delete(conn.binding.qid);
  }

  async adminCommand(conn: TargetConnection, sqe: Sqe, data: Buffer | null): Promise<Completion | null> {
    if (sqe.opcode === AdminOpcode.Fabrics) return this.fabrics(sqe);
    if (!this.ready) return SEQUENCE_ERROR;
    switch (sqe.opcode) {
      case AdminOpcode.Identify:
        return this.identify(sqe);
      case AdminOpcode.GetLogPage:
        return this.getLogPage(conn, sqe);
      case AdminOpcode.SetFeatures:
        return this.setFeatures(sqe, data);
      case AdminOpcode.GetFeatures:
        return this.getFeatures(sqe);
      case AdminOpcode.KeepAlive:
        return success();
      case AdminOpcode.Abort:
        return success(1); // DW0 bit 0: command not aborted
      case AdminOpcode.AsyncEventRequest:
        if (this.aers.length >= MAX_AERS) return specific(CommandSpecificStatus.AsyncEventLimitExceeded);
        this.aers.push(sqe.cid);
        return null;
      default:
        return INVALID_OPCODE;
    }
  }

  private fabrics(sqe: Sqe): Completion {
    const size8 = (sqe.cdw10 & 0x7) === 1;
    const offset = sqe.cdw11;
    switch (sqeFctype(sqe)) {
      case FabricsType.PropertyGet:
        switch (offset) {
          case Property.CAP: {
            const lo = ((this.env.limits.maxQueueDepth - 1) | (1 << 16) | (CAP_TIMEOUT_UNITS << 24)) >>> 0;
            return success(lo, null, size8 ? 1 << 5 : 0); // CAP.CSS bit 37: NVM command set
          }
          case Property.VS:
            return success(NVME_VERSION);
          case Property.CC:
            return success(this.cc);
          case Property.CSTS:
            return success(this.csts);
          case Property.NSSR:
            return success(0);
          default:
            return INVALID_FIELD;
        }
      case FabricsType.PropertySet:
        if (offset === Property.CC) {
          this.setCc(sqe.cdw12 >>> 0);
          return success();
        }
        return offset === Property.NSSR ? success() : INVALID_FIELD;
      case FabricsType.Disconnect:
        return success();
      default:
        return INVALID_OPCODE;
    }
  }

  private setCc(value: number): void {
    const old = this.cc;
    this.cc = value;
    if (value & CC_EN && !(old & CC_EN)) {
      this.csts = (this.csts | CSTS_RDY) & ~CSTS_SHST_MASK;
      logEvent(this.env.log, 'controller.enabled', this.logIds());
    } else if (!(value & CC_EN) && old & CC_EN) {
      // Controller reset: I/O queues go away, the admin queue stays.
      this.csts &= ~CSTS_RDY;
      for (const q of this.ioQueues.values()) q.shutdown();
    }
    if (value & CC_SHN_MASK && !(old & CC_SHN_MASK)) {
      // Shutdown: make written data durable, then report SHST = complete (01b "occurring" meanwhile).
      this.csts = (this.csts & ~CSTS_SHST_MASK) | (1 << 2);
      Promise.allSettled([...this.subsystem.namespaces.values()].map((ns) => ns.flush())).then(() => {
        this.csts = (this.csts & ~CSTS_SHST_MASK) | CSTS_SHST_COMPLETE;
      });
    }
  }

  private identify(sqe: Sqe): Completion {
    const cns = sqe.cdw10 & 0xff;
    const sub = this.subsystem;
    const maxNsid = Math.max(0, ...sub.namespaces.keys());
    if (cns === Cns.Controller) {
      return success(
        0,
        identifyController({
          cntlid: this.cntlid,
          subsystemNqn: sub.nqn,
          serial: sub.serial,
          model: sub.model,
          firmware: this.env.firmware,
          discovery: sub.discovery,
          mdts: Math.log2(this.env.limits.maxDataTransferBytes / 4096),
          maxQueueDepth: this.env.limits.maxQueueDepth,
          inCapsuleDataBytes: this.env.limits.inCapsuleDataBytes,
          maxNsid,
          multiPort: this.env.portCount() > 1,
        }),
      );
    }
    if (sub.discovery) return INVALID_FIELD;
    switch (cns) {
      case Cns.Namespace: {
        const ns = sub.namespaces.get(sqe.nsid);
        if (ns) return success(0, identifyNamespace({ blockCount: ns.blockCount, lbads: ns.lbads, nguid: ns.ids.nguid }));
        // An inactive NSID in range reads as zeros.
        return sqe.nsid >= 1 && sqe.nsid <= maxNsid ? success(0, Buffer.alloc(4096)) : INVALID_NAMESPACE;
      }
      case Cns.ActiveNamespaceList:
        if (sqe.nsid >= 0xfffffffe) return INVALID_NAMESPACE;
        return success(0, activeNamespaceList([...sub.namespaces.keys()], sqe.nsid));
      case Cns.NamespaceDescriptors: {
        const ns = sub.namespaces.get(sqe.nsid);
        return ns ? success(0, namespaceDescriptors(ns.ids)) : INVALID_NAMESPACE;
      }
      case Cns.IoCommandSetController:
        if (sqe.cdw11 >>> 24 !== 0) return INVALID_FIELD;
        return success(
          0,
          nvmIoControllerIdentify({
            mdts: Math.log2(this.env.limits.maxDataTransferBytes / 4096),
            maxDeallocateRangeBlocks: Math.floor(this.env.limits.maxDeallocateRangeBytes / 4096),
          }),
        );
      default:
        return INVALID_FIELD;
    }
  }

  private getLogPage(conn: TargetConnection, sqe: Sqe): Completion {
    const lid = sqe.cdw10 & 0xff;
    const bytes = ((sqe.cdw11 & 0xffff) * 0x10000 + (sqe.cdw10 >>> 16) + 1) * 4;
    const offset = sqe.cdw12 + sqe.cdw13 * 0x1_0000_0000;
    if (offset % 4 !== 0 || bytes > sqe.sglLength) return INVALID_FIELD;
    let log: Buffer;
    const sub = this.subsystem;
    switch (lid) {
      case LogPage.ErrorInformation:
        log = Buffer.alloc(64);
        break;
      case LogPage.Smart:
        log = smartLog(sub.stats);
        break;
      case LogPage.FirmwareSlot:
        log = Buffer.alloc(512);
        log[0] = 1;
        log.write(this.env.firmware.padEnd(8, ' '), 8, 8, 'ascii');
        break;
      case LogPage.CommandsSupported:
        if (sub.discovery) return specific(CommandSpecificStatus.InvalidLogPage);
        log = commandsSupportedLog();
        break;
      case LogPage.Discovery:
        if (!sub.discovery) return specific(CommandSpecificStatus.InvalidLogPage);
        log = discoveryLog(this.env.discoveryEntries(this.hostNqn, conn.local), this.env.discoveryGeneration());
        break;
      default:
        return specific(CommandSpecificStatus.InvalidLogPage);
    }
    if (offset > log.length) return INVALID_FIELD;
    const out = Buffer.alloc(bytes);
    log.copy(out, 0, offset, Math.min(log.length, offset + bytes));
    return success(0, out);
  }

  private setFeatures(sqe: Sqe, _data: Buffer | null): Completion {
    const fid = sqe.cdw10 & 0xff;
    if (sqe.cdw10 & 0x8000_0000) return specific(CommandSpecificStatus.FeatureNotSaveable);
    const value = sqe.cdw11 >>> 0;
    switch (fid) {
      case Feature.NumberOfQueues: {
        const nsqr = value & 0xffff;
        const ncqr = value >>> 16;
        if (nsqr === 0xffff || ncqr === 0xffff) return INVALID_FIELD;
        if (this.ioQueues.size > 0) return SEQUENCE_ERROR;
        const max = this.env.limits.maxIoQueues;
        const nsqa = Math.min(nsqr + 1, max);
        const ncqa = Math.min(ncqr + 1, max);
        this.ioQueueCount = Math.min(nsqa, ncqa);
        return success(((nsqa - 1) | ((ncqa - 1) << 16)) >>> 0);
      }
      case Feature.KeepAliveTimer:
        if (value > this.env.limits.maxKeepAliveTimeoutMs) return INVALID_FIELD;
        this.katoMs = value;
        this.armKeepAlive();
        return success();
      default:
        if (!this.features.has(fid)) return INVALID_FIELD;
        this.features.set(fid, value);
        return success();
    }
  }

  private getFeatures(sqe: Sqe): Completion {
    const fid = sqe.cdw10 & 0xff;
    const sel = (sqe.cdw10 >>> 8) & 0x7;
    const known = fid === Feature.NumberOfQueues || fid === Feature.KeepAliveTimer || this.features.has(fid);
    if (!known) return INVALID_FIELD;
    if (sel === 3) return success(CHANGEABLE);
    if (fid === Feature.NumberOfQueues) return success(((this.ioQueueCount - 1) | ((this.ioQueueCount - 1) << 16)) >>> 0);
    if (fid === Feature.KeepAliveTimer) return success(this.katoMs);
    return success(this.features.get(fid) ?? 0);
  }
}
