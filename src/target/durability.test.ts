/**
 * Durability: the target runs in a child process (`nearbpf serve` code path) and is SIGKILLed while a
 * client streams writes, flushes and FUA writes. After a restart, every write acknowledged before the
 * last acknowledged Flush was submitted, and every acknowledged FUA write, must be intact.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';

const SUBNQN = 'nqn.2026-11.io.nearbpf:durability';
const BLOCK = 512;
const REGION_BLOCKS = 256;
const KILL_AFTER_ACKS = 300;
const MAX_OPS = 5000;
const CONCURRENCY = 12;

const TEST_HOST_NQN = 'nqn.2014-08.org.nvmexpress:uuid:durability-test-host';
const serveModule = new URL('./serve.js', import.meta.url).href;

function spawnTarget(configFile: string): Promise<{ child: ChildProcess; port: number }> {
  const code = `const m = await import(${JSON.stringify(serveModule)}); process.exitCode = await m.runServe(process.argv.slice(1), process);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, '--', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [^\s]+:(\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.stderr!.resume();
    child.once('exit', (codeOrNull) => reject(new Error(`target exited early (${codeOrNull}): ${out}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });

/** Block content for write `seq` at `lba`: header + a fill derived from both, so torn or stale data shows. */
function blockFor(seq: number, lba: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.writeUInt32LE(seq + 1, 0);
  b.writeUInt32LE(lba, 4);
  const fill = createHash('sha256').update(`${seq}:${lba}`).digest();
  for (let i = 8; i < BLOCK; i++) b[i] = fill[i % 32];
  return b;
}

interface WriteOp {
  seq: number;
  lba: number;
  fua: boolean;
  ackEvent: number | null;
}
interface FlushOp {
  submitEvent: number;
  ackEvent: number | null;
}

describe('durability across SIGKILL', { timeout: 60_000 }, () => {
  let dir = '';
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps every flushed or FUA write acknowledged before the crash', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearbpf-durability-'));
    const configFile = join(dir, 'target.json');
    await writeFile(
      configFile,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: '.',
        subsystems: [
          { nqn: SUBNQN, namespaces: [{ nsid: 1, path: 'durable.img', sizeBytes: REGION_BLOCKS * BLOCK * 4, blockSize: BLOCK }] },
        ],
      }),
    );
    const first = await spawnTarget(configFile);
    children.push(first.child);
    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: first.port,
      subsystemNqn: SUBNQN,
      ioQueues: 2,
      queueDepth: 16,
    });

    let event = 0;
    let acks = 0;
    let killed = false;
    const writes: WriteOp[] = [];
    const flushes: FlushOp[] = [];
    const busyLbas = new Set<number>();
    let seq = 0;
    const worker = async (w: number) => {
      for (let i = 0; i < MAX_OPS && !killed; i++) {
        const n = seq++;
        try {
          if (n % 17 === 16) {
            const f: FlushOp = { submitEvent: event++, ackEvent: null };
            flushes.push(f);
            await host.flush(1);
            f.ackEvent = event++;
          } else {
            let lba = (n * 7919 + w * 31) % REGION_BLOCKS;
            while (busyLbas.has(lba)) lba = (lba + 1) % REGION_BLOCKS; // never two writes in flight to one LBA
            busyLbas.add(lba);
            const op: WriteOp = { seq: n, lba, fua: n % 5 === 0, ackEvent: null };
            writes.push(op);
            try {
              await host.write(1, lba, blockFor(n, lba), { fua: op.fua });
              op.ackEvent = event++;
            } finally {
              busyLbas.delete(lba);
            }
          }
          if (++acks === KILL_AFTER_ACKS) {
            first.child.kill('SIGKILL');
            killed = true;
          }
        } catch {
          killed = true; // the target is gone
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    host.disconnect();
    await exited(first.child);
    assert.ok(acks >= KILL_AFTER_ACKS);

    // Which writes must have survived.
    const lastFlushSubmit = Math.max(-1, ...flushes.filter((f) => f.ackEvent !== null).map((f) => f.submitEvent));
    const required = new Map<number, number>();
    for (const w of writes) {
      if (w.ackEvent === null) continue;
      if (w.fua || w.ackEvent < lastFlushSubmit) required.set(w.lba, Math.max(required.get(w.lba) ?? -1, w.seq));
    }
    assert.ok(required.size > 0, 'the stream acknowledged durable writes before the kill');

    const second = await spawnTarget(configFile);
    children.push(second.child);
    const host2 = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: second.port,
      subsystemNqn: SUBNQN,
    });
    const region = await host2.read(1, 0, REGION_BLOCKS);
    await host2.close();
    for (let lba = 0; lba < REGION_BLOCKS; lba++) {
      const b = region.subarray(lba * BLOCK, (lba + 1) * BLOCK);
      const stored = b.readUInt32LE(0) - 1;
      const need = required.get(lba);
      if (stored < 0) {
        assert.equal(need, undefined, `LBA ${lba}: durable write ${need} lost`);
        assert.ok(
          b.every((x) => x === 0),
          `LBA ${lba}: garbage`,
        );
        continue;
      }
      assert.deepEqual(b, blockFor(stored, lba), `LBA ${lba}: torn or foreign data`);
      assert.ok(
        writes.some((w) => w.seq === stored && w.lba === lba),
        `LBA ${lba}: data of a write never sent`,
      );
      if (need !== undefined) assert.ok(stored >= need, `LBA ${lba}: has write ${stored}, older than durable write ${need}`);
    }
    // Clean shutdown on SIGTERM.
    second.child.kill('SIGTERM');
    assert.equal(await exited(second.child), 0);
    assert.ok((await readFile(join(dir, 'durable.img'))).length >= REGION_BLOCKS * BLOCK);
  });
});
