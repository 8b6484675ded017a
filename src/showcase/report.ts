/** Plain-text tables, CSV, number formatting and a progress line for the demo and the benchmark. */

export type Cell = string | number;

/** RFC 4180 CSV: a header row, then one row per record; fields quoted when they need it. */
export function toCsv(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const field = (c: Cell) => {
    const s = typeof c === 'number' ? (Number.isFinite(c) ? String(Math.round(c * 1000) / 1000) : '') : c;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  for (const r of rows)
    if (r.length !== header.length) throw new RangeError(`CSV row of ${r.length} fields, header has ${header.length}`);
  return `${[header, ...rows].map((r) => r.map(field).join(',')).join('\r\n')}\r\n`;
}

/** Columns padded to their widest cell; `right` columns (by index) right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return `${[line(header), rule, ...rows.map(line)].join('\n')}\n`;
}

/** 1234567 -> "1.23M", 12345 -> "12.3k", 123 -> "123", 1.5 -> "1.5". */
export function si(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(n / 1e3).toPrecision(3)}k`;
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** A ratio as "3.2x" (or "-" when undefined). */
export const times = (r: number | undefined) =>
  r === undefined || !Number.isFinite(r) ? '-' : `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;

export interface ProgressStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
}

/**
 * Progress on stderr: on a terminal one line rewritten in place (at most every 100 ms); otherwise a
 * plain line at each quarter and at the end.
 */
export class Progress {
  private lastDraw = 0;
  private lastQuarter = -1;
  private readonly started = Date.now();

  constructor(
    private readonly out: ProgressStream,
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const pct = `${(fraction * 100).toFixed(0).padStart(3)}%`;
    const mib = `${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB`;
    if (this.out.isTTY) {
      const now = Date.now();
      if (fraction < 1 && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      const width = 24;
      const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.');
      this.out.write(`\r\x1b[2K${this.label} [${bar}] ${pct} ${mib}`);
      return;
    }
    const quarter = Math.floor(fraction * 4);
    if (quarter === this.lastQuarter) return;
    this.lastQuarter = quarter;
    if (quarter === 0) this.out.write(`${this.label}: ${mib}\n`);
    else if (quarter < 4) this.out.write(`${this.label}: ${pct} ${mib}\n`);
  }

  done(note = ''): void {
    const s = ((Date.now() - this.started) / 1000).toFixed(1);
    this.out.write(`${this.out.isTTY ? '\r\x1b[2K' : ''}${this.label}: done in ${s} s${note ? ` ${note}` : ''}\n`);
  }
}

/** A status line on stderr (on a terminal, clears a progress line first). */
export function say(out: ProgressStream, text: string): void {
  out.write(`${out.isTTY ? '\r\x1b[2K' : ''}${text}\n`);
}
