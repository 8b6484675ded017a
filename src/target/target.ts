/**
 * NvmeTcpTarget: the node:net server, the subsystems with their open namespaces, and the controller
 * registry (CNTLID -> association). Each accepted socket becomes a TargetConnection; Connect binds it to
 * a new controller (admin queue) or to an existing one (I/O queue).
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  AdminOpcode,
  CNTLID_DYNAMIC,
  CNTLID_MAX,
  CommandSpecificStatus,
  DISCOVERY_NQN,
  FabricsType,
  GenericStatus,
  IoOpcode,
  NQN_MAX_BYTES,
  StatusCodeType,
} from '../protocol/constants.js';
import { CONNECT_AUTHREQ_ATR } from '../protocol/dhchap.js';
import { parseConnectData } from '../protocol/fabrics.js';
import { type Sqe, sqeFctype } from '../protocol/sqe.js';
import { type HostCredentials, QueueAuthentication } from './auth.js';
import { type Completion, INVALID_OPCODE, SEQUENCE_ERROR, specific, success } from './completion.js';
import { formatHostPort, type HostRule, hostAccess, type ListenAddress, type TargetConfig, validateConfig } from './config.js';
import { type CommandHandle, type CommandRouter, TargetConnection } from './connection.js';
import { Controller, type ControllerEnv, type Subsystem } from './controller.js';
import { decodeError } from './execution-wire.js';
import type { DiscoveryEntry, IoStats } from './identify.js';
import { executeIo } from './io.js';
import { IoThreadPool, type Registry, SharedPortStats } from './io-threads.js';
import { type Logger, LogRateLimit, logEvent, silentLogger } from './logger.js';
import { type IoMeter, NO_METRICS, opcodeName, statusName, type TargetGauges, type TargetMetrics } from './metrics.js';
import { Namespace } from './namespace.js';
import { CACHE_PAGE_BYTES, PageCache, type SharedPageCache } from './page-cache.js';
import { isProgramAdminOpcode, isProgramIoOpcode, type ProgramCaller, ProgramService } from './programs.js';
import { Admission } from './quotas.js';

const FIRMWARE = '0.1.0';

/** A status that says the backing store failed (media errors, internal errors), not the host's command. */
function isDeviceError(status: number): boolean {
  const sct = (status >>> 9) & 0x7;
  const sc = (status >>> 1) & 0xff;
  return sct === StatusCodeType.MediaError || (sct === StatusCodeType.Generic && sc === GenericStatus.InternalError);
}

interface SubsystemEntry extends Subsystem {
  hosts: HostRule[];
  requireAuthentication: boolean;
}

export interface TargetAddress {
  host: string;
  port: number;
}

/** Counters of one port: what its associations moved (the data path counts here and per subsystem). */
export interface PortStats extends IoStats {
  connectionsOpened: number;
  /** Connections open now (the port's thread keeps it; the main thread reads it). */
  connectionsOpen: number;
}

const copyStats = (s: PortStats): PortStats => ({
  connectionsOpened: s.connectionsOpened,
  connectionsOpen: s.connectionsOpen,
  bytesRead: s.bytesRead,
  bytesWritten: s.bytesWritten,
  readCommands: s.readCommands,
  writeCommands: s.writeCommands,
});

/** An association living on an I/O thread, as the main thread knows it. */
interface RemoteAssociation {
  cntlid: number;
  hostNqn: string;
  subsystem: SubsystemEntry;
  port: number;
  /** What the program service keys an association's state by (host NQN, namespaces, log ids). */
  caller: ProgramCaller;
}

/**
 * One listen address. Every port exports every subsystem; an association (admin queue and I/O queues)
 * lives on the port its admin queue connected to.
 */
export interface TargetPort {
  /** PORTID in the discovery log: position in `listen` from 1. */
  readonly id: number;
  /** The configured address (port 0: ephemeral, fixed at the first listen and kept across restarts). */
  readonly configured: ListenAddress;
  server: Server | null;
  /** Bound address while listening; the last bound address when stopped. */
  address: TargetAddress | null;
  readonly connections: Set<TargetConnection>;
  readonly stats: PortStats;
  /** Served by another thread: `listening` as that thread last reported it. */
  remote: { listening: boolean } | null;
}

/** A Connect the controller registry refused for want of a CNTLID (Connect Controller Busy). */
export const NO_CNTLID = 'no controller id left';

/** A queue's Connect as an I/O thread reports it to the main thread. */
export interface QueueReservation {
  /** Names the queue until it is released: thread and connection. */
  key: string;
  host: string;
  /** The host's address (per-address quotas). */
  address: string;
  /** ADDRESS:PORT of the host's end (logs). */
  remote: string;
  admin: boolean;
  subsystem: string;
  /** PORTID the queue connected to. */
  port: number;
}

/**
 * What an I/O thread asks the main thread, which keeps what every path must see the same way: the
 * controller ids, the per-host and per-address quotas, and the storage functions with their maps.
 * The data path never goes through it.
 */
export interface Coordinator {
  /**
   * A queue's Connect: reserve it against the host's and the address's quotas, and for an admin queue
   * a CNTLID unique across every thread. Resolves to the CNTLID (0 for an I/O queue) or the quota that is
   * full (`NO_CNTLID` when no id is left). `key` names the queue until `release(key)`.
   */
  reserve(r: QueueReservation): Promise<number | string>;
  /** The queue closed (for an admin queue: the association ended, its CNTLID is free). */
  release(key: string): void;
  /** A program command of association `cntlid` (admin: LOAD, LIST, maps...; io: EXECUTE). */
  program(kind: 'admin' | 'io', cntlid: number, qid: number, sqe: Sqe, data: Buffer | null): Promise<Completion>;
}

/** How a target runs inside an I/O thread: which ports it serves, and who keeps the registry. */
export interface IoThreadRole {
  coordinator: Coordinator;
  /** PORTIDs this thread listens on; the others are listed in discovery from `setPortTable`. */
  ownedPorts: readonly number[];
  /** Counters of each owned port, in memory the main thread reads (by PORTID). */
  portStats: ReadonlyMap<number, PortStats>;
  /** Prefix of this thread's queue keys. */
  thread: number;
  /** The main thread's page caches, by subsystem NQN and NSID (`\0` between): shared by every thread. */
  caches?: ReadonlyMap<string, SharedPageCache>;
  /** Starts Execute commands on the execution workers from this thread (io-executions.ts); null: leave it to the coordinator. */
  executions?: { execute(ctl: Controller, qid: number, sqe: Sqe, data: Buffer | null): Promise<Completion> | null };
}

/** Where every port is and whether it listens: what the main thread tells each I/O thread. */
export interface PortTableEntry {
  id: number;
  host: string;
  port: number;
  listening: boolean;
}

/** Snapshot of a port for monitoring and tests. */
export interface PortStatus {
  id: number;
  host: string;
  port: number;
  listening: boolean;
  connections: number;
  associations: number;
  stats: PortStats;
}

export class NvmeTcpTarget implements CommandRouter {
  private readonly ports: TargetPort[];
  private readonly portOf = new Map<TargetConnection, TargetPort>();
  /** GENCTR of the discovery log: bumped whenever a port starts or stops listening. */
  private discoveryGeneration = 1;
  private readonly subsystems = new Map<string, SubsystemEntry>();
  private readonly controllers = new Map<number, Controller>();
  private readonly owners = new Map<TargetConnection, Controller>();
  private readonly connections = new Set<TargetConnection>();
  /** DH-HMAC-CHAP state of the queues whose host must authenticate. */
  private readonly auths = new Map<TargetConnection, QueueAuthentication>();
  /** Pending-handshake pool and per-host / per-address quotas of queues and associations. */
  readonly admission: Admission<TargetConnection | string>;
  private readonly inflight = new Set<Promise<unknown>>();
  private nextCntlid = 1;
  private closing: Promise<void> | null = null;
  private readonly env: ControllerEnv;
  /** Storage functions: loaded per host, run next to this target's namespaces. */
  readonly programs: ProgramService;

  /** I/O command metrics per association (absent with metrics off). */
  private readonly ioMeters = new Map<Controller, IoMeter>();

  private readonly coordinator: Coordinator | null;
  private readonly executions: IoThreadRole['executions'];
  private readonly thread: number;
  /** Main thread with I/O threads: they serve every port; this keeps the registry and the programs. */
  private ioThreads: IoThreadPool | null = null;
  /** Queues of the I/O threads by key, and their associations by CNTLID. */
  private readonly remoteQueues = new Map<string, { cntlid: number }>();
  private readonly remoteAssociations = new Map<number, RemoteAssociation>();

  private constructor(
    readonly config: TargetConfig,
    private readonly log: Logger,
    private readonly metrics: TargetMetrics,
    role: IoThreadRole | null,
  ) {
    this.coordinator = role?.coordinator ?? null;
    this.executions = role?.executions;
    this.thread = role?.thread ?? 0;
    this.admission = new Admission<TargetConnection | string>(config.limits, (conn, reason) => {
      // Queues of I/O threads (keys) leave the pending pool at once; only sockets of this thread wait in it.
      if (typeof conn === 'string') return;
      logEvent(log, 'connection.dropped', { conn: conn.id, remote: conn.remote, reason });
      conn.destroy();
    });
    this.ports = config.listen.map((configured, i) => ({
      id: i + 1,
      configured: { ...configured },
      server: null,
      address: null,
      connections: new Set<TargetConnection>(),
      stats: role?.portStats.get(i + 1) ??
        (config.ioThreads > 0 && role === null ? new SharedPortStats() : null) ?? {
          connectionsOpened: 0,
          connectionsOpen: 0,
          bytesRead: 0,
          bytesWritten: 0,
          readCommands: 0,
          writeCommands: 0,
        },
      remote: (role && !role.ownedPorts.includes(i + 1)) || (config.ioThreads > 0 && role === null) ? { listening: false } : null,
    }));
    this.programs = new ProgramService(log, config.programs, config.limits, metrics);
    this.env = {
      limits: config.limits,
      log,
      firmware: FIRMWARE,
      discoveryEntries: (hostNqn, local) => this.discoveryEntries(hostNqn, local),
      discoveryGeneration: () => this.discoveryGeneration,
      portCount: () => this.ports.length,
      destroyed: (ctl) => {
        this.controllers.delete(ctl.cntlid);
        this.ioMeters.delete(ctl);
        this.programs.associationEnded(ctl);
        logEvent(log, 'association.ended', { ...ctl.logIds(), reason: ctl.endReason });
      },
      keepAliveExpired: (ctl) => metrics.keepAliveExpired(ctl.subsystem.nqn, ctl.hostNqn),
    };
  }

  /** Open every namespace (creating sparse files as needed) and build the subsystems; does not listen yet. */
  static async create(
    config: TargetConfig,
    log: Logger = silentLogger,
    metrics: TargetMetrics = NO_METRICS,
    role: IoThreadRole | null = null,
  ): Promise<NvmeTcpTarget> {
    const t = new NvmeTcpTarget(config, log, metrics, role);
    metrics.attach(t.gauges());
    t.subsystems.set(DISCOVERY_NQN, {
      nqn: DISCOVERY_NQN,
      serial: 'nearbpf-discovery',
      model: 'nearbpf discovery',
      discovery: true,
      namespaces: new Map(),
      stats: { bytesRead: 0, bytesWritten: 0, readCommands: 0, writeCommands: 0 },
      hosts: [{ nqn: '*', access: 'read-only' }],
      requireAuthentication: false,
    });
    try {
      for (const [i, sc] of config.subsystems.entries()) {
        const namespaces = new Map<number, Namespace>();
        t.subsystems.set(sc.nqn, {
          nqn: sc.nqn,
          serial: sc.serial,
          model: sc.model,
          discovery: false,
          namespaces,
          stats: { bytesRead: 0, bytesWritten: 0, readCommands: 0, writeCommands: 0 },
          hosts: sc.hosts,
          requireAuthentication: sc.requireAuthentication,
        });
        for (const [j, nc] of sc.namespaces.entries()) {
          // An I/O thread has its own file handles and the main thread's page cache (shared memory:
          // a write on any thread updates it under its lock, see page-cache.ts).
          const shared = role?.caches?.get(`${sc.nqn}\0${nc.nsid}`);
          namespaces.set(
            nc.nsid,
            await Namespace.open(
              nc,
              sc.nqn,
              `subsystems[${i}].namespaces[${j}]`,
              role === null ? config.limits.readCacheBytes : 0,
              shared && PageCache.attach(shared),
            ),
          );
        }
      }
    } catch (e) {
      await t.closeNamespaces();
      throw e;
    }
    if (config.ioThreads > 0 && role === null) t.startIoThreads();
    return t;
  }

  /** Start listening on every configured port (port 0 = ephemeral); the bound addresses in `listen` order. */
  async listen(): Promise<TargetAddress[]> {
    if (this.ioThreads !== null) await this.ioThreads.ready();
    try {
      for (const p of this.ports) if (p.remote === null || this.ioThreads !== null) await this.startPort(p.id);
    } catch (e) {
      for (const p of this.ports) if (p.server || p.remote?.listening) await this.stopPort(p.id);
      throw e;
    }
    return this.addresses;
  }

  /** An I/O thread: where the other threads' ports are and whether they listen (discovery lists them). */
  setPortTable(table: readonly PortTableEntry[]): void {
    for (const e of table) {
      const p = this.ports[e.id - 1];
      if (p?.remote == null) continue;
      if (p.remote.listening !== e.listening) this.discoveryGeneration++;
      p.remote.listening = e.listening;
      p.address = { host: e.host, port: e.port };
    }
  }

  /** The first port's address (the one single-port users connect to). */
  get address(): TargetAddress | null {
    return this.ports[0].address;
  }

  /** Every port's bound address, in `listen` order (null entries for ports never bound). */
  get addresses(): TargetAddress[] {
    return this.ports.map((p) => p.address).filter((a): a is TargetAddress => a !== null);
  }

  private port(portId: number): TargetPort {
    const p = this.ports[portId - 1];
    if (p === undefined) throw new RangeError(`no port ${portId} (the target has ${this.ports.length})`);
    return p;
  }

  /**
   * Listen on one port again (or for the first time). A port that was bound before comes back on the same
   * address, so hosts that lost the path reconnect to it.
   */
  startPort(portId: number): Promise<TargetAddress> {
    const p = this.port(portId);
    if (this.closing) return Promise.reject(new Error('target is closing'));
    if (this.ioThreads !== null && p.remote !== null) return this.startRemotePort(p, this.ioThreads);
    if (p.server && p.address) return Promise.resolve(p.address);
    const server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(p, socket));
    // Established queues and the pending pool together; each pool is held to its own size by admission.
    server.maxConnections = this.config.limits.maxConnections + this.config.limits.maxPendingConnections;
    const host = p.address?.host ?? p.configured.host;
    const port = p.address?.port ?? p.configured.port;
    return new Promise((resolve, reject) => {
      const failed = (e: Error) => {
        logEvent(this.log, 'listener.error', { port: p.id, listen: formatHostPort({ host, port }), error: e.message });
        reject(e);
      };
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        server.on('error', (e) =>
          logEvent(this.log, 'listener.error', { port: p.id, listen: formatHostPort({ host, port }), error: e.message }),
        );
        const a = server.address();
        if (a === null || typeof a === 'string') return reject(new Error('no TCP address'));
        p.server = server;
        p.address = { host: a.address, port: a.port };
        this.discoveryGeneration++;
        logEvent(this.log, 'port.listening', { port: p.id, listen: formatHostPort({ host: a.address, port: a.port }) });
        resolve(p.address);
      });
    });
  }

  /**
   * Stop listening on one port and end the associations that live on it (their queues close, as when the
   * link goes down); the other ports and their associations are untouched. Commands already executing on
   * the port's queues finish first; their answers are lost with the connections.
   */
  async stopPort(portId: number): Promise<void> {
    const p = this.port(portId);
    if (this.ioThreads !== null && p.remote !== null) {
      if (p.remote.listening) this.discoveryGeneration++;
      p.remote.listening = false;
      this.ioThreads.broadcast(this.portTable());
      await this.ioThreads.stopPort(portId);
      return;
    }
    const server = p.server;
    p.server = null;
    if (server) {
      this.discoveryGeneration++;
      logEvent(this.log, 'port.stopped', { port: p.id, listen: formatHostPort(p.address ?? p.configured) });
    }
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const ctl of [...this.controllers.values()]) if (ctl.port === p.stats) ctl.destroy('port_stopped');
    for (const c of p.connections) c.destroy();
    await closed;
  }

  private async startRemotePort(p: TargetPort, pool: IoThreadPool): Promise<TargetAddress> {
    const a = await pool.startPort(p.id);
    p.address = a;
    if (p.remote && !p.remote.listening) this.discoveryGeneration++;
    if (p.remote) p.remote.listening = true;
    pool.broadcast(this.portTable());
    return a;
  }

  private portTable(): PortTableEntry[] {
    return this.ports
      .filter((p) => p.address !== null)
      .map((p) => ({
        id: p.id,
        host: (p.address as TargetAddress).host,
        port: (p.address as TargetAddress).port,
        listening: p.server !== null || p.remote?.listening === true,
      }));
  }

  /**
   * Start the I/O threads once the namespaces are open: each gets the page caches, the execution
   * workers open every namespace, and the threads learn their ids, so executions started on an I/O
   * thread read what this thread's executions read.
   */
  private startIoThreads(): void {
    const stats = new Map(this.ports.map((p) => [p.id, p.stats as SharedPortStats]));
    const pool = this.programs.pool;
    const caches = new Map<string, SharedPageCache>();
    const list: { nqn: string; nsid: number; id: number }[] = [];
    for (const sub of this.subsystems.values()) {
      for (const [nsid, ns] of sub.namespaces) {
        const shareable = ns.shareable();
        if (shareable.shared.cache !== undefined) caches.set(`${sub.nqn}\0${nsid}`, shareable.shared.cache);
        pool?.registerNamespace(shareable);
        list.push({ nqn: sub.nqn, nsid, id: shareable.shared.id });
      }
    }
    const exited = (threadId: number) => {
      // It may have died holding a page cache's lock.
      for (const sub of this.subsystems.values()) for (const ns of sub.namespaces.values()) ns.cache?.recoverLockOf(threadId);
    };
    this.ioThreads = new IoThreadPool(this.config, this.config.ioThreads, stats, this.registry(), this.log, {
      pool,
      caches,
      exited,
    });
    if (pool === undefined) return;
    // I/O threads start executions themselves (io-executions.ts): they mirror the programs.
    this.ioThreads.send({ type: 'exec-namespaces', list });
    this.programs.programsChanged = (change) => this.ioThreads?.send({ type: 'exec-program', change });
  }

  /** The registry the I/O threads ask (main thread). */
  private registry(): Registry {
    return {
      reserve: (_thread, r) => {
        const sub = this.subsystems.get(r.subsystem);
        if (sub === undefined) return 'unknown subsystem';
        let cntlid = 0;
        if (r.admin) {
          const id = this.allocateCntlid();
          if (id === null) return NO_CNTLID;
          cntlid = id;
        }
        this.admission.open(r.key, r.address);
        const full = this.admission.reserve(r.key, r.host, r.admin);
        if (full !== null) {
          this.admission.closed(r.key);
          this.metrics.quotaHit(r.host, full);
          return full;
        }
        this.admission.ready(r.key);
        this.remoteQueues.set(r.key, { cntlid });
        if (r.admin) {
          // The program service keys per-association state by this object and reads its host and namespaces.
          const ids = { host: r.host, subsystem: sub.nqn, cntlid, remote: r.remote };
          const io = {
            namespaces: sub.namespaces,
            readOnly: hostAccess(sub, r.host) !== 'read-write',
            maxDataTransferBytes: this.config.limits.maxDataTransferBytes,
            maxDeallocateRangeBytes: this.config.limits.maxDeallocateRangeBytes,
            stats: sub.stats,
            portStats: this.port(r.port).stats,
          };
          const caller: ProgramCaller = { hostNqn: r.host, io, logIds: () => ids };
          this.remoteAssociations.set(cntlid, { cntlid, hostNqn: r.host, subsystem: sub, port: r.port, caller });
        }
        return cntlid;
      },
      release: (key) => {
        const q = this.remoteQueues.get(key);
        if (q === undefined) return;
        this.remoteQueues.delete(key);
        this.admission.closed(key);
        const a = q.cntlid === 0 ? undefined : this.remoteAssociations.get(q.cntlid);
        if (a !== undefined) {
          this.remoteAssociations.delete(q.cntlid);
          this.programs.associationEnded(a.caller);
        }
      },
      program: (kind, cntlid, qid, sqe, data) => {
        const a = this.remoteAssociations.get(cntlid);
        if (a === undefined) return Promise.resolve(SEQUENCE_ERROR);
        return kind === 'admin' ? this.programs.admin(a.caller, sqe, data) : this.programs.io(a.caller, qid, sqe, data);
      },
      executedElsewhere: (records) => {
        for (const r of records) {
          const caller = this.remoteAssociations.get(r.cntlid)?.caller;
          this.programs.executedElsewhere(caller, { ...r, error: r.error === null ? null : decodeError(r.error) });
        }
      },
      portChanged: () => {},
    };
  }

  private accept(p: TargetPort, socket: Socket): void {
    const conn = new TargetConnection(socket, this, this.config.limits, this.config.digests, this.log);
    this.connections.add(conn);
    p.connections.add(conn);
    this.portOf.set(conn, p);
    p.stats.connectionsOpened++;
    p.stats.connectionsOpen++;
    this.admission.open(conn, socket.remoteAddress ?? 'unknown');
    this.metrics.connectionOpened();
    logEvent(this.log, 'connection.accepted', { conn: conn.id, remote: conn.remote, port: p.id });
  }

  /** Every port: address, whether it listens, its connections, associations and I/O counters. */
  portStatus(): PortStatus[] {
    return this.ports.map((p) => {
      let associations = 0;
      for (const ctl of this.controllers.values()) if (ctl.port === p.stats) associations++;
      for (const a of this.remoteAssociations.values()) if (a.port === p.id) associations++;
      return {
        id: p.id,
        host: p.address?.host ?? p.configured.host,
        port: p.address?.port ?? p.configured.port,
        listening: p.server !== null || p.remote?.listening === true,
        connections: p.stats.connectionsOpen,
        associations,
        stats: copyStats(p.stats),
      };
    });
  }

  /** Subsystems and namespaces, for logging what is exported. */
  describe(): { nqn: string; namespaces: { nsid: number; path: string; sizeBytes: number; blockSize: number }[] }[] {
    return [...this.subsystems.values()]
      .filter((s) => !s.discovery)
      .map((s) => ({
        nqn: s.nqn,
        namespaces: [...s.namespaces.values()].map((n) => ({
          nsid: n.nsid,
          path: n.path,
          sizeBytes: n.sizeBytes,
          blockSize: n.blockSize,
        })),
      }));
  }

  get associationCount(): number {
    return this.controllers.size + this.remoteAssociations.size;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** What the metrics read at scrape time: queues, associations, page caches, the verifier queue. */
  gauges(): TargetGauges {
    const t = this;
    return {
      *queues() {
        for (const [conn, ctl] of t.owners)
          yield { subsystem: ctl.subsystem.nqn, host: ctl.hostNqn, inFlight: conn.stats().outstanding };
      },
      *associations() {
        for (const ctl of t.controllers.values()) yield { subsystem: ctl.subsystem.nqn, host: ctl.hostNqn };
        for (const a of t.remoteAssociations.values()) yield { subsystem: a.subsystem.nqn, host: a.hostNqn };
      },
      *pageCaches() {
        for (const s of t.subsystems.values()) {
          for (const ns of s.namespaces.values()) {
            const c = ns.cache;
            if (c)
              yield {
                subsystem: s.nqn,
                nsid: ns.nsid,
                hits: c.hits,
                misses: c.misses,
                evictions: c.evictions,
                bytes: c.size * CACHE_PAGE_BYTES,
              };
          }
        }
      },
      verifierQueue: () => t.programs.verifier.total(),
      schedulerWaiting: () => t.programs.runtime.scheduler.waiting,
      *ports() {
        for (const p of t.portStatus())
          yield {
            id: p.id,
            address: formatHostPort(p),
            listening: p.listening,
            connections: p.connections,
            readCommands: p.stats.readCommands,
            writeCommands: p.stats.writeCommands,
            bytesRead: p.stats.bytesRead,
            bytesWritten: p.stats.bytesWritten,
          };
      },
    };
  }

  connectionStats(): ReturnType<TargetConnection['stats']>[] {
    return [...this.connections].map((c) => c.stats());
  }

  /**
   * One entry per subsystem the host may connect to, per listening port. A port bound to a wildcard address
   * is advertised with the address the asking host reached us on (the interface it can route to).
   */
  private discoveryEntries(hostNqn: string, local: { address: string; port: number }): DiscoveryEntry[] {
    const ports = this.ports.filter((p) => (p.server !== null || p.remote?.listening === true) && p.address !== null);
    const entries: DiscoveryEntry[] = [];
    for (const s of this.subsystems.values()) {
      if (s.discovery || hostAccess(s, hostNqn) === null) continue;
      for (const p of ports) {
        const a = p.address as TargetAddress;
        const wildcard = a.host === '0.0.0.0' || a.host === '::';
        entries.push({ subsystemNqn: s.nqn, address: wildcard ? local.address : a.host, port: a.port, portId: p.id });
      }
    }
    return entries;
  }

  // ---- CommandRouter ----

  /** A queue's name for the coordinator: thread and connection. */
  private keyOf(conn: TargetConnection): string {
    return `${this.thread}:${conn.id}`;
  }

  /** Reserve a queue (and a CNTLID for an admin queue) here, or with the coordinator on an I/O thread. */
  private reserveQueue(
    conn: TargetConnection,
    host: string,
    admin: boolean,
    subsystem: string,
    port: TargetPort,
  ): number | string | Promise<number | string> {
    if (this.coordinator !== null) {
      const address = conn.remote.slice(0, conn.remote.lastIndexOf(':'));
      return this.coordinator.reserve({
        key: this.keyOf(conn),
        host,
        address,
        remote: conn.remote,
        admin,
        subsystem,
        port: port.id,
      });
    }
    let cntlid = 0;
    if (admin) {
      const id = this.allocateCntlid();
      if (id === null) return NO_CNTLID;
      cntlid = id;
    }
    return this.admission.reserve(conn, host, admin) ?? cntlid;
  }

  async connect(conn: TargetConnection, sqe: Sqe, data: Buffer | null): Promise<Completion> {
    const limits = this.config.limits;
    const recfmt = sqe.cdw10 & 0xffff;
    const qid = sqe.cdw10 >>> 16;
    const sqsize = sqe.cdw11 & 0xffff;
    const kato = sqe.cdw12 >>> 0;
    // Connect Invalid Parameters carries IATTR (bit 0: 1 = in the data) and IPO (byte offset, bits 31:16).
    const invalid = (inData: boolean, offset: number) =>
      specific(CommandSpecificStatus.ConnectInvalidParameters, true, ((inData ? 1 : 0) | (offset << 16)) >>> 0);
    if (recfmt !== 0) return specific(CommandSpecificStatus.ConnectIncompatibleFormat);
    const d = data ? parseConnectData(data) : null;
    if (!d) return invalid(true, 0);
    if (sqsize < 1 || sqsize + 1 > limits.maxQueueDepth) return invalid(false, 44);
    if (d.hostnqn.length === 0 || Buffer.byteLength(d.hostnqn) > NQN_MAX_BYTES) return invalid(true, 512);
    const sub = this.subsystems.get(d.subnqn);
    if (!sub) return invalid(true, 256);
    const access = sub.discovery ? 'read-only' : hostAccess(sub, d.hostnqn);
    if (access === null) {
      logEvent(this.log, 'connect.refused', {
        host: d.hostnqn,
        subsystem: sub.nqn,
        remote: conn.remote,
        qid,
        reason: 'host_not_allowed',
      });
      return specific(CommandSpecificStatus.ConnectInvalidHost);
    }
    const credentials = this.config.auth.hosts.get(d.hostnqn) ?? null;
    if (credentials === null && sub.requireAuthentication) {
      logEvent(this.log, 'connect.refused', {
        host: d.hostnqn,
        subsystem: sub.nqn,
        remote: conn.remote,
        qid,
        reason: 'authentication_required_no_key',
      });
      return specific(CommandSpecificStatus.ConnectInvalidHost);
    }
    // AUTHREQ.ATR in DW0 tells the host to authenticate this queue before anything else.
    const authReq = credentials ? CONNECT_AUTHREQ_ATR : 0;
    const port = this.portOf.get(conn);
    if (port === undefined) return SEQUENCE_ERROR;
    if (qid === 0) {
      if (d.cntlid !== CNTLID_DYNAMIC) return invalid(true, 16);
      if (kato > limits.maxKeepAliveTimeoutMs) return invalid(false, 48);
      const reserved = await this.reserveQueue(conn, d.hostnqn, true, sub.nqn, port);
      if (reserved === NO_CNTLID) return specific(CommandSpecificStatus.ConnectControllerBusy, false);
      if (typeof reserved === 'string') return this.quotaRefusal(conn, sub.nqn, d.hostnqn, 0, reserved);
      // Closed while the coordinator answered: `closed()` already gave the reservation back.
      if (conn.state === 'closed') return SEQUENCE_ERROR;
      const cntlid = reserved;
      const ctl = new Controller(cntlid, sub, d.hostnqn, d.hostId, access, kato, conn, this.env, port.stats);
      this.controllers.set(cntlid, ctl);
      this.owners.set(conn, ctl);
      if (this.metrics.enabled) this.ioMeters.set(ctl, this.metrics.ioMeter(sub.nqn, d.hostnqn));
      // Admin depth: SQSIZE + 1 commands plus the AERs we hold.
      conn.bind({
        qid: 0,
        depth: sqsize + 1 + 4,
        sqEntries: sqsize + 1,
        touch: () => ctl.touch(),
        cntlid,
        host: d.hostnqn,
      });
      logEvent(this.log, 'association.created', {
        ...ctl.logIds(),
        access,
        katoMs: kato,
        port: port.id,
        authentication: credentials !== null,
      });
      if (credentials) this.requireAuthentication(conn, ctl, 0, credentials);
      else this.admission.ready(conn);
      return success((cntlid | authReq) >>> 0);
    }
    if (sub.discovery) return invalid(false, 42);
    const ctl = this.controllers.get(d.cntlid);
    if (!ctl || ctl.subsystem !== sub || ctl.hostNqn !== d.hostnqn || !ctl.hostId.equals(d.hostId)) return invalid(true, 16);
    if (ctl.port !== port.stats) {
      // An association lives on one port (its queues on one I/O thread): I/O queues connect where the admin queue did.
      logEvent(this.log, 'connect.refused', {
        host: d.hostnqn,
        subsystem: sub.nqn,
        remote: conn.remote,
        qid,
        cntlid: ctl.cntlid,
        port: port.id,
        reason: 'io_queue_on_another_port',
      });
      return invalid(true, 16);
    }
    if (!ctl.ready) return SEQUENCE_ERROR;
    if (qid > ctl.ioQueueCount || ctl.ioQueues.has(qid)) return invalid(false, 42);
    const reserved = await this.reserveQueue(conn, d.hostnqn, false, sub.nqn, port);
    if (typeof reserved === 'string') return this.quotaRefusal(conn, sub.nqn, d.hostnqn, qid, reserved);
    if (conn.state === 'closed' || ctl.ioQueues.has(qid) || !this.controllers.has(ctl.cntlid)) return SEQUENCE_ERROR;
    ctl.ioQueues.set(qid, conn);
    this.owners.set(conn, ctl);
    conn.bind({ qid, depth: sqsize + 1, sqEntries: sqsize + 1, touch: () => ctl.touch(), cntlid: ctl.cntlid, host: d.hostnqn });
    logEvent(this.log, 'queue.connected', { ...ctl.logIds(), remote: conn.remote, qid, sqsize });
    if (credentials) this.requireAuthentication(conn, ctl, qid, credentials);
    else this.admission.ready(conn);
    return success((ctl.cntlid | authReq) >>> 0);
  }

  private quotaRefusal(conn: TargetConnection, subsystem: string, host: string, qid: number, quota: string): Completion {
    logEvent(this.log, 'quota.hit', { host, subsystem, remote: conn.remote, qid, quota });
    this.metrics.quotaHit(host, quota);
    return specific(CommandSpecificStatus.ConnectControllerBusy, false);
  }

  /** This queue must finish DH-HMAC-CHAP within handshakeTimeoutMs, or it is closed. */
  private requireAuthentication(conn: TargetConnection, ctl: Controller, qid: number, c: HostCredentials): void {
    const auth = new QueueAuthentication(ctl.hostNqn, ctl.subsystem.nqn, c, this.config.auth);
    this.auths.set(conn, auth);
    const timer = setTimeout(() => {
      if (auth.authenticated || this.auths.get(conn) !== auth) return; // done, or the queue is gone
      logEvent(this.log, 'auth.timeout', { ...ctl.logIds(), remote: conn.remote, qid });
      conn.shutdown();
    }, this.config.limits.handshakeTimeoutMs);
    timer.unref();
  }

  /** AUTH_Send / AUTH_Receive on any queue. */
  private authCommand(conn: TargetConnection, ctl: Controller, sqe: Sqe, data: Buffer | null): Completion {
    let auth = this.auths.get(conn);
    if (!auth) {
      // A host without a key may still try; its exchange fails at the reply.
      auth = new QueueAuthentication(ctl.hostNqn, ctl.subsystem.nqn, null, this.config.auth);
      this.auths.set(conn, auth);
    }
    const out = sqeFctype(sqe) === FabricsType.AuthSend ? auth.send(sqe, data) : auth.receive(sqe);
    const fields = { ...ctl.logIds(), remote: conn.remote, qid: conn.binding?.qid ?? 0 };
    if (out.result) this.metrics.authentication(ctl.subsystem.nqn, ctl.hostNqn, out.result.ok);
    if (out.result?.ok === false) logEvent(this.log, 'auth.failure', { ...fields, reason: out.result.reason });
    else if (out.result?.ok) {
      this.admission.ready(conn);
      const r = out.result;
      logEvent(this.log, 'auth.success', { ...fields, hash: r.hash, dhGroup: r.dhGroup, bidirectional: r.bidirectional });
    }
    if (out.close) setImmediate(() => conn.shutdown());
    return out.completion;
  }

  private allocateCntlid(): number | null {
    if (this.associationCount >= this.config.limits.maxControllers) return null;
    for (let i = 0; i < CNTLID_MAX; i++) {
      const id = this.nextCntlid;
      this.nextCntlid = id >= CNTLID_MAX ? 1 : id + 1;
      if (!this.controllers.has(id) && !this.remoteAssociations.has(id)) return id;
    }
    return null;
  }

  execute(
    conn: TargetConnection,
    sqe: Sqe,
    data: Buffer | null,
    handle: CommandHandle,
  ): Completion | Promise<Completion | null> | null {
    const ctl = this.owners.get(conn);
    if (!ctl || !conn.binding) return SEQUENCE_ERROR;
    const fctype = sqe.opcode === AdminOpcode.Fabrics ? sqeFctype(sqe) : -1;
    if (fctype === FabricsType.AuthSend || fctype === FabricsType.AuthReceive) {
      return Promise.resolve(this.authCommand(conn, ctl, sqe, data));
    }
    const auth = this.auths.get(conn);
    if (auth && !auth.authenticated) {
      // Before authentication nothing else is served: answer, then close the queue.
      logEvent(this.log, 'auth.required', { ...ctl.logIds(), remote: conn.remote, qid: conn.binding.qid, opcode: sqe.opcode });
      setImmediate(() => conn.shutdown());
      return Promise.resolve(specific(CommandSpecificStatus.AuthenticationRequired));
    }
    if (conn.binding.qid !== 0 && sqe.opcode !== AdminOpcode.Fabrics && ctl.ready && !isProgramIoOpcode(sqe.opcode)) {
      // The data path: a cache hit completes here and now; anything else calls ioDone later.
      const meter = this.metrics.enabled ? this.ioMeters.get(ctl) : undefined;
      if (meter !== undefined) handle.startedAtMs = performance.now();
      const c = executeIo(ctl.io, sqe, data, this.ioDone, handle);
      if (c === null) this.ioPending++;
      else if (meter !== undefined) this.meterIo(meter, handle, c, data);
      return c;
    }
    let p: Promise<Completion | null>;
    if (conn.binding.qid === 0) {
      p =
        isProgramAdminOpcode(sqe.opcode) && ctl.ready && !ctl.subsystem.discovery
          ? this.coordinator !== null
            ? this.coordinator.program('admin', ctl.cntlid, 0, sqe, data)
            : this.programs.admin(ctl, sqe, data)
          : ctl.adminCommand(conn, sqe, data);
    } else if (sqe.opcode === AdminOpcode.Fabrics) {
      // Only Connect (handled by the connection) is valid on an I/O queue among fabrics commands.
      return sqeFctype(sqe) === FabricsType.Connect ? SEQUENCE_ERROR : INVALID_OPCODE;
    } else if (!ctl.ready) {
      return SEQUENCE_ERROR;
    } else if (this.coordinator === null) {
      // A storage-function execution on this thread's program service: its completion now when it
      // ended in this turn, else through `programDone` (no promise either way).
      const meter = this.ioMeters.get(ctl);
      handle.startedAtMs = meter === undefined ? 0 : performance.now();
      const c = this.programs.execute(ctl, conn.binding.qid, sqe, data, this.programDone, handle);
      if (c === null) this.programsPending++;
      else if (meter !== undefined) this.meterProgram(meter, handle, c, data);
      return c;
    } else {
      p =
        this.executions?.execute(ctl, conn.binding.qid, sqe, data) ??
        this.coordinator.program('io', ctl.cntlid, conn.binding.qid, sqe, data);
    }
    this.inflight.add(p);
    const meter = conn.binding.qid === 0 ? undefined : this.ioMeters.get(ctl);
    if (meter === undefined) {
      const done = () => this.inflight.delete(p);
      p.then(done, done);
    } else {
      // Metrics on: the same one continuation also records the command (no label lookup: cells are resolved).
      const startMs = performance.now();
      const done = (c: Completion | null) => {
        this.inflight.delete(p);
        const status = c === null ? 0 : c.status;
        const bytes = status !== 0 ? 0 : sqe.opcode === IoOpcode.Read ? (c?.data?.length ?? 0) : (data?.length ?? 0);
        meter.command(sqe.nsid, sqe.opcode, status, bytes, (performance.now() - startMs) / 1000);
      };
      p.then(done, () => this.inflight.delete(p));
    }
    return p;
  }

  /** Storage-function executions still running for commands; `close()` waits until none is. */
  private programsPending = 0;
  private readonly programDone = (handle: CommandHandle, c: Completion): void => {
    if (--this.programsPending === 0 && this.ioIdle !== null && this.ioPending === 0) {
      const wake = this.ioIdle;
      this.ioIdle = null;
      wake();
    }
    if (handle.startedAtMs !== 0) {
      const ctl = this.owners.get(handle.owner);
      const meter = ctl === undefined ? undefined : this.ioMeters.get(ctl);
      if (meter !== undefined) this.meterProgram(meter, handle, c, null);
    }
    handle.owner.complete(handle, c);
  };

  /** A program command into the metrics: its input bytes (`data`, when known) and latency. */
  private meterProgram(meter: IoMeter, handle: CommandHandle, c: Completion, data: Buffer | null): void {
    const sqe = handle.sqe;
    const bytes = c.status !== 0 ? 0 : (data?.length ?? 0);
    meter.command(sqe.nsid, sqe.opcode, c.status, bytes, (performance.now() - handle.startedAtMs) / 1000);
  }

  /** I/O commands completing in the thread pool; `close()` waits until none is pending. */
  private ioPending = 0;
  private ioIdle: (() => void) | null = null;
  private readonly ioDone = (handle: CommandHandle, c: Completion): void => {
    if (--this.ioPending === 0 && this.ioIdle !== null && this.programsPending === 0) {
      const wake = this.ioIdle;
      this.ioIdle = null;
      wake();
    }
    if (c.status !== 0 && isDeviceError(c.status)) this.logIoError(handle, c);
    if (handle.startedAtMs !== 0) {
      const ctl = this.owners.get(handle.owner);
      const meter = ctl === undefined ? undefined : this.ioMeters.get(ctl);
      if (meter !== undefined) this.meterIo(meter, handle, c, null);
    }
    handle.owner.complete(handle, c);
  };

  /** I/O errors of the backing store, at most a burst per namespace per window (a failing disk fails every command). */
  private readonly ioErrorLines = new LogRateLimit();

  private logIoError(handle: CommandHandle, c: Completion): void {
    const ctl = this.owners.get(handle.owner);
    const qid = handle.owner.binding?.qid;
    if (ctl === undefined || qid === undefined) return;
    const sqe = handle.sqe;
    const suppressed = this.ioErrorLines.take(`${ctl.subsystem.nqn}\n${sqe.nsid}`);
    if (suppressed < 0) return;
    logEvent(this.log, 'io.error', {
      ...ctl.logIds(),
      remote: handle.owner.remote,
      qid,
      cid: sqe.cid,
      nsid: sqe.nsid,
      opcode: opcodeName(sqe.opcode),
      status: statusName(c.status),
      error: c.error ?? 'unknown',
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }

  /** One I/O command into the metrics: its namespace, opcode, status, bytes moved and latency. */
  private meterIo(meter: IoMeter, handle: CommandHandle, c: Completion, data: Buffer | null): void {
    const sqe = handle.sqe;
    const bytes =
      c.status !== 0
        ? 0
        : sqe.opcode === IoOpcode.Read
          ? (c.data?.length ?? 0)
          : sqe.opcode === IoOpcode.Write
            ? (data?.length ?? sqe.sglLength)
            : 0;
    meter.command(sqe.nsid, sqe.opcode, c.status, bytes, (performance.now() - handle.startedAtMs) / 1000);
  }

  closed(conn: TargetConnection): void {
    this.connections.delete(conn);
    const port = this.portOf.get(conn);
    if (port?.connections.delete(conn)) port.stats.connectionsOpen--;
    this.portOf.delete(conn);
    this.auths.delete(conn);
    this.admission.closed(conn);
    this.coordinator?.release(this.keyOf(conn));
    const ctl = this.owners.get(conn);
    logEvent(this.log, 'connection.closed', conn.logIds());
    this.owners.delete(conn);
    ctl?.queueClosed(conn);
  }

  /**
   * Stop accepting connections, stop reading commands, let commands already executing (writes included)
   * finish and answer, then close every connection and namespace.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const serversClosed = Promise.all(
        this.ports.map((p) => {
          const server = p.server;
          p.server = null;
          return server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined;
        }),
      );
      for (const c of this.connections) c.quiesce();
      while (this.inflight.size > 0 || this.ioPending > 0 || this.programsPending > 0) {
        if (this.ioPending > 0 || this.programsPending > 0) await new Promise<void>((resolve) => (this.ioIdle = resolve));
        else await Promise.allSettled([...this.inflight]);
      }
      for (const ctl of [...this.controllers.values()]) ctl.destroy('target_shutdown');
      for (const c of this.connections) c.destroy();
      await serversClosed;
      await this.ioThreads?.close();
      await this.programs.close();
      await this.closeNamespaces();
    })();
    return this.closing;
  }

  private async closeNamespaces(): Promise<void> {
    for (const s of this.subsystems.values()) for (const ns of s.namespaces.values()) await ns.close();
  }
}

export interface StartTargetOptions {
  /** A validated config, or raw JSON-like input validated here (relative paths against `baseDir`). */
  config?: TargetConfig | unknown;
  baseDir?: string;
  logger?: Logger;
  /** Metrics hooks (`PrometheusTargetMetrics`); off by default. */
  metrics?: TargetMetrics;
}

export interface TargetHandle {
  target: NvmeTcpTarget;
  /** The first port's address. */
  address: TargetAddress;
  /** Every port's address, in `listen` order. */
  addresses: TargetAddress[];
  close(): Promise<void>;
}

const isValidated = (c: unknown): c is TargetConfig =>
  typeof c === 'object' &&
  c !== null &&
  'limits' in c &&
  'programs' in c &&
  'subsystems' in c &&
  'dataDir' in c &&
  'digests' in c &&
  'listen' in c;

/** Validate the config, open namespaces, listen. `close()` completes in-flight writes before closing. */
export async function startTarget(options: StartTargetOptions = {}): Promise<TargetHandle> {
  const config = isValidated(options.config) ? options.config : validateConfig(options.config ?? {}, options.baseDir);
  const target = await NvmeTcpTarget.create(config, options.logger ?? silentLogger, options.metrics);
  try {
    const addresses = await target.listen();
    return { target, address: addresses[0], addresses, close: () => target.close() };
  } catch (e) {
    await target.close();
    throw e;
  }
}
