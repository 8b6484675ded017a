/**
 * Hostile and malformed input on raw sockets: the target answers with the right status or a TermReq and
 * a close, never crashes, and other connections keep working.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { NvmeTcpHost } from '../client/host.js';
import {
  AdminOpcode,
  CommandSpecificStatus,
  FatalErrorStatus,
  GenericStatus,
  IoOpcode,
  makeSqe,
  type Pdu,
  PduType,
  SGL_IN_CAPSULE,
  SGL_TRANSPORT,
  SQE_FLAGS_SGL,
  statusSc,
  statusSct,
  type TermReqPdu,
} from '../protocol/index.js';
import { RawHost, SUBNQN, startTestTarget, TEST_HOST_NQN, type TestTarget, waitFor } from './test-helpers.js';

const isTerm = (p: Pdu): p is TermReqPdu => p.type === PduType.C2HTermReq;

describe('hostile input', { timeout: 60_000 }, () => {
  let t: TestTarget;
  before(async () => {
    t = await startTestTarget({ limits: { handshakeTimeoutMs: 2000 } });
  });
  after(async () => t?.cleanup());

  /** A full, working association: the proof the server survived. */
  async function stillWorks(): Promise<void> {
    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
    });
    try {
      const data = randomBytes(512);
      await host.write(1, 3, data);
      assert.deepEqual(await host.read(1, 3, 1), data);
    } finally {
      await host.close();
    }
  }

  /** An admin queue connected and enabled on a raw socket. */
  async function rawAdmin(dgst = 0): Promise<RawHost> {
    const r = await RawHost.open(t.address.port);
    await r.icReq(dgst);
    r.command(r.connectSqe(1, 0, 31), r.connectData(SUBNQN));
    const cqe = await r.response(1);
    assert.equal(cqe?.status, 0);
    r.command(makeSqe({ opcode: AdminOpcode.Fabrics, cid: 2, nsid: 0, cdw11: 0x14, cdw12: 1 }));
    assert.equal((await r.response(2))?.status, 0);
    return r;
  }

  const expectTerm = async (r: RawHost, fes: number) => {
    const term = await r.next(isTerm);
    assert.ok(term, 'expected a C2HTermReq');
    assert.equal(term.fes, fes);
    await r.waitClosed();
  };

  it('random bytes: TermReq or close, server survives', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await RawHost.open(t.address.port);
      r.send(Buffer.concat([Buffer.of(i === 0 ? 0 : 0x42), randomBytes(300)]));
      await r.waitClosed();
    }
    await stillWorks();
  });

  it('a capsule before ICReq is a PDU sequence error', async () => {
    const r = await RawHost.open(t.address.port);
    r.command(r.connectSqe(1, 0, 31), r.connectData(SUBNQN));
    await expectTerm(r, FatalErrorStatus.PduSequenceError);
  });

  it('an oversized plen is refused before buffering it', async () => {
    const r = await RawHost.open(t.address.port);
    await r.icReq();
    const header = Buffer.from('0400484800000010', 'hex'); // plen 256 MiB
    r.send(header);
    await expectTerm(r, FatalErrorStatus.DataTransferLimitExceeded);
  });

  it('bad hlen and bad pdo name the field offset', async () => {
    const r = await RawHost.open(t.address.port);
    await r.icReq();
    r.send(Buffer.concat([Buffer.from('0400404840000000', 'hex'), Buffer.alloc(56)]));
    const term = await r.next(isTerm);
    assert.equal(term?.fei, 2); // hlen
    await r.waitClosed();
    const r2 = await RawHost.open(t.address.port);
    await r2.icReq();
    r2.send(Buffer.concat([Buffer.from('0400481050000000', 'hex'), Buffer.alloc(72)]));
    assert.equal((await r2.next(isTerm))?.fei, 3); // pdo
    await r2.waitClosed();
  });

  it('a truncated PDU followed by a close leaves nothing behind', async () => {
    const r = await RawHost.open(t.address.port);
    await r.icReq();
    r.send(Buffer.from('04004800480000000602', 'hex'));
    r.socket.end();
    await r.waitClosed();
    await waitFor(
      () => t.target.connectionStats().every((c) => c.state !== 'awaitingConnect'),
      'truncated connection cleaned up',
    );
  });

  it('a bad header digest is fatal; a bad data digest fails only the command', async () => {
    const r = await rawAdmin(3);
    const bad = Buffer.from(
      (await import('../protocol/pdu.js')).encodePduBytes(
        { type: PduType.CapsuleCmd, sqe: makeSqe({ opcode: AdminOpcode.KeepAlive, cid: 3 }), data: null },
        r.digests,
      ),
    );
    bad[bad.length - 1] ^= 0xff;
    r.send(bad);
    await expectTerm(r, FatalErrorStatus.HeaderDigestError);

    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
      ioQueues: 0,
      headerDigest: true,
      dataDigest: true,
    });
    const checker = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
    });
    try {
      // Same write via a raw I/O queue whose data digest we corrupt.
      const io = await RawHost.open(t.address.port);
      await io.icReq(3);
      io.command(io.connectSqe(1, 1, 15), io.connectData(SUBNQN, host.hostNqn, host.cntlid, host.hostId));
      assert.equal((await io.response(1))?.status, 0);
      const { encodePduBytes } = await import('../protocol/pdu.js');
      const pdu = encodePduBytes(
        {
          type: PduType.CapsuleCmd,
          sqe: makeSqe({
            opcode: IoOpcode.Write,
            flags: SQE_FLAGS_SGL,
            cid: 2,
            nsid: 1,
            sglLength: 512,
            sglType: SGL_IN_CAPSULE,
            cdw10: 50,
          }),
          data: Buffer.alloc(512, 0xab),
        },
        io.digests,
      );
      pdu[pdu.length - 1] ^= 1;
      io.send(pdu);
      const cqe = await io.response(2);
      assert.equal(statusSc(cqe!.status), GenericStatus.TransientTransportError);
      assert.ok((await checker.read(1, 50, 1)).every((b) => b !== 0xab));
      io.close();
    } finally {
      await checker.close();
      await host.close();
    }
  });

  it('H2CData for a command that does not exist is fatal', async () => {
    const r = await rawAdmin();
    r.send({ type: PduType.H2CData, cccid: 9, ttag: 77, datao: 0, last: true, success: false, data: Buffer.alloc(16) });
    const term = await r.next(isTerm);
    assert.equal(term?.fes, FatalErrorStatus.InvalidPduHeaderField);
    assert.equal(term?.fei, 10);
    await r.waitClosed();
  });

  it('H2CData outside the R2T range is fatal', async () => {
    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
      ioQueues: 0,
    });
    try {
      const io = await RawHost.open(t.address.port);
      await io.icReq();
      io.command(io.connectSqe(1, 1, 15), io.connectData(SUBNQN, host.hostNqn, host.cntlid, host.hostId));
      assert.equal((await io.response(1))?.status, 0);
      io.command(
        makeSqe({
          opcode: IoOpcode.Write,
          flags: SQE_FLAGS_SGL,
          cid: 2,
          nsid: 1,
          sglLength: 65536,
          sglType: SGL_TRANSPORT,
          cdw10: 0,
          cdw12: 127,
        }),
      );
      const r2t = await io.next((p) => p.type === PduType.R2T);
      assert.ok(r2t && r2t.type === PduType.R2T);
      io.send({
        type: PduType.H2CData,
        cccid: 2,
        ttag: r2t.ttag,
        datao: 4096,
        last: true,
        success: false,
        data: Buffer.alloc(512),
      });
      assert.equal((await io.next(isTerm))?.fes, FatalErrorStatus.DataTransferOutOfRange);
      await io.waitClosed();
      // The admin queue of that association is unaffected.
      await host.keepAlive();
    } finally {
      await host.close();
    }
  });

  it('Connect with bad parameters gets Connect Invalid Parameters with IATTR/IPO', async () => {
    const cases: {
      name: string;
      sqe: (r: RawHost) => ReturnType<RawHost['connectSqe']>;
      data: (r: RawHost) => Buffer;
      sct: number;
      sc: number;
      dw0?: number;
    }[] = [
      {
        name: 'SQSIZE 0',
        sqe: (r) => r.connectSqe(1, 0, 0),
        data: (r) => r.connectData(SUBNQN),
        sct: 1,
        sc: 0x82,
        dw0: 44 << 16,
      },
      {
        name: 'SQSIZE too large',
        sqe: (r) => r.connectSqe(1, 0, 4000),
        data: (r) => r.connectData(SUBNQN),
        sct: 1,
        sc: 0x82,
        dw0: 44 << 16,
      },
      {
        name: 'unknown SUBNQN',
        sqe: (r) => r.connectSqe(1, 0, 31),
        data: (r) => r.connectData('nqn.2026-11.x:none'),
        sct: 1,
        sc: 0x82,
        dw0: 1 | (256 << 16),
      },
      {
        name: 'static CNTLID on admin',
        sqe: (r) => r.connectSqe(1, 0, 31),
        data: (r) => r.connectData(SUBNQN, undefined, 5),
        sct: 1,
        sc: 0x82,
        dw0: 1 | (16 << 16),
      },
      {
        name: 'I/O queue of no controller',
        sqe: (r) => r.connectSqe(1, 1, 31),
        data: (r) => r.connectData(SUBNQN, undefined, 0x1234),
        sct: 1,
        sc: 0x82,
        dw0: 1 | (16 << 16),
      },
      {
        name: 'bad RECFMT',
        sqe: (r) => ({ ...r.connectSqe(1, 0, 31), cdw10: 5 }),
        data: (r) => r.connectData(SUBNQN),
        sct: 1,
        sc: 0x80,
      },
      {
        name: 'empty host NQN',
        sqe: (r) => r.connectSqe(1, 0, 31),
        data: (r) => r.connectData(SUBNQN, ''),
        sct: 1,
        sc: 0x82,
        dw0: 1 | (512 << 16),
      },
    ];
    for (const c of cases) {
      const r = await RawHost.open(t.address.port);
      await r.icReq();
      r.command(c.sqe(r), c.data(r));
      const cqe = await r.response(1);
      assert.ok(cqe, c.name);
      assert.deepEqual([statusSct(cqe.status), statusSc(cqe.status)], [c.sct, c.sc], c.name);
      if (c.dw0 !== undefined) assert.equal(cqe.dw0, c.dw0, c.name);
      r.close();
    }
    await stillWorks();
  });

  it('commands before Connect get Command Sequence Error; a second Connect too', async () => {
    const r = await RawHost.open(t.address.port);
    await r.icReq();
    r.command(makeSqe({ opcode: AdminOpcode.KeepAlive, cid: 5 }));
    assert.equal(statusSc((await r.response(5))!.status), GenericStatus.CommandSequenceError);
    r.command(r.connectSqe(1, 0, 31), r.connectData(SUBNQN));
    assert.equal((await r.response(1))?.status, 0);
    r.command(r.connectSqe(2, 0, 31), r.connectData(SUBNQN));
    assert.equal(statusSc((await r.response(2))!.status), GenericStatus.CommandSequenceError);
    r.close();
  });

  it('a duplicate CID in flight is fatal', async () => {
    const r = await rawAdmin();
    for (let i = 0; i < 4; i++) r.command(makeSqe({ opcode: AdminOpcode.AsyncEventRequest, cid: 40 + i }));
    r.command(makeSqe({ opcode: AdminOpcode.AsyncEventRequest, cid: 44 }));
    assert.equal(statusSc((await r.response(44))!.status), CommandSpecificStatus.AsyncEventLimitExceeded);
    r.command(makeSqe({ opcode: AdminOpcode.KeepAlive, cid: 40 }));
    assert.equal((await r.next(isTerm))?.fes, FatalErrorStatus.PduSequenceError);
    await r.waitClosed();
  });

  it('unknown opcodes and a bidirectional opcode get status, not a crash', async () => {
    const r = await rawAdmin();
    r.command(makeSqe({ opcode: 0xcc, cid: 7 }));
    assert.equal(statusSc((await r.response(7))!.status), GenericStatus.InvalidOpcode);
    r.command(makeSqe({ opcode: 0xc3, cid: 8, sglLength: 16, sglType: SGL_TRANSPORT }));
    assert.equal(statusSc((await r.response(8))!.status), GenericStatus.InvalidField);
    r.command(makeSqe({ opcode: AdminOpcode.Fabrics, cid: 9, nsid: 0x30 }));
    assert.equal(statusSc((await r.response(9))!.status), GenericStatus.InvalidOpcode);
    r.command(makeSqe({ opcode: AdminOpcode.Fabrics, cid: 10, nsid: 4, cdw11: 0x999 }));
    assert.equal(statusSc((await r.response(10))!.status), GenericStatus.InvalidField);
    r.close();
  });

  it('survives random mutations of a valid session', async () => {
    const { encodePduBytes } = await import('../protocol/pdu.js');
    const session = (r: RawHost) =>
      Buffer.concat([
        encodePduBytes({ type: PduType.ICReq, pfv: 0, hpda: 0, dgst: 0, maxr2t: 0 }),
        encodePduBytes({ type: PduType.CapsuleCmd, sqe: r.connectSqe(1, 0, 31), data: r.connectData(SUBNQN) }),
        encodePduBytes({
          type: PduType.CapsuleCmd,
          sqe: makeSqe({ opcode: AdminOpcode.Fabrics, cid: 2, nsid: 0, cdw11: 0x14, cdw12: 1 }),
          data: null,
        }),
        encodePduBytes({
          type: PduType.CapsuleCmd,
          sqe: makeSqe({
            opcode: AdminOpcode.Identify,
            flags: SQE_FLAGS_SGL,
            cid: 3,
            sglLength: 4096,
            sglType: SGL_TRANSPORT,
            cdw10: 1,
          }),
          data: null,
        }),
      ]);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(1300), fc.nat(255)), { minLength: 1, maxLength: 4 }), async (mutations) => {
        const r = await RawHost.open(t.address.port);
        const bytes = session(r);
        for (const [at, v] of mutations) bytes[at % bytes.length] = v;
        r.send(bytes);
        // Either the target answers what it can, or it closes: in both cases it must stay up.
        // Half-close: the target must answer what it can and then close (a mutated plen would otherwise
        // leave it waiting for bytes that never come).
        r.socket.end();
        await r.waitClosed();
        r.close();
      }),
      { numRuns: 40, seed: 20261125 },
    );
    await stillWorks();
  });
});

describe('keep-alive', { timeout: 60_000 }, () => {
  let t: TestTarget;
  after(async () => t?.cleanup());
  it('drops an association that sends no command within KATO', async () => {
    t = await startTestTarget();
    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
      keepAliveTimeoutMs: 1000,
      keepAliveIntervalMs: 1e9, // never: the host goes silent
    });
    assert.equal(t.target.associationCount, 1);
    await waitFor(() => host.admin.closed, 'admin queue closed by the target');
    await waitFor(() => t.target.associationCount === 0, 'association removed');
    await assert.rejects(host.keepAlive());
    host.disconnect();
  });
});

describe('backpressure', { timeout: 60_000 }, () => {
  let t: TestTarget;
  after(async () => t?.cleanup());
  it('pauses a connection whose host stops reading, and serves it all once it reads again', async () => {
    t = await startTestTarget({ limits: { maxInFlightBytesPerConnection: 1 << 20 } });
    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
      ioQueues: 0,
    });
    try {
      const io = await RawHost.open(t.address.port);
      await io.icReq();
      io.command(io.connectSqe(1, 1, 127), io.connectData(SUBNQN, host.hostNqn, host.cntlid, host.hostId));
      assert.equal((await io.response(1))?.status, 0);
      io.socket.pause(); // a stalled host
      const reads = 120;
      for (let i = 0; i < reads; i++) {
        io.command(
          makeSqe({
            opcode: IoOpcode.Read,
            flags: SQE_FLAGS_SGL,
            cid: 100 + i,
            nsid: 1,
            sglLength: 1 << 20,
            sglType: SGL_TRANSPORT,
            cdw12: 2047,
          }),
        );
      }
      const stats = () => t.target.connectionStats().find((c) => c.qid === 1);
      await waitFor(() => stats()?.paused === true, 'connection paused');
      // 120 MiB requested; the target holds about one MiB of it.
      assert.ok(stats()!.heldBytes <= 1 << 20, `held ${stats()!.heldBytes}`);
      io.socket.resume();
      for (let i = 0; i < reads; i++) assert.equal((await io.response(100 + i))?.status, 0);
      io.close();
    } finally {
      await host.close();
    }
  });
});
