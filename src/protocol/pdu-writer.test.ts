import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool } from './buffer-pool.js';
import { PduFlags, PduType } from './constants.js';
import { PduFramer } from './framer.js';
import { type CapsuleCmdPdu, type CapsuleRespPdu, type DataPdu, type DigestOptions, decodePdu, type Pdu } from './pdu.js';
import { COPY_DATA_MAX_BYTES, type PduSink, PduWriter } from './pdu-writer.js';
import { makeSqe } from './sqe.js';

/** A sink that records writes and completes them only when told (a clogged socket). */
class SlowSink implements PduSink {
  destroyed = false;
  writable = true;
  /** Bytes of each write as they were at the moment of the write (what a socket would have copied). */
  readonly writes: Buffer[][] = [];
  /** The buffers themselves: must not change until their write completed. */
  private readonly live: { bufs: Buffer[]; snapshot: Buffer[]; done?: () => void }[] = [];
  private corked = 0;
  private batch: Buffer[] = [];

  write(chunk: Buffer, done?: () => void): boolean {
    this.batch.push(chunk);
    if (this.corked === 0) this.end(done);
    else if (done) this.pendingDone = done;
    return true;
  }
  private pendingDone: (() => void) | undefined;
  cork(): void {
    this.corked++;
  }
  uncork(): void {
    if (--this.corked === 0) this.end(this.pendingDone);
  }
  private end(done: (() => void) | undefined): void {
    const bufs = this.batch;
    this.batch = [];
    this.pendingDone = undefined;
    const snapshot = bufs.map((b) => Buffer.from(b));
    this.writes.push(snapshot);
    this.live.push({ bufs, snapshot, done });
  }
  /** Complete the oldest `n` writes, checking their buffers were left alone meanwhile. */
  complete(n = this.live.length): void {
    for (let i = 0; i < n; i++) {
      const w = this.live.shift();
      if (!w) return;
      for (let k = 0; k < w.bufs.length; k++)
        assert.ok(w.bufs[k].equals(w.snapshot[k]), 'a buffer changed before its write completed');
      w.done?.();
    }
  }
  get pending(): number {
    return this.live.length;
  }
  /** Everything written so far, decoded. */
  decode(digests: DigestOptions): Pdu[] {
    const framer = new PduFramer({ maxPduBytes: 4 << 20 });
    framer.setDigests(digests.headerDigest, digests.dataDigest);
    for (const w of this.writes) for (const b of w) framer.push(b);
    const out: Pdu[] = [];
    for (let raw = framer.next(); raw; raw = framer.next()) {
      assert.ok(raw.dataDigestOk, 'data digest');
      out.push(decodePdu(raw));
    }
    assert.equal(framer.pendingBytes, 0);
    return out;
  }
}

const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('PduWriter', () => {
  for (const digests of [
    { headerDigest: false, dataDigest: false },
    { headerDigest: true, dataDigest: true, pdoAlignBytes: 32 },
  ] as DigestOptions[]) {
    it(`encodes a turn's PDUs into one write, small and large data, digests ${digests.headerDigest}`, () => {
      const sink = new SlowSink();
      const w = new PduWriter(sink);
      w.digests = digests;
      const small = pattern(4096, 1);
      const large = pattern(COPY_DATA_MAX_BYTES + 1000, 2);
      const released: Buffer[] = [];
      w.dataPdu(PduType.C2HData, 7, 0, 0, small, PduFlags.LAST_PDU);
      w.capsuleResp(7, 0, 1, 2, 3, 1);
      w.dataPdu(PduType.C2HData, 8, 0, 0, large, PduFlags.LAST_PDU, (b) => released.push(b));
      w.capsuleResp(8, 0x4002, 0, 0, 4, 1);
      w.r2t(9, 5, 0, 8192);
      const off = w.beginData(PduType.C2HData, 10, 0, 4096, 100, 0);
      pattern(100, 3).copy(w.buffer, off);
      w.endData(100);
      const cancelled = w.beginData(PduType.C2HData, 11, 0, 0, 50, 0);
      assert.ok(cancelled > 0);
      w.cancelData();
      w.capsuleCmd(makeSqe({ opcode: 1, cid: 12, nsid: 1 }), pattern(512, 4));
      w.flush();
      assert.equal(sink.writes.length, 1, 'one write (a writev of parts)');
      assert.equal(released.length, 0, 'the large buffer is not released before the write completes');
      sink.complete();
      assert.equal(released.length, 1);
      const pdus = sink.decode(digests);
      assert.deepEqual(
        pdus.map((p) => p.type),
        [
          PduType.C2HData,
          PduType.CapsuleResp,
          PduType.C2HData,
          PduType.CapsuleResp,
          PduType.R2T,
          PduType.C2HData,
          PduType.CapsuleCmd,
        ],
      );
      const d0 = pdus[0] as DataPdu;
      assert.ok(d0.data.equals(small) && d0.last && d0.cccid === 7);
      assert.deepEqual((pdus[1] as CapsuleRespPdu).cqe, { dw0: 1, dw1: 2, sqhd: 3, sqid: 1, cid: 7, status: 0 });
      assert.ok((pdus[2] as DataPdu).data.equals(large));
      assert.equal((pdus[3] as CapsuleRespPdu).cqe.status, 0x4002);
      assert.deepEqual(pdus[4], { type: PduType.R2T, cccid: 9, ttag: 5, r2to: 0, r2tl: 8192 });
      const d5 = pdus[5] as DataPdu;
      assert.ok(d5.data.equals(pattern(100, 3)) && d5.datao === 4096 && !d5.last);
      const c6 = pdus[6] as CapsuleCmdPdu;
      assert.equal(c6.sqe.cid, 12);
      assert.ok(c6.data?.equals(pattern(512, 4)));
    });
  }

  it('never reuses arena bytes a clogged socket has not written; reuses the arena once it has', () => {
    const sink = new SlowSink();
    const w = new PduWriter(sink);
    const expected: number[] = [];
    // Many turns while nothing completes: the writer must move to other arenas, not overwrite.
    for (let turn = 0; turn < 200; turn++) {
      for (let k = 0; k < 20; k++) {
        const cid = (turn * 20 + k) & 0xffff;
        w.dataPdu(PduType.C2HData, cid, 0, 0, pattern(4096, cid), PduFlags.LAST_PDU);
        w.capsuleResp(cid, 0, 0, 0, 0, 1);
        expected.push(cid);
      }
      w.flush();
      if (turn % 50 === 49) sink.complete(10); // some progress, in order
    }
    sink.complete();
    const pdus = sink.decode({ headerDigest: false, dataDigest: false });
    assert.equal(pdus.length, expected.length * 2);
    for (let i = 0; i < expected.length; i++) {
      const d = pdus[2 * i] as DataPdu;
      assert.equal(d.cccid, expected[i]);
      assert.ok(d.data.equals(pattern(4096, expected[i])), `data of command ${expected[i]}`);
    }
    // Unclogged: turns keep writing from the start of one arena.
    const before = sink.writes.length;
    for (let turn = 0; turn < 5; turn++) {
      w.capsuleResp(turn, 0, 0, 0, 0, 1);
      w.flush();
      sink.complete();
    }
    assert.equal(sink.writes.length, before + 5);
  });

  it('flushes at the end of the turn when asked to schedule, and drops output for a closed socket', async () => {
    const sink = new SlowSink();
    const w = new PduWriter(sink);
    w.capsuleResp(1, 0, 0, 0, 0, 0);
    w.capsuleResp(2, 0, 0, 0, 0, 0);
    assert.equal(sink.writes.length, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(sink.writes.length, 1);
    sink.destroyed = true;
    const released: Buffer[] = [];
    w.dataPdu(PduType.C2HData, 3, 0, 0, pattern(COPY_DATA_MAX_BYTES * 2, 5), 0, (b) => released.push(b));
    w.flush();
    assert.equal(sink.writes.length, 1);
    assert.equal(released.length, 1, 'buffers of a dropped turn go back');
  });
});

describe('BufferPool', () => {
  it('recycles buffers by size class, ignores foreign and doubly given buffers', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(5000);
    assert.equal(a.length, 5000);
    pool.give(a);
    pool.give(a); // a second give must not put it in the pool twice
    const b = pool.take(8192);
    const c = pool.take(8000);
    assert.equal(b.buffer, a.buffer, 'the 8 KiB class buffer is reused');
    assert.notEqual(c.buffer, a.buffer, 'and handed out once');
    pool.give(Buffer.allocUnsafe(8192)); // not ours (may be a slice of Node's shared pool)
    pool.give(Buffer.alloc(8192));
    assert.equal(pool.idleBytes, 0);
    const huge = pool.take((1 << 20) + 1);
    pool.give(huge);
    assert.equal(pool.idleBytes, 0, 'beyond the largest class: not pooled');
  });
});
