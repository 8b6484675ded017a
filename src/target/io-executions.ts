/**
 * Executions started on an I/O thread, straight onto the execution workers' rings: no hop through
 * the main thread. The main thread still owns the programs (loads, unloads, maps, Get Message,
 * statistics); this thread mirrors what it needs to start an execution exactly as the main thread
 * would (`ProgramService.programsChanged`):
 *
 * - **Who may run what:** a program handle is the tenant's (host NQN) only, and the namespace must
 *   be one of the association's, as on the main thread.
 * - **Limits:** slots come from the function's shared slot table (`takeSlot`), so
 *   `maxConcurrentExecutions` holds over every thread together. The budget is the tenant's, as the
 *   main thread computed it at load.
 * - **Fairness:** the workers' deficit round-robin sees the program's tenant and weight whoever
 *   submitted it.
 * - **Bookkeeping:** every execution is reported to the main thread (statistics, the observer,
 *   Get Message, logs) in batches. A batch is flushed before any other message to the main thread,
 *   so a later command on this thread (List, Get Message) sees it.
 *
 * Anything not decided here goes to the main thread as before (`execute` returns null):
 * - a handle or namespace not (yet) mirrored;
 * - an input too large for a ring slot;
 * - no free slot (the main thread answers the budget error, or runs it if one freed meanwhile);
 * - a program being unloaded.
 */
import { ProgramOpcode } from '../protocol/programs.js';
import type { Sqe } from '../protocol/sqe.js';
import type { ExecutionBudget } from '../runtime/budget.js';
import { ExecutionWorkerError } from '../runtime/errors.js';
import type { ExecutionResult, ExecutionStats } from '../runtime/execution.js';
import { takeSlot } from '../runtime/storage-function.js';
import type { Completion } from './completion.js';
import type { Controller } from './controller.js';
import { type ExecutionProducer, fitsSlot, remoteSlotOwner, type SharedLink } from './execution-channel.js';
import { attachProducer, completeByMessage, type PoolShare } from './execution-pool.js';
import { encodeError, type FromWorker, type WireError } from './execution-wire.js';
import {
  executedCompletion,
  executeRequestOf,
  failureCompletion,
  outputTooLargeOf,
  type ProgramChange,
  type RemoteExecution,
} from './programs.js';

interface MirroredProgram {
  readonly tenant: string;
  readonly program: number;
  readonly table: Int32Array;
  readonly slots: number;
  readonly budget: ExecutionBudget;
}

/** An execution's report as it crosses to the main thread (its error encoded). */
export type RemoteExecutionWire = Omit<RemoteExecution, 'error'> & { readonly cntlid: number; readonly error: WireError | null };

/** Messages from the main thread this module handles (`type` as io-threads.ts uses it). */
export type ExecutionsUpdate =
  | { readonly type: 'exec-program'; readonly change: ProgramChange }
  | { readonly type: 'exec-namespaces'; readonly list: readonly { nqn: string; nsid: number; id: number }[] }
  | { readonly type: 'exec-replaced'; readonly index: number; readonly link: SharedLink; readonly generation: number }
  | { readonly type: 'exec-done'; readonly m: FromWorker & { t: 'done' } };

/** Reports held before they go to the main thread in one message. */
const MAX_BATCH = 64;

export class IoExecutions {
  private readonly programs = new Map<number, MirroredProgram>();
  /** (subsystem NQN, NSID) -> the workers' id of the main thread's namespace. */
  private readonly namespaces = new Map<string, number>();
  private readonly producer: ExecutionProducer;
  private batch: RemoteExecutionWire[] = [];
  private flushQueued = false;
  private nextId = 1;
  private nextWorker = 0;
  /** Executions started here (statistics, tests). */
  started = 0;
  /** This thread's producer index at the pool. */
  private readonly producerIndex: number;
  /** Each worker's generation as this thread knows it (`exec-replaced` updates it). */
  private readonly generations: number[];

  constructor(
    share: PoolShare,
    /** Posts to the main thread. */
    private readonly toMain: (m: unknown) => void,
  ) {
    this.producerIndex = share.producer;
    this.generations = share.generations.slice();
    // Inputs too large for a slot never get here (`execute` leaves them to the main thread).
    this.producer = attachProducer(share, () => {
      throw new Error('an input too large for a ring slot reached the I/O thread producer');
    });
  }

  /** A message from the main thread (see `ExecutionsUpdate`). */
  update(m: ExecutionsUpdate): void {
    switch (m.type) {
      case 'exec-program': {
        const c = m.change;
        if (c.kind === 'removed') this.programs.delete(c.handle);
        else {
          this.programs.set(c.handle, {
            tenant: c.tenant,
            program: c.program,
            table: new Int32Array(c.slotTable),
            slots: c.slots,
            budget: c.budget,
          });
        }
        return;
      }
      case 'exec-namespaces':
        for (const n of m.list) this.namespaces.set(`${n.nqn}\0${n.nsid}`, n.id);
        return;
      case 'exec-replaced':
        // What the dead worker completed before it died stays completed.
        this.producer.drain();
        this.producer.failWorker(
          m.index,
          new ExecutionWorkerError(`execution worker ${m.index} exited; its executions were lost`),
        );
        this.producer.replaceLink(m.index, m.link);
        this.generations[m.index] = m.generation;
        return;
      case 'exec-done':
        completeByMessage(this.producer, m.m);
        return;
    }
  }

  /**
   * Start an Execute command here: its completion, later; or null when the main thread must
   * answer it (see the module comment).
   */
  execute(ctl: Controller, qid: number, sqe: Sqe, data: Buffer | null): Promise<Completion> | null {
    if (sqe.opcode !== ProgramOpcode.Execute && sqe.opcode !== ProgramOpcode.ExecuteWithInput) return null;
    const handle = sqe.cdw12 >>> 0;
    const p = this.programs.get(handle);
    if (p === undefined || p.tenant !== ctl.hostNqn) return null;
    const ns = ctl.io.namespaces.get(sqe.nsid);
    const namespace = this.namespaces.get(`${ctl.subsystem.nqn}\0${sqe.nsid}`);
    if (ns === undefined || namespace === undefined) return null;
    const request = executeRequestOf(sqe, ns.blockSize, data);
    if (!fitsSlot(request.input)) return null;
    // The worker first: the slot's word names this thread, the worker and its generation, so the
    // pool can give the slot back should both die (execution-pool.ts).
    const worker = this.producer.pick(this.nextWorker);
    const slot = takeSlot(p.table, p.slots, remoteSlotOwner(this.producerIndex, worker, this.generations[worker]));
    if (slot < 0) return null;
    // Being unloaded (the word after the slots): the main thread decides.
    if (Atomics.load(p.table, p.slots) !== 0) {
      Atomics.store(p.table, slot, 0);
      return null;
    }
    this.started++;
    this.nextWorker = worker + 1;
    return new Promise((resolve) => {
      this.producer.submit(
        worker,
        {
          id: this.nextId++,
          program: p.program,
          slot,
          namespace,
          params: request.params,
          input: request.input,
          mode: request.mode,
          budget: p.budget,
        },
        (error: unknown, result: ExecutionResult | undefined, stats: ExecutionStats) => {
          Atomics.store(p.table, slot, 0);
          const base = { cntlid: ctl.cntlid, handle, qid, cid: sqe.cid, nsid: sqe.nsid, stats };
          if (error !== null || result === undefined) {
            this.report({ ...base, outputBytes: 0, error: encodeError(error) });
            resolve(failureCompletion(error));
            return;
          }
          const c = executedCompletion(sqe, result);
          const tooLarge = outputTooLargeOf(sqe, c);
          this.report({
            ...base,
            outputBytes: result.output.byteLength,
            error: null,
            ...(tooLarge ? { tooLargeBytes: tooLarge.bytes, roomBytes: tooLarge.room } : {}),
          });
          resolve(c);
        },
      );
    });
  }

  private report(r: RemoteExecutionWire): void {
    this.batch.push(r);
    if (this.batch.length >= MAX_BATCH) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
  }

  /** Send the reports held so far (call before any other message to the main thread). */
  readonly flush = (): void => {
    this.flushQueued = false;
    if (this.batch.length === 0) return;
    const records = this.batch;
    this.batch = [];
    this.toMain({ type: 'exec-records', records });
  };
}
