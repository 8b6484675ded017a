import { NearbpfError } from '../errors.js';

/** Details of a rejection, as carried by `VerifierError`. */
export interface VerifierRejection {
  /** Slot index of the offending instruction. */
  readonly pc: number;
  /** The instruction in assembly syntax ('' when the program has no instruction at `pc`). */
  readonly instruction: string;
  /** One line, in the Linux verifier's phrasing where it has one (`R2 !read_ok`). */
  readonly reason: string;
  /** Registers and stack of the path at the failure, innermost frame first. */
  readonly state: readonly string[];
  /** Source line of `pc`, from the caller's `lineInfo`. */
  readonly lineInfo?: string;
  /** The whole verifier log (its detail follows the requested log level). */
  readonly log: string;
  /** Instructions processed and checkpoints recorded before the rejection. */
  readonly processedInsns?: number;
  readonly states?: number;
  /** Joins done on the way (-1: joins were off). */
  readonly joins?: number;
  /** Local calls verified through a function summary (-1: summaries were off). */
  readonly summaries?: number;
}

/**
 * The verifier refused a program. Like cilium/ebpf's `VerifierError`: the message is the reason; the
 * log is kept whole and printed on demand with `format({ verbose: true })`.
 */
export class VerifierError extends NearbpfError implements VerifierRejection {
  readonly code = 'ERR_VERIFIER_REJECTED';
  readonly pc: number;
  readonly instruction: string;
  readonly reason: string;
  readonly state: readonly string[];
  readonly lineInfo?: string;
  readonly log: string;
  readonly processedInsns?: number;
  readonly states?: number;
  readonly joins?: number;
  readonly summaries?: number;

  constructor(r: VerifierRejection) {
    super(`pc ${r.pc}: ${r.reason}${r.instruction ? ` (${r.instruction})` : ''}`);
    this.pc = r.pc;
    this.instruction = r.instruction;
    this.reason = r.reason;
    this.state = r.state;
    this.lineInfo = r.lineInfo;
    this.log = r.log;
    this.processedInsns = r.processedInsns;
    this.states = r.states;
    this.joins = r.joins;
    this.summaries = r.summaries;
  }

  /** The failing instruction, the reason and the state; with `verbose`, the whole log instead. */
  format(options: { verbose?: boolean } = {}): string {
    if (options.verbose) return this.log;
    const lines = [];
    if (this.lineInfo) lines.push(`; ${this.lineInfo}`);
    lines.push(`${this.pc}: ${this.instruction}`, this.reason, ...this.state.map((s) => `  ${s}`));
    return lines.join('\n');
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      pc: this.pc,
      instruction: this.instruction,
      reason: this.reason,
      state: this.state,
      lineInfo: this.lineInfo,
      processedInsns: this.processedInsns,
      states: this.states,
      log: this.log,
    };
  }
}
