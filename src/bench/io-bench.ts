/**
 * `bench-io` (`npm run bench:io`): random 4 KiB reads and writes through `NvmeTcpHost` against a
 * target process (`nearbpf serve`) over loopback at QD1 and QD32, side by side in one run with
 *   - the floor: a minimal Node TCP server answering the same PDU sizes from memory (floor-server.ts),
 *     driven by a minimal client at the same queue depth;
 *   - a local loop of positioned reads (fs.read, the thread pool) of the same pattern on the backing file.
 * Reported: IOPS, p50/p99, CPU per operation of the server process (all its threads, from /proc)
 * and of the client (this process), and the ratios to the floor that the targets are stated in.
 * The namespace fits the target's page cache (the data path is measured, not the disk); `--size-mib`
 * larger than the cache measures misses.
 */
import { spawn } from 'node:child_process';
import { read as fsRead } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NvmeTcpHost } from '../client/host.js';
import { UsageError } from '../errors.js';
import { rng } from '../showcase/pushdown.js';
import { FloorClient, spawnFloorServer } from './floor-server.js';
import { processCpuNs, selfCpuUs } from './proc-cpu.js';

export interface BenchIoOptions {
  /** Operations per case. */
  ops?: number;
  /** Namespace size; random offsets cover all of it. */
  sizeBytes?: number;
  queueDepths?: number[];
  digests?: boolean;
  /** Run the target with its Prometheus metrics on (to measure their cost). */
  metrics?: boolean;
}

export interface BenchResult {
  name: string;
  queueDepth: number;
  ops: number;
  iops: number;
  p50Us: number;
  p99Us: number;
  /** CPU of the serving process per operation (null: not measurable here, e.g. the local loop). */
  serverCpuUsPerOp: number | null;
  /** CPU of this (client) process per operation. */
  clientCpuUsPerOp: number;
}

const IO_BYTES = 4096;
const NQN = 'nqn.2026-11.io.nearbpf:bench';
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function measure(
  name: string,
  queueDepth: number,
  ops: number,
  serverPid: number | null,
  op: (i: number) => Promise<unknown>,
): Promise<BenchResult> {
  const lat = new Float64Array(ops);
  let next = 0;
  const server0 = serverPid === null ? null : processCpuNs(serverPid);
  const client0 = selfCpuUs();
  const t0 = performance.now();
  const worker = async () => {
    for (let i = next++; i < ops; i = next++) {
      const s = performance.now();
      await op(i);
      lat[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: queueDepth }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const clientUs = selfCpuUs() - client0;
  const server1 = serverPid === null ? null : processCpuNs(serverPid);
  lat.sort();
  const pct = (p: number) => Math.round(lat[Math.min(ops - 1, Math.floor(ops * p))] * 1000);
  return {
    name,
    queueDepth,
    ops,
    iops: Math.round(ops / seconds),
    p50Us: pct(0.5),
    p99Us: pct(0.99),
    serverCpuUsPerOp: server0 === null || server1 === null ? null : (server1 - server0) / 1000 / ops,
    clientCpuUsPerOp: clientUs / ops,
  };
}

export interface ServeProcess {
  port: number;
  /** Every port, in listen order. */
  ports: number[];
  pid: number;
  /** Where its metrics are served, when the config turns them on. */
  metricsUrl: string | null;
  stop(): Promise<void>;
}

/** `nearbpf serve --config FILE` as a child process; resolves once it listens on `portCount` ports. */
export async function spawnServe(configPath: string, portCount = 1): Promise<ServeProcess> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'nearbpf.js'), 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let metricsUrl: string | null = null;
  const ports = await new Promise<number[]>((resolve, reject) => {
    const found: number[] = [];
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const metrics = /metrics at (\S+)$/.exec(line);
      if (metrics) metricsUrl = metrics[1];
      const m = /listening on .+:(\d+)$/.exec(line);
      if (m && found.push(Number(m[1])) === portCount) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`target exited with ${code}: ${stderr}`)));
  });
  return {
    port: ports[0],
    ports,
    pid: child.pid as number,
    metricsUrl,
    stop: async () => {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

export async function benchIo(options: BenchIoOptions = {}): Promise<BenchResult[]> {
  const ops = options.ops ?? 20_000;
  const sizeBytes = options.sizeBytes ?? 32 << 20;
  const depths = options.queueDepths ?? [1, 32];
  const maxDepth = Math.max(...depths);
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-'));
  const configPath = join(dir, 'target.json');
  await writeFile(
    configPath,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: dir,
      limits: { maxQueueDepth: Math.max(128, maxDepth) },
      ...(options.metrics ? { metrics: { listen: '127.0.0.1:0' } } : {}),
      subsystems: [{ nqn: NQN, namespaces: [{ nsid: 1, path: 'bench.img', sizeBytes, blockSize: 4096 }] }],
    }),
  );
  const results: BenchResult[] = [];
  const target = await spawnServe(configPath);
  const floor = await spawnFloorServer();
  try {
    const host = await NvmeTcpHost.connect({
      host: '127.0.0.1',
      port: target.port,
      subsystemNqn: NQN,
      ioQueues: 1,
      queueDepth: maxDepth,
      headerDigest: options.digests ?? false,
      dataDigest: options.digests ?? false,
    });
    const floorClient = await FloorClient.connect(floor.host, floor.port, maxDepth);
    const blocks = sizeBytes / IO_BYTES;
    // Fill the file so reads hit real data rather than holes, then read it once (the cache warms).
    const fill = Buffer.alloc(1 << 20, 0x5a);
    for (let off = 0; off < sizeBytes; off += fill.length)
      await host.write(1, off / IO_BYTES, fill.subarray(0, Math.min(fill.length, sizeBytes - off)));
    for (let b = 0; b < blocks; b += 16) await host.read(1, b, Math.min(16, blocks - b));
    const payload = Buffer.alloc(IO_BYTES, 0xa5);
    for (const qd of depths) {
      // Warm both paths (JIT, buffers) before measuring.
      for (let i = 0; i < 500; i++) {
        await floorClient.read(IO_BYTES);
        await host.read(1, i % blocks, 1);
      }
      const r = rng(qd);
      results.push(await measure('floor read 4k', qd, ops, floor.pid, () => floorClient.read(IO_BYTES)));
      results.push(await measure('nvme-tcp randread 4k', qd, ops, target.pid, () => host.read(1, Math.floor(r() * blocks), 1)));
      results.push(await measure('floor write 4k', qd, ops, floor.pid, () => floorClient.write(payload)));
      results.push(
        await measure('nvme-tcp randwrite 4k', qd, ops, target.pid, () => host.write(1, Math.floor(r() * blocks), payload)),
      );
    }
    floorClient.close();
    await host.close();
    const fh = await open(join(dir, 'bench.img'), 'r');
    try {
      const buffers = Array.from({ length: maxDepth }, () => Buffer.allocUnsafe(IO_BYTES));
      for (const qd of depths) {
        const r = rng(qd + 100);
        results.push(
          await measure(
            'local pread 4k',
            qd,
            ops,
            null,
            (i) =>
              new Promise<void>((resolve, reject) =>
                fsRead(fh.fd, buffers[i % qd], 0, IO_BYTES, Math.floor(r() * blocks) * IO_BYTES, (e) =>
                  e ? reject(e) : resolve(),
                ),
              ),
          ),
        );
      }
    } finally {
      await fh.close();
    }
  } finally {
    await target.stop();
    await floor.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

export interface ThreadScalingResult {
  /** I/O threads (0: the ports are served on the main thread, page cache on, as by default). */
  ioThreads: number;
  round: number;
  result: BenchResult;
}

/**
 * Random 4 KiB reads at QD32 against a target process with 0 (main thread), 1 and 2 I/O threads, one
 * port per thread and one host connection per port, the 32 outstanding commands spread over them.
 * Two rounds, interleaved, so a neighbour's load hits every configuration alike.
 */
export async function benchIoThreads(
  options: { ops?: number; sizeBytes?: number; queueDepth?: number; maxThreads?: number } = {},
): Promise<ThreadScalingResult[]> {
  const threadCounts = [0, 1, options.maxThreads ?? 2];
  const ops = options.ops ?? 20_000;
  const sizeBytes = options.sizeBytes ?? 32 << 20;
  const qd = options.queueDepth ?? 32;
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-threads-'));
  const out: ThreadScalingResult[] = [];
  try {
    for (let round = 1; round <= 2; round++) {
      for (const ioThreads of threadCounts) {
        const portCount = Math.max(1, ioThreads);
        const configPath = join(dir, `target-${ioThreads}.json`);
        await writeFile(
          configPath,
          JSON.stringify({
            listen: Array.from({ length: portCount }, () => ({ host: '127.0.0.1', port: 0 })),
            ioThreads,
            dataDir: dir,
            limits: { maxQueueDepth: Math.max(128, qd) },
            subsystems: [{ nqn: NQN, namespaces: [{ nsid: 1, path: 'bench.img', sizeBytes, blockSize: 4096 }] }],
          }),
        );
        const target = await spawnServe(configPath, portCount);
        try {
          const hosts = await Promise.all(
            target.ports.map((port) =>
              NvmeTcpHost.connect({ host: '127.0.0.1', port, subsystemNqn: NQN, ioQueues: 1, queueDepth: qd }),
            ),
          );
          const blocks = sizeBytes / IO_BYTES;
          if (round === 1 && ioThreads === 0) {
            const fill = Buffer.alloc(1 << 20, 0x5a);
            for (let off = 0; off < sizeBytes; off += fill.length) await hosts[0].write(1, off / IO_BYTES, fill);
          }
          for (let i = 0; i < 1000; i++) await hosts[i % hosts.length].read(1, i % blocks, 1);
          const r = rng(qd + round);
          const result = await measure(`randread 4k, ${ioThreads} I/O threads`, qd, ops, target.pid, (i) =>
            hosts[i % hosts.length].read(1, Math.floor(r() * blocks), 1),
          );
          out.push({ ioThreads, round, result });
          for (const h of hosts) await h.close();
        } finally {
          await target.stop();
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

export function formatThreadScaling(results: readonly ThreadScalingResult[]): string {
  const rows = results.map(
    ({ round, result: r }) =>
      `round ${round}  ${r.name.padEnd(30)} QD${r.queueDepth} ${String(r.iops).padStart(7)} IOPS  p50 ${String(r.p50Us).padStart(5)} us  p99 ${String(r.p99Us).padStart(6)} us  server CPU ${fmt(r.serverCpuUsPerOp).padStart(6)} us/op  client CPU ${fmt(r.clientCpuUsPerOp).padStart(6)} us/op`,
  );
  const best = (n: number) => Math.max(...results.filter((x) => x.ioThreads === n).map((x) => x.result.iops));
  const cpu = (n: number) =>
    Math.min(...results.filter((x) => x.ioThreads === n).map((x) => x.result.serverCpuUsPerOp ?? Infinity));
  const n = Math.max(...results.map((x) => x.ioThreads));
  return (
    `${rows.join('\n')}\n\n` +
    `best of 2 rounds: ${n} I/O threads ${(best(n) / best(1)).toFixed(2)}x the IOPS of 1 (target >= 1.3x with 2); ` +
    `1 I/O thread ${(best(1) / best(0)).toFixed(2)}x the main thread's; ` +
    `server CPU per op: main ${fmt(cpu(0))} us, 1 thread ${fmt(cpu(1))} us, ${n} threads ${fmt(cpu(n))} us\n`
  );
}

const fmt = (n: number | null, digits = 1) => (n === null ? '-' : n.toFixed(digits));

export function formatBench(results: readonly BenchResult[]): string {
  const rows = results.map(
    (r) =>
      `${r.name.padEnd(22)} QD${String(r.queueDepth).padEnd(3)} ${String(r.iops).padStart(7)} IOPS  p50 ${String(r.p50Us).padStart(5)} us  p99 ${String(r.p99Us).padStart(6)} us  server CPU ${fmt(r.serverCpuUsPerOp).padStart(6)} us/op  client CPU ${fmt(r.clientCpuUsPerOp).padStart(6)} us/op`,
  );
  const find = (name: string, qd: number) => results.find((r) => r.name === name && r.queueDepth === qd);
  const ratios: string[] = [];
  for (const qd of new Set(results.map((r) => r.queueDepth))) {
    const floorRead = find('floor read 4k', qd);
    const read = find('nvme-tcp randread 4k', qd);
    const floorWrite = find('floor write 4k', qd);
    const write = find('nvme-tcp randwrite 4k', qd);
    const local = find('local pread 4k', qd);
    const ratio = (a: number | null | undefined, b: number | null | undefined) =>
      a == null || b == null || b === 0 ? '-' : `${(a / b).toFixed(2)}x`;
    ratios.push(
      `QD${qd}: read server CPU ${ratio(read?.serverCpuUsPerOp, floorRead?.serverCpuUsPerOp)} the floor's (target <= 2x), ` +
        `client CPU ${ratio(read?.clientCpuUsPerOp, floorRead?.clientCpuUsPerOp)}, IOPS ${ratio(read?.iops, floorRead?.iops)}; ` +
        `IOPS ${ratio(read?.iops, local?.iops)} of local pread${qd > 1 ? ' (target >= 0.6x)' : ''}; ` +
        `write server CPU ${ratio(write?.serverCpuUsPerOp, floorWrite?.serverCpuUsPerOp)} the floor's`,
    );
  }
  return `${rows.join('\n')}\n\n${ratios.join('\n')}\n`;
}

export const BENCH_IO_USAGE = `nearbpf bench-io [--ops N] [--size-mib N] [--digests] [--metrics] [--io-threads [N]] [--json]

Random 4 KiB reads and writes through the NVMe/TCP client and a target process over loopback at QD1
and QD32, next to a minimal Node TCP server answering the same PDU sizes from memory (the floor) and
local positioned reads of the backing file; CPU per operation of server and client. --metrics runs the
target with its Prometheus endpoint on. --io-threads instead compares random 4 KiB reads at QD32 with the
ports on the main thread, on 1 and on N I/O threads (default 2; one port and one host connection per
thread), two interleaved rounds, and prints the N-vs-1 ratio.`;

/** The `bench-io` subcommand, shaped like the CLI's `Command` table entries. */
export const benchIoCommand = {
  name: 'bench-io',
  summary: 'benchmark NVMe/TCP random 4 KiB I/O over loopback against a minimal-server floor',
  usage: BENCH_IO_USAGE,
  async run(args: string[], io: { stdout: { write(s: string): unknown } }): Promise<number> {
    let values: {
      ops?: string;
      'size-mib'?: string;
      digests?: boolean;
      metrics?: boolean;
      json?: boolean;
      'io-threads'?: boolean;
    };
    // `--io-threads` takes an optional count: `--io-threads 4` or `--io-threads` (2).
    let maxThreads = 2;
    const at = args.indexOf('--io-threads');
    if (at >= 0 && at + 1 < args.length && /^\d+$/.test(args[at + 1])) {
      maxThreads = Number(args[at + 1]);
      if (maxThreads < 2 || maxThreads > 64) throw new UsageError(`--io-threads takes 2-64, got ${maxThreads}`);
      args = [...args.slice(0, at + 1), ...args.slice(at + 2)];
    }
    try {
      ({ values } = parseArgs({
        args,
        options: {
          ops: { type: 'string' },
          'size-mib': { type: 'string' },
          digests: { type: 'boolean' },
          metrics: { type: 'boolean' },
          json: { type: 'boolean' },
          'io-threads': { type: 'boolean' },
        },
        strict: true,
      }));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const num = (v: string | undefined, name: string, dflt: number) => {
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer`);
      return n;
    };
    if (values['io-threads']) {
      const scaling = await benchIoThreads({
        maxThreads,
        ops: num(values.ops, 'ops', 20_000),
        sizeBytes: num(values['size-mib'], 'size-mib', 32) << 20,
      });
      io.stdout.write(values.json ? `${JSON.stringify(scaling, null, 2)}\n` : formatThreadScaling(scaling));
      return 0;
    }
    const results = await benchIo({
      ops: num(values.ops, 'ops', 20_000),
      sizeBytes: num(values['size-mib'], 'size-mib', 32) << 20,
      digests: values.digests,
      metrics: values.metrics,
    });
    io.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : formatBench(results));
    return 0;
  },
};
