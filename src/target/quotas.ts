/**
 * Quotas: how much of a shared resource each tenant (host NQN) or source address may hold, and the
 * connection admission that keeps half-open handshakes in their own small pool. Policy and counters
 * only; the target, the connections and the program service call in at the points where a resource is
 * taken or given back.
 */
import type { TargetLimits } from './config.js';

/** Amounts held per key, capped per key and overall. */
export class Ledger {
  private readonly byKey = new Map<string, number>();
  private totalHeld = 0;

  constructor(
    readonly perKeyLimit: number,
    readonly totalLimit: number,
  ) {}

  held(key: string): number {
    return this.byKey.get(key) ?? 0;
  }

  get total(): number {
    return this.totalHeld;
  }

  /** Which cap `amount` more would pass: null when it fits. */
  wouldExceed(key: string, amount: number): 'key' | 'total' | null {
    if (this.held(key) + amount > this.perKeyLimit) return 'key';
    if (this.totalHeld + amount > this.totalLimit) return 'total';
    return null;
  }

  tryTake(key: string, amount: number): boolean {
    if (this.wouldExceed(key, amount) !== null) return false;
    this.byKey.set(key, this.held(key) + amount);
    this.totalHeld += amount;
    return true;
  }

  give(key: string, amount: number): void {
    const left = this.held(key) - amount;
    if (left <= 0) this.byKey.delete(key);
    else this.byKey.set(key, left);
    this.totalHeld = Math.max(0, this.totalHeld - amount);
  }
}

export type AdmissionLimits = Pick<
  TargetLimits,
  | 'maxPendingConnections'
  | 'maxPendingConnectionsPerAddress'
  | 'maxConnectionsPerHost'
  | 'maxConnectionsPerAddress'
  | 'maxAssociationsPerHost'
  | 'maxAssociationsPerAddress'
>;

interface Admitted {
  address: string;
  /** Set once Connect succeeded: the queue counts against its host and address. */
  host: string | null;
  admin: boolean;
  pending: boolean;
}

/**
 * Connection admission. A new socket enters the pending pool (ICReq, Connect and authentication not
 * done); the pool is small, per address and overall, and a newcomer displaces the oldest pending
 * socket of its address (or of the whole pool) instead of being refused, so idle half-open sockets
 * can neither fill the target nor starve new hosts. Connect then reserves a queue (and, for an admin
 * queue, an association) against the host NQN and the source address; a queue leaves the pending pool
 * when it is ready (after authentication when that is required).
 */
export class Admission<C> {
  private readonly entries = new Map<C, Admitted>();
  /** Pending connections, oldest first (Map keeps insertion order). */
  private readonly pending = new Map<C, string>();
  private readonly pendingPerAddress = new Map<string, number>();
  private readonly queues: Ledger;
  private readonly queuesByAddress: Ledger;
  private readonly associations: Ledger;
  private readonly associationsByAddress: Ledger;

  constructor(
    private readonly limits: AdmissionLimits,
    /** Closes a connection displaced from the pending pool. */
    private readonly evict: (conn: C, reason: string) => void,
  ) {
    const unlimited = Number.MAX_SAFE_INTEGER;
    this.queues = new Ledger(limits.maxConnectionsPerHost, unlimited);
    this.queuesByAddress = new Ledger(limits.maxConnectionsPerAddress, unlimited);
    this.associations = new Ledger(limits.maxAssociationsPerHost, unlimited);
    this.associationsByAddress = new Ledger(limits.maxAssociationsPerAddress, unlimited);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  pendingFrom(address: string): number {
    return this.pendingPerAddress.get(address) ?? 0;
  }

  /** A new socket: always admitted into the pending pool, displacing the oldest pending one if full. */
  open(conn: C, address: string): void {
    if (this.pendingFrom(address) >= this.limits.maxPendingConnectionsPerAddress) {
      for (const [c, a] of this.pending) {
        if (a === address) {
          this.dropPending(c, `more than ${this.limits.maxPendingConnectionsPerAddress} handshakes pending from ${address}`);
          break;
        }
      }
    } else if (this.pending.size >= this.limits.maxPendingConnections) {
      const oldest = this.pending.keys().next().value as C;
      this.dropPending(oldest, `more than ${this.limits.maxPendingConnections} handshakes pending`);
    }
    this.entries.set(conn, { address, host: null, admin: false, pending: true });
    this.pending.set(conn, address);
    this.pendingPerAddress.set(address, this.pendingFrom(address) + 1);
  }

  private dropPending(conn: C, reason: string): void {
    this.leavePending(conn);
    this.evict(conn, reason);
  }

  private leavePending(conn: C): void {
    const address = this.pending.get(conn);
    if (address === undefined) return;
    this.pending.delete(conn);
    const n = this.pendingFrom(address) - 1;
    if (n <= 0) this.pendingPerAddress.delete(address);
    else this.pendingPerAddress.set(address, n);
    const e = this.entries.get(conn);
    if (e) e.pending = false;
  }

  /**
   * Connect: reserve this queue (and an association for the admin queue) for `host`. Returns the
   * quota that is full, or null when reserved.
   */
  reserve(conn: C, host: string, admin: boolean): string | null {
    const e = this.entries.get(conn);
    if (!e || e.host !== null) return 'connection state';
    if (!this.queues.tryTake(host, 1)) return `maxConnectionsPerHost (${this.limits.maxConnectionsPerHost})`;
    if (!this.queuesByAddress.tryTake(e.address, 1)) {
      this.queues.give(host, 1);
      return `maxConnectionsPerAddress (${this.limits.maxConnectionsPerAddress})`;
    }
    if (admin) {
      if (!this.associations.tryTake(host, 1)) {
        this.releaseQueue(host, e.address);
        return `maxAssociationsPerHost (${this.limits.maxAssociationsPerHost})`;
      }
      if (!this.associationsByAddress.tryTake(e.address, 1)) {
        this.associations.give(host, 1);
        this.releaseQueue(host, e.address);
        return `maxAssociationsPerAddress (${this.limits.maxAssociationsPerAddress})`;
      }
    }
    e.host = host;
    e.admin = admin;
    return null;
  }

  private releaseQueue(host: string, address: string): void {
    this.queues.give(host, 1);
    this.queuesByAddress.give(address, 1);
  }

  /** The queue finished its handshake (Connect, and authentication when required). */
  ready(conn: C): void {
    this.leavePending(conn);
  }

  closed(conn: C): void {
    this.leavePending(conn);
    const e = this.entries.get(conn);
    if (!e) return;
    this.entries.delete(conn);
    if (e.host === null) return;
    this.releaseQueue(e.host, e.address);
    if (e.admin) {
      this.associations.give(e.host, 1);
      this.associationsByAddress.give(e.address, 1);
    }
  }

  /** Queues and associations a host holds (tests, stats). */
  heldBy(host: string): { queues: number; associations: number } {
    return { queues: this.queues.held(host), associations: this.associations.held(host) };
  }
}
