/**
 * Client tests against a scripted fake target built from src/protocol only (the loopback tests in
 * src/target cover the real target).
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import {
  AdminOpcode,
  type CapsuleCmdPdu,
  decodePdu,
  encodePduBytes,
  FabricsType,
  makeStatus,
  NvmeStatusError,
  type Pdu,
  PduFramer,
  PduType,
  Property,
  TransportError,
} from '../protocol/index.js';
import { NvmeTcpHost, parseIdentifyController, parseIdentifyNamespace } from './host.js';

type Handler = (cmd: CapsuleCmdPdu, reply: (pdu: Pdu) => void, socket: Socket) => void;

/** A fake target: ICResp (with digests if asked), then `handler` for every capsule. */
async function fakeTarget(handler: Handler): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    const framer = new PduFramer({ maxPduBytes: 1 << 20 });
    let digests = { headerDigest: false, dataDigest: false };
    const reply = (pdu: Pdu) => socket.write(encodePduBytes(pdu, digests));
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => {
      framer.push(c);
      for (let raw = framer.next(); raw; raw = framer.next()) {
        const pdu = decodePdu(raw);
        if (pdu.type === PduType.ICReq) {
          reply({ type: PduType.ICResp, pfv: 0, cpda: 0, dgst: pdu.dgst, maxH2CDataBytes: 8192 });
          digests = { headerDigest: (pdu.dgst & 1) !== 0, dataDigest: (pdu.dgst & 2) !== 0 };
          framer.setDigests(digests.headerDigest, digests.dataDigest);
        } else if (pdu.type === PduType.CapsuleCmd) {
          handler(pdu, reply, socket);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  if (!a || typeof a === 'string') throw new Error('no address');
  return { server, port: a.port };
}

const ok = (cid: number, dw0 = 0, dw1 = 0): Pdu => ({
  type: PduType.CapsuleResp,
  cqe: { dw0, dw1, sqhd: 0, sqid: 0, cid, status: 0 },
});

function identifyController(cntlid: number): Buffer {
  const b = Buffer.alloc(4096);
  b.write('SERIAL', 4, 'ascii');
  b[77] = 2;
  b.writeUInt16LE(cntlid, 78);
  b.writeUInt16LE(1, 320);
  b.writeUInt16LE(64, 514);
  b.writeUInt32LE(1, 516);
  b.writeUInt32LE(1, 536);
  b.write('nqn.fake:sub', 768, 'utf8');
  b.writeUInt32LE(4 + 1024 / 16, 1792);
  b.writeUInt32LE(1, 1796);
  return b;
}

/** Handles the connect sequence like a minimal controller; `io` handles everything else. */
function controller(io: Handler, cntlid = 7): Handler {
  let cc = 0;
  return (cmd, reply, socket) => {
    const { sqe } = cmd;
    if (sqe.opcode === AdminOpcode.Fabrics) {
      const fctype = sqe.nsid & 0xff;
      if (fctype === FabricsType.Connect) return reply(ok(sqe.cid, cntlid));
      if (fctype === FabricsType.PropertySet) {
        cc = sqe.cdw12;
        return reply(ok(sqe.cid));
      }
      if (sqe.cdw11 === Property.CAP) return reply(ok(sqe.cid, 63, 0x20));
      if (sqe.cdw11 === Property.CSTS) return reply(ok(sqe.cid, (cc & 1) | (cc & 0xc000 ? 0x8 : 0)));
      return reply(ok(sqe.cid));
    }
    if (sqe.opcode === AdminOpcode.Identify && sqe.cdw10 === 1) {
      reply({
        type: PduType.C2HData,
        cccid: sqe.cid,
        ttag: 0,
        datao: 0,
        last: true,
        success: false,
        data: identifyController(cntlid),
      });
      return reply(ok(sqe.cid));
    }
    if (sqe.opcode === AdminOpcode.SetFeatures) return reply(ok(sqe.cid, 0x00030003));
    io(cmd, reply, socket);
  };
}

describe('NvmeTcpHost against a scripted target', { timeout: 30_000 }, () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });
  const start = async (h: Handler) => {
    const t = await fakeTarget(h);
    servers.push(t.server);
    return t.port;
  };

  it('parses Identify structures', () => {
    const c = parseIdentifyController(identifyController(9));
    assert.equal(c.cntlid, 9);
    assert.equal(c.serial, 'SERIAL');
    assert.equal(c.maxDataTransferBytes, 16384);
    assert.equal(c.ioccszBytes, 64 + 1024);
    assert.equal(c.subnqn, 'nqn.fake:sub');
    const ns = Buffer.alloc(4096);
    ns.writeUInt32LE(1000, 0);
    ns.writeUInt32LE(12 << 16, 128);
    assert.deepEqual(parseIdentifyNamespace(1, ns), { nsid: 1, blockCount: 1000, blockSize: 4096, nguid: Buffer.alloc(16) });
  });

  it('keeps more commands than the queue depth moving, with 16-bit CIDs never reused while in flight', async () => {
    const inFlight = new Set<number>();
    let maxInFlight = 0;
    const port = await start(
      controller((cmd, reply) => {
        assert.ok(!inFlight.has(cmd.sqe.cid), 'CID reused while in flight');
        inFlight.add(cmd.sqe.cid);
        maxInFlight = Math.max(maxInFlight, inFlight.size);
        setImmediate(() => {
          inFlight.delete(cmd.sqe.cid);
          reply(ok(cmd.sqe.cid, cmd.sqe.cdw10));
        });
      }),
    );
    const host = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      queueDepth: 4,
      keepAliveTimeoutMs: 0,
    });
    const { makeSqe } = await import('../protocol/sqe.js');
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => host.ioCommand(makeSqe({ opcode: 0x80, cdw10: i }))));
    assert.deepEqual(
      results.map((r) => r.cqe.dw0),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.ok(maxInFlight <= 4);
    host.disconnect();
  });

  it('rejects with NvmeStatusError carrying SCT/SC/DNR', async () => {
    const port = await start(
      controller((cmd, reply) => {
        reply({
          type: PduType.CapsuleResp,
          cqe: { dw0: 0, dw1: 0, sqhd: 0, sqid: 1, cid: cmd.sqe.cid, status: makeStatus(2, 0x81, true) },
        });
      }),
    );
    const host = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      keepAliveTimeoutMs: 0,
    });
    const { makeSqe } = await import('../protocol/sqe.js');
    await assert.rejects(
      host.ioCommand(makeSqe({ opcode: 0x02, nsid: 1 }), { dataInBytes: 512 }),
      (e: unknown) => e instanceof NvmeStatusError && e.sct === 2 && e.sc === 0x81 && e.dnr && e.opcode === 2,
    );
    host.disconnect();
  });

  it('fails outstanding commands with TransportError when the target goes away or times out', async () => {
    const port = await start(
      controller((cmd, _reply, socket) => {
        if (cmd.sqe.cdw10 === 1) socket.destroy();
        // cdw10 = 2: never answered.
      }),
    );
    const { makeSqe } = await import('../protocol/sqe.js');
    const host = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      keepAliveTimeoutMs: 0,
      commandTimeoutMs: 200,
    });
    await assert.rejects(host.ioCommand(makeSqe({ opcode: 0x80, cdw10: 2 })), TransportError);
    await assert.rejects(host.ioCommand(makeSqe({ opcode: 0x80, cdw10: 1 })), TransportError);
    host.disconnect();
    const host2 = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      keepAliveTimeoutMs: 0,
    });
    await assert.rejects(host2.ioCommand(makeSqe({ opcode: 0x80, cdw10: 1 })), TransportError);
    host2.disconnect();
  });

  it('reports a C2H data digest error as a transient transport error', async () => {
    const port = await start(
      controller((cmd, _reply, socket) => {
        const bytes = encodePduBytes(
          {
            type: PduType.C2HData,
            cccid: cmd.sqe.cid,
            ttag: 0,
            datao: 0,
            last: true,
            success: false,
            data: Buffer.alloc(512, 1),
          },
          { headerDigest: true, dataDigest: true },
        );
        bytes[bytes.length - 1] ^= 1;
        socket.write(bytes);
        socket.write(encodePduBytes(ok(cmd.sqe.cid), { headerDigest: true, dataDigest: true }));
      }),
    );
    const host = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      keepAliveTimeoutMs: 0,
      headerDigest: true,
      dataDigest: true,
    });
    const { makeSqe } = await import('../protocol/sqe.js');
    await assert.rejects(
      host.ioCommand(makeSqe({ opcode: 0x02, nsid: 1 }), { dataInBytes: 512 }),
      (e: unknown) => e instanceof NvmeStatusError && e.sc === 0x22,
    );
    host.disconnect();
  });

  it('returns what a variable-length read received, however the target splits it', async () => {
    // cdw10 selects how the fake target answers a 4,096-byte offer: the pieces it sends (offset, length).
    const plans: { name: string; pieces: [number, number][]; want: number }[] = [
      { name: 'one small PDU', pieces: [[0, 52]], want: 52 },
      { name: 'one full PDU', pieces: [[0, 4096]], want: 4096 },
      {
        name: 'two PDUs in order',
        pieces: [
          [0, 1000],
          [1000, 24],
        ],
        want: 1024,
      },
      {
        name: 'two PDUs out of order',
        pieces: [
          [600, 100],
          [0, 600],
        ],
        want: 700,
      },
      { name: 'no data', pieces: [], want: 0 },
    ];
    const port = await start(
      controller((cmd, reply) => {
        const plan = plans[cmd.sqe.cdw10];
        plan.pieces.forEach(([datao, length], i) => {
          const data = Buffer.alloc(length);
          for (let k = 0; k < length; k++) data[k] = (datao + k) & 0xff;
          reply({
            type: PduType.C2HData,
            cccid: cmd.sqe.cid,
            ttag: 0,
            datao,
            last: i === plan.pieces.length - 1,
            success: false,
            data,
          });
        });
        reply(ok(cmd.sqe.cid));
      }),
    );
    const host = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      keepAliveTimeoutMs: 0,
    });
    const { makeSqe } = await import('../protocol/sqe.js');
    for (const [i, plan] of plans.entries()) {
      const r = await host.ioCommand(makeSqe({ opcode: 0x81, cdw10: i }), { dataInBytes: 4096, variableDataIn: true });
      assert.ok(r.data, plan.name);
      assert.equal(r.data.length, plan.want, plan.name);
      for (let k = 0; k < plan.want; k++) assert.equal(r.data[k], k & 0xff, `${plan.name}: byte ${k}`);
    }
    host.disconnect();
  });

  it('fails the connection when a variable-length read gets data beyond its offer', async () => {
    const port = await start(
      controller((cmd, reply) => {
        reply({
          type: PduType.C2HData,
          cccid: cmd.sqe.cid,
          ttag: 0,
          datao: 0,
          last: false,
          success: false,
          data: Buffer.alloc(100),
        });
        reply({
          type: PduType.C2HData,
          cccid: cmd.sqe.cid,
          ttag: 0,
          datao: 100,
          last: true,
          success: false,
          data: Buffer.alloc(100),
        });
        reply(ok(cmd.sqe.cid));
      }),
    );
    const host = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      keepAliveTimeoutMs: 0,
    });
    const { makeSqe } = await import('../protocol/sqe.js');
    await assert.rejects(
      host.ioCommand(makeSqe({ opcode: 0x81 }), { dataInBytes: 150, variableDataIn: true }),
      (e: unknown) => e instanceof TransportError && /beyond the command buffer/.test(e.message),
    );
    host.disconnect();
  });

  it('answers R2Ts with H2CData no larger than MAXH2CDATA', async () => {
    const received: { datao: number; len: number; last: boolean }[] = [];
    const port = await start(
      controller((cmd, reply, socket) => {
        if (cmd.data) return reply(ok(cmd.sqe.cid)); // in-capsule
        reply({ type: PduType.R2T, cccid: cmd.sqe.cid, ttag: 5, r2to: 0, r2tl: cmd.sqe.sglLength });
        const framer = new PduFramer({ maxPduBytes: 1 << 20 });
        const onData = (c: Buffer) => {
          framer.push(c);
          for (let raw = framer.next(); raw; raw = framer.next()) {
            const p = decodePdu(raw);
            if (p.type !== PduType.H2CData) continue;
            received.push({ datao: p.datao, len: p.data.length, last: p.last });
            if (p.last) {
              socket.off('data', onData);
              reply(ok(cmd.sqe.cid));
            }
          }
        };
        socket.removeAllListeners('data');
        socket.on('data', onData);
      }),
    );
    const host = await NvmeTcpHost.connect({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:client-test-host',
      host: '127.0.0.1',
      port,
      subsystemNqn: 'nqn.fake:sub',
      keepAliveTimeoutMs: 0,
    });
    const { makeSqe } = await import('../protocol/sqe.js');
    await host.ioCommand(makeSqe({ opcode: 0x01, nsid: 1 }), { dataOut: Buffer.alloc(20000) });
    assert.deepEqual(received, [
      { datao: 0, len: 8192, last: false },
      { datao: 8192, len: 8192, last: false },
      { datao: 16384, len: 3616, last: true },
    ]);
    host.disconnect();
  });
});
