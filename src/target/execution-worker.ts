/**
 * An execution worker: runs storage-function steps off the I/O thread (see execution-pool.ts).
 *
 * Executions arrive in submission rings (execution-channel.ts, one per producer thread) and their
 * completions leave in completion rings; loads, namespaces, and executions or completions too large
 * for a ring slot go by message on the worker's port, taken with `receiveMessageOnPort`. Producers
 * bump the worker's wake word after either, so an idle worker sleeps in `Atomics.wait` and wakes
 * without a trip through its event loop. Turns are granted
 * by a `DeficitScheduler` (CPU fairness between tenants over measured turn time); a read of a step
 * is served from the shared page cache, or read by this thread from the file (`readSync` on its own
 * descriptor: it blocks only this worker, never the I/O thread) and the whole pages kept in the cache.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { isMainThread, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { DeficitScheduler } from '../runtime/deficit-scheduler.js';
import { StorageReadError } from '../runtime/errors.js';
import { type ExecutionResult, type ExecutionStats, type NamespaceReader, startExecution } from '../runtime/execution.js';
import { releaseSlotOf, StorageFunction } from '../runtime/storage-function.js';
import {
  type Done,
  remoteSlotOwner,
  type SharedLink,
  type Submission,
  type TakenSubmission,
  WorkerLink,
  ZERO_STATS,
} from './execution-channel.js';
import { encodeError, type FromWorker, type SharedNamespace, type ToWorker, type WorkerInit } from './execution-wire.js';
import { CACHE_PAGE_BYTES, PageCache } from './page-cache.js';
import { WakeWord } from './slot-ring.js';
import { lowerThreadPriority } from './thread-priority.js';

/** Reads up to this size go through the page cache (as on the I/O thread, namespace.ts). */
const MAX_CACHED_READ_BYTES = 64 * 1024;
/** Time a busy worker runs before it lets its event loop turn (termination, timers). */
const PUMP_SLICE_MS = 2;
/**
 * Time an idle worker watches its wake word before sleeping (a submission seen while spinning costs
 * no wake-up). 0: sleep at once; see the README of src/bench for what spinning buys on this machine.
 */
const DEFAULT_SPIN_MICROS = 0;
/** An idle worker wakes this often anyway (timers of its event loop, termination). */
const IDLE_WAIT_MS = 50;

/** A namespace as this worker reads it: the shared cache first, then its own descriptor. */
class WorkerNamespace implements NamespaceReader {
  readonly sizeBytes: number;
  private readonly fd: number;
  private readonly cache: PageCache | undefined;
  private readonly pages = Buffer.allocUnsafeSlow(MAX_CACHED_READ_BYTES + 2 * CACHE_PAGE_BYTES);

  constructor(ns: SharedNamespace) {
    this.sizeBytes = ns.sizeBytes;
    this.fd = openSync(ns.path, 'r');
    this.cache = ns.cache ? PageCache.attach(ns.cache) : undefined;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Always completes: from the cache, or read now (whole pages, then kept in the cache). */
  readNow(offset: number, length: number, dest: Uint8Array, destOffset: number): boolean {
    const cache = this.cache;
    if (cache !== undefined && length <= MAX_CACHED_READ_BYTES) {
      if (cache.readInto(offset, length, dest, destOffset)) return true;
      const start = Math.floor(offset / CACHE_PAGE_BYTES) * CACHE_PAGE_BYTES;
      const end = Math.min(this.sizeBytes, Math.ceil((offset + length) / CACHE_PAGE_BYTES) * CACHE_PAGE_BYTES);
      const generation = cache.generation;
      this.readFully(this.pages, 0, end - start, start);
      cache.fill(start, this.pages.subarray(0, end - start), generation);
      dest.set(this.pages.subarray(offset - start, offset - start + length), destOffset);
      return true;
    }
    this.readFully(dest, destOffset, length, offset);
    return true;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    try {
      this.readNow(offset, length, out, 0);
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve(out);
  }

  /** Positioned reads until `length` bytes are in; zeros past the end of a shrunken file. */
  private readFully(dest: Uint8Array, at: number, length: number, offset: number): void {
    let filled = 0;
    try {
      while (filled < length) {
        const n = readSync(this.fd, dest, at + filled, length - filled, offset + filled);
        if (n === 0) {
          dest.fill(0, at + filled, at + length);
          return;
        }
        filled += n;
      }
    } catch (e) {
      throw new StorageReadError(`read of ${length} bytes at ${offset} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

function runWorker(port: NonNullable<typeof parentPort>, init: WorkerInit): void {
  const wake = new WakeWord(init.wake);
  const links: WorkerLink[] = [];
  /** Producers (I/O threads) that died: nobody reads their completions. */
  const deadProducers = new Set<number>();
  /** A dead producer's execution is over: its slot is free again (if it still holds it). */
  const orphanOf =
    (producer: number) =>
    (program: number, slot: number): void => {
      const p = programs.get(program);
      if (p !== undefined && slot < p.fn.slotCount)
        releaseSlotOf(p.fn.slotTable, slot, remoteSlotOwner(producer, init.index, init.generation));
    };
  const takers: ((m: TakenSubmission) => void)[] = [];
  const spinMs = (init.spinMicros ?? DEFAULT_SPIN_MICROS) / 1000;
  const programs = new Map<number, { fn: StorageFunction; tenant: string }>();
  const namespaces = new Map<number, WorkerNamespace>();
  const scheduler = new DeficitScheduler({ ...init.scheduler, weightOf: (t) => init.weights[t] ?? 1 });
  const send = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

  /**
   * A completion by message to `producer` (the pool's thread forwards another producer's): an error,
   * an output too large for a ring slot, or an execution that came by message.
   */
  const sendDone = (
    producer: number,
    id: number,
    error: unknown,
    result: ExecutionResult | undefined,
    stats: ExecutionStats,
    program: number,
    slot: number,
  ): void => {
    if (error !== null || result === undefined) {
      send({ t: 'done', producer, id, program, slot, error: encodeError(error), returnValue: 0n, output: null, stats });
      return;
    }
    const output = result.output;
    // Moved, not copied, when the output is a whole buffer of its own (never a view into one kept here).
    const whole = output.byteLength > 0 && output.byteOffset === 0 && output.byteLength === output.buffer.byteLength;
    send(
      { t: 'done', producer, id, program, slot, error: null, returnValue: result.returnValue, output, stats },
      whole && output.buffer instanceof ArrayBuffer ? [output.buffer] : undefined,
    );
  };

  /** Start one execution; `done` reports it. Unknown program or namespace: drain messages once (a load or namespace posted just before). */
  const start = (m: Submission | TakenSubmission, done: Done): void => {
    let program = programs.get(m.program);
    let reader = namespaces.get(m.namespace);
    if (program === undefined || reader === undefined) {
      drain();
      program = programs.get(m.program);
      reader = namespaces.get(m.namespace);
    }
    if (program === undefined || reader === undefined) {
      done(
        new StorageReadError(`worker ${init.index} has no program ${m.program} or namespace ${m.namespace}`),
        undefined,
        ZERO_STATS,
      );
      return;
    }
    const { fn, tenant } = program;
    startExecution(
      fn,
      fn.slotAt(m.slot),
      { reader, params: m.params, input: m.input, mode: m.mode, tenant },
      m.budget,
      scheduler,
      done,
    );
  };

  /** Producer `producer`'s link (a replaced one too: the pool sends every link again to a new worker). */
  const attach = (producer: number, shared: SharedLink): void => {
    const link = new WorkerLink(shared);
    links[producer] = link;
    takers[producer] = (m: TakenSubmission): void => {
      const { id, program, slot } = m;
      start(m, (error, result, stats) => {
        if (deadProducers.has(producer)) {
          // Nobody reads its completions: the slot it took comes back here.
          link.completedElsewhere();
          orphanOf(producer)(program, slot);
        } else if (error === null && result !== undefined && WorkerLink.fits(result.output)) {
          link.completed(id, program, slot, result.returnValue, result.output, stats);
        } else {
          link.completedElsewhere();
          sendDone(producer, id, error, result, stats, program, slot);
        }
      });
    };
  };
  for (const [producer, l] of init.links.entries()) attach(producer, l);

  const handle = (m: ToWorker): void => {
    switch (m.t) {
      case 'load': {
        try {
          const fn = new StorageFunction({
            name: m.name,
            program: m.program,
            maps: m.maps,
            slots: m.slots,
            memoryMode: m.memoryMode,
            attach: { ...m.shared, threadIndex: init.index },
          });
          programs.set(m.id, { fn, tenant: m.tenant });
          send({ t: 'loaded', id: m.id, error: null });
        } catch (e) {
          send({ t: 'loaded', id: m.id, error: encodeError(e) });
        }
        return;
      }
      case 'unload':
        programs.delete(m.id);
        return;
      case 'namespace':
        if (!namespaces.has(m.ns.id)) namespaces.set(m.ns.id, new WorkerNamespace(m.ns));
        return;
      case 'ping':
        send({ t: 'pong', id: m.id });
        return;
      case 'exec':
        start(m, (error, result, stats) => sendDone(m.producer, m.id, error, result, stats, m.program, m.slot));
        return;
      case 'link':
        attach(m.producer, m.link);
        return;
      case 'producer-dead':
        // Its waiting submissions never run; running ones give their slots back when they end.
        deadProducers.add(m.producer);
        links[m.producer]?.discardAll(orphanOf(m.producer));
        send({ t: 'producer-dead-ack', producer: m.producer });
        return;
    }
  };

  function drain(): void {
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      const message = m.message as ToWorker;
      try {
        handle(message);
      } catch (e) {
        // A message this worker cannot act on fails alone (an execution gets its error), never the worker.
        if (message.t === 'exec')
          send({
            t: 'done',
            producer: message.producer,
            id: message.id,
            program: message.program,
            slot: message.slot,
            error: encodeError(e),
            returnValue: 0n,
            output: null,
            stats: ZERO_STATS,
          });
      }
    }
  }

  /** Submissions from every link, while each has completion room (see WorkerLink.takeAll). */
  const takeSubmissions = (): number => {
    let taken = 0;
    for (let i = 0; i < links.length; i++) taken += links[i].takeAll(takers[i]);
    return taken;
  };

  /**
   * Run until idle for IDLE_WAIT_MS or busy for PUMP_SLICE_MS, then let the event loop turn once
   * (termination, timers). Idle: spin `spinMs` watching the wake word, then sleep on it.
   */
  const pump = (): void => {
    const sliceEnd = performance.now() + PUMP_SLICE_MS;
    for (;;) {
      const seen = wake.seen();
      drain();
      takeSubmissions();
      while (scheduler.runNext()) {
        if (wake.seen() !== seen || performance.now() > sliceEnd) break;
      }
      if (performance.now() > sliceEnd) break;
      if (scheduler.waiting > 0 || wake.seen() !== seen) continue;
      if (spinMs > 0) {
        const spinEnd = performance.now() + spinMs;
        while (wake.seen() === seen && performance.now() < spinEnd) {}
        if (wake.seen() !== seen) continue;
      }
      wake.arm();
      const woken = Atomics.wait(wake.words, 0, seen, IDLE_WAIT_MS);
      wake.disarm();
      if (woken === 'timed-out') break;
    }
    setImmediate(pump);
  };

  // Before any step runs: on shared cores the kernel then serves the I/O threads first.
  send({ t: 'ready', priority: lowerThreadPriority(init.nice) });
  pump();
}

if (!isMainThread && parentPort && (workerData as { executionWorker?: WorkerInit } | undefined)?.executionWorker) {
  runWorker(parentPort, (workerData as { executionWorker: WorkerInit }).executionWorker);
}
