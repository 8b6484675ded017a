/** The benchmark's figures as CSV and SVG files, and the headline ratios against the targets of issue #7. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientFigures } from './bench.js';
import type { RttFigure } from './netns.js';
import type { Measurement } from './pushdown.js';
import { type Cell, times, toCsv } from './report.js';
import { barChartSvg, lineChartSvg } from './svg.js';

const n = (m: Measurement | undefined, f: (m: Measurement) => number) => (m ? f(m) : Number.NaN);

export interface FigureFile {
  name: string;
  text: string;
}

export function figureFiles(f: ClientFigures, rtt: readonly RttFigure[] = []): FigureFile[] {
  const files: FigureFile[] = [];
  const add = (name: string, header: string[], rows: Cell[][], svg?: string) => {
    files.push({ name: `${name}.csv`, text: toCsv(header, rows) });
    if (svg) files.push({ name: `${name}.svg`, text: svg });
  };
  const mHeader = (p: string) => [
    `${p}_p50_us`,
    `${p}_p99_us`,
    `${p}_mean_us`,
    `${p}_ops_per_s`,
    `${p}_bytes_per_op`,
    `${p}_commands_per_op`,
  ];
  const mCells = (m: Measurement | undefined): Cell[] => [
    n(m, (x) => x.p50Us),
    n(m, (x) => x.p99Us),
    n(m, (x) => x.meanUs),
    n(m, (x) => x.opsPerSec),
    n(m, (x) => x.bytesPerOp),
    n(m, (x) => x.commandsPerOp),
  ];

  if (f.depth.length > 0) {
    add(
      'pushdown-latency-by-depth',
      ['depth', 'keys', 'internal_fanout', ...mHeader('pushdown'), ...mHeader('fetched')],
      f.depth.map((d) => [d.depth, d.keys, d.fanout, ...mCells(d.pushdown), ...mCells(d.fetched)]),
      lineChartSvg({
        title: 'B+-tree lookup latency by depth (QD1, NVMe/TCP loopback)',
        xLabel: 'tree depth (levels)',
        yLabel: 'latency (µs)',
        series: [
          { name: 'pushdown p50', points: f.depth.map((d) => [d.depth, n(d.pushdown, (m) => m.p50Us)]) },
          { name: 'fetched p50', points: f.depth.map((d) => [d.depth, d.fetched.p50Us]) },
          { name: 'pushdown p99', points: f.depth.map((d) => [d.depth, n(d.pushdown, (m) => m.p99Us)]) },
          { name: 'fetched p99', points: f.depth.map((d) => [d.depth, d.fetched.p99Us]) },
        ],
      }),
    );
  }
  if (f.concurrency.length > 0) {
    add(
      'pushdown-throughput-by-concurrency',
      ['outstanding', ...mHeader('pushdown'), ...mHeader('fetched')],
      f.concurrency.map((c) => [c.concurrency, ...mCells(c.pushdown), ...mCells(c.fetched)]),
      lineChartSvg({
        title: 'Depth-6 lookup throughput vs outstanding operations',
        xLabel: 'outstanding operations',
        yLabel: 'lookups per second',
        xLog: true,
        series: [
          { name: 'pushdown', points: f.concurrency.map((c) => [c.concurrency, n(c.pushdown, (m) => m.opsPerSec)]) },
          { name: 'fetched', points: f.concurrency.map((c) => [c.concurrency, c.fetched.opsPerSec]) },
        ],
      }),
    );
  }
  if (f.bytes.length > 0) {
    add(
      'pushdown-bytes-per-op',
      ['operation', ...mHeader('pushdown'), ...mHeader('fetched'), 'bytes_ratio_fetched_over_pushdown'],
      f.bytes.map((b) => [
        b.operation,
        ...mCells(b.pushdown),
        ...mCells(b.fetched),
        n(b.pushdown, (m) => b.fetched.bytesPerOp / m.bytesPerOp),
      ]),
      barChartSvg({
        title: 'NVMe/TCP bytes on the wire per operation (log scale)',
        yLabel: 'bytes per operation',
        yLog: true,
        categories: f.bytes.map((b) => b.operation),
        groups: [
          { name: 'pushdown', values: f.bytes.map((b) => n(b.pushdown, (m) => m.bytesPerOp)) },
          { name: 'fetched', values: f.bytes.map((b) => b.fetched.bytesPerOp) },
        ],
        width: 760,
      }),
    );
  }
  if (f.selectivity.length > 0) {
    const sel = f.selectivity;
    add(
      'pushdown-scan-selectivity',
      ['selectivity', 'matching_rows', ...mHeader('pushdown_aggregate'), ...mHeader('pushdown_project'), ...mHeader('fetched')],
      sel.map((s) => [
        s.selectivity,
        s.matches,
        ...mCells(s.pushdownAggregate),
        ...mCells(s.pushdownProject),
        ...mCells(s.fetched),
      ]),
      lineChartSvg({
        title: 'Scan: bytes on the wire vs selectivity',
        xLabel: 'selectivity (fraction of rows matching)',
        yLabel: 'bytes per scan',
        xLog: true,
        yLog: true,
        series: [
          { name: 'pushdown, aggregate', points: sel.map((s) => [s.selectivity, n(s.pushdownAggregate, (m) => m.bytesPerOp)]) },
          {
            name: 'pushdown, filter+project',
            points: sel.map((s) => [s.selectivity, n(s.pushdownProject, (m) => m.bytesPerOp)]),
          },
          { name: 'fetched', points: sel.map((s) => [s.selectivity, s.fetched.bytesPerOp]) },
        ],
      }),
    );
    files.push({
      name: 'pushdown-scan-selectivity-latency.svg',
      text: lineChartSvg({
        title: 'Scan: latency vs selectivity',
        xLabel: 'selectivity (fraction of rows matching)',
        yLabel: 'latency per scan (ms)',
        xLog: true,
        series: [
          {
            name: 'pushdown, aggregate',
            points: sel.map((s) => [s.selectivity, n(s.pushdownAggregate, (m) => m.meanUs / 1000)]),
          },
          {
            name: 'pushdown, filter+project',
            points: sel.map((s) => [s.selectivity, n(s.pushdownProject, (m) => m.meanUs / 1000)]),
          },
          { name: 'fetched', points: sel.map((s) => [s.selectivity, s.fetched.meanUs / 1000]) },
        ],
      }),
    });
  }
  if (rtt.length > 0) {
    const d6 = (r: RttFigure) => r.figures.depth.find((d) => d.depth === 6);
    const c16 = (r: RttFigure) => r.figures.concurrency.find((c) => c.concurrency === 16);
    const s1 = (r: RttFigure) => r.figures.selectivity[0];
    add(
      'pushdown-rtt',
      [
        'rtt_us',
        'lookup_pushdown_p50_us',
        'lookup_fetched_p50_us',
        'lookup_latency_gain',
        'lookup16_pushdown_ops_per_s',
        'lookup16_fetched_ops_per_s',
        'lookup16_throughput_gain',
        'scan1pct_pushdown_mean_us',
        'scan1pct_fetched_mean_us',
        'scan1pct_latency_gain',
      ],
      rtt.map((r) => {
        const l = d6(r);
        const c = c16(r);
        const s = s1(r);
        return [
          r.rttUs,
          n(l?.pushdown, (m) => m.p50Us),
          n(l?.fetched, (m) => m.p50Us),
          l?.pushdown ? l.fetched.p50Us / l.pushdown.p50Us : Number.NaN,
          n(c?.pushdown, (m) => m.opsPerSec),
          n(c?.fetched, (m) => m.opsPerSec),
          c?.pushdown ? c.pushdown.opsPerSec / c.fetched.opsPerSec : Number.NaN,
          n(s?.pushdownAggregate, (m) => m.meanUs),
          n(s?.fetched, (m) => m.meanUs),
          s?.pushdownAggregate ? s.fetched.meanUs / s.pushdownAggregate.meanUs : Number.NaN,
        ];
      }),
      lineChartSvg({
        title: 'Pushdown gain vs network round-trip time (veth + netem)',
        xLabel: 'added RTT (µs)',
        yLabel: 'fetched / pushdown',
        series: [
          {
            name: 'depth-6 lookup latency (QD1, p50)',
            points: rtt.map((r) => [
              r.rttUs,
              d6(r)?.pushdown ? (d6(r)?.fetched.p50Us ?? 0) / (d6(r)?.pushdown?.p50Us ?? 1) : Number.NaN,
            ]),
          },
          {
            name: 'depth-6 lookup throughput (16 outstanding)',
            points: rtt.map((r) => [
              r.rttUs,
              c16(r)?.pushdown ? (c16(r)?.pushdown?.opsPerSec ?? 0) / (c16(r)?.fetched.opsPerSec ?? 1) : Number.NaN,
            ]),
          },
          {
            name: '1% scan latency',
            points: rtt.map((r) => [
              r.rttUs,
              s1(r)?.pushdownAggregate ? (s1(r)?.fetched.meanUs ?? 0) / (s1(r)?.pushdownAggregate?.meanUs ?? 1) : Number.NaN,
            ]),
          },
        ],
      }),
    );
  }
  return files;
}

export async function writeFigures(dir: string, files: readonly FigureFile[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const f of files) await writeFile(join(dir, f.name), f.text);
  return files.map((f) => join(dir, f.name));
}

/** The headline ratios of issue #7 against their targets. */
export function headline(f: ClientFigures): { text: string; met: boolean } {
  const d6 = f.depth.find((d) => d.depth === 6);
  const peak = (pick: (c: ClientFigures['concurrency'][number]) => number) =>
    Math.max(...f.concurrency.map(pick).filter(Number.isFinite));
  const scan = f.selectivity.find((s) => s.selectivity === 0.01);
  const rows: [string, number | undefined, number][] = [
    ['depth-6 lookup latency (QD1 p50), fetched / pushdown', d6?.pushdown && d6.fetched.p50Us / d6.pushdown.p50Us, 3],
    [
      'depth-6 lookup throughput (best of 1..32 outstanding), pushdown / fetched',
      f.concurrency.some((c) => c.pushdown)
        ? peak((c) => n(c.pushdown, (m) => m.opsPerSec)) / peak((c) => c.fetched.opsPerSec)
        : undefined,
      3,
    ],
    [
      'bytes on the wire per depth-6 lookup, fetched / pushdown',
      d6?.pushdown && d6.fetched.bytesPerOp / d6.pushdown.bytesPerOp,
      20,
    ],
    [
      'bytes on the wire per 1%-selective scan, fetched / pushdown',
      scan?.pushdownAggregate && scan.fetched.bytesPerOp / scan.pushdownAggregate.bytesPerOp,
      50,
    ],
  ];
  let met = true;
  const lines = rows.map(([what, value, target]) => {
    const ok = value !== undefined && value >= target;
    met &&= ok;
    return `  ${ok ? 'MET ' : value === undefined ? 'N/A ' : 'MISS'}  ${times(value).padStart(7)}  (target >= ${target}x)  ${what}`;
  });
  return { text: `${lines.join('\n')}\n`, met };
}
