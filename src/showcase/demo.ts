/**
 * The storage demo: an in-process target on 127.0.0.1 with temporary sparse namespaces, a host
 * connected to it, a B+-tree and a table built through NVMe writes, and each operation run both
 * ways — pushed down to the target as a storage function, and fetched to the client — with the
 * results compared and one table of latency, throughput, bytes and round trips per operation.
 */
import { performance } from 'node:perf_hooks';
import { ProgramClient } from '../client/programs.js';
import { type BtreeLayout, buildBtree, keyAt, planBtree } from './btree.js';
import { blockReader, blockWriter, startLoopbackSession } from './nvme.js';
import {
  batchFetched,
  batchPushdown,
  type Dataset,
  describeRefusals,
  type FunctionName,
  type LoadedFunctions,
  loadStorageFunctions,
  lookupFetched,
  lookupPushdown,
  type Measurement,
  measure,
  rangeFetched,
  rangePushdown,
  rng,
  type ScanResult,
  samePairs,
  sameScan,
  sameValue,
  sameValues,
  scanFetched,
  scanPushdown,
  type TablePlace,
} from './pushdown.js';
import { Progress, type ProgressStream, say } from './report.js';
import { buildTable, ROW_SIZE_BYTES, thresholdFor } from './table.js';

export interface DemoOptions {
  keys: number;
  depth: number;
  fanout?: number;
  rows: number;
  lookups: number;
  ranges: number;
  batches: number;
  batchSize: number;
  scans: number;
  selectivity: number;
}

export const DEFAULT_DEMO: DemoOptions = {
  keys: 1_000_000,
  depth: 5,
  fanout: 31,
  rows: 1 << 20,
  lookups: 2000,
  ranges: 200,
  batches: 100,
  batchSize: 32,
  scans: 3,
  selectivity: 0.01,
};

export interface DemoRow {
  operation: string;
  mode: 'pushdown' | 'fetched';
  function: FunctionName;
  m: Measurement;
  /** Operations whose pushdown result differed from the fetched one (set on pushdown rows). */
  mismatches?: number;
}

export interface DemoReport {
  options: DemoOptions;
  layout: BtreeLayout;
  table: TablePlace;
  loaded: LoadedFunctions;
  rows: DemoRow[];
  buildSeconds: number;
  totalSeconds: number;
}

const TREE_NSID = 1;
const TABLE_NSID = 2;

/** Run the demo; progress and notes go to `err`. */
export async function runStorageDemo(options: DemoOptions, err: ProgressStream): Promise<DemoReport> {
  const started = performance.now();
  const rows = Math.ceil(options.rows / 8) * 8; // whole 512-byte blocks
  const { layout: plannedLayout } = planBtree(options.keys, options.depth, { fanout: options.fanout });
  const table: TablePlace = { offsetBytes: 0, lengthBytes: rows * ROW_SIZE_BYTES };
  say(
    err,
    `starting a target on 127.0.0.1 with two sparse namespaces (B+-tree ${(plannedLayout.totalBytes / 2 ** 20).toFixed(0)} MiB, table ${(table.lengthBytes / 2 ** 20).toFixed(0)} MiB)`,
  );
  const session = await startLoopbackSession({
    namespaces: [
      { nsid: TREE_NSID, sizeBytes: plannedLayout.totalBytes + 4096 },
      { nsid: TABLE_NSID, sizeBytes: table.lengthBytes + 4096 },
    ],
    ioQueues: 1,
    queueDepth: 64,
  });
  try {
    const { host, blockSize } = session;
    const programs = new ProgramClient(host);
    const tree: Dataset = { host, programs, nsid: TREE_NSID, blockSize, read: blockReader(host, TREE_NSID, blockSize) };
    const tab: Dataset = { host, programs, nsid: TABLE_NSID, blockSize, read: blockReader(host, TABLE_NSID, blockSize) };

    say(err, 'loading storage functions from examples/build/btree.o and scan.o (the target verifies each)');
    const loaded = await loadStorageFunctions(programs);
    for (const [name, ms] of Object.entries(loaded.loadMs)) say(err, `  ${name}: verified and loaded in ${ms.toFixed(0)} ms`);
    if (loaded.refused.length > 0) say(err, describeRefusals(loaded));

    const buildStart = performance.now();
    const treeWriter = blockWriter(host, TREE_NSID, blockSize);
    const p1 = new Progress(err, `building a ${options.keys.toLocaleString('en-US')}-key B+-tree of depth ${options.depth}`);
    const layout = await buildBtree(options.keys, options.depth, treeWriter.write, {
      fanout: options.fanout,
      progress: (d, t) => p1.update(d, t),
    });
    await treeWriter.drain();
    p1.done();
    const tableWriter = blockWriter(host, TABLE_NSID, blockSize);
    const p2 = new Progress(err, `building a table of ${rows.toLocaleString('en-US')} rows x ${ROW_SIZE_BYTES} B`);
    await buildTable(rows, table.offsetBytes, tableWriter.write, { progress: (d, t) => p2.update(d, t) });
    await tableWriter.drain();
    p2.done();
    const buildSeconds = (performance.now() - buildStart) / 1000;

    const out: DemoRow[] = [];
    const h = loaded.handles;
    const both = async <R>(
      operation: string,
      fn: FunctionName,
      count: number,
      pushed: ((i: number) => Promise<R>) | undefined,
      fetched: (i: number) => Promise<R>,
      same: (a: R, b: R) => boolean,
    ) => {
      say(err, `running ${operation} (${count} each way)`);
      const fetchedResults: R[] = new Array(count);
      // Warm-up of both paths, outside the figures.
      await fetched(0);
      if (pushed) await pushed(0);
      const mf = await measure(host, count, 1, async (i) => {
        fetchedResults[i] = await fetched(i);
      });
      if (pushed) {
        let mismatches = 0;
        const mp = await measure(host, count, 1, async (i) => {
          if (!same(await pushed(i), fetchedResults[i])) mismatches++;
        });
        out.push({ operation, mode: 'pushdown', function: fn, m: mp, mismatches });
      }
      out.push({ operation, mode: 'fetched', function: fn, m: mf });
    };

    const r = rng(42);
    const lookupKeys = Array.from({ length: options.lookups }, () => keyAt(Math.floor(r() * options.keys)));
    const lookupH = h.btree_lookup;
    await both(
      'point lookup',
      'btree_lookup',
      options.lookups,
      lookupH === undefined ? undefined : (i) => lookupPushdown(tree, lookupH, layout, lookupKeys[i]),
      (i) => lookupFetched(tree, layout, lookupKeys[i]),
      sameValue,
    );

    const ranges = Array.from({ length: options.ranges }, () => {
      const lo = keyAt(Math.floor(r() * options.keys));
      return { lo, hi: lo + BigInt(2 * (1 + Math.floor(r() * 32))) };
    });
    const rangeH = h.btree_range;
    await both(
      'range (<= 32 keys)',
      'btree_range',
      options.ranges,
      rangeH === undefined ? undefined : (i) => rangePushdown(tree, rangeH, layout, ranges[i].lo, ranges[i].hi),
      (i) => rangeFetched(tree, layout, ranges[i].lo, ranges[i].hi),
      samePairs,
    );

    const batches = Array.from({ length: options.batches }, () =>
      Array.from({ length: options.batchSize }, () => keyAt(Math.floor(r() * options.keys))),
    );
    const batchH = h.btree_batch;
    await both(
      `batch of ${options.batchSize} lookups`,
      'btree_batch',
      options.batches,
      batchH === undefined ? undefined : (i) => batchPushdown(tree, batchH, layout, batches[i]),
      (i) => batchFetched(tree, layout, batches[i]),
      sameValues,
    );

    const threshold = thresholdFor(options.selectivity);
    const scanH = h.table_scan;
    await both<ScanResult>(
      `scan, ${options.selectivity * 100}% selective aggregate`,
      'table_scan',
      options.scans,
      scanH === undefined ? undefined : () => scanPushdown(tab, scanH, table, threshold),
      () => scanFetched(tab, table, threshold),
      sameScan,
    );

    return { options, layout, table, loaded, rows: out, buildSeconds, totalSeconds: (performance.now() - started) / 1000 };
  } finally {
    await session.close();
  }
}
