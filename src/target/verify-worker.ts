/**
 * Verification off the event loop, fair and bounded: a pool of worker threads runs the verifier.
 * Each tenant (host NQN) has its own queue and the queues are served round-robin; a tenant may have
 * at most `maxPerTenant` verifications running or queued, and occupies at most all workers but one,
 * so a tenant flooding the verifier with slow programs never makes another tenant's load wait for them. A verification that runs past `timeoutMs` or past the worker's heap limit
 * (`memoryBytes`) terminates its worker, which is replaced, and fails with its own error.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import type { MapDefinition } from '../abi/maps.js';
import { STORAGE_FUNCTION } from '../abi/storage.js';
import { NearbpfError } from '../errors.js';
import type { Program } from '../isa/index.js';
import { VerifierError, type VerifierRejection } from '../verifier/errors.js';
import { verifyProgram } from '../verifier/index.js';

interface Request {
  id: number;
  program: Program;
  maps: readonly MapDefinition[];
}

type Reply = { id: number; ok: true } | { id: number; ok: false; rejection?: VerifierRejection; message?: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (req: Request) => {
    let reply: Reply;
    try {
      verifyProgram(req.program, { type: STORAGE_FUNCTION, maps: req.maps });
      reply = { id: req.id, ok: true };
    } catch (e) {
      reply =
        e instanceof VerifierError
          ? {
              id: req.id,
              ok: false,
              rejection: {
                pc: e.pc,
                instruction: e.instruction,
                reason: e.reason,
                state: e.state,
                lineInfo: e.lineInfo,
                log: e.log,
              },
            }
          : { id: req.id, ok: false, message: e instanceof Error ? e.message : String(e) };
    }
    port.postMessage(reply);
  });
}

/** The tenant already has `limit` verifications running or queued. */
export class VerifierBusyError extends NearbpfError {
  readonly code = 'ERR_VERIFIER_BUSY';
  constructor(readonly limit: number) {
    super(`${limit} verifications of this host are already running or queued; retry when one finishes`);
  }
}

/** The verification ran past its wall-clock limit: the program is refused. */
export class VerificationTimeoutError extends NearbpfError {
  readonly code = 'ERR_VERIFY_TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`verification took longer than ${timeoutMs} ms: the program is too complex to verify here`);
  }
}

/** The verification needed more memory than a verifier worker may use: the program is refused. */
export class VerificationMemoryError extends NearbpfError {
  readonly code = 'ERR_VERIFY_MEMORY';
  constructor(readonly memoryBytes: number) {
    super(`verification needed more than ${Math.round(memoryBytes / 2 ** 20)} MiB: the program is too complex to verify here`);
  }
}

export interface VerifierPoolOptions {
  /** Worker threads (0: one per core, at least 2 and at most 4). */
  workers: number;
  maxPerTenant: number;
  timeoutMs: number;
  memoryBytes: number;
}

interface Job {
  id: number;
  tenant: string;
  program: Program;
  maps: readonly MapDefinition[];
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  timer: NodeJS.Timeout | null;
}

export class VerifierPool {
  readonly workerCount: number;
  private readonly slots: Slot[] = [];
  /** Queued jobs per tenant; Map order is the round-robin order (a served tenant moves to the back). */
  private readonly queues = new Map<string, Job[]>();
  /** Running + queued per tenant. */
  private readonly perTenant = new Map<string, number>();
  private readonly running = new Map<string, number>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: VerifierPoolOptions) {
    this.workerCount = options.workers > 0 ? options.workers : Math.min(4, Math.max(2, availableParallelism()));
  }

  /** Verifications running or queued, all tenants (the metrics' verifier queue). */
  total(): number {
    let n = 0;
    for (const v of this.perTenant.values()) n += v;
    return n;
  }

  /** Verifications of `tenant` running or queued. */
  load(tenant: string): number {
    return this.perTenant.get(tenant) ?? 0;
  }

  verify(tenant: string, program: Program, maps: readonly MapDefinition[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('verifier closed'));
    if (this.load(tenant) >= this.options.maxPerTenant) return Promise.reject(new VerifierBusyError(this.options.maxPerTenant));
    this.perTenant.set(tenant, this.load(tenant) + 1);
    return new Promise<void>((resolve, reject) => {
      const job: Job = { id: this.nextId++, tenant, program, maps, resolve, reject };
      const q = this.queues.get(tenant);
      if (q) q.push(job);
      else this.queues.set(tenant, [job]);
      this.pump();
    });
  }

  /** One worker is always kept from any single tenant, so another tenant never waits for a slow one. */
  private mayRun(tenant: string): boolean {
    return (this.running.get(tenant) ?? 0) < Math.max(1, this.workerCount - 1);
  }

  private pump(): void {
    for (;;) {
      const slot = this.freeSlot();
      if (!slot) return;
      let job: Job | undefined;
      for (const [tenant, q] of this.queues) {
        if (!this.mayRun(tenant)) continue;
        job = q.shift();
        this.queues.delete(tenant);
        if (q.length > 0) this.queues.set(tenant, q); // to the back: round-robin
        break;
      }
      if (!job) return;
      this.start(slot, job);
    }
  }

  private freeSlot(): Slot | null {
    const idle = this.slots.find((s) => s.job === null);
    if (idle) return idle;
    if (this.slots.length >= this.workerCount) return null;
    const slot = this.spawn();
    this.slots.push(slot);
    return slot;
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./verify-worker.js', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: Math.max(16, Math.floor(this.options.memoryBytes / 2 ** 20)) },
    });
    worker.unref();
    const slot: Slot = { worker, job: null, timer: null };
    worker.on('message', (reply: Reply) => {
      const job = slot.job;
      if (!job || reply.id !== job.id) return;
      this.finish(slot);
      if (reply.ok) job.resolve();
      else if (reply.rejection) job.reject(new VerifierError(reply.rejection));
      else job.reject(new Error(`verifier failed: ${reply.message}`));
      this.pump();
    });
    worker.on('error', (e: Error & { code?: string }) => {
      const failure =
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new VerificationMemoryError(this.options.memoryBytes)
          : new Error(`verifier worker failed: ${e.message}`);
      this.replace(slot, failure);
    });
    worker.on('exit', () => this.replace(slot, new Error('verifier worker exited')));
    return slot;
  }

  private start(slot: Slot, job: Job): void {
    slot.job = job;
    this.running.set(job.tenant, (this.running.get(job.tenant) ?? 0) + 1);
    slot.timer = setTimeout(() => {
      slot.timer = null;
      this.replace(slot, new VerificationTimeoutError(this.options.timeoutMs));
    }, this.options.timeoutMs);
    slot.timer.unref();
    slot.worker.postMessage({ id: job.id, program: job.program, maps: job.maps } satisfies Request);
  }

  /** The slot's job is over (whatever the outcome): give back its counts. */
  private finish(slot: Slot): void {
    const job = slot.job;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.job = null;
    if (!job) return;
    const r = (this.running.get(job.tenant) ?? 1) - 1;
    if (r <= 0) this.running.delete(job.tenant);
    else this.running.set(job.tenant, r);
    const n = this.load(job.tenant) - 1;
    if (n <= 0) this.perTenant.delete(job.tenant);
    else this.perTenant.set(job.tenant, n);
  }

  /** Terminate the slot's worker (if still alive), fail its job, and start a fresh worker in its place. */
  private replace(slot: Slot, failure: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return; // already replaced
    this.slots.splice(i, 1);
    const job = slot.job;
    this.finish(slot);
    slot.worker.removeAllListeners('exit');
    slot.worker.terminate().catch(() => {});
    job?.reject(failure);
    if (!this.closed) this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queues.values()) for (const j of q) j.reject(new Error('verifier closed'));
    this.queues.clear();
    const slots = this.slots.splice(0);
    for (const s of slots) {
      if (s.timer) clearTimeout(s.timer);
      s.job?.reject(new Error('verifier closed'));
      s.worker.removeAllListeners('exit');
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
