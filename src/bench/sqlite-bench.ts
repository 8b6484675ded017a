/**
 * `npm run bench:sqlite`: a SQLite database built with SQLite (10^6 rows by default, 4 KiB pages,
 * an index on a TEXT column) on a loopback NVMe/TCP target; rowid lookups, index lookups and a
 * 1%-selective scan with aggregates, pushed down and fetched, at QD1 and 1-32 outstanding:
 * p50, p99, throughput, bytes on the wire and round trips per query. CSV and SVG in results/.
 *   node dist/bench/sqlite-bench.js [--rows N] [--ops N] [--scans N] [--out DIR] [--execution-workers N]
 * `--execution-workers 0` runs the steps on the target's I/O thread (no hand-off to a worker).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProgramClient } from '../client/programs.js';
import { blockReader, blockWriter, startLoopbackSession } from '../showcase/nvme.js';
import { type Measurement, measure } from '../showcase/pushdown.js';
import { formatTable, toCsv } from '../showcase/report.js';
import { barChartSvg, stackSvgs } from '../showcase/svg.js';
import { loadSqliteFunctions, SqliteDatabase } from '../sqlite/database.js';
import { benchName, buildBenchDatabase, rng } from '../sqlite/generate.js';

/** Steps the one-execution scan may take (about 44,000 over 10^6 rows with 4 KiB pages; room for more rows). */
const ONE_EXECUTION_STEPS = 1_000_000;

/** Operations of each way and concurrency run before it is measured. */
const WARMUP_OPS = 200;

export interface SqliteBenchOptions {
  rows: number;
  ops: number;
  scans: number;
  out?: string;
  /** The target's execution workers (undefined: its default). */
  executionWorkers?: number;
}

interface Row {
  query: string;
  mode: 'pushdown' | 'fetched';
  m: Measurement;
}

export async function runSqliteBench(o: SqliteBenchOptions, log: (s: string) => void): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'nearbpf-sqlite-bench-'));
  const file = join(dir, 'bench.db');
  log(`building a ${o.rows.toLocaleString('en-US')}-row database with SQLite (4 KiB pages, index on a TEXT column)`);
  buildBenchDatabase(file, o.rows);
  const bytes = readFileSync(file);
  const session = await startLoopbackSession({
    namespaces: [{ nsid: 1, sizeBytes: bytes.length + (1 << 20) }],
    ioQueues: 1,
    queueDepth: 64,
    executionWorkers: o.executionWorkers,
    // The tenant's budget lets one execution scan the whole table (the scan's `one execution` rows);
    // the default queries still stop after 960 steps and resume from a cursor, as for any tenant.
    programDefaults: {
      maxConcurrentExecutions: 32,
      deadlineMs: 120_000,
      maxSteps: ONE_EXECUTION_STEPS + 64,
      maxBytesRead: (ONE_EXECUTION_STEPS + 64) * 65536, // a step reads its page again
      maxInstructionsPerExecution: 20_000_000_000,
    },
  });
  const out: Row[] = [];
  try {
    const { host, blockSize } = session;
    const w = blockWriter(host, 1, blockSize);
    const image = Buffer.alloc(Math.ceil(bytes.length / blockSize) * blockSize);
    bytes.copy(image);
    await w.write(0, image);
    await w.drain();
    // Warm the target's page cache (4 KiB pages, filled by small reads) so that both ways read the
    // database from memory: otherwise whichever runs first pays the misses.
    const read = blockReader(host, 1, blockSize);
    for (let at = 0; at < image.length; at += 32 * 4096) {
      const pages: Promise<Uint8Array>[] = [];
      for (let p = at; p < Math.min(image.length, at + 32 * 4096); p += 4096) pages.push(read(p, 4096));
      await Promise.all(pages);
    }
    const programs = new ProgramClient(host);
    const loaded = await loadSqliteFunctions(programs);
    if (loaded.refused.length > 0) throw new Error(`refused: ${loaded.refused.map((x) => `${x.name}: ${x.message}`).join('; ')}`);
    const db = await SqliteDatabase.open({
      read: blockReader(host, 1, blockSize),
      location: { nsid: 1, offsetBytes: 0 },
      programs,
      handles: loaded.handles,
    });
    log(`database: ${db.header.pageCount} pages of ${db.header.pageSize} bytes`);
    const r = rng(11);
    const ids = Array.from({ length: o.ops }, () => BigInt(1 + Math.floor(r() * o.rows)));
    const names = Array.from({ length: o.ops }, () => benchName(1 + Math.floor(r() * o.rows)));
    const run = async (
      query: string,
      count: number,
      pushed: (i: number) => Promise<unknown>,
      fetched: (i: number) => Promise<unknown>,
      concurrency: number[],
    ) => {
      for (const [k, qd] of concurrency.entries()) {
        const modes = [
          ['pushdown', pushed],
          ['fetched', fetched],
        ] as const;
        // Alternate which way runs first, so neither always follows the other's warm-up.
        for (const [mode, op] of k % 2 === 0 ? modes : [...modes].reverse()) {
          // Warm-up: V8 optimises the host's and the target's code paths of each way only after a
          // few hundred calls; one call left most of the QD1 run on colder code.
          for (let i = 0; i < Math.min(count, WARMUP_OPS); i++) await op(i);
          const m = await measure(host, count, qd, op);
          out.push({ query: `${query} QD${qd}`, mode, m });
          log(
            `  ${query} QD${qd} ${mode}: p50 ${m.p50Us.toFixed(0)} µs, ${m.opsPerSec.toFixed(0)} ops/s, ${m.bytesPerOp.toFixed(0)} B, ${m.commandsPerOp.toFixed(1)} round trips`,
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
    log(`1%-selective scans with COUNT and SUM (${o.scans} each way)`);
    const scanReq = { where: [{ column: 'k', op: '<' as const, value: 100 }], sum: 'k', min: 'v', max: 'v' };
    await run(
      '1% scan + aggregates',
      o.scans,
      () => db.scan('t', scanReq),
      () => db.scan('t', scanReq, { fetched: true }),
      [1],
    );
    // The same scan for a tenant whose budget covers the whole table: one execution, one round trip.
    const whole = await SqliteDatabase.open({
      read: blockReader(host, 1, blockSize),
      location: { nsid: 1, offsetBytes: 0 },
      programs,
      handles: loaded.handles,
      maxStepsPerExecution: ONE_EXECUTION_STEPS,
    });
    await run(
      '1% scan + aggregates, one execution',
      o.scans,
      () => whole.scan('t', scanReq),
      () => whole.scan('t', scanReq, { fetched: true }),
      [1],
    );
  } finally {
    await session.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

function report(rows: Row[], outDir: string): string {
  const header = ['query', 'mode', 'p50_us', 'p99_us', 'ops_per_s', 'bytes_per_op', 'round_trips_per_op'];
  const csv = rows.map((x) => [
    x.query,
    x.mode,
    x.m.p50Us.toFixed(1),
    x.m.p99Us.toFixed(1),
    x.m.opsPerSec.toFixed(1),
    x.m.bytesPerOp.toFixed(0),
    x.m.commandsPerOp.toFixed(2),
  ]);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'sqlite.csv'), toCsv(header, csv));
  const queries = [...new Set(rows.map((x) => x.query))];
  const pick = (mode: string, f: (m: Measurement) => number) =>
    queries.map((q) => f(rows.find((x) => x.query === q && x.mode === mode)?.m as Measurement));
  const chart = (title: string, yLabel: string, f: (m: Measurement) => number, yLog = true) =>
    barChartSvg({
      title,
      yLabel,
      categories: queries,
      groups: [
        { name: 'pushed down', values: pick('pushdown', f) },
        { name: 'fetched', values: pick('fetched', f) },
      ],
      yLog,
      width: 1100,
    });
  writeFileSync(
    join(outDir, 'sqlite.svg'),
    stackSvgs([
      chart('p50 latency', 'µs', (m) => m.p50Us),
      chart('throughput', 'queries/s', (m) => m.opsPerSec),
      chart('bytes on the wire per query', 'bytes', (m) => m.bytesPerOp),
    ]),
  );
  return formatTable(
    header,
    csv.map((r) => r.map(String)),
    new Set([2, 3, 4, 5, 6]),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      ops: { type: 'string', default: '2000' },
      scans: { type: 'string', default: '2' },
      out: { type: 'string', default: 'results' },
      'execution-workers': { type: 'string' },
    },
  });
  const workers = values['execution-workers'];
  const rows = await runSqliteBench(
    {
      rows: Number(values.rows),
      ops: Number(values.ops),
      scans: Number(values.scans),
      executionWorkers: workers === undefined ? undefined : Number(workers),
    },
    (s) => process.stderr.write(`${s}\n`),
  );
  process.stdout.write(`${report(rows, values.out ?? 'results')}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
