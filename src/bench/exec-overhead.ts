/**
 * `npm run bench:exec`: what running a storage function costs next to a plain read, over loopback
 * NVMe/TCP at queue depth 1: a 4 KiB read, an empty program, and a 6-step chain (5 dependent 512-byte
 * reads on the target). Prints p50/p99 in microseconds.
 */
import { ProgramClient } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { startLoopbackSession } from '../showcase/nvme.js';

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

async function measure(name: string, runs: number, op: () => Promise<unknown>): Promise<string> {
  for (let i = 0; i < Math.min(200, runs); i++) await op();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await op();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return `${name.padEnd(34)} ${percentile(samples, 50).toFixed(1).padStart(8)} ${percentile(samples, 99).toFixed(1).padStart(8)}`;
}

async function main(): Promise<void> {
  const runs = process.argv.includes('--quick') ? 500 : 3000;
  const session = await startLoopbackSession({ namespaces: [{ nsid: 1, sizeBytes: 16 << 20 }] });
  try {
    const { host } = session;
    // A chain of 5 nodes, 512 bytes apart: {value, next}.
    const nodes = Buffer.alloc(8192);
    for (let i = 0; i < 5; i++) nodes.writeBigUInt64LE(i < 4 ? BigInt(4096 + (i + 1) * 512) : 0n, i * 512 + 8);
    await host.write(1, 8, nodes);
    const programs = new ProgramClient(host);
    const empty = await programs.load(encodeProgram(assemble('mov %r0, 0\nexit')), { name: 'empty' });
    const chain = await programs.load(encodeProgram(assemble(CHAIN)), { name: 'chain' });
    const check = await programs.execute(chain, { nsid: 1, params: [4096n, 0n], maxOutputBytes: 0 });
    if (check.stats.steps !== 6) throw new Error(`the chain ran ${check.stats.steps} steps, expected 6`);
    const rows = [
      `${'operation (QD1, loopback)'.padEnd(34)} ${'p50 µs'.padStart(8)} ${'p99 µs'.padStart(8)}`,
      await measure('read 4 KiB', runs, () => host.read(1, 0, 8)),
      await measure('execute empty program', runs, () => programs.execute(empty, { nsid: 1, maxOutputBytes: 0 })),
      await measure('execute 6-step chain (5 reads)', runs, () =>
        programs.execute(chain, { nsid: 1, params: [4096n, 0n], maxOutputBytes: 0 }),
      ),
    ];
    console.log(rows.join('\n'));
  } finally {
    await session.close();
  }
}

await main();
