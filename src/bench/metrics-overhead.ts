/**
 * `npm run bench:metrics`: what the Prometheus metrics cost the target, in two parts.
 *  - Per operation (the hooks on the data path): two target processes run side by side, one with
 *    `metrics.listen` and one without; measurement rounds alternate between them (off-on, on-off, so
 *    drift cancels) for random 4 KiB reads and writes at QD1 and QD32 and a storage-function chain
 *    (a 5-node list walk over cached data) at QD1 and QD8. Each round measures the server's CPU per
 *    operation from /proc (all its threads) and the IOPS; reported per case: the median of the
 *    per-pair ratios on/off and their range.
 *  - Per scrape (a fixed cost per second, whatever the load): server CPU per `GET /metrics` with the
 *    label sets the run created, from /proc over 20 scrapes.
 * The load average at start and end is printed too: on a shared machine compare ratios, never
 * absolute figures.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { rng } from '../showcase/pushdown.js';
import { PrometheusTargetMetrics } from '../target/metrics.js';
import { LIST_WALK_ASM } from '../testing/storage-programs.js';
import { benchCommandLine, integerOption } from './args.js';
import { type BenchResult, measure, type ServeProcess, spawnServe } from './io-bench.js';
import { processCpuNs } from './proc-cpu.js';

const NQN = 'nqn.2026-11.io.nearbpf:bench';
const IO_BYTES = 4096;
const NODES = 5;

interface Side {
  name: 'off' | 'on';
  serve: ServeProcess;
  host: NvmeTcpHost;
  walk: number;
  dir: string;
}

async function startSide(name: 'off' | 'on', sizeBytes: number): Promise<Side> {
  const dir = await mkdtemp(join(tmpdir(), `nearbpf-metrics-${name}-`));
  const configPath = join(dir, 'target.json');
  await writeFile(
    configPath,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: dir,
      limits: { maxQueueDepth: 128 },
      ...(name === 'on' ? { metrics: { listen: '127.0.0.1:0' } } : {}),
      subsystems: [{ nqn: NQN, namespaces: [{ nsid: 1, path: 'bench.img', sizeBytes, blockSize: 4096 }] }],
    }),
  );
  const serve = await spawnServe(configPath);
  const host = await NvmeTcpHost.connect({
    host: '127.0.0.1',
    port: serve.port,
    subsystemNqn: NQN,
    ioQueues: 1,
    queueDepth: 32,
  });
  const fill = Buffer.alloc(1 << 20, 0x5a);
  for (let off = 0; off < sizeBytes; off += fill.length) await host.write(1, off / IO_BYTES, fill);
  for (let b = 0; b < sizeBytes / IO_BYTES; b += 16) await host.read(1, b, 16);
  // The list the storage function walks from offset 0: NODES nodes in one cached 4 KiB block.
  const list = Buffer.alloc(IO_BYTES);
  for (let i = 0; i < NODES; i++) {
    list.writeBigUInt64LE(BigInt(i + 1), i * 512);
    list.writeBigUInt64LE(i + 1 < NODES ? BigInt((i + 1) * 512) : 0n, i * 512 + 8);
  }
  await host.write(1, 0, list);
  const walk = await new ProgramClient(host).load(encodeProgram(assemble(LIST_WALK_ASM)), { name: 'walk' });
  return { name, serve, host, walk, dir };
}

interface Case {
  name: string;
  queueDepth: number;
  op: (side: Side, r: () => number) => Promise<unknown>;
}

/**
 * The hooks alone, in this process: CPU per I/O command recorded (the two clock readings of its
 * latency, the cell lookup, the counter and histogram) and per execution recorded, in microseconds.
 * Deterministic enough to set against the server CPU per operation measured above.
 */
export function hookCostUs(calls = 1_000_000): { ioCommandUs: number; executionUs: number } {
  const metrics = new PrometheusTargetMetrics({ maxTenants: 64, maxProgramsPerTenant: 32 });
  const io = metrics.ioMeter(NQN, 'nqn.2014-08.org.nvmexpress:uuid:bench');
  const program = metrics.programMeter('nqn.2014-08.org.nvmexpress:uuid:bench', 'walk');
  const cpu = (f: () => void) => {
    f(); // warm (JIT, cells created)
    const t0 = process.cpuUsage();
    f();
    const t = process.cpuUsage(t0);
    return (t.user + t.system) / calls;
  };
  const ioCommandUs = cpu(() => {
    for (let i = 0; i < calls; i++) {
      const start = performance.now();
      io.command(1, i & 1 ? 0x02 : 0x01, 0, 4096, (performance.now() - start) / 1000);
    }
  });
  const executionUs = cpu(() => {
    for (let i = 0; i < calls; i++) program.executed('success', 6, 5, 80, 120, 8, 0.0001, 0.00005, 0.00001);
  });
  return { ioCommandUs, executionUs };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function benchMetricsOverhead(options: { ops: number; pairs: number; sizeBytes: number }): Promise<string> {
  const blocks = options.sizeBytes / IO_BYTES;
  const payload = Buffer.alloc(IO_BYTES, 0xa5);
  const cases: Case[] = [
    { name: 'randread 4k', queueDepth: 1, op: (s, r) => s.host.read(1, 1 + Math.floor(r() * (blocks - 1)), 1) },
    { name: 'randread 4k', queueDepth: 32, op: (s, r) => s.host.read(1, 1 + Math.floor(r() * (blocks - 1)), 1) },
    { name: 'randwrite 4k', queueDepth: 1, op: (s, r) => s.host.write(1, 1 + Math.floor(r() * (blocks - 1)), payload) },
    { name: 'randwrite 4k', queueDepth: 32, op: (s, r) => s.host.write(1, 1 + Math.floor(r() * (blocks - 1)), payload) },
    { name: 'list walk (5 reads)', queueDepth: 1, op: (s) => new ProgramClient(s.host).execute(s.walk, { nsid: 1 }) },
    { name: 'list walk (5 reads)', queueDepth: 8, op: (s) => new ProgramClient(s.host).execute(s.walk, { nsid: 1 }) },
  ];
  const loadStart = loadavg();
  const off = await startSide('off', options.sizeBytes);
  const on = await startSide('on', options.sizeBytes);
  const lines: string[] = [];
  const hooks = hookCostUs();
  const perCase: Record<string, number> = {};
  try {
    for (const c of cases) {
      // Warm both (JIT, buffers).
      for (const s of [off, on]) for (let i = 0; i < 300; i++) await c.op(s, rng(1));
      const cpuRatios: number[] = [];
      const iopsRatios: number[] = [];
      const cpu: Record<string, number[]> = { off: [], on: [] };
      for (let p = 0; p < options.pairs; p++) {
        const order = p % 2 === 0 ? [off, on] : [on, off];
        const got: Record<string, BenchResult> = {};
        for (const s of order) {
          const r = rng(p * 7 + c.queueDepth);
          got[s.name] = await measure(c.name, c.queueDepth, options.ops, s.serve.pid, () => c.op(s, r));
        }
        const a = got.off.serverCpuUsPerOp ?? Number.NaN;
        const b = got.on.serverCpuUsPerOp ?? Number.NaN;
        cpu.off.push(a);
        cpu.on.push(b);
        cpuRatios.push(b / a);
        iopsRatios.push(got.on.iops / got.off.iops);
      }
      const range = (xs: number[]) => `${Math.min(...xs).toFixed(3)}..${Math.max(...xs).toFixed(3)}`;
      perCase[`${c.name} QD${c.queueDepth}`] = median(cpu.off);
      lines.push(
        `${`${c.name} QD${c.queueDepth}`.padEnd(26)} server CPU/op off ${median(cpu.off).toFixed(1).padStart(6)} us, on ${median(cpu.on).toFixed(1).padStart(6)} us: ` +
          `on/off ${median(cpuRatios).toFixed(3)} (pairs ${range(cpuRatios)}); IOPS on/off ${median(iopsRatios).toFixed(3)} (${range(iopsRatios)})`,
      );
    }
    // The scrape: server CPU per GET /metrics.
    const url = on.serve.metricsUrl;
    if (url !== null) {
      const scrapes = 20;
      let bytes = 0;
      const cpu0 = processCpuNs(on.serve.pid);
      for (let i = 0; i < scrapes; i++) bytes = (await (await fetch(url)).text()).length;
      const cpu1 = processCpuNs(on.serve.pid);
      if (cpu0 !== null && cpu1 !== null) {
        const ms = (cpu1 - cpu0) / 1e6 / scrapes;
        lines.push(
          `scrape (GET /metrics, ${bytes} bytes): server CPU ${ms.toFixed(2)} ms per scrape, ${(ms / 10).toFixed(2)}% of a core at one scrape a second`,
        );
      }
    }
  } finally {
    for (const s of [off, on]) {
      await s.host.close();
      await s.serve.stop();
      await rm(s.dir, { recursive: true, force: true });
    }
  }
  const loadEnd = loadavg();
  const share = (us: number, name: string) =>
    `${((us / perCase[name]) * 100).toFixed(2)}% of ${name}'s ${perCase[name].toFixed(1)} us`;
  lines.push(
    `hooks alone (this process): ${hooks.ioCommandUs.toFixed(3)} us per I/O command = ${share(hooks.ioCommandUs, 'randread 4k QD32')}, ` +
      `${share(hooks.ioCommandUs, 'randwrite 4k QD32')}; ${hooks.executionUs.toFixed(3)} us per execution (plus its command) = ` +
      `${share(hooks.executionUs + hooks.ioCommandUs, 'list walk (5 reads) QD8')}`,
  );
  return (
    `metrics overhead: ${options.pairs} pairs of ${options.ops} ops per case, two targets side by side (off: no metrics; on: metrics)\n` +
    `${lines.join('\n')}\n` +
    `load average ${loadStart.map((x) => x.toFixed(2)).join(' ')} at start, ${loadEnd.map((x) => x.toFixed(2)).join(' ')} at end (${
      (await import('node:os')).cpus().length
    } CPUs)\n`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = benchCommandLine(
    'usage: npm run bench:metrics [-- --ops N] [--pairs N] [--size-mib N]',
    { ops: { type: 'string' }, pairs: { type: 'string' }, 'size-mib': { type: 'string' } },
    (values) => ({
      ops: integerOption(values, 'ops', 3000, 1, 10_000_000),
      pairs: integerOption(values, 'pairs', 4, 1, 64),
      sizeBytes: integerOption(values, 'size-mib', 16, 1, 4096) << 20,
    }),
  );
  process.stdout.write(await benchMetricsOverhead(options));
}
