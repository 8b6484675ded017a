/**
 * `bench-pushdown`: pushdown vs fetched over NVMe/TCP. The target runs as its own process
 * (`nearbpf serve`), so client and target each have a core; the client builds the data through NVMe
 * writes and measures:
 *  - lookup latency by tree depth 1..6 at queue depth 1,
 *  - lookup throughput against outstanding operations (1, 4, 16, 32) on the depth-6 tree,
 *  - bytes on the wire and commands per operation for every operation,
 *  - the scan's bytes and latency across selectivities 0.1%..100%,
 *  - with --netns, the depth-6 lookup and the 1% scan at 25/100/500 µs RTT (veth + netem between two
 *    network namespaces; see netns.ts); with --rtt, or --netns without netem, the same RTTs through
 *    a userspace delay proxy (rtt.ts, delay-proxy.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ProgramClient } from '../client/programs.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { type BtreeLayout, buildBtree, decodeHeader, keyAt, planBtree } from './btree.js';
import { blockReader, blockWriter, connectShowcaseHost, type ShowcaseNamespace, targetConfig } from './nvme.js';
import {
  batchFetched,
  batchPushdown,
  type Dataset,
  describeRefusals,
  type LoadedFunctions,
  loadStorageFunctions,
  lookupFetched,
  lookupPushdown,
  type Measurement,
  measure,
  rangeFetched,
  rangePushdown,
  rng,
  samePairs,
  sameScan,
  sameValue,
  sameValues,
  scanFetched,
  scanPushdown,
  type TablePlace,
} from './pushdown.js';
import { type ProgressStream, say } from './report.js';
import { buildTable, ROW_SIZE_BYTES, thresholdFor } from './table.js';

export const DEPTHS = [1, 2, 3, 4, 5, 6] as const;
export const CONCURRENCIES = [1, 4, 16, 32] as const;
export const SELECTIVITIES = [0.001, 0.01, 0.1, 0.5, 1] as const;
export const TABLE_NSID = 7;

export interface BenchPlan {
  readonly quick: boolean;
  /** Run the target with its Prometheus metrics on (to measure their cost). */
  readonly metrics?: boolean;
  /** Keys of the tree of each depth (index depth - 1). */
  readonly keysByDepth: readonly number[];
  readonly tableRows: number;
  readonly latencyOps: number;
  readonly throughputOps: number;
  readonly rangeOps: number;
  readonly batchOps: number;
  readonly scanRuns: number;
}

export function benchPlan(quick: boolean): BenchPlan {
  const big = quick ? 50_000 : 200_000;
  return {
    quick,
    keysByDepth: [31, 961, 29_791, big, big, big],
    tableRows: quick ? 1 << 17 : 1 << 20,
    latencyOps: quick ? 300 : 2000,
    throughputOps: quick ? 600 : 3000,
    rangeOps: quick ? 100 : 300,
    batchOps: quick ? 20 : 60,
    scanRuns: quick ? 2 : 3,
  };
}

/** Namespaces of the benchmark target: one per tree depth (nsid = depth) and the table's. */
export function benchNamespaces(plan: BenchPlan): ShowcaseNamespace[] {
  return [
    ...DEPTHS.map((d) => ({ nsid: d, sizeBytes: planBtree(plan.keysByDepth[d - 1], d).layout.totalBytes + 4096 })),
    { nsid: TABLE_NSID, sizeBytes: plan.tableRows * ROW_SIZE_BYTES + 4096 },
  ];
}

// ---- the target process ----

export interface TargetProcess {
  readonly host: string;
  readonly port: number;
  /** The target process (CPU figures read /proc/PID). */
  readonly pid: number;
  /** Where its namespace images live (`showcase-nsN.img`). */
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * Start `nearbpf serve` as a child process (optionally wrapped, e.g. in `ip netns exec NAME`) with the
 * benchmark's namespaces in `dir`; resolves once it listens.
 */
export async function spawnTarget(
  dir: string,
  namespaces: readonly ShowcaseNamespace[],
  listen: { host: string; port: number },
  wrap: readonly string[] = [],
  serveArgs: readonly string[] = [],
  programs: Record<string, unknown> = {},
): Promise<TargetProcess> {
  const configPath = join(dir, 'target.json');
  await writeFile(
    configPath,
    JSON.stringify(targetConfig(dir, namespaces, listen.host, listen.port, undefined, programs), null, 2),
  );
  const argv = [...wrap, process.execPath, join(REPO_ROOT, 'bin', 'nearbpf.js'), 'serve', '--config', configPath, ...serveArgs];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`target did not start in 20 s: ${stderr}`)), 20_000);
    lines.on('line', (line) => {
      const m = /listening on (.+):(\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ host: m[1], port: Number(m[2]) });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`target exited with ${code} before listening: ${stderr}`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return {
    ...address,
    pid: child.pid as number,
    dataDir: dir,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

// ---- the client ----

export interface DepthFigure {
  depth: number;
  keys: number;
  fanout: number;
  pushdown?: Measurement;
  fetched: Measurement;
}

export interface ConcurrencyFigure {
  concurrency: number;
  pushdown?: Measurement;
  fetched: Measurement;
}

export interface OpBytesFigure {
  operation: string;
  pushdown?: Measurement;
  fetched: Measurement;
}

export interface SelectivityFigure {
  selectivity: number;
  matches: number;
  pushdownAggregate?: Measurement;
  pushdownProject?: Measurement;
  fetched: Measurement;
}

export interface ClientFigures {
  refused: LoadedFunctions['refused'];
  loadMs: LoadedFunctions['loadMs'];
  mismatches: number;
  depth: DepthFigure[];
  concurrency: ConcurrencyFigure[];
  bytes: OpBytesFigure[];
  selectivity: SelectivityFigure[];
}

export interface ClientRun {
  host: string;
  port: number;
  plan: BenchPlan;
  /** Write the data first (otherwise it is taken as already there: the trees' headers say where). */
  build: boolean;
  /** What to measure: everything, or the RTT profile (depth-6 lookups and the 1% scan only). */
  profile: 'full' | 'rtt';
}

/** Build the trees and the table through NVMe writes. */
export async function buildBenchData(run: ClientRun, err: ProgressStream): Promise<void> {
  const host = await connectShowcaseHost(run);
  try {
    const blockSize = 512;
    const depths = run.profile === 'rtt' ? [6] : DEPTHS;
    for (const d of depths) {
      const w = blockWriter(host, d, blockSize);
      await buildBtree(run.plan.keysByDepth[d - 1], d, w.write);
      await w.drain();
      say(err, `  built the depth-${d} tree (${run.plan.keysByDepth[d - 1].toLocaleString('en-US')} keys)`);
    }
    const w = blockWriter(host, TABLE_NSID, blockSize);
    await buildTable(run.plan.tableRows, 0, w.write);
    await w.drain();
    say(err, `  built the table (${run.plan.tableRows.toLocaleString('en-US')} rows x ${ROW_SIZE_BYTES} B)`);
  } finally {
    await host.close();
  }
}

/** Connect, load the storage functions, and measure. */
export async function runClient(run: ClientRun, err: ProgressStream): Promise<ClientFigures> {
  if (run.build) await buildBenchData(run, err);
  const host = await connectShowcaseHost(run);
  try {
    const programs = new ProgramClient(host);
    const blockSize = 512;
    const loaded = await loadStorageFunctions(programs, {
      names: run.profile === 'rtt' ? ['btree_lookup', 'table_scan'] : undefined,
    });
    if (loaded.refused.length > 0) say(err, describeRefusals(loaded));
    const h = loaded.handles;
    const ds = (nsid: number): Dataset => ({ host, programs, nsid, blockSize, read: blockReader(host, nsid, blockSize) });
    const layoutOf = async (nsid: number): Promise<BtreeLayout> => decodeHeader(await ds(nsid).read(0, 512));
    const figures: ClientFigures = {
      refused: loaded.refused,
      loadMs: loaded.loadMs,
      mismatches: 0,
      depth: [],
      concurrency: [],
      bytes: [],
      selectivity: [],
    };
    const plan = run.plan;

    // Both ways; results of the fetched run are kept and compared with the pushdown run's.
    const both = async <R>(
      ops: number,
      concurrency: number,
      pushed: ((i: number) => Promise<R>) | undefined,
      fetched: (i: number) => Promise<R>,
      same: (a: R, b: R) => boolean,
    ): Promise<{ pushdown?: Measurement; fetched: Measurement }> => {
      const expected: R[] = new Array(ops);
      await fetched(0);
      if (pushed) await pushed(0);
      const f = await measure(host, ops, concurrency, async (i) => {
        expected[i] = await fetched(i);
      });
      if (!pushed) return { fetched: f };
      const p = await measure(host, ops, concurrency, async (i) => {
        if (!same(await pushed(i), expected[i])) figures.mismatches++;
      });
      return { pushdown: p, fetched: f };
    };

    const lookupH = h.btree_lookup;
    const depths = run.profile === 'rtt' ? [6] : DEPTHS;
    for (const d of depths) {
      const d6 = ds(d);
      const layout = await layoutOf(d);
      const r = rng(d * 7919);
      const keys = Array.from({ length: plan.latencyOps }, () => keyAt(Math.floor(r() * layout.keyCount)));
      const m = await both(
        plan.latencyOps,
        1,
        lookupH === undefined ? undefined : (i) => lookupPushdown(d6, lookupH, layout, keys[i]),
        (i) => lookupFetched(d6, layout, keys[i]),
        sameValue,
      );
      const fanout = planBtree(layout.keyCount, d).fanout;
      figures.depth.push({ depth: d, keys: layout.keyCount, fanout, ...m });
      say(err, `  depth ${d}: p50 pushdown ${m.pushdown?.p50Us.toFixed(0) ?? '-'} us, fetched ${m.fetched.p50Us.toFixed(0)} us`);
    }

    const d6 = ds(6);
    const layout6 = await layoutOf(6);
    const concurrencies = run.profile === 'rtt' ? [1, 16] : CONCURRENCIES;
    for (const c of concurrencies) {
      const r = rng(c * 104729);
      const ops = Math.max(plan.throughputOps, c * 40);
      const keys = Array.from({ length: ops }, () => keyAt(Math.floor(r() * layout6.keyCount)));
      const m = await both(
        ops,
        c,
        lookupH === undefined ? undefined : (i) => lookupPushdown(d6, lookupH, layout6, keys[i]),
        (i) => lookupFetched(d6, layout6, keys[i]),
        sameValue,
      );
      figures.concurrency.push({ concurrency: c, ...m });
      say(
        err,
        `  ${c} outstanding: pushdown ${m.pushdown?.opsPerSec.toFixed(0) ?? '-'} ops/s, fetched ${m.fetched.opsPerSec.toFixed(0)} ops/s`,
      );
    }

    if (run.profile === 'full') {
      const depth6 = figures.depth.find((f) => f.depth === 6);
      if (depth6) figures.bytes.push({ operation: 'lookup (depth 6)', pushdown: depth6.pushdown, fetched: depth6.fetched });
      const r = rng(31337);
      const ranges = Array.from({ length: plan.rangeOps }, () => {
        const lo = keyAt(Math.floor(r() * layout6.keyCount));
        return { lo, hi: lo + BigInt(2 * (1 + Math.floor(r() * 32))) };
      });
      const rangeH = h.btree_range;
      figures.bytes.push({
        operation: 'range <=32 (depth 6)',
        ...(await both(
          plan.rangeOps,
          1,
          rangeH === undefined ? undefined : (i) => rangePushdown(d6, rangeH, layout6, ranges[i].lo, ranges[i].hi),
          (i) => rangeFetched(d6, layout6, ranges[i].lo, ranges[i].hi),
          samePairs,
        )),
      });
      const batches = Array.from({ length: plan.batchOps }, () =>
        Array.from({ length: 32 }, () => keyAt(Math.floor(r() * layout6.keyCount))),
      );
      const batchH = h.btree_batch;
      figures.bytes.push({
        operation: 'batch of 32 (depth 6)',
        ...(await both(
          plan.batchOps,
          1,
          batchH === undefined ? undefined : (i) => batchPushdown(d6, batchH, layout6, batches[i]),
          (i) => batchFetched(d6, layout6, batches[i]),
          sameValues,
        )),
      });
      say(err, '  measured range and batch');
    }

    const t = ds(TABLE_NSID);
    const table: TablePlace = { offsetBytes: 0, lengthBytes: plan.tableRows * ROW_SIZE_BYTES };
    const scanH = h.table_scan;
    const selectivities = run.profile === 'rtt' ? [0.01] : SELECTIVITIES;
    for (const s of selectivities) {
      const threshold = thresholdFor(s);
      const agg = await both(
        plan.scanRuns,
        1,
        scanH === undefined ? undefined : () => scanPushdown(t, scanH, table, threshold),
        () => scanFetched(t, table, threshold, { project: true }),
        (a, b) => sameScan(a, { aggregate: b.aggregate, projected: [] }),
      );
      let project: Measurement | undefined;
      let matches = 0;
      if (scanH !== undefined && run.profile === 'full') {
        const expected = await scanFetched(t, table, threshold, { project: true });
        matches = Number(expected.aggregate.count);
        project = await measure(host, plan.scanRuns, 1, async () => {
          if (!sameScan(await scanPushdown(t, scanH, table, threshold, { project: true, selectivityHint: s }), expected))
            figures.mismatches++;
        });
      }
      figures.selectivity.push({
        selectivity: s,
        matches,
        pushdownAggregate: agg.pushdown,
        pushdownProject: project,
        fetched: agg.fetched,
      });
      if (s === 0.01 && run.profile === 'full')
        figures.bytes.push({ operation: 'scan 1% aggregate', pushdown: agg.pushdown, fetched: agg.fetched });
      say(
        err,
        `  scan at ${s * 100}%: pushdown ${agg.pushdown ? (agg.pushdown.p50Us / 1000).toFixed(1) : '-'} ms, fetched ${(agg.fetched.p50Us / 1000).toFixed(1)} ms`,
      );
    }
    return figures;
  } finally {
    await host.close();
  }
}

/** Loopback run: target process on 127.0.0.1, client here; `then` measures more against the same target. */
export async function benchLoopback(
  plan: BenchPlan,
  err: ProgressStream,
  then?: (target: TargetProcess) => Promise<void>,
): Promise<ClientFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-pushdown-'));
  let target: TargetProcess | undefined;
  try {
    target = await spawnTarget(
      dir,
      benchNamespaces(plan),
      { host: '127.0.0.1', port: 0 },
      [],
      plan.metrics ? ['--metrics', '127.0.0.1:0'] : [],
    );
    say(err, `target process listening on ${target.host}:${target.port}; building the data through NVMe writes`);
    const figures = await runClient({ host: target.host, port: target.port, plan, build: true, profile: 'full' }, err);
    await then?.(target);
    return figures;
  } finally {
    await target?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
