/**
 * `bench-pushdown --rtt`: how the pushdown gain grows with the network round-trip time, measured
 * through the userspace delay proxy of delay-proxy.ts (works without root or `sch_netem`; `--netns`
 * falls back to it). The target runs as its own process on 127.0.0.1; the client here builds the
 * depth-6 tree and the table, then measures depth-6 point lookups at QD1 and the 1%-selective scan,
 * pushed down and fetched:
 *  - straight to the target (no proxy),
 *  - through the proxy at one-way delays 0, 12.5, 50 and 250 µs (RTT +0, +25, +100, +500 µs).
 * At each point the RTT the proxy achieves is measured by a ping-pong through a proxy of the same
 * delay to a local echo server, and reported next to the nominal one.
 *
 * The proxy row at delay 0 is the proxy's own cost (two more kernel crossings per chunk and a turn
 * of the event loop); subtract it, not the direct row, to read the effect of the added delay.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgramClient } from '../client/programs.js';
import { type BenchPlan, benchNamespaces, buildBenchData, spawnTarget, TABLE_NSID, type TargetProcess } from './bench.js';
import { decodeHeader, keyAt } from './btree.js';
import { DelayProxy, pingPongVia, type RoundTrips, summarizeRoundTrips } from './delay-proxy.js';
import type { FigureFile } from './figures.js';
import { blockReader, connectShowcaseHost } from './nvme.js';
import {
  type Dataset,
  describeRefusals,
  type LoadedFunctions,
  loadStorageFunctions,
  lookupFetched,
  lookupPushdown,
  type Measurement,
  Qd1Samples,
  rng,
  sameScan,
  sameValue,
  scanFetched,
  scanPushdown,
  type TablePlace,
} from './pushdown.js';
import { type Cell, formatTable, type ProgressStream, say, times, toCsv } from './report.js';
import { lineChartSvg, stackSvgs } from './svg.js';
import { ROW_SIZE_BYTES, thresholdFor } from './table.js';

/** One-way delays of the sweep (µs): RTT +0, +25, +100, +500 µs. */
export const ONE_WAY_DELAYS_US = [0, 12.5, 50, 250] as const;
const LOOKUP_DEPTH = 6;
const SCAN_SELECTIVITY = 0.01;

export interface RttSweepRow {
  /** 'direct': straight to the target; 'proxy': through the delay proxy. */
  path: 'direct' | 'proxy';
  /** Delay the proxy adds each way (µs; 0 for direct). */
  oneWayUs: number;
  /** Round trip the proxy is configured to add (2 x oneWayUs). */
  nominalRttUs: number;
  /** Ping-pong round trip through a proxy of this delay (direct: without one) to a local echo server. */
  probe: RoundTrips;
  /** Mean time the proxy held a chunk during this point's lookups (µs; 0 for direct). */
  heldUs: number;
  lookup: { pushdown?: Measurement; fetched: Measurement };
  scan: { pushdown?: Measurement; fetched: Measurement };
}

export interface RttSweep {
  rows: RttSweepRow[];
  refused: LoadedFunctions['refused'];
  mismatches: number;
}

/** A host connected to host:port with the lookup and scan functions loaded. */
async function session(host: string, port: number, prefix: string) {
  const h = await connectShowcaseHost({ host, port });
  const programs = new ProgramClient(h);
  const loaded = await loadStorageFunctions(programs, { names: ['btree_lookup', 'table_scan'], prefix });
  const ds = (nsid: number): Dataset => ({ host: h, programs, nsid, blockSize: 512, read: blockReader(h, nsid, 512) });
  return { host: h, loaded, tree: ds(LOOKUP_DEPTH), table: ds(TABLE_NSID) };
}

type Session = Awaited<ReturnType<typeof session>>;

interface Point {
  readonly path: RttSweepRow['path'];
  readonly oneWayUs: number;
  readonly session: Session;
  readonly lookupPushdown: Qd1Samples;
  readonly lookupFetched: Qd1Samples;
  readonly scanPushdown: Qd1Samples;
  readonly scanFetched: Qd1Samples;
  readonly rttUs: number[];
  heldNs: number;
  heldChunks: number;
}

/** Depth-6 lookups per point and path (each way). */
export const rttLookups = (plan: BenchPlan) => (plan.quick ? 200 : 480);
/** Rounds over all points; each round runs a share of every point's operations. */
export const rttRounds = (plan: BenchPlan) => (plan.quick ? 2 : 4);

/**
 * The sweep: its own target process, data built once, one host straight to the target and one
 * through the proxy. The points (direct, then the proxy at each delay; the proxy's delay is changed
 * between points on the live connection) are visited in several rounds, and within a point each
 * lookup is run fetched and then pushed down, so that load from elsewhere on the machine falls on
 * every point and on both ways alike.
 */
export async function benchRtt(
  plan: BenchPlan,
  err: ProgressStream,
  oneWayDelaysUs: readonly number[] = ONE_WAY_DELAYS_US,
): Promise<RttSweep> {
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-rtt-'));
  let target: TargetProcess | undefined;
  let proxy: DelayProxy | undefined;
  const sessions: Session[] = [];
  let mismatches = 0;
  const lookups = rttLookups(plan);
  const rounds = rttRounds(plan);
  try {
    target = await spawnTarget(dir, benchNamespaces(plan), { host: '127.0.0.1', port: 0 });
    say(err, `RTT sweep: target process on ${target.host}:${target.port}; building the depth-6 tree and the table`);
    await buildBenchData({ host: target.host, port: target.port, plan, build: true, profile: 'rtt' }, err);
    proxy = await DelayProxy.start({ upstream: target, oneWayUs: 0 });
    say(err, `  delay proxy on ${proxy.host}:${proxy.port} -> ${target.host}:${target.port}`);
    const direct = await session(target.host, target.port, 'direct.');
    sessions.push(direct);
    const via = await session(proxy.host, proxy.port, 'proxy.');
    sessions.push(via);
    for (const s of sessions) if (s.loaded.refused.length > 0) say(err, describeRefusals(s.loaded));

    const layout = decodeHeader(await direct.tree.read(0, 512));
    const r = rng(LOOKUP_DEPTH * 7919);
    const keys = Array.from({ length: lookups }, () => keyAt(Math.floor(r() * layout.keyCount)));
    const table: TablePlace = { offsetBytes: 0, lengthBytes: plan.tableRows * ROW_SIZE_BYTES };
    const threshold = thresholdFor(SCAN_SELECTIVITY);
    const want = await scanFetched(direct.table, table, threshold);

    // Warm up both hosts, the target's caches and the JIT on every key (not measured).
    say(err, `  warming up (${lookups} lookups each way on both hosts)`);
    for (const s of sessions) {
      const h = s.loaded.handles.btree_lookup;
      for (const k of keys) {
        await lookupFetched(s.tree, layout, k);
        if (h !== undefined) await lookupPushdown(s.tree, h, layout, k);
      }
      if (s.loaded.handles.table_scan !== undefined) await scanPushdown(s.table, s.loaded.handles.table_scan, table, threshold);
    }

    const fresh = (path: Point['path'], oneWayUs: number, s: Session): Point => ({
      path,
      oneWayUs,
      session: s,
      lookupPushdown: new Qd1Samples(),
      lookupFetched: new Qd1Samples(),
      scanPushdown: new Qd1Samples(),
      scanFetched: new Qd1Samples(),
      rttUs: [],
      heldNs: 0,
      heldChunks: 0,
    });
    const points = [fresh('direct', 0, direct), ...oneWayDelaysUs.map((d) => fresh('proxy', d, via))];
    const perRound = Math.ceil(lookups / rounds);
    const probeRounds = Math.ceil(200 / rounds);
    for (let round = 0; round < rounds; round++) {
      for (const p of points) {
        const s = p.session;
        proxy.setOneWayDelay(p.oneWayUs);
        const probe = await pingPongVia(p.path === 'direct' ? undefined : p.oneWayUs, probeRounds);
        p.rttUs.push(...probe);
        const lookupH = s.loaded.handles.btree_lookup;
        const scanH = s.loaded.handles.table_scan;
        // A few unmeasured operations at the new delay first.
        for (let i = 0; i < 5; i++) {
          await lookupFetched(s.tree, layout, keys[i]);
          if (lookupH !== undefined) await lookupPushdown(s.tree, lookupH, layout, keys[i]);
        }
        proxy.resetStats();
        for (let i = round * perRound; i < Math.min(lookups, (round + 1) * perRound); i++) {
          const expected = await p.lookupFetched.time(s.host, () => lookupFetched(s.tree, layout, keys[i]));
          if (lookupH !== undefined) {
            const got = await p.lookupPushdown.time(s.host, () => lookupPushdown(s.tree, lookupH, layout, keys[i]));
            if (!sameValue(got, expected)) mismatches++;
          }
        }
        const held = proxy.stats();
        p.heldNs += held.meanHeldUs * 1000 * held.chunks;
        p.heldChunks += held.chunks;
        for (let k = 0; k < (plan.quick ? 1 : Math.ceil(plan.scanRuns / 2)); k++) {
          if (!sameScan(await p.scanFetched.time(s.host, () => scanFetched(s.table, table, threshold)), want)) mismatches++;
          if (
            scanH !== undefined &&
            !sameScan(await p.scanPushdown.time(s.host, () => scanPushdown(s.table, scanH, table, threshold)), want)
          )
            mismatches++;
        }
      }
      say(err, `  round ${round + 1}/${rounds} over ${points.length} points done`);
    }
    proxy.setOneWayDelay(0);

    const rows = points.map((p): RttSweepRow => {
      const row: RttSweepRow = {
        path: p.path,
        oneWayUs: p.oneWayUs,
        nominalRttUs: 2 * p.oneWayUs,
        probe: summarizeRoundTrips(p.rttUs),
        heldUs: p.path === 'proxy' && p.heldChunks > 0 ? p.heldNs / p.heldChunks / 1000 : 0,
        lookup: {
          pushdown: p.lookupPushdown.ms.length > 0 ? p.lookupPushdown.summary() : undefined,
          fetched: p.lookupFetched.summary(),
        },
        scan: {
          pushdown: p.scanPushdown.ms.length > 0 ? p.scanPushdown.summary() : undefined,
          fetched: p.scanFetched.summary(),
        },
      };
      const l = row.lookup;
      say(
        err,
        `  ${p.path === 'direct' ? 'direct (no proxy)' : `proxy, RTT +${row.nominalRttUs} µs`}: measured RTT ${row.probe.p50Us.toFixed(0)} µs; ` +
          `lookup p50 pushdown ${l.pushdown?.p50Us.toFixed(0) ?? '-'} µs, fetched ${l.fetched.p50Us.toFixed(0)} µs; ` +
          `1% scan pushdown ${row.scan.pushdown ? (row.scan.pushdown.meanUs / 1000).toFixed(1) : '-'} ms, fetched ${(row.scan.fetched.meanUs / 1000).toFixed(1)} ms`,
      );
      return row;
    });
    return { rows, refused: direct.loaded.refused, mismatches };
  } finally {
    for (const s of sessions) await s.host.close().catch(() => {});
    await proxy?.close();
    await target?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- reporting ----

const num = (m: Measurement | undefined, f: (m: Measurement) => number) => (m ? f(m) : Number.NaN);
const gain = (p: { pushdown?: Measurement; fetched: Measurement }, f: (m: Measurement) => number) =>
  p.pushdown ? f(p.fetched) / f(p.pushdown) : Number.NaN;
const lookupGain = (r: RttSweepRow) => gain(r.lookup, (m) => m.p50Us);
const scanGain = (r: RttSweepRow) => gain(r.scan, (m) => m.meanUs);

/**
 * Added lookup latency per µs of added RTT, between the proxy at delay 0 and the largest delay (from
 * the measured RTTs): about the round trips each way makes per lookup (1 pushed down, depth + 1 fetched).
 */
export function rttSlopes(rows: readonly RttSweepRow[]): { pushdown: number; fetched: number } | undefined {
  const proxied = rows.filter((r) => r.path === 'proxy');
  const lo = proxied.find((r) => r.oneWayUs === 0);
  const hi = proxied.reduce<RttSweepRow | undefined>((a, r) => (!a || r.oneWayUs > a.oneWayUs ? r : a), undefined);
  if (!lo || !hi || hi === lo) return undefined;
  const dRtt = hi.probe.p50Us - lo.probe.p50Us;
  if (!(dRtt > 0)) return undefined;
  return {
    pushdown: (num(hi.lookup.pushdown, (m) => m.p50Us) - num(lo.lookup.pushdown, (m) => m.p50Us)) / dRtt,
    fetched: (hi.lookup.fetched.p50Us - lo.lookup.fetched.p50Us) / dRtt,
  };
}

const label = (r: RttSweepRow) => (r.path === 'direct' ? 'direct' : 'proxy');

export function rttFigureFiles(rows: readonly RttSweepRow[]): FigureFile[] {
  const header = [
    'path',
    'one_way_delay_us',
    'nominal_rtt_us',
    'measured_rtt_p50_us',
    'measured_rtt_min_us',
    'proxy_mean_chunk_hold_us',
    'lookup_pushdown_p50_us',
    'lookup_pushdown_p99_us',
    'lookup_pushdown_mean_us',
    'lookup_pushdown_commands_per_op',
    'lookup_fetched_p50_us',
    'lookup_fetched_p99_us',
    'lookup_fetched_mean_us',
    'lookup_fetched_commands_per_op',
    'lookup_gain_p50',
    'scan1pct_pushdown_mean_us',
    'scan1pct_pushdown_bytes_per_op',
    'scan1pct_fetched_mean_us',
    'scan1pct_fetched_bytes_per_op',
    'scan1pct_gain_mean',
  ];
  const cells = (r: RttSweepRow): Cell[] => [
    label(r),
    r.oneWayUs,
    r.nominalRttUs,
    r.probe.p50Us,
    r.probe.minUs,
    r.heldUs,
    num(r.lookup.pushdown, (m) => m.p50Us),
    num(r.lookup.pushdown, (m) => m.p99Us),
    num(r.lookup.pushdown, (m) => m.meanUs),
    num(r.lookup.pushdown, (m) => m.commandsPerOp),
    r.lookup.fetched.p50Us,
    r.lookup.fetched.p99Us,
    r.lookup.fetched.meanUs,
    r.lookup.fetched.commandsPerOp,
    lookupGain(r),
    num(r.scan.pushdown, (m) => m.meanUs),
    num(r.scan.pushdown, (m) => m.bytesPerOp),
    r.scan.fetched.meanUs,
    r.scan.fetched.bytesPerOp,
    scanGain(r),
  ];
  const proxied = rows.filter((r) => r.path === 'proxy');
  const direct = rows.filter((r) => r.path === 'direct');
  const at = (rs: readonly RttSweepRow[], f: (r: RttSweepRow) => number) => rs.map((r) => [r.nominalRttUs, f(r)] as const);
  const latency = lineChartSvg({
    title: 'Depth-6 lookup latency (QD1, p50) vs added RTT (userspace delay proxy)',
    xLabel: 'RTT added by the proxy (µs, nominal)',
    yLabel: 'latency (µs)',
    series: [
      { name: 'pushdown, via proxy', points: at(proxied, (r) => num(r.lookup.pushdown, (m) => m.p50Us)) },
      { name: 'fetched, via proxy', points: at(proxied, (r) => r.lookup.fetched.p50Us) },
      { name: 'pushdown, direct (no proxy)', points: at(direct, (r) => num(r.lookup.pushdown, (m) => m.p50Us)) },
      { name: 'fetched, direct (no proxy)', points: at(direct, (r) => r.lookup.fetched.p50Us) },
    ],
    width: 720,
  });
  const gains = lineChartSvg({
    title: 'Pushdown gain (fetched / pushdown) vs added RTT',
    xLabel: 'RTT added by the proxy (µs, nominal); the +0 proxy point is the proxy’s own cost',
    yLabel: 'fetched / pushdown',
    series: [
      { name: 'depth-6 lookup (QD1 p50), via proxy', points: at(proxied, lookupGain) },
      { name: '1% scan (mean), via proxy', points: at(proxied, scanGain) },
      { name: 'depth-6 lookup, direct (no proxy)', points: at(direct, lookupGain) },
      { name: '1% scan, direct (no proxy)', points: at(direct, scanGain) },
    ],
    legend: 'bottom-right',
    width: 720,
  });
  return [
    { name: 'pushdown-gain-by-rtt.csv', text: toCsv(header, rows.map(cells)) },
    { name: 'pushdown-gain-by-rtt.svg', text: stackSvgs([latency, gains]) },
  ];
}

/** The sweep as a plain-text table, with the notes a reader needs to interpret it. */
export function formatRttTable(rows: readonly RttSweepRow[]): string {
  const us = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '-');
  const signed = (v: number) => (Number.isFinite(v) ? `${v < 0 ? '-' : '+'}${Math.abs(v).toFixed(0)}` : '-');
  const ms = (v: number) => (Number.isFinite(v) ? (v / 1000).toFixed(1) : '-');
  const table = formatTable(
    [
      'path',
      'delay/way',
      'RTT nominal',
      'RTT measured',
      'lookup push p50',
      'lookup fetch p50',
      'gain',
      'scan 1% push',
      'scan 1% fetch',
      'gain',
    ],
    rows.map((r) => [
      r.path === 'direct' ? 'direct (no proxy)' : 'proxy',
      r.path === 'direct' ? '-' : `${r.oneWayUs} µs`,
      r.path === 'direct' ? '-' : `+${r.nominalRttUs} µs`,
      `${r.probe.p50Us.toFixed(0)} µs`,
      `${us(num(r.lookup.pushdown, (m) => m.p50Us))} µs`,
      `${us(r.lookup.fetched.p50Us)} µs`,
      times(lookupGain(r)),
      `${ms(num(r.scan.pushdown, (m) => m.meanUs))} ms`,
      `${ms(r.scan.fetched.meanUs)} ms`,
      times(scanGain(r)),
    ]),
    new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]),
  );
  const notes: string[] = [];
  const direct = rows.find((r) => r.path === 'direct');
  const p0 = rows.find((r) => r.path === 'proxy' && r.oneWayUs === 0);
  if (direct && p0)
    notes.push(
      `the proxy's own cost (proxy +0 µs against direct): ping-pong RTT ${signed(p0.probe.p50Us - direct.probe.p50Us)} µs, ` +
        `lookup p50 ${signed(num(p0.lookup.pushdown, (m) => m.p50Us) - num(direct.lookup.pushdown, (m) => m.p50Us))} µs pushed down, ` +
        `${signed(p0.lookup.fetched.p50Us - direct.lookup.fetched.p50Us)} µs fetched (within noise when negative); ` +
        'read the delayed rows against the proxy +0 row, not the direct one',
    );
  const s = rttSlopes(rows);
  const cmds = (m: Measurement | undefined) => (m ? m.commandsPerOp.toFixed(0) : '-');
  if (s && p0)
    notes.push(
      `added lookup latency per µs of added (measured) RTT: pushdown ${s.pushdown.toFixed(2)}, fetched ${s.fetched.toFixed(2)} ` +
        `(round trips per lookup: ${cmds(p0.lookup.pushdown)} pushed down, ${cmds(p0.lookup.fetched)} fetched)`,
    );
  notes.push('RTT measured = p50 of a 72-byte ping-pong through a proxy of that delay to a local echo server (direct: no proxy)');
  return `${table}${notes.map((n) => `  * ${n}\n`).join('')}`;
}
