/** The verifier log: what was checked, in the spirit of the kernel's (log level 1: instructions; 2: also states). */

/** Lines kept at most; beyond it the log says it was truncated (the kernel has a fixed buffer too). */
const MAX_LOG_LINES = 200_000;
/** Instructions of the failing path shown at log level 0. */
const TRAIL_LENGTH = 24;

export class VerifierLog {
  private readonly lines: string[] = [];
  private truncated = false;
  /** pcs of the last instructions of the current path (formatted only if the path fails). */
  private readonly trail: number[] = [];
  private lastLineInfo: string | undefined;
  /** pc of the last instruction logged (or kept in the trail). */
  lastPc = -1;

  constructor(
    readonly level: 0 | 1 | 2,
    private readonly format: (pc: number) => string,
    private readonly lineInfo?: (pc: number) => string | undefined,
  ) {}

  /** A line printed at `level` or above. */
  add(level: 1 | 2, text: string): void {
    if (this.level >= level) this.push(text);
  }

  /** Every processed instruction: logged at level >= 1, remembered in a short trail otherwise. */
  instruction(pc: number): void {
    this.lastPc = pc;
    if (this.level >= 1) {
      for (const l of this.describe(pc)) this.push(l);
      return;
    }
    this.trail.push(pc);
    if (this.trail.length > 2 * TRAIL_LENGTH) this.trail.splice(0, this.trail.length - TRAIL_LENGTH);
  }

  /** `pc: insn`, preceded by its source line when that changes. */
  private describe(pc: number): string[] {
    const info = this.lineInfo?.(pc);
    const lines =
      info !== undefined && info !== this.lastLineInfo
        ? [`; ${info}`, `${pc}: ${this.format(pc)}`]
        : [`${pc}: ${this.format(pc)}`];
    this.lastLineInfo = info ?? this.lastLineInfo;
    return lines;
  }

  /** A new path starts: the trail of the previous one no longer leads to the failure. */
  newPath(describe: () => string): void {
    this.trail.length = 0;
    this.lastPc = -1;
    if (this.level >= 1) this.push(describe());
  }

  /** Final lines (verdict, statistics): always logged. At level 0 a failure is preceded by its trail. */
  finish(lines: readonly string[], failed: boolean): string {
    if (failed && this.level === 0 && this.trail.length > 0) {
      this.lines.push('...', ...this.trail.slice(-TRAIL_LENGTH).flatMap((pc) => this.describe(pc)));
    }
    if (this.truncated) this.lines.push(`(log truncated after ${MAX_LOG_LINES} lines)`);
    this.lines.push(...lines);
    return `${this.lines.join('\n')}\n`;
  }

  private push(text: string): void {
    if (this.lines.length >= MAX_LOG_LINES) {
      this.truncated = true;
      return;
    }
    this.lines.push(text);
  }
}
