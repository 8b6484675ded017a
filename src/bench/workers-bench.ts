/**
 * Execution workers and I/O threads side by side (`bench:pushdown -- --execution-workers 0,1,2
 * --io-threads 2`): for each configuration a target process runs with that `ioThreads` and
 * `programs.executionWorkers` (one port per I/O thread; the measured tenant connects to every port),
 * and one run measures
 *
 * - pushed-down lookups (a 6-step chain over cached 512-byte nodes) per second at QD32, with the
 *   target's CPU per lookup (all its threads, /proc) and the client's;
 * - a victim tenant's plain 4 KiB read p99 and lookup p99 alone and next to a CPU-heavy tenant
 *   (8 executions of 40 steps of about 80,000 instructions each, always running);
 * - the hand-off: an empty message to a worker and back (in this process), wall time and CPU.
 *
 * The machine is shared: CPU figures and ratios within one run are what to read; the load average
 * is printed with them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { ExecutionPool } from '../target/execution-pool.js';
import { NoisyTenant } from '../testing/noisy-tenant.js';
import { LIST_WALK_ASM, SPIN_STEPS_ASM } from '../testing/storage-programs.js';
import { spawnServe } from './io-bench.js';
import { processCpuNs, selfCpuUs, threadCpuNs } from './proc-cpu.js';

const NQN = 'nqn.2026-11.io.nearbpf:bench-workers';
const TENANT = 'nqn.2014-08.org.nvmexpress:uuid:be7c0000-0000-4000-8000-0000000000a1';
const NOISY = 'nqn.2014-08.org.nvmexpress:uuid:be7c0000-0000-4000-8000-0000000000b2';
const VICTIM = 'nqn.2014-08.org.nvmexpress:uuid:be7c0000-0000-4000-8000-0000000000c3';
const CHAIN_NODES = 6;
const CHAIN_AT = 1 << 20;
/** Nodes 64 KiB apart: each step's read is its own page. */
const NODE_STRIDE = 64 * 1024;

/** A target configuration: I/O threads (0: the ports on the main thread) and execution workers (0: steps on the I/O thread). */
export interface WorkersConfig {
  readonly ioThreads: number;
  readonly workers: number;
}

export interface WorkersRow {
  readonly ioThreads: number;
  readonly workers: number;
  readonly lookupsPerSec: number;
  readonly serverCpuUsPerLookup: number | null;
  /** Of it, the target's main thread (with no I/O threads: the thread serving the socket). */
  readonly mainThreadCpuUsPerLookup: number | null;
  readonly clientCpuUsPerLookup: number;
  readonly readP99AloneMs: number;
  readonly readP99NoisyMs: number;
  readonly lookupP99AloneMs: number;
  readonly lookupP99NoisyMs: number;
}

export interface WorkersFigures {
  readonly rows: WorkersRow[];
  readonly handoff: HandoffRow[];
  readonly loadAverage: number[];
}

const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

export interface HandoffRow {
  /** `ring`: shared-memory slots (what executions use); `message`: postMessage (loads, large data). */
  readonly via: 'ring' | 'message';
  /** The worker's idle spin before it sleeps. */
  readonly spinMicros: number;
  /** One round trip at a time: every round trip wakes both threads. */
  readonly p50Us: number;
  readonly p90Us: number;
  readonly cpuUsPerRoundTrip: number;
  /** 32 outstanding at once (as at QD32): wall time and CPU (both threads) per round trip. */
  readonly pipelinedUsPerOp: number;
  readonly pipelinedCpuUsPerOp: number;
}

/**
 * The hand-off, empty requests to one worker and back in this process, ring and message side by side
 * (interleaved in two rounds, the better round kept), with the worker sleeping at once when idle and
 * spinning 50 µs first. CPU is this process's (every thread, /proc).
 */
export async function measureHandoff(rounds: number): Promise<HandoffRow[]> {
  const rows: HandoffRow[] = [];
  const cpuUs = () => (processCpuNs(process.pid) ?? selfCpuUs() * 1000) / 1000;
  for (const spinMicros of [0, 50]) {
    const pool = new ExecutionPool({ workers: 1, spinMicros });
    try {
      const best = new Map<string, HandoffRow>();
      for (let round = 0; round < 2; round++) {
        for (const via of ['ring', 'message'] as const) {
          for (let i = 0; i < 200; i++) await pool.pingRoundTrip(0, via);
          const rtts: number[] = [];
          let cpu0 = cpuUs();
          for (let i = 0; i < rounds; i++) rtts.push(await pool.pingRoundTrip(0, via));
          const cpuUsPerRoundTrip = (cpuUs() - cpu0) / rounds;
          const pipelined = rounds * 4;
          let next = 0;
          cpu0 = cpuUs();
          const t0 = performance.now();
          await Promise.all(
            Array.from({ length: 32 }, async () => {
              while (next < pipelined) {
                next++;
                await pool.pingRoundTrip(0, via);
              }
            }),
          );
          const row: HandoffRow = {
            via,
            spinMicros,
            p50Us: p(rtts, 0.5),
            p90Us: p(rtts, 0.9),
            cpuUsPerRoundTrip,
            pipelinedUsPerOp: ((performance.now() - t0) * 1000) / pipelined,
            pipelinedCpuUsPerOp: (cpuUs() - cpu0) / pipelined,
          };
          const prior = best.get(via);
          if (prior === undefined || row.p50Us < prior.p50Us) best.set(via, row);
        }
      }
      rows.push(...best.values());
    } finally {
      await pool.close();
    }
  }
  return rows;
}

export function formatHandoff(rows: readonly HandoffRow[]): string {
  const f = (n: number) => n.toFixed(1).padStart(6);
  const lines = [
    'hand-off to an execution worker and back (empty request, this process; CPU = all threads):',
    '  via      spin   one at a time: p50 / p90 wall us, CPU us    32 outstanding: wall us/op, CPU us/op',
  ];
  for (const r of rows) {
    lines.push(
      `  ${r.via.padEnd(7)} ${String(r.spinMicros).padStart(3)} us   ${f(r.p50Us)} / ${f(r.p90Us)}      ${f(r.cpuUsPerRoundTrip)}          ${f(r.pipelinedUsPerOp)}      ${f(r.pipelinedCpuUsPerOp)}`,
    );
  }
  const at = (via: string, spin: number) => rows.find((r) => r.via === via && r.spinMicros === spin);
  const ring = at('ring', 0);
  const message = at('message', 0);
  if (ring && message) {
    lines.push(
      `  ring vs message (no spin): one at a time ${(message.p50Us / ring.p50Us).toFixed(2)}x faster p50, ${(message.cpuUsPerRoundTrip / ring.cpuUsPerRoundTrip).toFixed(2)}x less CPU; ` +
        `32 outstanding ${(message.pipelinedUsPerOp / ring.pipelinedUsPerOp).toFixed(2)}x faster, ${(message.pipelinedCpuUsPerOp / ring.pipelinedCpuUsPerOp).toFixed(2)}x less CPU`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function measureTarget(config: WorkersConfig, ops: number, samples: number): Promise<WorkersRow> {
  const { ioThreads, workers } = config;
  const portCount = Math.max(1, ioThreads);
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-workers-'));
  const configPath = join(dir, 'target.json');
  await writeFile(
    configPath,
    JSON.stringify({
      listen: Array.from({ length: portCount }, () => ({ host: '127.0.0.1', port: 0 })),
      ioThreads,
      dataDir: dir,
      limits: { maxQueueDepth: 128 },
      programs: { executionWorkers: workers, defaults: { maxSteps: 2000, maxConcurrentExecutions: 32 } },
      subsystems: [{ nqn: NQN, namespaces: [{ nsid: 1, path: 'bench.img', sizeBytes: 16 << 20, blockSize: 512 }] }],
    }),
  );
  const target = await spawnServe(configPath, portCount);
  const connect = (hostNqn: string, port = target.port) =>
    NvmeTcpHost.connect({ host: '127.0.0.1', port, subsystemNqn: NQN, hostNqn, ioQueues: 1, queueDepth: 64 });
  const [a, victim] = [await connect(TENANT), await connect(VICTIM)];
  // The noisy tenant: a client process of its own (the victim's latency is then not this process's
  // work on its completions).
  const noisy = await NoisyTenant.start({
    host: '127.0.0.1',
    port: target.port,
    subsystemNqn: NQN,
    hostNqn: NOISY,
    image: encodeProgram(assemble(SPIN_STEPS_ASM)),
    name: 'spin',
    nsid: 1,
    params: [40n, 0n],
    outstanding: 8,
  });
  // The measured tenant has one association per port (a multipath host), its lookups spread over them.
  const paths = [a];
  for (const port of target.ports.slice(1)) paths.push(await connect(TENANT, port));
  try {
    // The chain: CHAIN_NODES nodes of {value, next}, 64 KiB apart, read once (cached).
    for (let i = 0; i < CHAIN_NODES; i++) {
      const node = Buffer.alloc(512);
      node.writeBigUInt64LE(BigInt(i + 1), 0);
      node.writeBigUInt64LE(i + 1 < CHAIN_NODES ? BigInt(CHAIN_AT + (i + 1) * NODE_STRIDE) : 0n, 8);
      await a.write(1, (CHAIN_AT + i * NODE_STRIDE) / 512, node);
      await a.read(1, (CHAIN_AT + i * NODE_STRIDE) / 512, 1);
    }
    const expected = BigInt((CHAIN_NODES * (CHAIN_NODES + 1)) / 2);
    const walkImage = encodeProgram(assemble(LIST_WALK_ASM));
    const pa = new ProgramClient(a);
    // One program per tenant: every path of the tenant sees it under the same handle.
    const pas = paths.map((h) => new ProgramClient(h));
    const pv = new ProgramClient(victim);
    const walkA = await pa.load(walkImage, { name: 'walk' });
    const walkV = await pv.load(walkImage, { name: 'walk' });
    const lookup = async (c: ProgramClient, h: number) => {
      const r = await c.execute(h, { nsid: 1, params: [BigInt(CHAIN_AT), 0n], maxOutputBytes: 8 });
      if (r.returnValue !== expected) throw new Error(`lookup returned ${r.returnValue}, not ${expected}`);
    };
    for (let i = 0; i < 200; i++) await lookup(pa, walkA);

    // Throughput at QD32.
    const server0 = processCpuNs(target.pid);
    const main0 = threadCpuNs(target.pid, target.pid);
    const client0 = selfCpuUs();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async (_, k) => {
        const path = pas[k % pas.length];
        while (next < ops) {
          next++;
          await lookup(path, walkA);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const server1 = processCpuNs(target.pid);
    const main1 = threadCpuNs(target.pid, target.pid);
    const clientCpu = (selfCpuUs() - client0) / ops;

    // Noisy neighbour: victim samples alone and next to the spinning tenant, alternating in blocks.
    const alone = { reads: [] as number[], lookups: [] as number[] };
    const shared = { reads: [] as number[], lookups: [] as number[] };
    const sample = async (n: number, into: typeof alone) => {
      for (let i = 0; i < n; i++) {
        let s = performance.now();
        await victim.read(1, 8 + ((i * 7) % 1024), 8);
        into.reads.push(performance.now() - s);
        s = performance.now();
        await lookup(pv, walkV);
        into.lookups.push(performance.now() - s);
      }
    };
    for (let block = 0; block < 3; block++) {
      await sample(samples, alone);
      await noisy.run();
      await sample(samples, shared);
      await noisy.pause();
    }
    return {
      ioThreads,
      workers,
      lookupsPerSec: ops / seconds,
      serverCpuUsPerLookup: server0 === null || server1 === null ? null : (server1 - server0) / 1000 / ops,
      mainThreadCpuUsPerLookup: main0 === null || main1 === null ? null : (main1 - main0) / 1000 / ops,
      clientCpuUsPerLookup: clientCpu,
      readP99AloneMs: p(alone.reads, 0.99),
      readP99NoisyMs: p(shared.reads, 0.99),
      lookupP99AloneMs: p(alone.lookups, 0.99),
      lookupP99NoisyMs: p(shared.lookups, 0.99),
    };
  } finally {
    for (const h of paths.slice(1)) await h.close();
    await a.close();
    await noisy.close();
    await victim.close();
    await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function benchWorkers(options: {
  configs: readonly WorkersConfig[];
  ops?: number;
  samples?: number;
  handoffRounds?: number;
  progress?: (s: string) => void;
}): Promise<WorkersFigures> {
  const loadBefore = loadavg();
  options.progress?.('  hand-off round trip (in this process)');
  const handoff = await measureHandoff(options.handoffRounds ?? 2000);
  const rows: WorkersRow[] = [];
  for (const c of options.configs) {
    options.progress?.(`  target with ioThreads ${c.ioThreads}, executionWorkers ${c.workers}`);
    rows.push(await measureTarget(c, options.ops ?? 4000, options.samples ?? 100));
  }
  const loadAfter = loadavg();
  return {
    rows,
    handoff,
    loadAverage: loadBefore.map((l, i) => (l + loadAfter[i]) / 2),
  };
}

export function formatWorkers(f: WorkersFigures): string {
  const fmt = (n: number | null, d = 1) => (n === null ? '-' : n.toFixed(d));
  const lines = [
    `load average during the run: ${f.loadAverage.map((l) => l.toFixed(1)).join(' ')} (2 cores shared with other work: read ratios and CPU figures)`,
    formatHandoff(f.handoff),
    'I/O threads  workers  lookups/s  server CPU us/lookup (main thread)  client CPU us/lookup  victim read p99 alone/noisy ms  victim lookup p99 alone/noisy ms',
  ];
  const pair = (alone: number, noisy: number) => `${fmt(alone, 2)}/${fmt(noisy, 2)} (${fmt(noisy / alone, 2)}x)`;
  for (const r of f.rows) {
    lines.push(
      `${String(r.ioThreads).padStart(11)}  ${String(r.workers).padStart(7)}  ${fmt(r.lookupsPerSec, 0).padStart(9)}  ${`${fmt(r.serverCpuUsPerLookup)} (${fmt(r.mainThreadCpuUsPerLookup)})`.padStart(34)}  ${fmt(r.clientCpuUsPerLookup).padStart(20)}  ${pair(r.readP99AloneMs, r.readP99NoisyMs).padStart(30)}  ${pair(r.lookupP99AloneMs, r.lookupP99NoisyMs).padStart(32)}`,
    );
  }
  const row = (ioThreads: number, workers: number) => f.rows.find((r) => r.ioThreads === ioThreads && r.workers === workers);
  const ratio = (a: WorkersRow, b: WorkersRow, what: string) =>
    `${what}: ${(a.lookupsPerSec / b.lookupsPerSec).toFixed(2)}x lookups/s, server CPU per lookup ${fmt((a.serverCpuUsPerLookup ?? 0) / (b.serverCpuUsPerLookup ?? 1), 2)}x`;
  lines.push('');
  const one = row(0, 1);
  for (const r of f.rows) {
    if (r.ioThreads === 0 && r.workers > 1 && one)
      lines.push(`${ratio(r, one, `${r.workers} workers vs 1`)} (target >= 1.3x with 2)`);
  }
  const inline = row(0, 0);
  if (one && inline)
    lines.push(`${ratio(one, inline, '1 worker vs steps on the I/O thread')} (target: no regression beyond 10%)`);
  const single = row(1, 1);
  for (const r of f.rows) {
    if (single && r.ioThreads > 1 && r.workers > 1) {
      lines.push(
        `${ratio(r, single, `${r.ioThreads} I/O threads and ${r.workers} workers vs 1 of each`)} (target >= 1.3x with 2)`,
      );
    }
  }
  lines.push('noisy-tenant targets: victim read p99 <= 1.5x, lookup p99 <= 2x of alone');
  return `${lines.join('\n')}\n`;
}
