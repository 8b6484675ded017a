/**
 * A small hand-written SVG chart writer (no dependency): line charts with several series and
 * linear or log10 axes, and grouped bar charts. The output is a standalone SVG 1.1 document.
 */

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly xLog?: boolean;
  readonly yLog?: boolean;
  /** Start the y axis at zero (linear axes only; default true). */
  readonly yFromZero?: boolean;
  readonly width?: number;
  readonly height?: number;
  /** Where the legend goes (default top-left). */
  readonly legend?: 'top-left' | 'bottom-right';
}

export interface BarChart {
  readonly title: string;
  readonly yLabel: string;
  /** Category labels along x. */
  readonly categories: readonly string[];
  /** One bar per category for each group; values in category order. */
  readonly groups: readonly { readonly name: string; readonly values: readonly number[] }[];
  readonly yLog?: boolean;
  readonly width?: number;
  readonly height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#7f7f7f'];
const MARGIN = { left: 72, right: 24, top: 40, bottom: 56 };

/** Escape text for SVG character data and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

const fmt = (n: number) => {
  const a = Math.abs(n);
  if (a === 0) return '0';
  if (a >= 1e6 || a < 1e-3) return n.toExponential(0).replace('e+', 'e');
  if (a >= 1e3) return `${+(n / 1e3).toPrecision(3)}k`;
  return String(+n.toPrecision(3));
};

/** Round-number ticks covering [lo, hi]. */
function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (hi <= lo) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
}

function axis(values: number[], log: boolean, fromZero: boolean): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (finite.length === 0) return { lo: log ? 1 : 0, hi: log ? 10 : 1, log, ticks: log ? [1, 10] : [0, 1] };
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (log) {
    const a = Math.floor(Math.log10(lo));
    const b = Math.max(a + 1, Math.ceil(Math.log10(hi)));
    const ticks: number[] = [];
    for (let e = a; e <= b; e++) ticks.push(10 ** e);
    return { lo: 10 ** a, hi: 10 ** b, log, ticks };
  }
  if (fromZero) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  const ticks = linearTicks(lo, hi);
  return { lo: Math.min(lo, ticks[0]), hi: Math.max(hi, ticks[ticks.length - 1]), log, ticks };
}

const project = (a: Axis, v: number, from: number, to: number) => {
  const t = a.log ? (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo)) : (v - a.lo) / (a.hi - a.lo);
  return from + t * (to - from);
};

const n2 = (n: number) => n.toFixed(1);

function frame(width: number, height: number, title: string, xLabel: string, yLabel: string, y: Axis): string[] {
  const out: string[] = [];
  const { left, right, top, bottom } = MARGIN;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  for (const t of y.ticks) {
    const py = project(y, t, height - bottom, top);
    out.push(`<line x1="${left}" y1="${n2(py)}" x2="${width - right}" y2="${n2(py)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${left - 6}" y="${n2(py + 4)}" text-anchor="end">${escapeXml(fmt(t))}</text>`);
  }
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#000000"/>`);
  out.push(`<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#000000"/>`);
  out.push(`<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  const cy = (top + height - bottom) / 2;
  out.push(`<text x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})">${escapeXml(yLabel)}</text>`);
  return out;
}

function legend(names: readonly string[], x: number, y: number): string[] {
  return names.flatMap((name, i) => [
    `<rect x="${x}" y="${y + i * 16 - 9}" width="12" height="10" fill="${COLORS[i % COLORS.length]}"/>`,
    `<text x="${x + 16}" y="${y + i * 16}">${escapeXml(name)}</text>`,
  ]);
}

/** A line chart with markers; points with a non-finite (or, on a log axis, non-positive) value are skipped. */
export function lineChartSvg(c: LineChart): string {
  const width = c.width ?? 640;
  const height = c.height ?? 400;
  const { left, right, top, bottom } = MARGIN;
  const ok = (p: readonly [number, number]) =>
    Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!c.xLog || p[0] > 0) && (!c.yLog || p[1] > 0);
  const points = c.series.flatMap((s) => s.points.filter(ok));
  const x = axis(
    points.map((p) => p[0]),
    c.xLog ?? false,
    false,
  );
  const y = axis(
    points.map((p) => p[1]),
    c.yLog ?? false,
    c.yFromZero ?? true,
  );
  const out = frame(width, height, c.title, c.xLabel, c.yLabel, y);
  const xs = [...new Set(points.map((p) => p[0]))].sort((a, b) => a - b);
  const xTicks = c.xLog ? x.ticks : xs.length <= 12 ? xs : linearTicks(x.lo, x.hi);
  for (const t of xTicks) {
    const px = project(x, t, left, width - right);
    out.push(`<line x1="${n2(px)}" y1="${height - bottom}" x2="${n2(px)}" y2="${height - bottom + 5}" stroke="#000000"/>`);
    out.push(`<text x="${n2(px)}" y="${height - bottom + 18}" text-anchor="middle">${escapeXml(fmt(t))}</text>`);
  }
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter(ok).map((p) => [project(x, p[0], left, width - right), project(y, p[1], height - bottom, top)]);
    if (pts.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([px, py]) => `${n2(px)},${n2(py)}`).join(' ')}"/>`,
      );
    }
    for (const [px, py] of pts) out.push(`<circle cx="${n2(px)}" cy="${n2(py)}" r="3" fill="${color}"/>`);
  });
  const names = c.series.map((s) => s.name);
  const bottomRight = c.legend === 'bottom-right';
  const legendWidth = 24 + 6.5 * Math.max(0, ...names.map((s) => s.length));
  out.push(
    ...legend(
      names,
      bottomRight ? width - right - legendWidth : left + 12,
      bottomRight ? height - bottom - 8 - 16 * (names.length - 1) : top + 14,
    ),
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** A grouped bar chart: for each category, one bar per group. */
export function barChartSvg(c: BarChart): string {
  const width = c.width ?? 640;
  const height = c.height ?? 400;
  const { left, right, top, bottom } = MARGIN;
  for (const g of c.groups) {
    if (g.values.length !== c.categories.length) throw new RangeError(`group '${g.name}' has ${g.values.length} values`);
  }
  const values = c.groups.flatMap((g) => g.values);
  const y = axis(values, c.yLog ?? false, true);
  const out = frame(width, height, c.title, '', c.yLabel, y);
  const slot = (width - left - right) / Math.max(1, c.categories.length);
  const barW = (slot * 0.8) / Math.max(1, c.groups.length);
  const base = height - bottom;
  c.categories.forEach((cat, ci) => {
    const x0 = left + ci * slot + slot * 0.1;
    c.groups.forEach((g, gi) => {
      const v = g.values[ci];
      if (!Number.isFinite(v) || (c.yLog && v <= 0)) return;
      const py = project(y, c.yLog ? Math.max(v, y.lo) : v, base, top);
      const yTop = Math.min(py, base);
      out.push(
        `<rect x="${n2(x0 + gi * barW)}" y="${n2(yTop)}" width="${n2(barW * 0.95)}" height="${n2(Math.abs(base - py))}" fill="${COLORS[gi % COLORS.length]}"><title>${escapeXml(`${g.name}, ${cat}: ${fmt(v)}`)}</title></rect>`,
      );
    });
    out.push(`<text x="${n2(x0 + slot * 0.4)}" y="${base + 18}" text-anchor="middle">${escapeXml(cat)}</text>`);
  });
  out.push(
    ...legend(
      c.groups.map((g) => g.name),
      width - right - 150,
      top + 14,
    ),
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Standalone SVG documents (as `lineChartSvg` and `barChartSvg` write them) stacked top to bottom in one document. */
export function stackSvgs(parts: readonly string[]): string {
  const size = (svg: string) => {
    const m = /^<svg [^>]*width="(\d+(?:\.\d+)?)" height="(\d+(?:\.\d+)?)"/.exec(svg);
    if (!m) throw new RangeError('not an SVG document of this module');
    return { width: Number(m[1]), height: Number(m[2]) };
  };
  const sizes = parts.map(size);
  const width = Math.max(0, ...sizes.map((s) => s.width));
  const height = sizes.reduce((a, s) => a + s.height, 0);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  let y = 0;
  parts.forEach((svg, i) => {
    out.push(svg.trimEnd().replace(/^<svg /, `<svg x="0" y="${y}" `));
    y += sizes[i].height;
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
