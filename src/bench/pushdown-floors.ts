/**
 * The data-path figures of `bench:pushdown` (issue #11), measured against the running target
 * process after the main figures: the bare round trip of a minimal Node TCP server with the same
 * response size (the floor a pushed-down lookup is compared with), server CPU per depth-6 lookup at
 * QD1 and QD32 (from /proc, all threads of the target process), client CPU per lookup, and
 * fairness: another tenant's plain 4 KiB read p99 alone and while a tenant runs long synchronous
 * chains (batches of 32 lookups, every node in the page cache) at 16 outstanding.
 */
import { performance } from 'node:perf_hooks';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { type BtreeLayout, decodeHeader, keyAt, VALUE_SIZE_BYTES } from '../showcase/btree.js';
import { blockReader, SHOWCASE_KATO_MS, SHOWCASE_NQN } from '../showcase/nvme.js';
import { batchPushdown, type Dataset, loadStorageFunctions, lookupPushdown, rng } from '../showcase/pushdown.js';
import { FloorClient, spawnFloorServer } from './floor-server.js';
import { processCpuNs, selfCpuUs } from './proc-cpu.js';

export interface DataPathFigures {
  /** Minimal server, QD1, a capsule out and a 64-byte answer back: p50 µs. */
  floorRoundTripP50Us: number;
  lookupP50Us: number;
  lookupOpsPerSecQd32: number;
  serverCpuUsPerLookupQd1: number | null;
  serverCpuUsPerLookupQd32: number | null;
  clientCpuUsPerLookupQd1: number;
  /** Another tenant's plain 4 KiB reads at QD1: p99 alone and next to the chains. */
  plainReadP99AloneUs: number;
  plainReadP99WithChainsUs: number;
  plainReadP50AloneUs: number;
  plainReadP50WithChainsUs: number;
}

const TENANT_A = 'nqn.2014-08.org.nvmexpress:uuid:0b1e0000-0000-4000-8000-00000000000a';
const TENANT_B = 'nqn.2014-08.org.nvmexpress:uuid:0b1e0000-0000-4000-8000-00000000000b';
const LOOKUP_NSID = 6;

const pct = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 1000;

/** `ops` operations with `concurrency` outstanding: sorted latencies (ms), seconds, CPU of both sides. */
async function run(ops: number, concurrency: number, pid: number | null, op: (i: number) => Promise<unknown>) {
  const lat = new Float64Array(ops);
  let next = 0;
  const server0 = pid === null ? null : processCpuNs(pid);
  const client0 = selfCpuUs();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < ops; i = next++) {
        const s = performance.now();
        await op(i);
        lat[i] = performance.now() - s;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const server1 = pid === null ? null : processCpuNs(pid);
  lat.sort();
  return {
    lat,
    seconds,
    serverUsPerOp: server0 === null || server1 === null ? null : (server1 - server0) / 1000 / ops,
    clientUsPerOp: (selfCpuUs() - client0) / ops,
  };
}

async function connectTenant(target: { host: string; port: number }, hostNqn: string) {
  const host = await NvmeTcpHost.connect({
    host: target.host,
    port: target.port,
    subsystemNqn: SHOWCASE_NQN,
    hostNqn,
    ioQueues: 1,
    queueDepth: 64,
    keepAliveTimeoutMs: SHOWCASE_KATO_MS,
  });
  const programs = new ProgramClient(host);
  const ds: Dataset = { host, programs, nsid: LOOKUP_NSID, blockSize: 512, read: blockReader(host, LOOKUP_NSID, 512) };
  return { host, programs, ds };
}

export async function measureDataPath(
  target: { host: string; port: number; pid: number },
  ops: { latency: number; throughput: number },
): Promise<DataPathFigures> {
  const a = await connectTenant(target, TENANT_A);
  const b = await connectTenant(target, TENANT_B);
  const floor = await spawnFloorServer();
  const floorClient = await FloorClient.connect(floor.host, floor.port, 1);
  try {
    const loaded = await loadStorageFunctions(a.programs, { names: ['btree_lookup', 'btree_batch'] });
    const lookup = loaded.handles.btree_lookup;
    const batch = loaded.handles.btree_batch;
    if (lookup === undefined || batch === undefined) throw new Error('the target refused the B+-tree functions');
    const layout: BtreeLayout = decodeHeader(await a.ds.read(0, 512));
    const r = rng(1111);
    const keys = Array.from({ length: Math.max(ops.latency, ops.throughput) }, () => keyAt(Math.floor(r() * layout.keyCount)));
    // Warm: JIT, caches.
    for (let i = 0; i < 200; i++) {
      await lookupPushdown(a.ds, lookup, layout, keys[i % keys.length]);
      await floorClient.read(VALUE_SIZE_BYTES);
    }
    const floorRun = await run(ops.latency, 1, floor.pid, () => floorClient.read(VALUE_SIZE_BYTES));
    const qd1 = await run(ops.latency, 1, target.pid, (i) => lookupPushdown(a.ds, lookup, layout, keys[i]));
    const qd32 = await run(ops.throughput, 32, target.pid, (i) => lookupPushdown(a.ds, lookup, layout, keys[i]));

    // Fairness: tenant B's plain reads alone, then next to tenant A's batches.
    const blocks = Math.floor(layout.totalBytes / 512) - 8;
    const plain = (i: number) => b.host.read(LOOKUP_NSID, (i * 7919) % blocks, 8);
    for (let i = 0; i < 200; i++) await plain(i);
    const alone = await run(ops.latency, 1, null, plain);
    let stop = false;
    const batches = Array.from({ length: 16 }, async (_, k) => {
      for (let i = 0; !stop; i++) {
        const ks = Array.from({ length: 32 }, (_, j) => keys[(k * 997 + i * 32 + j) % keys.length]);
        await batchPushdown(a.ds, batch, layout, ks);
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const shared = await run(ops.latency, 1, null, plain);
    stop = true;
    await Promise.all(batches);
    return {
      floorRoundTripP50Us: pct(floorRun.lat, 0.5),
      lookupP50Us: pct(qd1.lat, 0.5),
      lookupOpsPerSecQd32: ops.throughput / qd32.seconds,
      serverCpuUsPerLookupQd1: qd1.serverUsPerOp,
      serverCpuUsPerLookupQd32: qd32.serverUsPerOp,
      clientCpuUsPerLookupQd1: qd1.clientUsPerOp,
      plainReadP99AloneUs: pct(alone.lat, 0.99),
      plainReadP99WithChainsUs: pct(shared.lat, 0.99),
      plainReadP50AloneUs: pct(alone.lat, 0.5),
      plainReadP50WithChainsUs: pct(shared.lat, 0.5),
    };
  } finally {
    floorClient.close();
    await floor.stop();
    await a.host.close();
    await b.host.close();
  }
}

/** The section printed by bench:pushdown, with the targets. */
export function formatDataPath(f: DataPathFigures, fetchedP50Us?: number): string {
  const x = (v: number) => `${v.toFixed(2)}x`;
  const us = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} µs`);
  const lines = [
    `  bare round trip (minimal Node server, 64-byte answer), QD1 p50: ${us(f.floorRoundTripP50Us)}`,
    `  depth-6 lookup pushed down, QD1 p50: ${us(f.lookupP50Us)} = ${x(f.lookupP50Us / f.floorRoundTripP50Us)} the bare round trip (target <= 2.2x)`,
  ];
  if (fetchedP50Us !== undefined)
    lines.push(`  fetched (client-side traversal) / pushdown p50: ${x(fetchedP50Us / f.lookupP50Us)} (target >= 5x)`);
  lines.push(
    `  server CPU per lookup: ${us(f.serverCpuUsPerLookupQd1)} at QD1, ${us(f.serverCpuUsPerLookupQd32)} at QD32 (target <= 25 µs); client CPU ${us(f.clientCpuUsPerLookupQd1)} at QD1`,
    `  lookups at 32 outstanding: ${Math.round(f.lookupOpsPerSecQd32)} ops/s`,
    `  fairness: another tenant's plain 4 KiB read p99 ${us(f.plainReadP99AloneUs)} alone, ${us(f.plainReadP99WithChainsUs)} next to 16 outstanding batches of 32 lookups = ${x(f.plainReadP99WithChainsUs / f.plainReadP99AloneUs)} (target <= 1.5x; p50 ${us(f.plainReadP50AloneUs)} -> ${us(f.plainReadP50WithChainsUs)})`,
  );
  return `${lines.join('\n')}\n`;
}
