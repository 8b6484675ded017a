/**
 * Messages between the target's I/O thread and its execution workers (execution-pool.ts and
 * execution-worker.ts), and how a failure crosses the thread boundary: every error an execution can
 * end with is rebuilt on the I/O thread as the same class with the same fields, so its NVMe status
 * and its message for the host are what they would be on one thread.
 */
import {
  CallDepthError,
  FuelExhaustedError,
  HelperError,
  MemoryAccessError,
  NearbpfError,
  UnknownHelperError,
} from '../errors.js';
import type { Program } from '../isa/index.js';
import type { MapSpec } from '../maps/index.js';
import { BudgetExceededError, type BudgetName, StorageAccessError, StorageReadError } from '../runtime/errors.js';
import type { ExecutionStats } from '../runtime/execution.js';
import type { SchedulerOptions } from '../runtime/scheduler.js';
import type { StorageFunctionShared } from '../runtime/storage-function.js';
import type { MemoryMode } from '../vm/jit/engine.js';
import { SandboxTrapError } from '../vm/jit/engine.js';
import type { SharedLink, Submission } from './execution-channel.js';
import type { SharedPageCache } from './page-cache.js';
import type { PriorityOutcome } from './thread-priority.js';

/** A namespace as a worker opens it: its file (read-only) and the shared page cache. */
export interface SharedNamespace {
  readonly id: number;
  readonly path: string;
  readonly sizeBytes: number;
  readonly cache: SharedPageCache | undefined;
}

export interface WorkerInit {
  readonly index: number;
  /** The worker's wake word (slot-ring.ts `WakeWord`): producers bump it after a message or a submission. */
  readonly wake: SharedArrayBuffer;
  /** Its links to producers (execution-channel.ts), by producer index: submission and completion rings. */
  readonly links: readonly SharedLink[];
  /** Idle spin before sleeping, in microseconds (default: none). */
  readonly spinMicros?: number;
  readonly scheduler: SchedulerOptions;
  readonly weights: Readonly<Record<string, number>>;
  /** Nice levels the worker lowers its own thread's priority by (thread-priority.ts); 0 keeps it. */
  readonly nice: number;
  /** Replacements of this worker index so far, modulo 256 (execution-pool.ts `remoteSlotOwner`). */
  readonly generation: number;
}

export type ToWorker =
  | {
      readonly t: 'load';
      readonly id: number;
      readonly name: string;
      readonly tenant: string;
      readonly program: Program;
      readonly maps: readonly MapSpec[];
      readonly slots: number;
      readonly memoryMode: MemoryMode;
      readonly shared: StorageFunctionShared;
    }
  | { readonly t: 'unload'; readonly id: number }
  | { readonly t: 'namespace'; readonly ns: SharedNamespace }
  /** A producer added after the worker started (an I/O thread's link). */
  | { readonly t: 'link'; readonly producer: number; readonly link: SharedLink }
  /** A producer's thread died: give back the slots of its executions (acknowledged). */
  | { readonly t: 'producer-dead'; readonly producer: number }
  | (Submission & {
      readonly t: 'exec';
      /** Who submitted it (0: the pool's thread); its completion goes back to it. */
      readonly producer: number;
    })
  /** Echo, for measuring the hand-off. */
  | { readonly t: 'ping'; readonly id: number };

export type FromWorker =
  /** Started; with what became of its priority (`WorkerInit.nice`). */
  | { readonly t: 'ready'; readonly priority: PriorityOutcome }
  | { readonly t: 'loaded'; readonly id: number; readonly error: WireError | null }
  | {
      readonly t: 'done';
      readonly producer: number;
      readonly id: number;
      /** The execution's program and slot (given back here if its producer died). */
      readonly program: number;
      readonly slot: number;
      readonly error: WireError | null;
      readonly returnValue: bigint;
      readonly output: Uint8Array | null;
      readonly stats: ExecutionStats;
    }
  | { readonly t: 'pong'; readonly id: number }
  /** After this, the worker writes nothing more to that producer's completion ring. */
  | { readonly t: 'producer-dead-ack'; readonly producer: number };

export interface WireError {
  readonly kind: string;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export function encodeError(e: unknown): WireError {
  if (!(e instanceof Error)) return { kind: 'Error', message: String(e), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (typeof v !== 'function' && k !== 'code') fields[k] = v;
  return { kind: e.constructor.name, message: e.message, fields };
}

/** A generic error that keeps its code and message (errors with no class of their own here). */
export class RemoteExecutionError extends NearbpfError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function decodeError(w: WireError): Error {
  const f = w.fields as Record<string, never>;
  switch (w.kind) {
    case 'BudgetExceededError': {
      const e = new BudgetExceededError(f.budget as BudgetName, f.limit, '');
      e.message = w.message;
      return e;
    }
    case 'StorageAccessError':
      return withMessage(new StorageAccessError(f.pc, ''), w.message);
    case 'StorageReadError':
      return new StorageReadError(w.message);
    case 'MemoryAccessError':
      return new MemoryAccessError(f.pc, f.access, f.address, f.sizeBytes);
    case 'FuelExhaustedError':
      return new FuelExhaustedError(f.pc, f.fuel);
    case 'CallDepthError':
      return new CallDepthError(f.pc, f.maxDepth);
    case 'UnknownHelperError':
      return new UnknownHelperError(f.pc, f.helperId);
    case 'HelperError':
      return new HelperError(f.pc, f.helperId, f.reason);
    case 'SandboxTrapError':
      return new SandboxTrapError(f.reason);
    default:
      return new RemoteExecutionError(typeof f.code === 'string' ? f.code : 'ERR_EXECUTION', w.message);
  }
}

function withMessage<E extends Error>(e: E, message: string): E {
  e.message = message;
  return e;
}
