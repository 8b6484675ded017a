/**
 * The operating-system priority of the calling thread (Linux: nice values are per thread).
 *
 * The execution workers lower their own priority (`programs.executionWorkerNice`) so that on cores
 * shared with the I/O threads the kernel's scheduler runs socket work first: a busy worker then
 * gets a core only when no I/O thread wants it, and a plain read is never queued behind a
 * storage-function step in the run queue either. Only Linux gives a thread its own nice value
 * (elsewhere `setpriority` on the process would lower the I/O threads too), so the thread is named
 * by its kernel id from `/proc/thread-self`; where that is missing, or the kernel refuses (a
 * seccomp profile), the thread keeps the process's priority and the caller is told why.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The highest nice value Linux has (the lowest priority). */
export const MAX_NICE = 19;

/**
 * Execution workers run this many nice levels below the target's threads unless configured
 * otherwise (`programs.executionWorkerNice`). Chosen on 2 shared cores with the clients on the same
 * machine (bench:pushdown --fairness, four runs at load 9-14, src/bench/README.md): in rounds
 * without an outside burst (the victim's p99 alone under 400 µs), a victim's plain-read p99 next to
 * a busy worker was 1.9-4.7 ms (5.9-12x: a scheduler slice) in all 10 such rounds at nice 0, 3
 * and 5, and 0.24-0.34 ms (1.04-1.23x) in 4 of 5 at 10 and 19 (the fifth 1.55 ms): from about 10
 * levels down, a waking I/O thread takes the core from the worker at once (Linux EEVDF: the
 * worker's virtual deadline is that far away). Medians of the runs' medians:
 * plain-read p99 1.62x at 0, 1.05x at 10, 0.77x at 19; pushed-lookup p99 2.28x, 1.38x, 1.04x.
 * The price, only when cores are oversubscribed: a pushed-lookup load alone gets less CPU (32
 * outstanding: about 34k lookups/s at 0, 27k at 3, 14-22k at 5, 10-13k at 10, 8k at 19); 10 keeps
 * the workers about a tenth of a contended core rather than 19's 1.5%. Set 0 where pushdown
 * throughput on shared cores matters more than plain-I/O latency.
 */
export const DEFAULT_EXECUTION_WORKER_NICE = 10;

export type PriorityOutcome =
  /** The thread now runs at `nice` (the process's value plus the increment, at most 19). */
  | { readonly applied: true; readonly nice: number; readonly tid: number }
  /** It kept the process's priority: `reason` says why (platform, permission). */
  | { readonly applied: false; readonly reason: string };

/** The calling thread's kernel id (Linux), or undefined where /proc/thread-self does not exist. */
export function kernelThreadId(readLink: (path: string) => string = readlinkSync): number | undefined {
  let link: string;
  try {
    link = readLink('/proc/thread-self');
  } catch {
    return undefined;
  }
  const m = /\/task\/(\d+)$/.exec(link);
  return m === null ? undefined : Number(m[1]);
}

export interface PriorityCalls {
  readonly threadId: () => number | undefined;
  readonly get: (tid: number) => number;
  readonly set: (tid: number, nice: number) => void;
}

const OS_CALLS: PriorityCalls = { threadId: () => kernelThreadId(), get: getPriority, set: setPriority };

/**
 * Lower the calling thread's priority by `increment` nice levels (0-19) from where it is now (a new
 * thread inherits its creator's). Raising a nice value needs no privilege on Linux, so this fails
 * only where threads have no nice value of their own or a sandbox forbids the call.
 */
export function lowerThreadPriority(increment: number, calls: PriorityCalls = OS_CALLS): PriorityOutcome {
  if (!Number.isInteger(increment) || increment < 0 || increment > MAX_NICE)
    throw new RangeError(`a nice increment is 0-${MAX_NICE}, got ${increment}`);
  const tid = calls.threadId();
  if (tid === undefined) return { applied: false, reason: 'threads have no priority of their own here (no /proc/thread-self)' };
  try {
    const nice = Math.min(MAX_NICE, calls.get(tid) + increment);
    if (increment > 0) calls.set(tid, nice);
    return { applied: true, nice: calls.get(tid), tid };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return { applied: false, reason: `setpriority refused${code ? ` (${code})` : ''}: ${(e as Error).message}` };
  }
}
