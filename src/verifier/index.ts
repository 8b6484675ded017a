/**
 * The static verifier: `verifyProgram` proves a program memory-safe, terminating and free of
 * address leaks for its program type, or throws a `VerifierError` saying which check failed where.
 * Must never import src/vm (see README.md).
 */
import type { MapDefinition } from '../abi/maps.js';
import { type ProgramType, type ProgramTypeName, programTypeByName } from '../abi/program-types.js';
import type { Program } from '../isa/index.js';
import { VerifierError } from './errors.js';
import { type VerificationResult, Verifier } from './verifier.js';

export { VerifierError, type VerifierRejection } from './errors.js';
export type { VerificationResult, VerificationStats } from './verifier.js';

export interface VerifyOptions {
  /** The program type, by registered name or as a description. */
  readonly type: ProgramTypeName | ProgramType;
  /** Maps the program references with `lddw %rN, map_by_idx K`. */
  readonly maps?: readonly MapDefinition[];
  /** 0: the error and a few preceding instructions; 1: every processed instruction; 2: and the state after each. */
  readonly logLevel?: 0 | 1 | 2;
  /** Source line of a pc, printed in the log and the error. */
  readonly lineInfo?: (pc: number) => string | undefined;
  /** Give up after this many processed instructions (default and maximum use: 1,000,000). */
  readonly maxProcessedInsns?: number;
  /** Join paths that differ only in precise numbers (default true). */
  readonly joins?: boolean;
  /** Verify local calls through function summaries where possible (default true). */
  readonly summaries?: boolean;
}

/**
 * Verify `program`; returns statistics and the log, or throws `VerifierError`. Joins (README.md,
 * "Joins") and function summaries ("Function summaries") only ever widen states, so both runs are
 * sound; when the run with them rejects a program after joining or summarizing a call, the exact
 * inline exploration decides (a hull can lose what proved a loop makes progress, or a bound the
 * caller needed).
 */
export function verifyProgram(program: Program, options: VerifyOptions): VerificationResult {
  const type = typeof options.type === 'string' ? programTypeByName(options.type) : options.type;
  if (!type) throw new TypeError(`unknown program type '${String(options.type)}'`);
  try {
    return new Verifier(program, { ...options, type }).run();
  } catch (e) {
    if (!(e instanceof VerifierError) || !((e.joins && e.joins > 0) || (e.summaries && e.summaries > 0))) throw e;
    return new Verifier(program, { ...options, type, joins: false, summaries: false }).run();
  }
}
