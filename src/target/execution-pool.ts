/**
 * The execution workers: storage-function steps run on a pool of worker threads, never on the
 * thread that serves sockets (issue 12). Implements the runtime's `StorageExecutor`.
 *
 * - A loaded program's sandbox is a shared WebAssembly.Memory with a stack region per worker; its
 *   maps' values live in it and their hash indexes in SharedArrayBuffers, so every worker and the
 *   host's map commands (on this thread) see one map. Each worker compiles the linked program
 *   itself (a load is rare and compiling there keeps the I/O thread free; V8 would share nothing
 *   by posting the module that recompiling in the worker does not also give).
 * - Slots stay owned here (the runtime acquires them): an execution is posted with its slot index.
 * - Hand-off: shared-memory rings (execution-channel.ts): an execution is a ring slot's plain fields,
 *   and so is its completion; the worker sleeps in `Atomics.wait` on its wake word, this thread keeps
 *   an `Atomics.waitAsync` armed while executions are out. Loads, namespaces, and inputs, outputs and
 *   errors too large for a slot go by message. `pingRoundTrip()` measures the round trip either way.
 * - Placement: an execution goes to the worker with the fewest executions in flight (ties: round
 *   robin), so a tenant uses idle workers freely; within a worker `DeficitScheduler` shares time
 *   between tenants by measured CPU.
 * - A worker that dies (a crash: programs cannot end one) is replaced: its executions in flight fail
 *   with `ExecutionWorkerError`, map and page-cache locks it held are taken back, and the new worker
 *   gets every loaded program and namespace again.
 * - Workers start with the first program load, so a target that never runs programs starts none.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ProgramLoadError } from '../errors.js';
import type { ExecutionBudget } from '../runtime/budget.js';
import { ExecutionWorkerError } from '../runtime/errors.js';
import type { ExecutionMode, ExecutionRequest, StorageExecutor } from '../runtime/execution.js';
import type { SchedulerOptions } from '../runtime/scheduler.js';
import { releaseSlotOf, type Slot, type StorageFunction } from '../runtime/storage-function.js';
import {
  createLink,
  type Done,
  ExecutionProducer,
  isRemoteOwner,
  ownerGeneration,
  ownerProducer,
  ownerWorker,
  remoteSlotOwner,
  type SharedLink,
  type Submission,
  takeOrphans,
  ZERO_STATS,
} from './execution-channel.js';
import { decodeError, type FromWorker, type SharedNamespace, type ToWorker, type WorkerInit } from './execution-wire.js';
import type { Logger } from './logger.js';
import type { PageCache } from './page-cache.js';
import { WakeWord } from './slot-ring.js';
import { DEFAULT_EXECUTION_WORKER_NICE, MAX_NICE, type PriorityOutcome } from './thread-priority.js';

/** What a namespace gives the pool (`Namespace.shareable()`); the cache to recover locks of. */
export interface ShareableNamespace {
  readonly shared: SharedNamespace;
  readonly cache: PageCache | undefined;
}

interface LoadedProgram {
  readonly id: number;
  readonly fn: StorageFunction;
  readonly message: ToWorker & { t: 'load' };
}

interface WorkerSlot {
  readonly index: number;
  worker: Worker;
  threadId: number;
  readonly wake: WakeWord;
  /** Its link to each producer thread (0: this one), replaced with the worker. */
  readonly links: SharedLink[];
  readonly namespaces: Set<number>;
  readonly loads: Map<number, { resolve: () => void; reject: (e: unknown) => void }>;
  readonly pings: Map<number, () => void>;
  /** Whether the worker is ref'd (keeps the process alive). */
  refd: boolean;
  /** What its thread's priority became (undefined until it said it is ready). */
  priority: PriorityOutcome | undefined;
}

export interface ExecutionPoolOptions {
  /** Workers; default one per core beyond the first, at least one. */
  readonly workers?: number;
  readonly scheduler?: SchedulerOptions;
  /** Weight of each tenant (host NQN) in the workers' CPU shares; absent ones weigh 1. */
  readonly weights?: ReadonlyMap<string, number>;
  readonly log?: Logger;
  /** Idle spin of a worker before it sleeps, in microseconds (default 0; see execution-worker.ts). */
  readonly spinMicros?: number;
  /**
   * Nice levels each worker lowers its thread's priority by, below the target's (Linux; 0-19,
   * default `DEFAULT_EXECUTION_WORKER_NICE`): see thread-priority.ts.
   */
  readonly nice?: number;
}

export function defaultExecutionWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

const CHAIN: ExecutionMode = { kind: 'chain' };

/** Another thread's end of the pool (see `ExecutionPool.addProducer`). */
export interface PoolShare {
  /** Its index among the producers (0 is the pool's own thread). */
  readonly producer: number;
  /** Its link to each worker. */
  readonly links: readonly SharedLink[];
  readonly workerWakes: readonly SharedArrayBuffer[];
  /** Executions in flight per worker, over every producer. */
  readonly inflight: SharedArrayBuffer;
  /** Each worker's generation now (replacements so far, modulo 256: `remoteSlotOwner`). */
  readonly generations: readonly number[];
}

/** How the pool reaches a producer on another thread. */
export interface RemoteProducer {
  /** Worker `index` was replaced: fail what was on it, then submit through `link` (its `generation` now). */
  replaced(index: number, link: SharedLink, generation: number): void;
  /** A completion that came by message (an error, or an output too large for a slot). */
  done(m: FromWorker & { t: 'done' }): void;
}

/** A completion by message, into `producer`. */
export function completeByMessage(producer: ExecutionProducer, m: FromWorker & { t: 'done' }): void {
  if (m.error !== null) producer.complete(m.id, decodeError(m.error), undefined, m.stats);
  else
    producer.complete(m.id, null, { returnValue: m.returnValue, output: m.output ?? new Uint8Array(0), stats: m.stats }, m.stats);
}

/** A remote producer's end (an I/O thread), from what `addProducer` gave; `postLarge` sends a large submission to the pool's thread. */
export function attachProducer(
  share: PoolShare,
  postLarge: (index: number, s: Submission) => void,
  busyChanged?: (index: number) => void,
): ExecutionProducer {
  return new ExecutionProducer(
    share.links,
    share.workerWakes.map((b) => new WakeWord(b)),
    new Int32Array(share.inflight),
    postLarge,
    busyChanged,
  );
}

export class ExecutionPool implements StorageExecutor {
  readonly threads: number;
  private readonly workers: WorkerSlot[] = [];
  private readonly programs = new Map<StorageFunction, LoadedProgram>();
  private readonly namespaces = new Map<number, ShareableNamespace>();
  private nextId = 1;
  private nextWorker = 0;
  private closed = false;
  /** Executions in flight per worker, over every producer thread (placement). */
  private readonly inflightCounts: Int32Array;
  /** Each producer thread's wake word (0: this thread's). */
  private readonly producerWakes: SharedArrayBuffer[] = [new SharedArrayBuffer(WakeWord.BYTES)];
  /** Producers on other threads (I/O threads), by producer index - 1. */
  private readonly remotes: RemoteProducer[] = [];
  /** Producers whose thread died. */
  private readonly deadProducers = new Set<number>();
  /** Replacements of each worker so far, modulo 256 (`remoteSlotOwner`). */
  private readonly generations: number[] = [];
  private readonly producer: ExecutionProducer;
  private running = false;
  /** Workers replaced after dying (statistics, tests). */
  replaced = 0;
  /** Nice levels below the target's that the workers ask for. */
  readonly nice: number;
  /** Whether the log already said that the workers' priority could not be lowered. */
  private priorityWarned = false;

  constructor(private readonly options: ExecutionPoolOptions = {}) {
    const n = options.workers ?? defaultExecutionWorkers();
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`execution workers must be 1-64, got ${n}`);
    const nice = options.nice ?? DEFAULT_EXECUTION_WORKER_NICE;
    if (!Number.isInteger(nice) || nice < 0 || nice > MAX_NICE)
      throw new RangeError(`execution worker nice must be 0-${MAX_NICE}, got ${nice}`);
    this.nice = nice;
    this.threads = n;
    this.inflightCounts = new Int32Array(new SharedArrayBuffer(4 * n));
    for (let i = 0; i < n; i++) {
      this.generations.push(0);
      this.workers.push({
        index: i,
        worker: undefined as unknown as Worker,
        threadId: -1,
        wake: new WakeWord(),
        links: [createLink(this.producerWakes[0])],
        namespaces: new Set(),
        loads: new Map(),
        pings: new Map(),
        refd: false,
        priority: undefined,
      });
    }
    this.producer = new ExecutionProducer(
      this.workers.map((w) => w.links[0]),
      this.workers.map((w) => w.wake),
      this.inflightCounts,
      (index, s) => this.postLarge(index, 0, s),
      (index) => this.keepAliveWhileBusy(this.workers[index]),
    );
  }

  /** Workers running now (0 before the first load). */
  get started(): number {
    return this.running ? this.workers.length : 0;
  }

  /**
   * Another thread (an I/O thread) submits executions too: its links to every worker, which it
   * attaches an `ExecutionProducer` to (`attachProducer`). Its message-path completions and the
   * replacement of a worker reach it through `hooks`; its large submissions come here (`postLargeFor`).
   */
  addProducer(hooks: RemoteProducer): PoolShare {
    const producer = this.producerWakes.length;
    const wake = new SharedArrayBuffer(WakeWord.BYTES);
    this.producerWakes.push(wake);
    this.remotes.push(hooks);
    for (const w of this.workers) {
      w.links.push(createLink(wake));
      if (this.running) this.post(w, { t: 'link', producer, link: w.links[producer] });
    }
    return {
      producer,
      links: this.workers.map((w) => w.links[producer]),
      workerWakes: this.workers.map((w) => w.wake.buffer),
      inflight: this.inflightCounts.buffer as SharedArrayBuffer,
      generations: this.generations.slice(),
    };
  }

  /**
   * Producer `producer`'s thread died (an I/O thread): the slots its executions took come back as
   * they end (the workers give them back), or now for those already ended (its completion rings).
   */
  producerDied(producer: number): void {
    if (producer < 1 || producer >= this.producerWakes.length || this.deadProducers.has(producer)) return;
    this.deadProducers.add(producer);
    // Its executions on workers that died before it learnt of it (it never failed them): over.
    this.reclaim((word) => ownerProducer(word) === producer && ownerGeneration(word) !== this.generations[ownerWorker(word)]);
    if (!this.running) return;
    for (const w of this.workers) this.post(w, { t: 'producer-dead', producer });
  }

  /** A dead producer's execution on worker `worker` (its current generation) is over. */
  private orphan(program: number, slot: number, producer: number, worker: number): void {
    const owner = remoteSlotOwner(producer, worker, this.generations[worker]);
    for (const p of this.programs.values()) {
      if (p.id === program && slot < p.fn.slotCount) releaseSlotOf(p.fn.slotTable, slot, owner);
    }
  }

  /** Free every slot, of every program, whose remote owner word `dead` says is over. */
  private reclaim(dead: (word: number) => boolean): void {
    for (const p of this.programs.values()) {
      const table = p.fn.slotTable;
      for (let i = 0; i < p.fn.slotCount; i++) {
        const word = Atomics.load(table, i);
        if (isRemoteOwner(word) && ownerWorker(word) < this.workers.length && dead(word)) releaseSlotOf(table, i, word);
      }
    }
  }

  /** A namespace every worker opens now (or when it starts): remote producers name it by its id. */
  registerNamespace(ns: ShareableNamespace): void {
    this.namespaces.set(ns.shared.id, ns);
    if (!this.running) return;
    for (const w of this.workers) this.sendNamespace(w, ns);
  }

  private sendNamespace(w: WorkerSlot, ns: ShareableNamespace): void {
    if (w.namespaces.has(ns.shared.id)) return;
    w.namespaces.add(ns.shared.id);
    this.post(w, { t: 'namespace', ns: ns.shared });
  }

  /** Executions this thread had finished by each worker (successfully). */
  completed(): number[] {
    return this.running ? this.producer.completedBy.slice() : [];
  }

  /** Executions in flight on each worker (every producer thread's). */
  inflight(): number[] {
    return this.running ? this.workers.map((w) => Atomics.load(this.inflightCounts, w.index)) : [];
  }

  /** Completions that came back through the rings (the rest came by message). */
  get ringCompletions(): number {
    return this.producer.ringCompletions;
  }

  private startWorkers(): void {
    if (this.running || this.closed) return;
    this.running = true;
    for (const slot of this.workers) this.spawn(slot);
  }

  private spawn(slot: WorkerSlot): void {
    const init: WorkerInit = {
      index: slot.index,
      wake: slot.wake.buffer,
      links: slot.links,
      spinMicros: this.options.spinMicros,
      scheduler: this.options.scheduler ?? {},
      weights: Object.fromEntries(this.options.weights ?? []),
      nice: this.nice,
      generation: this.generations[slot.index],
    };
    const worker = new Worker(new URL('./execution-worker.js', import.meta.url), { workerData: { executionWorker: init } });
    slot.worker = worker;
    slot.threadId = worker.threadId;
    slot.priority = undefined;
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (e) => this.options.log?.error(`execution worker ${slot.index} failed: ${e.message}`));
    worker.on('exit', () => this.onExit(slot, worker));
    slot.refd = true;
    this.keepAliveWhileBusy(slot);
    // Namespaces first: a load's acknowledgement then means the worker can run anything named so far.
    slot.namespaces.clear();
    for (const ns of this.namespaces.values()) this.sendNamespace(slot, ns);
  }

  /**
   * An idle worker does not keep the process alive (a target closes its pool when it stops), but
   * one with work outstanding must: a caller awaiting an execution, a load or a ping with nothing
   * else on the event loop would otherwise see the process exit under it.
   */
  private keepAliveWhileBusy(slot: WorkerSlot): void {
    const busy = this.producer.outstanding(slot.index) + slot.loads.size + slot.pings.size > 0;
    if (busy === slot.refd) return;
    slot.refd = busy;
    if (busy) slot.worker.ref();
    else slot.worker.unref();
  }

  private post(slot: WorkerSlot, m: ToWorker): void {
    slot.worker.postMessage(m);
    slot.wake.wake();
  }

  /** An execution whose input does not fit a ring slot: by message (its completion comes by message too). */
  private postLarge(index: number, producer: number, s: Submission): void {
    this.post(this.workers[index], { t: 'exec', producer, ...s });
  }

  /** A remote producer's execution too large for a slot (it came here by message). */
  postLargeFor(producer: number, index: number, s: Submission): void {
    if (index < 0 || index >= this.workers.length || producer < 1 || producer >= this.producerWakes.length) return;
    this.post(this.workers[index], { t: 'exec', producer, ...s });
  }

  private onMessage(slot: WorkerSlot, m: FromWorker): void {
    switch (m.t) {
      case 'done': {
        if (m.producer !== 0) {
          if (this.deadProducers.has(m.producer)) this.orphan(m.program, m.slot, m.producer, slot.index);
          else this.remotes[m.producer - 1]?.done(m);
          return;
        }
        completeByMessage(this.producer, m);
        this.keepAliveWhileBusy(slot);
        return;
      }
      case 'loaded': {
        const pending = slot.loads.get(m.id);
        slot.loads.delete(m.id);
        this.keepAliveWhileBusy(slot);
        if (m.error !== null) pending?.reject(new ProgramLoadError(`execution worker ${slot.index}: ${m.error.message}`));
        else pending?.resolve();
        return;
      }
      case 'pong':
        slot.pings.get(m.id)?.();
        slot.pings.delete(m.id);
        this.keepAliveWhileBusy(slot);
        return;
      case 'producer-dead-ack':
        // The worker writes no more completions for it: the ones it wrote give their slots back.
        takeOrphans(slot.links[m.producer], (program, s) => this.orphan(program, s, m.producer, slot.index));
        return;
      case 'ready':
        slot.priority = m.priority;
        if (!m.priority.applied && this.nice > 0 && !this.priorityWarned) {
          // Once per pool: every worker meets the same platform. Steps still run, at the target's priority.
          this.priorityWarned = true;
          this.options.log?.warn(
            `execution workers run at the target's priority, not ${this.nice} nice levels below it: ${m.priority.reason}`,
          );
        }
        return;
    }
  }

  private onExit(slot: WorkerSlot, worker: Worker): void {
    if (slot.worker !== worker) return;
    const dead = slot.threadId;
    const failure = new ExecutionWorkerError(`execution worker ${slot.index} exited; its executions were lost`);
    // What it completed before it died stays completed; the rest fails. New links: submissions the
    // dead worker never took must not run in slots that are reused now.
    this.producer.drain();
    this.producer.failWorker(slot.index, failure);
    for (let k = 0; k < slot.links.length; k++) slot.links[k] = createLink(this.producerWakes[k]);
    this.producer.replaceLink(slot.index, slot.links[0]);
    // Executions of dead producers on it: nobody else will give their slots back.
    const generation = this.generations[slot.index];
    this.reclaim(
      (word) =>
        this.deadProducers.has(ownerProducer(word)) && ownerWorker(word) === slot.index && ownerGeneration(word) === generation,
    );
    this.generations[slot.index] = (generation + 1) & 0xff;
    for (const [k, remote] of this.remotes.entries())
      remote.replaced(slot.index, slot.links[k + 1], this.generations[slot.index]);
    for (const p of slot.loads.values()) p.reject(failure);
    slot.loads.clear();
    slot.pings.clear();
    slot.namespaces.clear();
    if (this.closed) return;
    // Locks the dead thread held would stall every other thread: take them back.
    for (const p of this.programs.values()) p.fn.maps.recoverLocksOf(dead);
    for (const ns of this.namespaces.values()) ns.cache?.recoverLockOf(dead);
    this.replaced++;
    this.options.log?.error(`execution worker ${slot.index} (thread ${dead}) exited; starting a replacement`);
    this.spawn(slot);
    for (const p of this.programs.values()) this.post(slot, p.message);
  }

  async load(fn: StorageFunction, tenant: string): Promise<void> {
    if (this.closed) throw new ProgramLoadError('the target is closing');
    this.startWorkers();
    const id = this.nextId++;
    const message: ToWorker & { t: 'load' } = {
      t: 'load',
      id,
      name: fn.name,
      tenant,
      program: fn.program,
      maps: fn.maps.specs,
      slots: fn.slotCount,
      memoryMode: fn.memoryMode,
      shared: fn.shareable(),
    };
    const acks = this.workers.map(
      (slot) =>
        new Promise<void>((resolve, reject) => {
          slot.loads.set(id, { resolve, reject });
          this.keepAliveWhileBusy(slot);
          this.post(slot, message);
        }),
    );
    // Known before the acks, so a replacement worker started meanwhile gets it too.
    const loaded: LoadedProgram = { id, fn, message };
    this.programs.set(fn, loaded);
    try {
      await Promise.all(acks);
    } catch (e) {
      this.unload(fn);
      throw e;
    }
  }

  /** The workers' id of a loaded program (what a remote producer submits with). */
  programId(fn: StorageFunction): number | undefined {
    return this.programs.get(fn)?.id;
  }

  unload(fn: StorageFunction): void {
    const p = this.programs.get(fn);
    if (p === undefined) return;
    this.programs.delete(fn);
    for (const slot of this.workers) this.post(slot, { t: 'unload', id: p.id });
  }

  execute(fn: StorageFunction, slot: Slot, request: ExecutionRequest, budget: ExecutionBudget, done: Done): void {
    const program = this.programs.get(fn);
    const ns = request.reader.shareable?.() as ShareableNamespace | undefined;
    if (program === undefined || ns === undefined || !this.running) {
      done(new ExecutionWorkerError(`'${fn.name}' is not loaded on the execution workers`), undefined, ZERO_STATS);
      return;
    }
    const producer = this.producer;
    // The worker with the fewest executions in flight (over every producer); ties round robin.
    const worker = this.workers[producer.pick(this.nextWorker)];
    this.nextWorker = (worker.index + 1) % this.workers.length;
    if (!this.namespaces.has(ns.shared.id)) this.namespaces.set(ns.shared.id, ns);
    this.sendNamespace(worker, ns);
    producer.submit(
      worker.index,
      {
        id: this.nextId++,
        program: program.id,
        slot: slot.index,
        namespace: ns.shared.id,
        params: request.params,
        input: request.input,
        mode: request.mode ?? CHAIN,
        budget,
      },
      done,
    );
  }

  /**
   * Round trip of an empty request to worker `index` and back, in microseconds (the hand-off cost):
   * through the rings (`ring`, what executions use) or as messages (`message`, loads and large data).
   */
  pingRoundTrip(index = 0, via: 'ring' | 'message' = 'ring'): Promise<number> {
    this.startWorkers();
    if (via === 'ring') return this.producer.ping(index, this.nextId++);
    const slot = this.workers[index];
    const id = this.nextId++;
    const start = performance.now();
    return new Promise((resolve) => {
      slot.pings.set(id, () => resolve((performance.now() - start) * 1000));
      this.keepAliveWhileBusy(slot);
      this.post(slot, { t: 'ping', id });
    });
  }

  /** What each running worker's thread priority became (undefined: not ready yet). */
  priorities(): (PriorityOutcome | undefined)[] {
    return this.running ? this.workers.map((w) => w.priority) : [];
  }

  /** Kill worker `index` (tests: a crash). */
  crashForTest(index: number): Promise<number> {
    return this.workers[index].worker.terminate();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (!this.running) return;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
