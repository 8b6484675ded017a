/**
 * `npm run bench:exec`: what running a storage function costs next to a plain read, over loopback
 * NVMe/TCP at queue depth 1 against a target process: a 4 KiB read, an empty program, and a 6-step
 * chain (5 dependent 512-byte reads on the target). Next to them, in the same run, the floor: a
 * minimal Node TCP server answering the same PDU sizes from memory (floor-server.ts). Prints p50/p99
 * in microseconds, server CPU per operation (from /proc, all threads of the server process), client
 * CPU per operation, and the ratios to the floor.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { spawnTarget } from '../showcase/bench.js';
import { SHOWCASE_NQN } from '../showcase/nvme.js';
import { benchCommandLine } from './args.js';
import { FloorClient, spawnFloorServer } from './floor-server.js';
import { processCpuNs, selfCpuUs } from './proc-cpu.js';

const CHAIN = `
    mov %r6, %r1
    ldxdw %r7, [%r6+56]
    jne %r7, 0, next
    ldxdw %r1, [%r6+40]
    mov %r2, 16
    call 100
    mov %r0, 0
    exit
  next:
    ldxdw %r2, [%r6+0]
    ldxdw %r3, [%r6+8]
    mov %r4, %r2
    add %r4, 16
    jgt %r4, %r3, done
    ldxdw %r1, [%r2+8]
    jeq %r1, 0, done
    mov %r2, 16
    call 100
    mov %r0, 0
    exit
  done:
    ldxdw %r0, [%r6+56]
    exit`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

interface Row {
  name: string;
  p50: number;
  p99: number;
  serverCpuUs: number | null;
  clientCpuUs: number;
}

async function measure(name: string, runs: number, serverPid: number, op: () => Promise<unknown>): Promise<Row> {
  for (let i = 0; i < Math.min(200, runs); i++) await op();
  const samples: number[] = [];
  const server0 = processCpuNs(serverPid);
  const client0 = selfCpuUs();
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await op();
    samples.push((performance.now() - t0) * 1000);
  }
  const clientCpuUs = (selfCpuUs() - client0) / runs;
  const server1 = processCpuNs(serverPid);
  samples.sort((a, b) => a - b);
  return {
    name,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    serverCpuUs: server0 === null || server1 === null ? null : (server1 - server0) / 1000 / runs,
    clientCpuUs,
  };
}

function format(rows: readonly Row[], floor: Row): string {
  const f = (v: number | null) => (v === null ? '-' : v.toFixed(1)).padStart(8);
  const x = (a: number | null, b: number | null) => (a === null || b === null ? '-' : `${(a / b).toFixed(2)}x`).padStart(8);
  const head = `${'operation (QD1, loopback)'.padEnd(34)} ${'p50 µs'.padStart(8)} ${'p99 µs'.padStart(8)} ${'srv CPU'.padStart(8)} ${'cli CPU'.padStart(8)} ${'p50/flr'.padStart(8)} ${'srv/flr'.padStart(8)}`;
  const lines = rows.map(
    (r) =>
      `${r.name.padEnd(34)} ${f(r.p50)} ${f(r.p99)} ${f(r.serverCpuUs)} ${f(r.clientCpuUs)} ${x(r.p50, floor.p50)} ${x(r.serverCpuUs, floor.serverCpuUs)}`,
  );
  return `${[head, ...lines].join('\n')}\n(CPU in µs per operation; ratios to the first row, the minimal server answering a 4 KiB read)`;
}

async function main(): Promise<void> {
  const runs = benchCommandLine('usage: npm run bench:exec [-- --quick]', { quick: { type: 'boolean' } }, (values) =>
    values.quick ? 500 : 3000,
  );
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-exec-'));
  const target = await spawnTarget(dir, [{ nsid: 1, sizeBytes: 16 << 20 }], { host: '127.0.0.1', port: 0 });
  const floor = await spawnFloorServer();
  try {
    const host = await NvmeTcpHost.connect({ host: target.host, port: target.port, subsystemNqn: SHOWCASE_NQN, ioQueues: 1 });
    const floorClient = await FloorClient.connect(floor.host, floor.port, 1);
    try {
      // A chain of 5 nodes, 512 bytes apart: {value, next}.
      const nodes = Buffer.alloc(8192);
      for (let i = 0; i < 5; i++) nodes.writeBigUInt64LE(i < 4 ? BigInt(4096 + (i + 1) * 512) : 0n, i * 512 + 8);
      await host.write(1, 8, nodes);
      const programs = new ProgramClient(host);
      const empty = await programs.load(encodeProgram(assemble('mov %r0, 0\nexit')), { name: 'empty' });
      const chain = await programs.load(encodeProgram(assemble(CHAIN)), { name: 'chain' });
      const check = await programs.execute(chain, { nsid: 1, params: [4096n, 0n], maxOutputBytes: 0 });
      if (check.stats.steps !== 6) throw new Error(`the chain ran ${check.stats.steps} steps, expected 6`);
      const floorRow = await measure('floor: minimal server, 4 KiB read', runs, floor.pid, () => floorClient.read(4096));
      const rows = [
        floorRow,
        await measure('floor: minimal server, 16 B answer', runs, floor.pid, () => floorClient.read(16)),
        await measure('read 4 KiB', runs, target.pid, () => host.read(1, 0, 8)),
        await measure('execute empty program', runs, target.pid, () => programs.execute(empty, { nsid: 1, maxOutputBytes: 0 })),
        await measure('execute 6-step chain (5 reads)', runs, target.pid, () =>
          programs.execute(chain, { nsid: 1, params: [4096n, 0n], maxOutputBytes: 0 }),
        ),
      ];
      console.log(format(rows, floorRow));
    } finally {
      floorClient.close();
      await host.close();
    }
  } finally {
    await floor.stop();
    await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
