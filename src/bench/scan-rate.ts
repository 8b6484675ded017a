/**
 * The scan figure of `bench:pushdown` (issue #11): the 1%-selective table scan pushed down to the
 * target against a local sequential read of the same bytes from the same image file, measured side by
 * side (interleaved rounds, page cache warm for both). The pushed-down figure is an upper bound on
 * the target's cost: it includes the round trip and the client's decoding of the answer.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ProgramClient } from '../client/programs.js';
import { blockReader, connectShowcaseHost } from '../showcase/nvme.js';
import { type Dataset, loadStorageFunctions, scanPushdown, type TablePlace } from '../showcase/pushdown.js';
import { thresholdFor } from '../showcase/table.js';
import { processCpuNs } from './proc-cpu.js';

export interface ScanRateFigures {
  tableBytes: number;
  rounds: number;
  /** Pushed-down 1% scan with an aggregate: median wall time and the target's CPU per scan. */
  pushdownP50Ms: number;
  serverCpuMsPerScan: number | null;
  /** Local `readSync` of the same range, 1 MiB at a time into one buffer: median wall time. */
  localReadP50Ms: number;
}

const CHUNK_BYTES = 1 << 20;
const SELECTIVITY = 0.01;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Sequential read of `[0, lengthBytes)` of `path`; returns milliseconds. */
function readSequential(path: string, lengthBytes: number, buffer: Uint8Array): number {
  const fd = openSync(path, 'r');
  try {
    const started = performance.now();
    for (let at = 0; at < lengthBytes; ) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, lengthBytes - at), at);
      if (n <= 0) throw new Error(`short read of ${path} at ${at}`);
      at += n;
    }
    return performance.now() - started;
  } finally {
    closeSync(fd);
  }
}

export async function measureScanRate(
  target: { host: string; port: number; pid: number },
  table: { nsid: number; imagePath: string; lengthBytes: number },
  rounds: number,
): Promise<ScanRateFigures> {
  const host = await connectShowcaseHost(target);
  try {
    const programs = new ProgramClient(host);
    // Its own name: the main run's client may still hold a `table_scan` on this target.
    const loaded = await loadStorageFunctions(programs, { names: ['table_scan'], prefix: 'rate-' });
    const handle = loaded.handles.table_scan;
    if (handle === undefined)
      throw new Error(`the target refused table_scan: ${loaded.refused.map((r) => r.message).join('; ')}`);
    const ds: Dataset = { host, programs, nsid: table.nsid, blockSize: 512, read: blockReader(host, table.nsid, 512) };
    const place: TablePlace = { offsetBytes: 0, lengthBytes: table.lengthBytes };
    const threshold = thresholdFor(SELECTIVITY);
    const buffer = new Uint8Array(CHUNK_BYTES);
    // Warm both: the target's page cache and JIT, the local page cache.
    await scanPushdown(ds, handle, place, threshold);
    readSequential(table.imagePath, table.lengthBytes, buffer);
    const pushed: number[] = [];
    const local: number[] = [];
    /** Target CPU over the pushed-down scans; null where /proc cannot say. */
    let serverNs: number | null = 0;
    for (let i = 0; i < rounds; i++) {
      const cpu0 = processCpuNs(target.pid);
      const started = performance.now();
      await scanPushdown(ds, handle, place, threshold);
      pushed.push(performance.now() - started);
      const cpu1 = processCpuNs(target.pid);
      serverNs = serverNs === null || cpu0 === null || cpu1 === null ? null : serverNs + (cpu1 - cpu0);
      local.push(readSequential(table.imagePath, table.lengthBytes, buffer));
    }
    return {
      tableBytes: table.lengthBytes,
      rounds,
      pushdownP50Ms: median(pushed),
      serverCpuMsPerScan: serverNs === null ? null : serverNs / 1e6 / rounds,
      localReadP50Ms: median(local),
    };
  } finally {
    await host.close();
  }
}

export function formatScanRate(f: ScanRateFigures): string {
  const mib = f.tableBytes / (1 << 20);
  const rate = (ms: number) => `${(mib / (ms / 1000)).toFixed(0)} MiB/s`;
  const ratio = f.localReadP50Ms / f.pushdownP50Ms;
  const cpu = f.serverCpuMsPerScan === null ? '' : `, target CPU ${f.serverCpuMsPerScan.toFixed(1)} ms per scan`;
  return (
    `  1% scan of ${mib.toFixed(0)} MiB, median of ${f.rounds}: pushed down ${f.pushdownP50Ms.toFixed(1)} ms (${rate(f.pushdownP50Ms)}${cpu}); ` +
    `local sequential read ${f.localReadP50Ms.toFixed(1)} ms (${rate(f.localReadP50Ms)})\n` +
    `  scan rate on the target: ${ratio.toFixed(2)}x the local sequential read (target >= 0.5x)\n`
  );
}
