/**
 * Each showcase operation two ways over one NVMe/TCP host: pushed down (the storage functions of
 * examples/btree.c and examples/scan.c run on the target, one EXECUTE command per operation) and
 * fetched (the client-side functions of btree.ts and table.ts over `host.read`), with the measuring
 * loop that both the demo and the benchmark use: latency percentiles, throughput, and the bytes and
 * commands each operation put on the wire (from `host.traffic('io')`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HostTraffic, NvmeTcpHost } from '../client/host.js';
import { type ExecuteOptions, type ExecuteResult, type ProgramClient, ProgramCommandError } from '../client/programs.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { type BtreeLayout, type ByteReader, lookupAtClient, rangeAtClient, VALUE_SIZE_BYTES } from './btree.js';
import { type Aggregate, decodeScanOutput, ROW_SIZE_BYTES, scanAtClient } from './table.js';

export const BTREE_OBJECT = join(REPO_ROOT, 'examples', 'build', 'btree.o');
export const SCAN_OBJECT = join(REPO_ROOT, 'examples', 'build', 'scan.o');

export type FunctionName = 'btree_lookup' | 'btree_range' | 'btree_batch' | 'table_scan';
export const FUNCTION_NAMES: readonly FunctionName[] = ['btree_lookup', 'btree_range', 'btree_batch', 'table_scan'];

/** Handles of the loaded storage functions. */
export interface LoadedFunctions {
  readonly handles: Partial<Record<FunctionName, number>>;
  /** Functions the target refused, with its reason (the verifier's message and log for a rejection). */
  readonly refused: { name: FunctionName; status: string; message: string; log?: string }[];
  /** Milliseconds each load (verification + compilation on the target) took. */
  readonly loadMs: Partial<Record<FunctionName, number>>;
}

/**
 * Load the storage functions. A refusal is recorded, not thrown: the caller reports it and runs
 * only what was accepted.
 */
export async function loadStorageFunctions(
  programs: ProgramClient,
  options: { names?: readonly FunctionName[]; prefix?: string } = {},
): Promise<LoadedFunctions> {
  const objects = { btree: readFileSync(BTREE_OBJECT), scan: readFileSync(SCAN_OBJECT) };
  const result: LoadedFunctions = { handles: {}, refused: [], loadMs: {} };
  for (const name of options.names ?? FUNCTION_NAMES) {
    const object = name === 'table_scan' ? objects.scan : objects.btree;
    const started = performance.now();
    try {
      result.handles[name] = await programs.load(object, { name: `${options.prefix ?? ''}${name}`, objectProgram: name });
      result.loadMs[name] = performance.now() - started;
    } catch (e) {
      if (!(e instanceof ProgramCommandError)) throw e;
      result.refused.push({ name, status: e.status, message: e.message, log: e.log });
    }
  }
  return result;
}

/** One line per refused function, with the verifier's last log lines. */
export function describeRefusals(loaded: LoadedFunctions, logLines = 3): string {
  return loaded.refused
    .map((r) => {
      const tail = (r.log ?? '')
        .trim()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(-logLines)
        .map((l) => `      ${l}`)
        .join('\n');
      return `  ${r.name}: refused by the target (${r.status}): ${r.message}${tail ? `\n${tail}` : ''}`;
    })
    .join('\n');
}

/** Where the pushdown and fetched operations find their data. */
export interface Dataset {
  readonly host: NvmeTcpHost;
  readonly programs: ProgramClient;
  readonly nsid: number;
  readonly blockSize: number;
  readonly read: ByteReader;
}

/** A table placed on whole blocks (scan mode covers blocks: the row count must fill them). */
export interface TablePlace {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

/** Most pairs `btree_range` returns (BT_MAX_RANGE). */
const MAX_RANGE = 32;
/*
 * Every EXECUTE names the most output it accepts: the host allocates a receive buffer of that size
 * per command, so a tight bound keeps a lookup from allocating (and collecting) the 256 KiB default.
 */

const u64s = (values: readonly bigint[]) => {
  const bytes = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => {
    bytes.writeBigUInt64LE(v, i * 8);
  });
  return bytes;
};

// ---- point lookup ----

export async function lookupPushdown(d: Dataset, handle: number, layout: BtreeLayout, key: bigint) {
  const r = await d.programs.execute(handle, {
    nsid: d.nsid,
    params: [key, BigInt(layout.rootOffset)],
    maxOutputBytes: VALUE_SIZE_BYTES,
  });
  if (r.returnValue === 1n) return Buffer.from(r.output.subarray(0, VALUE_SIZE_BYTES));
  if (r.returnValue === 0n) return undefined;
  throw new Error(`btree_lookup returned ${r.returnValue}`);
}

export const lookupFetched = (d: Dataset, layout: BtreeLayout, key: bigint) => lookupAtClient(d.read, layout, key);

// ---- range ----

export interface Pair {
  key: bigint;
  value: Uint8Array;
}

export async function rangePushdown(d: Dataset, handle: number, layout: BtreeLayout, lo: bigint, hi: bigint): Promise<Pair[]> {
  const r = await d.programs.execute(handle, {
    nsid: d.nsid,
    params: [lo, BigInt(layout.rootOffset)],
    input: u64s([hi, BigInt(layout.leavesEnd)]),
    maxOutputBytes: MAX_RANGE * (8 + VALUE_SIZE_BYTES),
  });
  if (r.returnValue > BigInt(MAX_RANGE)) throw new Error(`btree_range returned ${r.returnValue}`);
  const pairs: Pair[] = [];
  const stride = 8 + VALUE_SIZE_BYTES;
  for (let k = 0; k < Number(r.returnValue); k++) {
    pairs.push({ key: r.output.readBigUInt64LE(k * stride), value: r.output.subarray(k * stride + 8, (k + 1) * stride) });
  }
  return pairs;
}

export const rangeFetched = (d: Dataset, layout: BtreeLayout, lo: bigint, hi: bigint) => rangeAtClient(d.read, layout, lo, hi);

// ---- batch ----

export async function batchPushdown(
  d: Dataset,
  handle: number,
  layout: BtreeLayout,
  keys: readonly bigint[],
): Promise<(Uint8Array | undefined)[]> {
  const r = await d.programs.execute(handle, {
    nsid: d.nsid,
    params: [0n, BigInt(layout.rootOffset)],
    input: u64s(keys),
    maxOutputBytes: keys.length * (16 + VALUE_SIZE_BYTES),
  });
  const stride = 16 + VALUE_SIZE_BYTES;
  if (r.output.length !== keys.length * stride) throw new Error(`btree_batch emitted ${r.output.length} bytes`);
  return keys.map((_, k) =>
    r.output.readBigUInt64LE(k * stride + 8) === 1n ? r.output.subarray(k * stride + 16, (k + 1) * stride) : undefined,
  );
}

/**
 * Client-side batch: every lookup walks the tree on its own, all of them concurrently (so the batch
 * costs depth + 1 dependent round trips but keys x (depth + 1) commands).
 */
export const batchFetched = (d: Dataset, layout: BtreeLayout, keys: readonly bigint[]) =>
  Promise.all(keys.map((k) => lookupAtClient(d.read, layout, k)));

// ---- scan ----

export interface ScanResult {
  aggregate: Aggregate;
  projected: { id: bigint; price: bigint }[];
}

/** Output one EXECUTE may return (the host's transfer is at most 1 MiB, trailer included). */
const SCAN_OUTPUT_BYTES = (1 << 20) - 4096;
/** Data one execution may read (the target's default budget is 64 MiB and 1024 steps of 128 KiB). */
const SCAN_SEGMENT_BYTES = 64 << 20;

/**
 * Scan with `table_scan` in scan mode. With projection the table is cut into segments whose
 * expected output fits one command (`selectivityHint`), halved again if the target says the output
 * did not fit; the aggregates of the segments are merged here.
 */
export async function scanPushdown(
  d: Dataset,
  handle: number,
  table: TablePlace,
  threshold: number,
  options: { project?: boolean; selectivityHint?: number } = {},
): Promise<ScanResult> {
  if (table.offsetBytes % d.blockSize !== 0 || table.lengthBytes % d.blockSize !== 0)
    throw new RangeError('the table must start and end on block boundaries');
  const rows = table.lengthBytes / ROW_SIZE_BYTES;
  const expectedOut = options.project ? rows * (options.selectivityHint ?? 1) * 16 * 1.25 + 64 : 64;
  const segments = Math.max(Math.ceil(expectedOut / SCAN_OUTPUT_BYTES), Math.ceil(table.lengthBytes / SCAN_SEGMENT_BYTES));
  const totalBlocks = table.lengthBytes / d.blockSize;
  const per = Math.ceil(totalBlocks / segments);
  const parts: ScanResult[] = [];
  const run = async (startLba: number, blocks: number): Promise<void> => {
    const opts: ExecuteOptions = {
      nsid: d.nsid,
      params: [BigInt(threshold), options.project ? 1n : 0n],
      scan: { startLba, blocks },
      maxOutputBytes: options.project ? SCAN_OUTPUT_BYTES : 64,
    };
    let r: ExecuteResult;
    try {
      r = await d.programs.execute(handle, opts);
    } catch (e) {
      const tooBig = e instanceof ProgramCommandError && (e.status === 'OutputTooLarge' || e.status === 'BudgetOutputBytes');
      if (!tooBig || blocks < 2) throw e;
      const half = Math.floor(blocks / 2);
      await run(startLba, half);
      await run(startLba + half, blocks - half);
      return;
    }
    parts.push(decodeScanOutput(r.output));
  };
  for (let b = 0; b < totalBlocks; b += per) await run(table.offsetBytes / d.blockSize + b, Math.min(per, totalBlocks - b));
  return mergeScans(parts);
}

function mergeScans(parts: readonly ScanResult[]): ScanResult {
  const aggregate: Aggregate = { count: 0n, sum: 0n, min: 0n, max: 0n };
  const projected: ScanResult['projected'] = [];
  for (const p of parts) {
    if (p.aggregate.count > 0n) {
      if (aggregate.count === 0n || p.aggregate.min < aggregate.min) aggregate.min = p.aggregate.min;
      if (aggregate.count === 0n || p.aggregate.max > aggregate.max) aggregate.max = p.aggregate.max;
    }
    aggregate.count += p.aggregate.count;
    aggregate.sum += p.aggregate.sum;
    for (const x of p.projected) projected.push(x);
  }
  return { aggregate, projected };
}

export const scanFetched = (d: Dataset, table: TablePlace, threshold: number, options: { project?: boolean } = {}) =>
  scanAtClient(d.read, table, threshold, { project: options.project });

// ---- comparing results ----

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a === undefined || b === undefined ? a === b : Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

export function sameValues(a: readonly (Uint8Array | undefined)[], b: readonly (Uint8Array | undefined)[]): boolean {
  return a.length === b.length && a.every((v, i) => sameBytes(v, b[i]));
}

export const sameValue = (a: Uint8Array | undefined, b: Uint8Array | undefined) => sameBytes(a, b);

export function samePairs(a: readonly Pair[], b: readonly Pair[]): boolean {
  return a.length === b.length && a.every((p, i) => p.key === b[i].key && sameBytes(p.value, b[i].value));
}

export function sameScan(a: ScanResult, b: ScanResult): boolean {
  const ag = (x: Aggregate) => `${x.count}/${x.sum}/${x.min}/${x.max}`;
  return (
    ag(a.aggregate) === ag(b.aggregate) &&
    a.projected.length === b.projected.length &&
    a.projected.every((p, i) => p.id === b.projected[i].id && p.price === b.projected[i].price)
  );
}

// ---- measuring ----

export interface Measurement {
  readonly ops: number;
  readonly concurrency: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  /** NVMe/TCP bytes per operation, both directions (I/O queues only). */
  readonly bytesPerOp: number;
  readonly bytesSentPerOp: number;
  readonly bytesReceivedPerOp: number;
  /** Commands (each a round trip) per operation. */
  readonly commandsPerOp: number;
}

/** QD1 latency samples (ms) and the I/O-queue traffic charged to them, reported as a `Measurement`. */
export class Qd1Samples {
  readonly ms: number[] = [];
  readonly traffic: HostTraffic = { bytesSent: 0, bytesReceived: 0, commands: 0 };

  /** Run and time `op`, charging the I/O-queue traffic in between to it (QD1: nothing else is in flight). */
  async time<R>(host: NvmeTcpHost, op: () => Promise<R>): Promise<R> {
    const before = host.traffic('io');
    const t0 = performance.now();
    const r = await op();
    this.ms.push(performance.now() - t0);
    const t = host.trafficSince(before, 'io');
    this.traffic.bytesSent += t.bytesSent;
    this.traffic.bytesReceived += t.bytesReceived;
    this.traffic.commands += t.commands;
    return r;
  }

  /** In the shape `measure` reports, at concurrency 1. */
  summary(): Measurement {
    const ops = this.ms.length;
    const sorted = Float64Array.from(this.ms).sort();
    const pct = (p: number) => sorted[Math.min(ops - 1, Math.floor(ops * p))] * 1000;
    const seconds = this.ms.reduce((a, b) => a + b, 0) / 1000;
    const t = this.traffic;
    return {
      ops,
      concurrency: 1,
      seconds,
      opsPerSec: ops / seconds,
      p50Us: pct(0.5),
      p99Us: pct(0.99),
      meanUs: (seconds * 1e6) / ops,
      bytesPerOp: (t.bytesSent + t.bytesReceived) / ops,
      bytesSentPerOp: t.bytesSent / ops,
      bytesReceivedPerOp: t.bytesReceived / ops,
      commandsPerOp: t.commands / ops,
    };
  }
}

/**
 * Run `op(0..ops-1)` with `concurrency` in flight (QD1 = one after another), timing each and
 * charging the I/O-queue traffic of the whole run to the operations.
 */
export async function measure(
  host: NvmeTcpHost,
  ops: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<Measurement> {
  const lat = new Float64Array(ops);
  let next = 0;
  const before = host.traffic('io');
  const t0 = performance.now();
  const worker = async () => {
    for (let i = next++; i < ops; i = next++) {
      const s = performance.now();
      await op(i);
      lat[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ops) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const t = host.trafficSince(before, 'io');
  const sorted = Float64Array.from(lat).sort();
  const pct = (p: number) => sorted[Math.min(ops - 1, Math.floor(ops * p))] * 1000;
  return {
    ops,
    concurrency,
    seconds,
    opsPerSec: ops / seconds,
    p50Us: pct(0.5),
    p99Us: pct(0.99),
    meanUs: (lat.reduce((a, b) => a + b, 0) / ops) * 1000,
    bytesPerOp: (t.bytesSent + t.bytesReceived) / ops,
    bytesSentPerOp: t.bytesSent / ops,
    bytesReceivedPerOp: t.bytesReceived / ops,
    commandsPerOp: t.commands / ops,
  };
}

/** A tiny deterministic PRNG (xorshift32), so runs are comparable. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
}
