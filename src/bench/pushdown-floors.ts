/**
 * The data-path figures of `bench:pushdown` (issue #11), measured against the running target
 * process after the main figures: the bare round trip of a minimal Node TCP server with the same
 * response size (the floor a pushed-down lookup is compared with), server CPU per depth-6 lookup at
 * QD1 and QD32 (from /proc, all threads of the target process), client CPU per lookup, and
 * fairness: another tenant's plain 4 KiB read p99 alone and while a tenant runs long synchronous
 * chains (batches of 32 lookups, every node in the page cache) at 16 outstanding.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ProgramClient } from '../client/programs.js';
import { type BtreeLayout, decodeHeader, keyAt, VALUE_SIZE_BYTES } from '../showcase/btree.js';
import { blockReader, connectShowcaseHost, SHOWCASE_NQN } from '../showcase/nvme.js';
import { BTREE_OBJECT, type Dataset, loadStorageFunctions, lookupPushdown, rng } from '../showcase/pushdown.js';
import { NoisyTenant } from '../testing/noisy-tenant.js';
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
  fairness: FairnessFigures;
}

/** One round: the victim's samples alone, then next to the noisy tenant. */
export interface FairnessRound {
  readP50AloneUs: number;
  readP50NoisyUs: number;
  readP99AloneUs: number;
  readP99NoisyUs: number;
  lookupP99AloneUs: number;
  lookupP99NoisyUs: number;
  /** The noisy tenant's batches completed while the victim sampled next to it. */
  noisyBatches: number;
  /** The victim's own depth-6 lookups at 32 outstanding, nobody else running (the cost side of priorities). */
  lookupsPerSecQd32: number;
}

export interface FairnessFigures {
  rounds: FairnessRound[];
  samplesPerPhase: number;
}

const TENANT_A = 'nqn.2014-08.org.nvmexpress:uuid:0b1e0000-0000-4000-8000-00000000000a';
const TENANT_B = 'nqn.2014-08.org.nvmexpress:uuid:0b1e0000-0000-4000-8000-00000000000b';
const TENANT_C = 'nqn.2014-08.org.nvmexpress:uuid:0b1e0000-0000-4000-8000-00000000000c';
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
  const host = await connectShowcaseHost(target, { hostNqn });
  const programs = new ProgramClient(host);
  const ds: Dataset = { host, programs, nsid: LOOKUP_NSID, blockSize: 512, read: blockReader(host, LOOKUP_NSID, 512) };
  return { host, programs, ds };
}

/** The rounds and samples of the fairness figures for a plan. */
export function fairnessPlan(quick: boolean): { rounds: number; samples: number } {
  return quick ? { rounds: 3, samples: 300 } : { rounds: 5, samples: 1000 };
}

const NOISY_BATCHES = 16;
/** Samples of each kind between switching the noisy tenant on or off. */
const FAIRNESS_BLOCK = 100;
const BATCH_KEYS = 32;

/**
 * Fairness: tenant B (the victim, this process) alternates a plain 4 KiB read and a pushed-down
 * depth-6 lookup at QD1, alone and then next to tenant C, which keeps 16 batches of 32 lookups
 * (long synchronous chains, every node cached) in flight from a client process of its own, so the
 * victim's figures do not include this process's work on C's completions. Callers run several
 * rounds, alone and noisy alternating within each, so load drift on a shared machine hits both
 * alike; each round gives its own ratios and the report takes their median.
 */
export class FairnessProbe {
  private n = 0;

  private constructor(
    private readonly victim: Awaited<ReturnType<typeof connectTenant>>,
    private readonly lookup: number,
    private readonly layout: BtreeLayout,
    private readonly keys: readonly bigint[],
    private readonly noisy: NoisyTenant,
  ) {}

  /** Connect the victim and start the noisy tenant's process against the depth-6 tree on `target`. */
  static async open(target: { host: string; port: number }): Promise<FairnessProbe> {
    const victim = await connectTenant(target, TENANT_B);
    let noisy: NoisyTenant | undefined;
    try {
      const lookup = (await loadStorageFunctions(victim.programs, { names: ['btree_lookup'] })).handles.btree_lookup;
      if (lookup === undefined) throw new Error('the target refused btree_lookup');
      const layout = decodeHeader(await victim.ds.read(0, 512));
      const r = rng(2222);
      const keys = Array.from({ length: 4096 }, () => keyAt(Math.floor(r() * layout.keyCount)));
      const batches = Array.from({ length: 64 }, (_, i) => {
        const input = Buffer.alloc(8 * BATCH_KEYS);
        for (let j = 0; j < BATCH_KEYS; j++) input.writeBigUInt64LE(keys[(i * 997 + j * 31) % keys.length], 8 * j);
        return input;
      });
      noisy = await NoisyTenant.start({
        host: target.host,
        port: target.port,
        subsystemNqn: SHOWCASE_NQN,
        hostNqn: TENANT_C,
        image: readFileSync(BTREE_OBJECT),
        name: 'noisy_batch',
        objectProgram: 'btree_batch',
        nsid: LOOKUP_NSID,
        params: [0n, BigInt(layout.rootOffset)],
        inputs: batches,
        maxOutputBytes: BATCH_KEYS * (16 + VALUE_SIZE_BYTES),
        outstanding: NOISY_BATCHES,
      });
      const probe = new FairnessProbe(victim, lookup, layout, keys, noisy);
      // Warm every path a round takes (JIT on both sides, caches, the workers' code), or the first
      // round's figures are the warm-up's.
      await probe.sample(300);
      await probe.throughput(2000);
      await noisy.run();
      await probe.sample(100);
      await noisy.pause();
      return probe;
    } catch (e) {
      await noisy?.close();
      await victim.host.close();
      throw e;
    }
  }

  /**
   * One round: `samples` of each kind alone and as many next to the noisy tenant, in alternating
   * blocks of `FAIRNESS_BLOCK` (so load drift between them hits both alike), then the victim's
   * throughput alone.
   */
  async round(samples: number): Promise<FairnessRound> {
    const alone = { reads: new Float64Array(samples), lookups: new Float64Array(samples) };
    const shared = { reads: new Float64Array(samples), lookups: new Float64Array(samples) };
    let executions = 0;
    for (let at = 0; at < samples; at += FAIRNESS_BLOCK) {
      const n = Math.min(FAIRNESS_BLOCK, samples - at);
      await this.sample(n, alone, at);
      await this.noisy.run();
      await this.sample(n, shared, at);
      executions += (await this.noisy.pause()).executions;
    }
    const lookupsPerSecQd32 = await this.throughput(samples * 4);
    for (const xs of [alone.reads, alone.lookups, shared.reads, shared.lookups]) xs.sort();
    return {
      readP50AloneUs: pct(alone.reads, 0.5),
      readP50NoisyUs: pct(shared.reads, 0.5),
      readP99AloneUs: pct(alone.reads, 0.99),
      readP99NoisyUs: pct(shared.reads, 0.99),
      lookupP99AloneUs: pct(alone.lookups, 0.99),
      lookupP99NoisyUs: pct(shared.lookups, 0.99),
      noisyBatches: executions,
      lookupsPerSecQd32,
    };
  }

  /** The victim's lookups per second at 32 outstanding. */
  private async throughput(ops: number): Promise<number> {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < ops; i = next++)
          await lookupPushdown(this.victim.ds, this.lookup, this.layout, this.keys[i % this.keys.length]);
      }),
    );
    return ops / ((performance.now() - t0) / 1000);
  }

  async close(): Promise<void> {
    await this.noisy.close();
    await this.victim.host.close();
  }

  /** `count` samples of each kind into `into` from index `at`. */
  private async sample(count: number, into?: { reads: Float64Array; lookups: Float64Array }, at = 0): Promise<void> {
    const blocks = Math.floor(this.layout.totalBytes / 512) - 8;
    for (let i = at; i < at + count; i++, this.n++) {
      let t0 = performance.now();
      await this.victim.host.read(LOOKUP_NSID, (this.n * 7919) % blocks, 8);
      if (into) into.reads[i] = performance.now() - t0;
      t0 = performance.now();
      await lookupPushdown(this.victim.ds, this.lookup, this.layout, this.keys[this.n % this.keys.length]);
      if (into) into.lookups[i] = performance.now() - t0;
    }
  }
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function measureDataPath(
  target: { host: string; port: number; pid: number },
  ops: { latency: number; throughput: number; fairness: { rounds: number; samples: number } },
): Promise<DataPathFigures> {
  const a = await connectTenant(target, TENANT_A);
  const floor = await spawnFloorServer();
  const floorClient = await FloorClient.connect(floor.host, floor.port, 1);
  try {
    const loaded = await loadStorageFunctions(a.programs, { names: ['btree_lookup'] });
    const lookup = loaded.handles.btree_lookup;
    if (lookup === undefined) throw new Error('the target refused the B+-tree functions');
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

    const probe = await FairnessProbe.open(target);
    const rounds: FairnessRound[] = [];
    try {
      for (let i = 0; i < ops.fairness.rounds; i++) rounds.push(await probe.round(ops.fairness.samples));
    } finally {
      await probe.close();
    }
    const fairness = { rounds, samplesPerPhase: ops.fairness.samples };
    return {
      floorRoundTripP50Us: pct(floorRun.lat, 0.5),
      lookupP50Us: pct(qd1.lat, 0.5),
      lookupOpsPerSecQd32: ops.throughput / qd32.seconds,
      serverCpuUsPerLookupQd1: qd1.serverUsPerOp,
      serverCpuUsPerLookupQd32: qd32.serverUsPerOp,
      clientCpuUsPerLookupQd1: qd1.clientUsPerOp,
      fairness,
    };
  } finally {
    floorClient.close();
    await floor.stop();
    await a.host.close();
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
  );
  lines.push(...formatFairness(f.fairness));
  return `${lines.join('\n')}\n`;
}

/** The fairness lines: per round, then the medians against issue #12's targets. */
export function formatFairness(f: FairnessFigures): string[] {
  const x = (v: number) => `${v.toFixed(2)}x`;
  const us = (v: number) => `${v.toFixed(0)} µs`;
  const read = f.rounds.map((r) => r.readP99NoisyUs / r.readP99AloneUs);
  const lookup = f.rounds.map((r) => r.lookupP99NoisyUs / r.lookupP99AloneUs);
  const range = (v: number[]) => `${x(Math.min(...v))}-${x(Math.max(...v))}`;
  const lines = [
    `  fairness: a victim tenant alternating plain 4 KiB reads and depth-6 lookups at QD1, alone and next to another tenant's ${NOISY_BATCHES} outstanding batches of ${BATCH_KEYS} lookups (its own client process); ${f.rounds.length} rounds of ${f.samplesPerPhase} samples each way, alone and noisy alternating every ${FAIRNESS_BLOCK}:`,
  ];
  for (const [i, r] of f.rounds.entries()) {
    lines.push(
      `    round ${i + 1}: read p99 ${us(r.readP99AloneUs)} -> ${us(r.readP99NoisyUs)} (${x(read[i])}; p50 ${us(r.readP50AloneUs)} -> ${us(r.readP50NoisyUs)}), lookup p99 ${us(r.lookupP99AloneUs)} -> ${us(r.lookupP99NoisyUs)} (${x(lookup[i])}); ${r.noisyBatches} noisy batches; ${r.lookupsPerSecQd32.toFixed(0)} lookups/s alone at QD32`,
    );
  }
  lines.push(
    `    median of rounds: plain-read p99 ${x(median(read))} (${range(read)}; target <= 1.5x), pushed-lookup p99 ${x(median(lookup))} (${range(lookup)}; target <= 2x); the victim's lookups alone at 32 outstanding ${median(f.rounds.map((r) => r.lookupsPerSecQd32)).toFixed(0)}/s`,
  );
  return lines;
}
