/**
 * `bench-io`: random 4 KiB reads and writes through NvmeTcpHost -> NvmeTcpTarget over loopback at
 * QD1 and QD32 (IOPS, p50/p99 latency), next to the same reads done locally on the backing file, so
 * the protocol's cost is visible.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { NvmeTcpHost } from '../client/host.js';
import { UsageError } from '../errors.js';
import { startTarget } from './target.js';

export interface BenchIoOptions {
  /** Operations per case. */
  ops?: number;
  /** Namespace size; random offsets cover all of it. */
  sizeBytes?: number;
  queueDepths?: number[];
  digests?: boolean;
}

export interface BenchResult {
  name: string;
  queueDepth: number;
  ops: number;
  iops: number;
  p50Us: number;
  p99Us: number;
}

const IO_BYTES = 4096;

/** A tiny deterministic PRNG so runs are comparable. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
}

async function measure(name: string, queueDepth: number, ops: number, op: (i: number) => Promise<unknown>): Promise<BenchResult> {
  const lat = new Float64Array(ops);
  let next = 0;
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
  lat.sort();
  const pct = (p: number) => Math.round(lat[Math.min(ops - 1, Math.floor(ops * p))] * 1000);
  return { name, queueDepth, ops, iops: Math.round(ops / seconds), p50Us: pct(0.5), p99Us: pct(0.99) };
}

export async function benchIo(options: BenchIoOptions = {}): Promise<BenchResult[]> {
  const ops = options.ops ?? 20_000;
  const sizeBytes = options.sizeBytes ?? 256 << 20;
  const depths = options.queueDepths ?? [1, 32];
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-'));
  const nqn = 'nqn.2026-11.io.nearbpf:bench';
  const handle = await startTarget({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: dir,
      subsystems: [{ nqn, namespaces: [{ nsid: 1, path: 'bench.img', sizeBytes, blockSize: 4096 }] }],
    },
  });
  const results: BenchResult[] = [];
  try {
    const host = await NvmeTcpHost.connect({
      host: '127.0.0.1',
      port: handle.address.port,
      subsystemNqn: nqn,
      ioQueues: 1,
      queueDepth: Math.max(...depths),
      headerDigest: options.digests ?? false,
      dataDigest: options.digests ?? false,
    });
    const blocks = sizeBytes / IO_BYTES;
    // Fill the file so reads hit real data rather than holes.
    const fill = Buffer.alloc(1 << 20, 0x5a);
    for (let off = 0; off < sizeBytes; off += fill.length)
      await host.write(1, off / IO_BYTES, fill.subarray(0, Math.min(fill.length, sizeBytes - off)));
    const payload = Buffer.alloc(IO_BYTES, 0xa5);
    for (const qd of depths) {
      const r = rng(qd);
      results.push(await measure('nvme-tcp randread 4k', qd, ops, () => host.read(1, Math.floor(r() * blocks), 1)));
      results.push(await measure('nvme-tcp randwrite 4k', qd, ops, () => host.write(1, Math.floor(r() * blocks), payload)));
    }
    await host.close();
    const fh = await open(join(dir, 'bench.img'), 'r');
    try {
      for (const qd of depths) {
        const r = rng(qd + 100);
        results.push(
          await measure('local file randread 4k', qd, ops, () =>
            fh.read(Buffer.allocUnsafe(IO_BYTES), 0, IO_BYTES, Math.floor(r() * blocks) * IO_BYTES),
          ),
        );
      }
    } finally {
      await fh.close();
    }
  } finally {
    await handle.close();
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

export function formatBench(results: readonly BenchResult[]): string {
  const rows = results.map(
    (r) =>
      `${r.name.padEnd(24)} QD${String(r.queueDepth).padEnd(3)} ${String(r.iops).padStart(8)} IOPS  p50 ${String(r.p50Us).padStart(6)} us  p99 ${String(r.p99Us).padStart(6)} us`,
  );
  return `${rows.join('\n')}\n`;
}

export const BENCH_IO_USAGE = `nearbpf bench-io [--ops N] [--size-mib N] [--digests] [--json]

Random 4 KiB reads and writes through the NVMe/TCP client and target over loopback at QD1 and QD32,
next to local reads of the backing file.`;

/** The `bench-io` subcommand, shaped like the CLI's `Command` table entries. */
export const benchIoCommand = {
  name: 'bench-io',
  summary: 'benchmark NVMe/TCP random 4 KiB I/O over loopback',
  usage: BENCH_IO_USAGE,
  async run(args: string[], io: { stdout: { write(s: string): unknown } }): Promise<number> {
    let values: { ops?: string; 'size-mib'?: string; digests?: boolean; json?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          ops: { type: 'string' },
          'size-mib': { type: 'string' },
          digests: { type: 'boolean' },
          json: { type: 'boolean' },
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
    const results = await benchIo({
      ops: num(values.ops, 'ops', 20_000),
      sizeBytes: num(values['size-mib'], 'size-mib', 256) << 20,
      digests: values.digests,
    });
    io.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : formatBench(results));
    return 0;
  },
};
