import { NearbpfError } from '../errors.js';

/** Which per-tenant limit an execution or a load ran into. Each maps to its own NVMe status. */
export type BudgetName =
  | 'steps'
  | 'bytesRead'
  | 'readsPerStep'
  | 'instructionsPerStep'
  | 'instructionsPerExecution'
  | 'outputBytes'
  | 'deadline'
  | 'concurrentExecutions'
  | 'loadedPrograms'
  | 'mapMemory';

/** An execution (or a load) exceeded one of its tenant's budgets; the server and others go on. */
export class BudgetExceededError extends NearbpfError {
  readonly code = 'ERR_BUDGET_EXCEEDED';
  constructor(
    readonly budget: BudgetName,
    readonly limit: number,
    detail: string,
  ) {
    super(`${budget} budget of ${limit} exceeded: ${detail}`);
  }
}

/** A storage function asked for something it may not have: a read outside its namespace, a bad length. */
export class StorageAccessError extends NearbpfError {
  readonly code = 'ERR_STORAGE_ACCESS';
  constructor(
    readonly pc: number,
    message: string,
  ) {
    super(`pc ${pc}: ${message}`);
  }
}

/** A namespace read failed underneath an execution. */
export class StorageReadError extends NearbpfError {
  readonly code = 'ERR_STORAGE_READ';
}

/** The thread running an execution died (a crash, not the program's fault); the target replaces it. */
export class ExecutionWorkerError extends NearbpfError {
  readonly code = 'ERR_EXECUTION_WORKER';
}
