/**
 * `npm run bench:sqlite`: a SQLite database built with SQLite (10^6 rows by default, 4 KiB pages,
 * an index on a TEXT column) on a target process (`nearbpf serve`, as deployed: its own event loop,
 * its own cores); rowid lookups, index lookups and a 1%-selective scan with aggregates, pushed down
 * and fetched, at QD1 and 1-32 outstanding: p50, p99, throughput, bytes on the wire, round trips,
 * and CPU per query on the target (all its threads, from /proc) and on the client. CSV and SVG in
 * results/. `--rtt`: rowid and index lookups at QD1 through a userspace delay proxy at +0, +25,
 * +100 and +500 µs of round-trip time (results/sqlite-rtt.csv and .svg).
 *   node dist/bench/sqlite-bench.js [--rows N] [--ops N] [--scans N] [--out DIR] [--execution-workers N] [--rtt] [--rtt-only]
 * `--execution-workers 0` runs the steps on the target's I/O thread (no hand-off to a worker).
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { DelayProxy, pingPongVia, type RoundTrips, summarizeRoundTrips } from '../showcase/delay-proxy.js';
import { blockReader, connectShowcaseHost, targetConfig } from '../showcase/nvme.js';
import { type Measurement, measure, Qd1Samples } from '../showcase/pushdown.js';
import { formatTable, times, toCsv } from '../showcase/report.js';
import { barChartSvg, lineChartSvg, stackSvgs } from '../showcase/svg.js';
import { loadSqliteFunctions, SqliteDatabase } from '../sqlite/database.js';
import { benchName, buildBenchDatabase, rng } from '../sqlite/generate.js';
import { type BenchArgValues, benchCommandLine, integerOption, parseBenchArgs } from './args.js';
import { type ServeProcess, spawnServe } from './io-bench.js';
import { processCpuNs, selfCpuUs } from './proc-cpu.js';

/** Steps the one-execution scan may take (about 44,000 over 10^6 rows with 4 KiB pages; room for more rows). */
const ONE_EXECUTION_STEPS = 1_000_000;

/** Operations of each way and concurrency run before it is measured (and compared, pushed down against fetched). */
const WARMUP_OPS = 200;

/** One-way delays of the RTT sweep (µs): RTT +0, +25, +100, +500 µs, as `bench:pushdown -- --rtt`. */
export const SQLITE_ONE_WAY_DELAYS_US = [0, 12.5, 50, 250] as const;

const NSID = 1;
const BLOCK_SIZE = 512;

export interface SqliteBenchOptions {
  rows: number;
  ops: number;
  scans: number;
  /** The target's execution workers (undefined: its default). */
  executionWorkers?: number;
  /** Run the RTT sweep after the main run (or instead of it, with `rttOnly`). */
  rtt?: boolean;
  rttOnly?: boolean;
  /** Lookups of each kind, way and point of the RTT sweep. */
  rttOps?: number;
}

export interface BenchRow {
  query: string;
  mode: 'pushdown' | 'fetched';
  m: Measurement;
  /** Target CPU per query, all its threads (µs; NaN where /proc is missing). */
  serverCpuUs: number;
  /** This process's CPU per query (µs). */
  clientCpuUs: number;
}

export interface RttRow {
  path: 'direct' | 'proxy';
  oneWayUs: number;
  nominalRttUs: number;
  probe: RoundTrips;
  /** p50 latency (µs) and round trips per query, by query and way. */
  rowid: { pushdown: Measurement; fetched: Measurement };
  index: { pushdown: Measurement; fetched: Measurement };
}

export interface SqliteBenchResult {
  rows: BenchRow[];
  rtt: RttRow[];
  /** Queries whose pushed-down answer differed from the fetched one (must be 0). */
  mismatches: number;
  /** Load average (1 min) at the start and the end. */
  load: [number, number];
}

/** A stable rendering of an answer (bigints, bytes) for comparing the two ways. */
function answerKey(x: unknown): string {
  return JSON.stringify(x, (_k, v) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `x${Buffer.from(v).toString('hex')}` : v,
  );
}

/** A scan's answer without its execution count (which only the pushed-down way has). */
const scanKey = (a: { executions?: number }) => answerKey({ ...a, executions: undefined });

const loadAverage = (): number => Number(loadavg()[0].toFixed(2));

/**
 * The target process: the database file is the namespace's backing file (as `nearbpf sqlite put`
 * would leave it), and the tenant's budget lets one execution scan the whole table (the scan's `one
 * execution` rows; the default queries still stop after 960 steps and resume from a cursor).
 */
async function startTarget(dir: string, dbFile: string, executionWorkers: number | undefined): Promise<ServeProcess> {
  const image = join(dir, `showcase-ns${NSID}.img`);
  copyFileSync(dbFile, image);
  const sizeBytes = Math.ceil(statSync(image).size / 4096) * 4096;
  truncateSync(image, sizeBytes);
  const config = targetConfig(dir, [{ nsid: NSID, sizeBytes }], '127.0.0.1', 0, {
    maxConcurrentExecutions: 32,
    deadlineMs: 120_000,
    maxSteps: ONE_EXECUTION_STEPS + 64,
    maxBytesRead: (ONE_EXECUTION_STEPS + 64) * 65536, // a step reads its page again
    maxInstructionsPerExecution: 20_000_000_000,
  }) as { programs: Record<string, unknown> };
  if (executionWorkers !== undefined) config.programs.executionWorkers = executionWorkers;
  const configPath = join(dir, 'target.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return spawnServe(configPath);
}

/** A host connected to host:port, the SQLite functions loaded, the database opened. */
async function openClient(host: string, port: number, prefix: string, maxStepsPerExecution?: number) {
  // A LOAD completes when the target has verified the program (up to its verifyTimeoutMs, 60 s).
  const h = await connectShowcaseHost({ host, port }, { commandTimeoutMs: 120_000 });
  const programs = new ProgramClient(h);
  const loaded = await loadSqliteFunctions(programs, { prefix });
  if (loaded.refused.length > 0) throw new Error(`refused: ${loaded.refused.map((x) => `${x.name}: ${x.message}`).join('; ')}`);
  const open = (steps?: number) =>
    SqliteDatabase.open({
      read: blockReader(h, NSID, BLOCK_SIZE),
      location: { nsid: NSID, offsetBytes: 0 },
      programs,
      handles: loaded.handles,
      maxStepsPerExecution: steps,
    });
  return { host: h, db: await open(), whole: maxStepsPerExecution === undefined ? undefined : await open(maxStepsPerExecution) };
}

export async function runSqliteBench(o: SqliteBenchOptions, log: (s: string) => void): Promise<SqliteBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'nearbpf-sqlite-bench-'));
  const file = join(dir, 'bench.db');
  const result: SqliteBenchResult = { rows: [], rtt: [], mismatches: 0, load: [loadAverage(), 0] };
  log(`building a ${o.rows.toLocaleString('en-US')}-row database with SQLite (4 KiB pages, index on a TEXT column)`);
  buildBenchDatabase(file, o.rows);
  const target = await startTarget(dir, file, o.executionWorkers);
  log(`target process ${target.pid} on 127.0.0.1:${target.port}`);
  const clients: { host: NvmeTcpHost }[] = [];
  let proxy: DelayProxy | undefined;
  try {
    const c = await openClient('127.0.0.1', target.port, '', ONE_EXECUTION_STEPS);
    clients.push(c);
    const { host, db } = c;
    // Warm the target's page cache (4 KiB pages, filled by small reads) so that both ways read the
    // database from memory: otherwise whichever runs first pays the misses.
    const read = blockReader(host, NSID, BLOCK_SIZE);
    const imageBytes = db.header.pageCount * db.header.pageSize;
    for (let at = 0; at < imageBytes; at += 32 * 4096) {
      const pages: Promise<Uint8Array>[] = [];
      for (let p = at; p < Math.min(imageBytes, at + 32 * 4096); p += 4096) pages.push(read(p, 4096));
      await Promise.all(pages);
    }
    log(`database: ${db.header.pageCount} pages of ${db.header.pageSize} bytes`);
    // Loading the programs leaves work on the target's helper threads (compilation, garbage
    // collection) for a while: measured, it would be charged to the first queries' CPU.
    await settle(target.pid);
    const r = rng(11);
    // Enough for the warm-ups too (they use the first WARMUP_OPS of each list).
    const ops = Math.max(o.ops, o.rttOps ?? 0, WARMUP_OPS);
    const ids = Array.from({ length: ops }, () => BigInt(1 + Math.floor(r() * o.rows)));
    const names = Array.from({ length: ops }, () => benchName(1 + Math.floor(r() * o.rows)));

    if (!o.rttOnly) {
      const run = async (
        query: string,
        count: number,
        pushed: (i: number) => Promise<unknown>,
        fetched: (i: number) => Promise<unknown>,
        concurrency: number[],
        key: (a: unknown) => string = answerKey,
      ) => {
        for (const [k, qd] of concurrency.entries()) {
          // Warm-up, both ways (V8 optimises the host's and the target's code paths only after a
          // few hundred calls), each answer pushed down compared with the fetched one.
          for (let i = 0; i < Math.min(count, WARMUP_OPS); i++)
            if (key(await pushed(i)) !== key(await fetched(i))) result.mismatches++;
          // The warm-up makes V8 tier the programs' Wasm up on helper threads: let that finish
          // rather than charge it to the first queries measured.
          await settle(target.pid);
          const modes = [
            ['pushdown', pushed],
            ['fetched', fetched],
          ] as const;
          // Alternate which way runs first, so neither always follows the other.
          for (const [mode, op] of k % 2 === 0 ? modes : [...modes].reverse()) {
            const server0 = processCpuNs(target.pid);
            const client0 = selfCpuUs();
            const m = await measure(host, count, qd, op);
            const server1 = processCpuNs(target.pid);
            const row: BenchRow = {
              query: `${query} QD${qd}`,
              mode,
              m,
              serverCpuUs: server0 === null || server1 === null ? Number.NaN : (server1 - server0) / 1000 / count,
              clientCpuUs: (selfCpuUs() - client0) / count,
            };
            result.rows.push(row);
            log(
              `  ${row.query} ${mode}: p50 ${m.p50Us.toFixed(0)} µs, ${m.opsPerSec.toFixed(0)} ops/s, ${m.bytesPerOp.toFixed(0)} B, ` +
                `${m.commandsPerOp.toFixed(1)} round trips, CPU/query target ${row.serverCpuUs.toFixed(0)} µs, client ${row.clientCpuUs.toFixed(0)} µs`,
            );
          }
        }
      };
      const qds = [1, 4, 16, 32];
      log('rowid lookups');
      await run(
        'rowid lookup',
        o.ops,
        (i) => db.get('t', ids[i]),
        (i) => db.get('t', ids[i], { fetched: true }),
        qds,
      );
      log('index lookups (TEXT key, then the row)');
      await run(
        'index lookup',
        o.ops,
        (i) => db.lookup('t_name', [names[i]]),
        (i) => db.lookup('t_name', [names[i]], { fetched: true }),
        qds,
      );
      log(`1%-selective scans with COUNT, SUM, MIN and MAX (${o.scans} each way)`);
      const scanReq = { where: [{ column: 'k', op: '<' as const, value: 100 }], sum: 'k', min: 'v', max: 'v' };
      const scanKeyOf = (a: unknown) => scanKey(a as { executions?: number });
      await run(
        '1% scan + aggregates',
        o.scans,
        () => db.scan('t', scanReq),
        () => db.scan('t', scanReq, { fetched: true }),
        [1],
        scanKeyOf,
      );
      // The same scan for a tenant whose budget covers the whole table: one execution, one round trip.
      const whole = c.whole as SqliteDatabase;
      await run(
        '1% scan + aggregates, one execution',
        o.scans,
        () => whole.scan('t', scanReq),
        () => whole.scan('t', scanReq, { fetched: true }),
        [1],
        scanKeyOf,
      );
    }

    if (o.rtt || o.rttOnly) {
      proxy = await DelayProxy.start({ upstream: { host: '127.0.0.1', port: target.port }, oneWayUs: 0 });
      const via = await openClient(proxy.host, proxy.port, 'proxy.');
      clients.push(via);
      result.rtt = await rttSweep(c, via, proxy, target.pid, ids, names, o.rttOps ?? 400, (n) => (result.mismatches += n), log);
    }
  } finally {
    for (const x of clients) await x.host.close().catch(() => {});
    await proxy?.close();
    await target.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  result.load[1] = loadAverage();
  return result;
}

/**
 * Wait until the target process is idle: less than 2% of a core over 200 ms (at most 15 s).
 * Returns the milliseconds waited.
 */
async function settle(pid: number): Promise<number> {
  const started = performance.now();
  const windowMs = 200;
  for (;;) {
    const before = processCpuNs(pid);
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = processCpuNs(pid);
    const waited = Math.round(performance.now() - started);
    if (before === null || after === null || after - before < windowMs * 1e6 * 0.02 || waited > 15_000) return waited;
  }
}

/**
 * Rowid and index lookups at QD1, straight to the target and through the delay proxy at each
 * delay. Points are visited in rounds, and each lookup runs fetched and then pushed down, so load
 * from elsewhere on the machine falls on every point and both ways alike.
 */
async function rttSweep(
  direct: { host: NvmeTcpHost; db: SqliteDatabase },
  via: { host: NvmeTcpHost; db: SqliteDatabase },
  proxy: DelayProxy,
  targetPid: number,
  ids: readonly bigint[],
  names: readonly string[],
  lookups: number,
  mismatch: (n: number) => void,
  log: (s: string) => void,
): Promise<RttRow[]> {
  const rounds = 4;
  const points = [
    { path: 'direct' as const, oneWayUs: 0, c: direct },
    ...SQLITE_ONE_WAY_DELAYS_US.map((d) => ({ path: 'proxy' as const, oneWayUs: d, c: via })),
  ].map((p) => ({
    ...p,
    rtt: [] as number[],
    rowid: { pushdown: new Qd1Samples(), fetched: new Qd1Samples() },
    index: { pushdown: new Qd1Samples(), fetched: new Qd1Samples() },
  }));
  log(`RTT sweep: ${lookups} rowid and ${lookups} index lookups per point and way, ${rounds} rounds`);
  for (const s of [direct, via])
    for (let i = 0; i < WARMUP_OPS; i++) {
      await s.db.get('t', ids[i]);
      await s.db.get('t', ids[i], { fetched: true });
      await s.db.lookup('t_name', [names[i]]);
      await s.db.lookup('t_name', [names[i]], { fetched: true });
    }
  await settle(targetPid);
  const perRound = Math.ceil(lookups / rounds);
  for (let round = 0; round < rounds; round++) {
    for (const p of points) {
      proxy.setOneWayDelay(p.oneWayUs);
      p.rtt.push(...(await pingPongVia(p.path === 'direct' ? undefined : p.oneWayUs, 50)));
      const { host, db } = p.c;
      for (let i = round * perRound; i < Math.min(lookups, (round + 1) * perRound); i++) {
        const a = await p.rowid.fetched.time(host, () => db.get('t', ids[i], { fetched: true }));
        const b = await p.rowid.pushdown.time(host, () => db.get('t', ids[i]));
        if (answerKey(a) !== answerKey(b)) mismatch(1);
        const x = await p.index.fetched.time(host, () => db.lookup('t_name', [names[i]], { fetched: true }));
        const y = await p.index.pushdown.time(host, () => db.lookup('t_name', [names[i]]));
        if (answerKey(x) !== answerKey(y)) mismatch(1);
      }
    }
    log(`  round ${round + 1}/${rounds} done`);
  }
  proxy.setOneWayDelay(0);
  return points.map((p) => {
    const row: RttRow = {
      path: p.path,
      oneWayUs: p.oneWayUs,
      nominalRttUs: 2 * p.oneWayUs,
      probe: summarizeRoundTrips(p.rtt),
      rowid: { pushdown: p.rowid.pushdown.summary(), fetched: p.rowid.fetched.summary() },
      index: { pushdown: p.index.pushdown.summary(), fetched: p.index.fetched.summary() },
    };
    log(
      `  ${p.path === 'direct' ? 'direct' : `proxy +${row.nominalRttUs} µs`} (RTT ${row.probe.p50Us.toFixed(0)} µs): ` +
        `rowid ${row.rowid.pushdown.p50Us.toFixed(0)} / ${row.rowid.fetched.p50Us.toFixed(0)} µs, ` +
        `index ${row.index.pushdown.p50Us.toFixed(0)} / ${row.index.fetched.p50Us.toFixed(0)} µs (pushed down / fetched)`,
    );
    return row;
  });
}

// ---- reporting ----

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '');

function reportMain(rows: readonly BenchRow[], outDir: string): string {
  const header = [
    'query',
    'mode',
    'p50_us',
    'p99_us',
    'ops_per_s',
    'bytes_per_op',
    'round_trips_per_op',
    'server_cpu_us_per_op',
    'client_cpu_us_per_op',
  ];
  const csv = rows.map((x) => [
    x.query,
    x.mode,
    x.m.p50Us.toFixed(1),
    x.m.p99Us.toFixed(1),
    x.m.opsPerSec.toFixed(1),
    x.m.bytesPerOp.toFixed(0),
    x.m.commandsPerOp.toFixed(2),
    f1(x.serverCpuUs),
    f1(x.clientCpuUs),
  ]);
  writeFileSync(join(outDir, 'sqlite.csv'), toCsv(header, csv));
  const queries = [...new Set(rows.map((x) => x.query))];
  const pick = (mode: string, f: (x: BenchRow) => number) =>
    queries.map((q) => {
      const x = rows.find((y) => y.query === q && y.mode === mode);
      return x ? f(x) : Number.NaN;
    });
  const chart = (title: string, yLabel: string, f: (x: BenchRow) => number) =>
    barChartSvg({
      title,
      yLabel,
      categories: queries,
      groups: [
        { name: 'pushed down', values: pick('pushdown', f) },
        { name: 'fetched', values: pick('fetched', f) },
      ],
      yLog: true,
      width: 1100,
    });
  writeFileSync(
    join(outDir, 'sqlite.svg'),
    stackSvgs([
      chart('p50 latency', 'µs', (x) => x.m.p50Us),
      chart('throughput', 'queries/s', (x) => x.m.opsPerSec),
      chart('target CPU per query (all threads, /proc)', 'µs', (x) => x.serverCpuUs),
      chart('client CPU per query', 'µs', (x) => x.clientCpuUs),
      chart('bytes on the wire per query', 'bytes', (x) => x.m.bytesPerOp),
    ]),
  );
  return formatTable(header, csv, new Set([2, 3, 4, 5, 6, 7, 8]));
}

const lookupGain = (p: { pushdown: Measurement; fetched: Measurement }) => p.fetched.p50Us / p.pushdown.p50Us;

function reportRtt(rows: readonly RttRow[], outDir: string): string {
  const header = [
    'path',
    'one_way_delay_us',
    'nominal_rtt_us',
    'measured_rtt_p50_us',
    'rowid_pushdown_p50_us',
    'rowid_fetched_p50_us',
    'rowid_pushdown_round_trips',
    'rowid_fetched_round_trips',
    'rowid_gain_p50',
    'index_pushdown_p50_us',
    'index_fetched_p50_us',
    'index_pushdown_round_trips',
    'index_fetched_round_trips',
    'index_gain_p50',
  ];
  const csv = rows.map((r) => [
    r.path,
    String(r.oneWayUs),
    String(r.nominalRttUs),
    r.probe.p50Us.toFixed(1),
    r.rowid.pushdown.p50Us.toFixed(1),
    r.rowid.fetched.p50Us.toFixed(1),
    r.rowid.pushdown.commandsPerOp.toFixed(2),
    r.rowid.fetched.commandsPerOp.toFixed(2),
    lookupGain(r.rowid).toFixed(2),
    r.index.pushdown.p50Us.toFixed(1),
    r.index.fetched.p50Us.toFixed(1),
    r.index.pushdown.commandsPerOp.toFixed(2),
    r.index.fetched.commandsPerOp.toFixed(2),
    lookupGain(r.index).toFixed(2),
  ]);
  writeFileSync(join(outDir, 'sqlite-rtt.csv'), toCsv(header, csv));
  const proxied = rows.filter((r) => r.path === 'proxy');
  const at = (f: (r: RttRow) => number) => proxied.map((r) => [r.nominalRttUs, f(r)] as const);
  writeFileSync(
    join(outDir, 'sqlite-rtt.svg'),
    stackSvgs([
      lineChartSvg({
        title: 'SQLite lookup latency (QD1, p50) vs added RTT (userspace delay proxy)',
        xLabel: 'RTT added by the proxy (µs, nominal)',
        yLabel: 'latency (µs)',
        series: [
          { name: 'rowid, pushed down', points: at((r) => r.rowid.pushdown.p50Us) },
          { name: 'rowid, fetched', points: at((r) => r.rowid.fetched.p50Us) },
          { name: 'index + row, pushed down', points: at((r) => r.index.pushdown.p50Us) },
          { name: 'index + row, fetched', points: at((r) => r.index.fetched.p50Us) },
        ],
        width: 720,
      }),
      lineChartSvg({
        title: 'Pushdown gain (fetched / pushed down, p50) vs added RTT',
        xLabel: 'RTT added by the proxy (µs, nominal); the +0 point is the proxy’s own cost',
        yLabel: 'fetched / pushed down',
        series: [
          { name: 'rowid lookup', points: at((r) => lookupGain(r.rowid)) },
          { name: 'index lookup + row', points: at((r) => lookupGain(r.index)) },
        ],
        legend: 'bottom-right',
        width: 720,
      }),
    ]),
  );
  return formatTable(
    ['path', 'RTT measured', 'rowid push', 'rowid fetch', 'gain', 'index push', 'index fetch', 'gain'],
    rows.map((r) => [
      r.path === 'direct' ? 'direct (no proxy)' : `proxy +${r.nominalRttUs} µs`,
      `${r.probe.p50Us.toFixed(0)} µs`,
      `${r.rowid.pushdown.p50Us.toFixed(0)} µs`,
      `${r.rowid.fetched.p50Us.toFixed(0)} µs (${r.rowid.fetched.commandsPerOp.toFixed(0)} RT)`,
      times(lookupGain(r.rowid)),
      `${r.index.pushdown.p50Us.toFixed(0)} µs`,
      `${r.index.fetched.p50Us.toFixed(0)} µs (${r.index.fetched.commandsPerOp.toFixed(0)} RT)`,
      times(lookupGain(r.index)),
    ]),
    new Set([1, 2, 3, 4, 5, 6, 7]),
  );
}

export const SQLITE_BENCH_USAGE =
  'usage: npm run bench:sqlite -- [--rows N] [--ops N] [--scans N] [--out DIR] [--execution-workers N] [--rtt] [--rtt-only] [--rtt-ops N]';

const SQLITE_BENCH_OPTIONS = {
  rows: { type: 'string' },
  ops: { type: 'string' },
  scans: { type: 'string' },
  out: { type: 'string' },
  'execution-workers': { type: 'string' },
  rtt: { type: 'boolean' },
  'rtt-only': { type: 'boolean' },
  'rtt-ops': { type: 'string' },
} as const;

/** The options of parsed command-line values (throws BenchUsageError on a bad value). */
function readSqliteBenchArgs(values: BenchArgValues): SqliteBenchOptions & { out: string } {
  const workers = values['execution-workers'];
  return {
    rows: integerOption(values, 'rows', 1_000_000, 1000, 100_000_000),
    ops: integerOption(values, 'ops', 2000, 1, 10_000_000),
    scans: integerOption(values, 'scans', 2, 1, 1000),
    out: typeof values.out === 'string' ? values.out : 'results',
    executionWorkers: workers === undefined ? undefined : integerOption(values, 'execution-workers', 0, 0, 64),
    rtt: values.rtt === true,
    rttOnly: values['rtt-only'] === true,
    rttOps: integerOption(values, 'rtt-ops', 400, 4, 1_000_000),
  };
}

/** The command line as options (throws BenchUsageError on a bad one). */
export function parseSqliteBenchArgs(argv: readonly string[]): SqliteBenchOptions & { out: string } {
  return readSqliteBenchArgs(parseBenchArgs(argv, SQLITE_BENCH_OPTIONS));
}

async function main(): Promise<void> {
  const options = benchCommandLine(SQLITE_BENCH_USAGE, SQLITE_BENCH_OPTIONS, readSqliteBenchArgs);
  const result = await runSqliteBench(options, (s) => process.stderr.write(`${s}\n`));
  mkdirSync(options.out, { recursive: true });
  if (result.rows.length > 0) process.stdout.write(`${reportMain(result.rows, options.out)}\n`);
  if (result.rtt.length > 0) process.stdout.write(`${reportRtt(result.rtt, options.out)}\n`);
  process.stdout.write(
    `load average ${result.load[0]} -> ${result.load[1]}; answers pushed down that differed from fetched: ${result.mismatches}\n`,
  );
  if (result.mismatches > 0) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
