/**
 * Per-tenant budgets of storage-function executions. Every count and size has a limit; a violation
 * ends only the execution (or load) that caused it.
 */
import { MAX_READS_PER_STEP } from '../abi/storage.js';

export interface ExecutionBudget {
  readonly maxSteps: number;
  /** Namespace bytes read over the whole execution. */
  readonly maxBytesRead: number;
  readonly maxReadsPerStep: number;
  readonly maxInstructionsPerStep: number;
  readonly maxInstructionsPerExecution: number;
  readonly maxOutputBytes: number;
  /** Wall-clock time from the start of the execution. */
  readonly deadlineMs: number;
}

export interface TenantLimits extends ExecutionBudget {
  readonly maxConcurrentExecutions: number;
  readonly maxLoadedPrograms: number;
  readonly maxMapMemoryBytes: number;
}

export const DEFAULT_TENANT_LIMITS: TenantLimits = {
  maxSteps: 1024,
  maxBytesRead: 64 * 1024 * 1024,
  maxReadsPerStep: MAX_READS_PER_STEP,
  // About a millisecond of JIT time: bounds how long one step can hold the event loop.
  maxInstructionsPerStep: 2_000_000,
  maxInstructionsPerExecution: 200_000_000,
  maxOutputBytes: 1024 * 1024,
  deadlineMs: 10_000,
  maxConcurrentExecutions: 8,
  maxLoadedPrograms: 32,
  maxMapMemoryBytes: 16 * 1024 * 1024,
};

/** Check a limits object given by configuration: every field a positive safe integer within its hard cap. */
export function validateLimits(limits: TenantLimits): TenantLimits {
  const hardCaps: Partial<Record<keyof TenantLimits, number>> = {
    maxReadsPerStep: MAX_READS_PER_STEP,
    maxConcurrentExecutions: 32,
  };
  for (const [key, value] of Object.entries(limits) as [keyof TenantLimits, number][]) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`limit ${key} must be a positive integer, got ${value}`);
    const cap = hardCaps[key];
    if (cap !== undefined && value > cap) throw new RangeError(`limit ${key} is at most ${cap}, got ${value}`);
  }
  return limits;
}
