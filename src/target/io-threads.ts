/**
 * I/O threads: each listen port served by its own worker thread (`ioThreads` in the config). A worker
 * runs a whole `NvmeTcpTarget` for its ports (sockets, queues, associations, keep-alive, authentication,
 * the data path on its own file handles), and asks the main thread, by message, only what every path
 * must see the same way: CNTLIDs and quotas at Connect, and program commands. Per-port counters live in
 * shared memory so the main thread reads them without a message.
 *
 * Messages (worker -> main): ready, log, reserve {id}, release, program {id}, exec-records, started {id},
 * stopped {id}, closed. (main -> worker): reply {id}, port-table, start-port {id}, stop-port {id}, close,
 * and for executions started on the thread (io-executions.ts): exec-program, exec-namespaces,
 * exec-replaced, exec-done.
 */
import { Worker } from 'node:worker_threads';
import { GenericStatus } from '../protocol/constants.js';
import type { Sqe } from '../protocol/sqe.js';
import { type Completion, generic } from './completion.js';
import type { TargetConfig } from './config.js';
import type { ExecutionPool, PoolShare } from './execution-pool.js';
import type { RemoteExecutionWire } from './io-executions.js';
import { type Logger, logEvent } from './logger.js';
import type { SharedPageCache } from './page-cache.js';
import type { Coordinator, PortStats, PortTableEntry, QueueReservation, TargetAddress } from './target.js';

/** Slots of a port's counters in its shared Float64Array. */
const CELLS = ['connectionsOpened', 'connectionsOpen', 'bytesRead', 'bytesWritten', 'readCommands', 'writeCommands'] as const;

/** Port counters in shared memory: the port's thread adds, the main thread reads (no message, no lock). */
export class SharedPortStats implements PortStats {
  readonly cells: Float64Array;
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(CELLS.length * 8)) {
    this.cells = new Float64Array(buffer);
  }
  get buffer(): SharedArrayBuffer {
    return this.cells.buffer as SharedArrayBuffer;
  }
  get connectionsOpened(): number {
    return this.cells[0];
  }
  set connectionsOpened(v: number) {
    this.cells[0] = v;
  }
  get connectionsOpen(): number {
    return this.cells[1];
  }
  set connectionsOpen(v: number) {
    this.cells[1] = v;
  }
  get bytesRead(): number {
    return this.cells[2];
  }
  set bytesRead(v: number) {
    this.cells[2] = v;
  }
  get bytesWritten(): number {
    return this.cells[3];
  }
  set bytesWritten(v: number) {
    this.cells[3] = v;
  }
  get readCommands(): number {
    return this.cells[4];
  }
  set readCommands(v: number) {
    this.cells[4] = v;
  }
  get writeCommands(): number {
    return this.cells[5];
  }
  set writeCommands(v: number) {
    this.cells[5] = v;
  }
}

/** What a worker thread is started with. */
export interface IoThreadData {
  config: TargetConfig;
  thread: number;
  ports: number[];
  /** PORTID -> its counters' buffer. */
  stats: [number, SharedArrayBuffer][];
  /** Its end of the execution workers' rings (absent: executions go to the main thread). */
  executions?: PoolShare;
  /** The main thread's page caches by subsystem NQN and NSID (`\0` between). */
  caches: [string, SharedPageCache][];
}

/** Completions and data cross threads as structured clones: Buffers arrive as Uint8Arrays. */
export const asBuffer = (d: Uint8Array | null | undefined): Buffer | null =>
  d == null ? null : Buffer.from(d.buffer, d.byteOffset, d.byteLength);

/** Structured clone turns Buffers into Uint8Arrays; give the config's (keys) back their Buffer type. */
export function reviveBuffers<T>(v: T): T {
  if (v instanceof Uint8Array) return asBuffer(v) as T;
  if (v instanceof Map) {
    for (const [k, x] of v) v.set(k, reviveBuffers(x));
    return v;
  }
  if (Array.isArray(v)) return v.map(reviveBuffers) as T;
  if (typeof v === 'object' && v !== null) {
    for (const k of Object.keys(v)) (v as Record<string, unknown>)[k] = reviveBuffers((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** The main thread's side of the registry, implemented by the main `NvmeTcpTarget`. */
export interface Registry {
  reserve(thread: number, r: QueueReservation): number | string;
  release(key: string): void;
  program(kind: 'admin' | 'io', cntlid: number, qid: number, sqe: Sqe, data: Buffer | null): Promise<Completion>;
  portChanged(): void;
  /** Executions an I/O thread ran on the execution workers itself (io-executions.ts). */
  executedElsewhere(records: readonly RemoteExecutionWire[]): void;
}

type Pending = { resolve(v: unknown): void; reject(e: Error): void };

/** The worker threads of a target, seen from the main thread. */
export class IoThreadPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** PORTID -> the thread serving it. */
  readonly threadOf = new Map<number, number>();
  private closing = false;
  /** Threads (by index) that exited. */
  private readonly exited = new Set<number>();

  constructor(
    config: TargetConfig,
    threads: number,
    readonly stats: ReadonlyMap<number, SharedPortStats>,
    private readonly registry: Registry,
    private readonly log: Logger,
    shared: {
      /** The execution workers, which each thread submits to directly (absent: steps on the main thread). */
      pool?: ExecutionPool;
      /** Page caches every thread reads and updates. */
      caches: ReadonlyMap<string, SharedPageCache>;
      /** A thread exited (its thread id): take back locks it may have held. */
      exited: (threadId: number) => void;
    },
  ) {
    const pool = shared.pool;
    const n = Math.min(threads, config.listen.length);
    const owned: number[][] = Array.from({ length: n }, () => []);
    config.listen.forEach((_, i) => {
      owned[i % n].push(i + 1);
      this.threadOf.set(i + 1, i % n);
    });
    for (let t = 0; t < n; t++) {
      const index = t;
      const executions = pool?.addProducer({
        replaced: (worker, link, generation) =>
          this.workers[index]?.postMessage({ type: 'exec-replaced', index: worker, link, generation }),
        done: (m) => {
          const out = m.output;
          const whole = out !== null && out.byteLength > 0 && out.byteOffset === 0 && out.byteLength === out.buffer.byteLength;
          this.workers[index]?.postMessage(
            { type: 'exec-done', m },
            whole && out.buffer instanceof ArrayBuffer ? [out.buffer] : undefined,
          );
        },
      });
      const data: IoThreadData = {
        config,
        thread: t + 1,
        ports: owned[t],
        stats: owned[t].map((id) => [id, (stats.get(id) as SharedPortStats).buffer]),
        executions,
        caches: [...shared.caches],
      };
      const w = new Worker(new URL('./io-thread.js', import.meta.url), { workerData: data });
      w.on('message', (m) => this.onMessage(w, t + 1, m));
      w.on('error', (e) => logEvent(log, 'io_thread.failed', { thread: t + 1, error: e.message }));
      const threadId = w.threadId;
      w.on('exit', (code) => {
        this.exited.add(index);
        shared.exited(threadId);
        // Slots its executions took come back as they end.
        if (executions !== undefined) pool?.producerDied(executions.producer);
        if (!this.closing) logEvent(log, 'io_thread.exited', { thread: t + 1, exitCode: code });
        for (const p of this.pending.values()) p.reject(new Error(`I/O thread ${t + 1} exited`));
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  private request<T>(thread: number, message: Record<string, unknown>): Promise<T> {
    // A thread that exited answers nothing (close() must not wait for it).
    if (this.exited.has(thread)) return Promise.reject(new Error(`I/O thread ${thread + 1} exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.workers[thread].postMessage({ ...message, id });
    });
  }

  private onMessage(w: Worker, thread: number, m: { type: string; id: number; [k: string]: unknown }): void {
    switch (m.type) {
      case 'log':
        this.log[m.level as keyof Logger](m.msg as string, { ...(m.fields as object), thread });
        return;
      case 'reserve':
        w.postMessage({ type: 'reply', id: m.id, result: this.registry.reserve(thread, m.r as never) });
        return;
      case 'release':
        this.registry.release(m.key as string);
        return;
      case 'exec-records':
        this.registry.executedElsewhere(m.records as RemoteExecutionWire[]);
        return;
      case 'program': {
        const sqe = m.sqe as Sqe;
        this.registry
          .program(m.kind as 'admin' | 'io', m.cntlid as number, m.qid as number, sqe, asBuffer(m.data as Uint8Array | null))
          .then(
            (c) => w.postMessage({ type: 'reply', id: m.id, result: { status: c.status, dw0: c.dw0, dw1: c.dw1, data: c.data } }),
            (e: Error) => {
              logEvent(this.log, 'program.forward_failed', { cntlid: m.cntlid as number, error: e.message });
              w.postMessage({ type: 'reply', id: m.id, result: generic(GenericStatus.InternalError, false) });
            },
          );
        return;
      }
      case 'result': {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(m.error as string));
        else p?.resolve(m.result);
        return;
      }
    }
  }

  /** Wait until every thread has opened its namespaces. */
  ready(): Promise<unknown> {
    return Promise.all(this.workers.map((_, t) => this.request(t, { type: 'ping' })));
  }

  async startPort(portId: number): Promise<TargetAddress> {
    const a = await this.request<TargetAddress>(this.threadOf.get(portId) as number, { type: 'start-port', port: portId });
    this.registry.portChanged();
    return a;
  }

  async stopPort(portId: number): Promise<void> {
    await this.request(this.threadOf.get(portId) as number, { type: 'stop-port', port: portId });
    this.registry.portChanged();
  }

  /** Every thread learns where every port is (its discovery log lists them all). */
  broadcast(table: PortTableEntry[]): void {
    this.send({ type: 'port-table', table });
  }

  /** A message to every thread. */
  send(m: { readonly type: string; readonly [field: string]: unknown }): void {
    for (const w of this.workers) w.postMessage(m);
  }

  /** Each thread closes its target (commands already executing finish first), then exits. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled(this.workers.map((_, t) => this.request(t, { type: 'close' })));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The worker's side: requests to the main thread, answered by `reply` messages. */
export class CoordinatorClient implements Coordinator {
  private readonly pending = new Map<number, (v: unknown) => void>();
  private nextId = 1;

  constructor(private readonly post: (m: unknown) => void) {}

  private request<T>(message: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      this.pending.set(id, resolve as (v: unknown) => void);
      this.post({ ...message, id });
    });
  }

  /** A `reply` from the main thread. */
  answer(id: number, result: unknown): void {
    const r = this.pending.get(id);
    this.pending.delete(id);
    r?.(result);
  }

  reserve(r: QueueReservation): Promise<number | string> {
    return this.request({ type: 'reserve', r });
  }

  release(key: string): void {
    this.post({ type: 'release', key });
  }

  async program(kind: 'admin' | 'io', cntlid: number, qid: number, sqe: Sqe, data: Buffer | null): Promise<Completion> {
    const c = await this.request<{ status: number; dw0: number; dw1: number; data: Uint8Array | null }>({
      type: 'program',
      kind,
      cntlid,
      qid,
      sqe,
      data,
    });
    return { status: c.status, dw0: c.dw0, dw1: c.dw1, data: asBuffer(c.data) };
  }
}
