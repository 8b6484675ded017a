/**
 * Coherence of the data path under concurrency: reads (cache hits and misses), writes, write zeroes,
 * deallocate and storage-function executions hammer the same blocks from several I/O queues at
 * once. In each round the mutations touch disjoint 4 KiB slots (the order of overlapping concurrent
 * writes is undefined), while reads and executions go anywhere: every 512-byte sector they return
 * must be wholly the sector's content before the round or after it. Between rounds, with nothing in
 * flight, every byte read back (by NVMe reads of several sizes and alignments, and by executions)
 * must equal the model exactly. It runs with the ports on the main thread, and on 2 I/O threads with
 * the host on both (one association per port, every operation on either): then writes, reads and
 * executions of one round run on different threads over one shared page cache.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { EMIT_PAGE_ASM } from '../testing/storage-programs.js';
import { SUBNQN, startTestTarget, type TestTarget } from './test-helpers.js';

const SECTOR = 512;
const SLOT_BYTES = 4096;
const SLOTS = 16;
/** The hot region: 64 KiB at 1 MiB into namespace 1 (512-byte blocks). */
const BASE = 1 << 20;
const REGION = SLOTS * SLOT_BYTES;

function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/** Every sector of `got` (covering region bytes [at, at + got.length)) is the old or the new version. */
function checkRacing(got: Buffer, at: number, old: Buffer, now: Buffer, what: string): void {
  for (let s = Math.floor(at / SECTOR) * SECTOR; s < at + got.length; s += SECTOR) {
    const from = Math.max(s, at);
    const to = Math.min(s + SECTOR, at + got.length);
    const piece = got.subarray(from - at, to - at);
    if (!piece.equals(old.subarray(from, to)) && !piece.equals(now.subarray(from, to))) {
      assert.fail(`${what}: bytes ${from}..${to} of the region are neither the old nor the new data`);
    }
  }
}

for (const ioThreads of [0, 2])
  describe(`data path coherence (${ioThreads === 0 ? 'on the main thread' : `${ioThreads} I/O threads`})`, () => {
    let target: TestTarget;
    let hosts: NvmeTcpHost[];
    let clients: ProgramClient[];
    let emitPage: number;

    before(async () => {
      target = await startTestTarget(
        ioThreads === 0
          ? {}
          : {
              ioThreads,
              listen: Array.from({ length: ioThreads }, () => ({ host: '127.0.0.1', port: 0 })),
            },
      );
      hosts = await Promise.all(
        target.addresses.map((a) =>
          NvmeTcpHost.connect({ host: '127.0.0.1', port: a.port, subsystemNqn: SUBNQN, ioQueues: 3, queueDepth: 32 }),
        ),
      );
      clients = hosts.map((h) => new ProgramClient(h));
      emitPage = await clients[0].load(encodeProgram(assemble(EMIT_PAGE_ASM)), { name: 'emit_page' });
    });
    after(async () => {
      for (const h of hosts ?? []) await h.close();
      await target?.cleanup();
    });

    if (ioThreads > 0) {
      it('a page one I/O thread read is a cache hit on another (one shared page cache)', async () => {
        const hits = () => [...target.target.gauges().pageCaches()].reduce((n, c) => n + c.hits, 0);
        const lba = (3 << 20) / SECTOR;
        const first = await hosts[0].read(1, lba, 8);
        const before = hits();
        const second = await hosts[1].read(1, lba, 8);
        assert.ok(second.equals(first));
        assert.ok(hits() > before, `hits ${before} -> ${hits()}`);
        // A write on the second thread is what the first reads next (cached or not).
        const data = Buffer.alloc(4096, 0xa5);
        await hosts[1].write(1, lba, data);
        assert.ok((await hosts[0].read(1, lba, 8)).equals(data));
      });
    }

    it('reads, writes, write zeroes, deallocate and executions on the same blocks agree byte for byte', async () => {
      const rand = prng(20261205);
      const model = Buffer.alloc(REGION);
      for (let i = 0; i < REGION; i++) model[i] = rand(256);
      await hosts[0].write(1, BASE / SECTOR, model);
      const qid = () => 1 + rand(3);
      // Each operation on a random path (thread) of the host.
      const path = () => rand(hosts.length);
      const readRegion = async (at: number, length: number, q: number) => {
        // Whole sectors covering [at, at + length), cut to the bytes asked for.
        const first = Math.floor(at / SECTOR);
        const end = Math.ceil((at + length) / SECTOR);
        const data = await hosts[path()].read(1, (BASE + first * SECTOR) / SECTOR, end - first, q);
        return data.subarray(at - first * SECTOR, at - first * SECTOR + length);
      };
      const execute = async (at: number, q: number) => {
        const r = await clients[path()].execute(emitPage, {
          nsid: 1,
          params: [BigInt(BASE + at), 0n],
          maxOutputBytes: 4096,
          qid: q,
        });
        assert.equal(r.returnValue, 0n);
        return r.output;
      };

      for (let round = 0; round < 40; round++) {
        const old = Buffer.from(model);
        const ops: Promise<void>[] = [];
        const racing: (() => Promise<void>)[] = [];
        for (let slot = 0; slot < SLOTS; slot++) {
          const kind = rand(5);
          const slotBase = slot * SLOT_BYTES;
          const sector = rand(8);
          const sectors = 1 + rand(8 - sector);
          const at = slotBase + sector * SECTOR;
          const length = sectors * SECTOR;
          if (kind === 0) {
            const data = Buffer.alloc(length);
            for (let i = 0; i < length; i++) data[i] = rand(256);
            data.copy(model, at);
            ops.push(hosts[path()].write(1, (BASE + at) / SECTOR, data, { qid: qid() }));
          } else if (kind === 1) {
            model.fill(0, at, at + length);
            ops.push(hosts[path()].writeZeroes(1, (BASE + at) / SECTOR, sectors, qid()));
          } else if (kind === 2) {
            model.fill(0, at, at + length);
            ops.push(hosts[path()].deallocate(1, [{ slba: (BASE + at) / SECTOR, blocks: sectors }], qid()));
          }
        }
        // Racing readers: NVMe reads of 1-16 sectors anywhere, executions at any byte offset (at most
        // 6 at once: the tenant's default of 8 concurrent executions per program).
        let executions = 0;
        for (let k = 0; k < 12; k++) {
          const q = qid();
          if (rand(2) === 0 || executions === 6) {
            const at = rand(REGION / SECTOR - 1) * SECTOR;
            const length = Math.min(REGION - at, SECTOR * (1 + rand(16)));
            racing.push(async () => checkRacing(await readRegion(at, length, q), at, old, model, `round ${round} read`));
          } else {
            const at = rand(REGION - 4096);
            executions++;
            racing.push(async () => checkRacing(await execute(at, q), at, old, model, `round ${round} execution at ${at}`));
          }
        }
        await Promise.all([...ops, ...racing.map((f) => f())]);

        // Quiet: every byte, by several paths.
        assert.ok((await readRegion(0, REGION, qid())).equals(model), `round ${round}: whole-region read`);
        for (let k = 0; k < 4; k++) {
          const at = rand(REGION - 4096);
          assert.ok((await execute(at, qid())).equals(model.subarray(at, at + 4096)), `round ${round}: execution at ${at}`);
          const rat = rand(REGION / SECTOR - 8) * SECTOR;
          assert.ok(
            (await readRegion(rat, 4096, qid())).equals(model.subarray(rat, rat + 4096)),
            `round ${round}: read at ${rat}`,
          );
        }
      }
    });
  });
