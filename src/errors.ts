/**
 * Every error nearbpf raises for bad input is one of these classes, each with a stable `code`.
 * Bugs in nearbpf itself are `AssertionError`s (from `node:assert`, or `invariant` below where a
 * module is on the CLI's start path), never one of these.
 */
export abstract class NearbpfError extends Error {
  abstract readonly code: string;
  override get name(): string {
    return this.constructor.name;
  }
}

/** Bytecode that is not a valid RFC 9669 program (unknown opcode, reserved field set, bad jump). */
export class DecodeError extends NearbpfError {
  readonly code = 'ERR_DECODE';
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`instruction ${index}: ${reason}`);
  }
}

/** Assembly text that cannot be assembled. `line` is 1-based. */
export class AssembleError extends NearbpfError {
  readonly code = 'ERR_ASSEMBLE';
  constructor(
    readonly line: number,
    readonly text: string,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}: ${text.trim()}`);
  }
}

/** A well-formed program that the VM refuses to load (e.g. an unknown helper, a bad memory layout). */
export class ProgramLoadError extends NearbpfError {
  readonly code = 'ERR_PROGRAM_LOAD';
}

/** Base of every run-time failure of a program; `pc` is the slot index of the faulting instruction. */
export abstract class ExecutionError extends NearbpfError {
  constructor(
    readonly pc: number,
    message: string,
  ) {
    super(`pc ${pc}: ${message}`);
  }
}

export type AccessKind = 'read' | 'write';

/** A load or store outside every region the program may access. */
export class MemoryAccessError extends ExecutionError {
  readonly code = 'ERR_MEMORY_ACCESS';
  constructor(
    pc: number,
    readonly access: AccessKind,
    readonly address: bigint,
    readonly sizeBytes: number,
  ) {
    super(pc, `invalid ${access} of ${sizeBytes} bytes at 0x${address.toString(16)}`);
  }
}

/** The program ran out of its instruction budget. */
export class FuelExhaustedError extends ExecutionError {
  readonly code = 'ERR_FUEL_EXHAUSTED';
  constructor(
    pc: number,
    readonly fuel: number,
  ) {
    super(pc, `instruction budget of ${fuel} exhausted`);
  }
}

/** A local call would exceed the maximum call depth. */
export class CallDepthError extends ExecutionError {
  readonly code = 'ERR_CALL_DEPTH';
  constructor(
    pc: number,
    readonly maxDepth: number,
  ) {
    super(pc, `call depth limit of ${maxDepth} frames exceeded`);
  }
}

/** A `callx` or `call` to a helper id that is not registered. */
export class UnknownHelperError extends ExecutionError {
  readonly code = 'ERR_UNKNOWN_HELPER';
  constructor(
    pc: number,
    readonly helperId: number,
  ) {
    super(pc, `call to unknown helper ${helperId}`);
  }
}

/** A helper rejected its arguments; `reason` comes from the helper. */
export class HelperError extends ExecutionError {
  readonly code = 'ERR_HELPER';
  constructor(
    pc: number,
    readonly helperId: number,
    readonly reason: string,
  ) {
    super(pc, `helper ${helperId} failed: ${reason}`);
  }
}

/** Wrong command-line usage (exit status 2). */
export class UsageError extends NearbpfError {
  readonly code = 'ERR_USAGE';
}

/** One of our own invariants failed: a bug in nearbpf, never bad input. */
export class AssertionError extends Error {
  readonly code = 'ERR_ASSERTION';
  override get name(): string {
    return 'AssertionError';
  }
}

/**
 * `assert.ok` without importing `node:assert`, whose module graph costs the CLI a few milliseconds
 * of start-up for modules every command loads.
 */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
