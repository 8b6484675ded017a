import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AdminOpcode,
  crc32c,
  decodePdu,
  encodePdu,
  encodePduBytes,
  FatalErrorStatus,
  GenericStatus,
  makeSqe,
  makeStatus,
  type Pdu,
  PduError,
  PduFramer,
  PduType,
  type RawPdu,
  SGL_IN_CAPSULE,
  SGL_TRANSPORT,
  SQE_FLAGS_SGL,
  statusDnr,
  statusSc,
  statusSct,
} from './index.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const zeros = (n: number) => '00'.repeat(n);

function frameOne(bytes: Buffer, digests = { header: false, data: false }, maxPduBytes = 1 << 20): RawPdu {
  const f = new PduFramer({ maxPduBytes });
  f.setDigests(digests.header, digests.data);
  f.push(bytes);
  const raw = f.next();
  assert.ok(raw);
  assert.equal(f.next(), null);
  assert.equal(f.pendingBytes, 0);
  return raw;
}

const identifySqe = makeSqe({
  opcode: AdminOpcode.Identify,
  flags: SQE_FLAGS_SGL,
  cid: 0x1234,
  sglLength: 4096,
  sglType: SGL_TRANSPORT,
  cdw10: 1,
});

/** Golden fixtures: hand-written bytes and the PDU they encode. */
const golden: { name: string; bytes: string; pdu: Pdu; digests?: { header: boolean; data: boolean } }[] = [
  {
    name: 'ICReq',
    bytes: `00 00 80 00 80000000  0000 00 03 00000000 ${zeros(112)}`,
    pdu: { type: PduType.ICReq, pfv: 0, hpda: 0, dgst: 3, maxr2t: 0 },
  },
  {
    name: 'ICResp',
    bytes: `01 00 80 00 80000000  0000 00 01 00000200 ${zeros(112)}`,
    pdu: { type: PduType.ICResp, pfv: 0, cpda: 0, dgst: 1, maxH2CDataBytes: 131072 },
  },
  {
    name: 'CapsuleCmd (Identify, no data)',
    bytes: `04 00 48 00 48000000  06 40 3412 00000000 ${zeros(16)} ${zeros(8)} 00100000 000000 5a 01000000 ${zeros(20)}`,
    pdu: { type: PduType.CapsuleCmd, sqe: identifySqe, data: null },
  },
  {
    name: 'CapsuleCmd (Write, in-capsule data)',
    bytes: `04 00 48 48 50000000  01 40 0100 01000000 ${zeros(16)} ${zeros(8)} 08000000 000000 01 ${zeros(24)} deadbeefcafef00d`,
    pdu: {
      type: PduType.CapsuleCmd,
      sqe: makeSqe({ opcode: 1, flags: SQE_FLAGS_SGL, cid: 1, nsid: 1, sglLength: 8, sglType: SGL_IN_CAPSULE }),
      data: hex('deadbeefcafef00d'),
    },
  },
  {
    name: 'CapsuleResp (LBA out of range, DNR)',
    bytes: '05 00 18 00 18000000  01000000 00000000 0500 0000 3412 0081',
    pdu: {
      type: PduType.CapsuleResp,
      cqe: { dw0: 1, dw1: 0, sqhd: 5, sqid: 0, cid: 0x1234, status: makeStatus(0, GenericStatus.LbaOutOfRange, true) },
    },
  },
  {
    name: 'CapsuleResp with header digest',
    bytes: '05 01 18 00 1c000000  01000000 00000000 0500 0000 3412 0001  eed8eb9b',
    pdu: {
      type: PduType.CapsuleResp,
      cqe: { dw0: 1, dw1: 0, sqhd: 5, sqid: 0, cid: 0x1234, status: makeStatus(0, GenericStatus.LbaOutOfRange) },
    },
    digests: { header: true, data: false },
  },
  {
    name: 'H2CData (last)',
    bytes: '06 04 18 18 1c000000  3412 0100 00100000 04000000 00000000  01020304',
    pdu: { type: PduType.H2CData, cccid: 0x1234, ttag: 1, datao: 4096, last: true, success: false, data: hex('01020304') },
  },
  {
    name: 'C2HData with header and data digests',
    bytes: '07 07 18 1c 24000000  3412 0000 00000000 04000000 00000000  34d0ae0a  01020304  f48c3029',
    pdu: { type: PduType.C2HData, cccid: 0x1234, ttag: 0, datao: 0, last: true, success: false, data: hex('01020304') },
    digests: { header: true, data: true },
  },
  {
    name: 'R2T',
    bytes: '09 00 18 00 18000000  3412 0100 00000000 00000100 00000000',
    pdu: { type: PduType.R2T, cccid: 0x1234, ttag: 1, r2to: 0, r2tl: 65536 },
  },
  {
    name: 'C2HTermReq (invalid hlen)',
    bytes: `03 00 18 00 20000000  0100 02000000 ${zeros(10)}  04004900 48000000`,
    pdu: { type: PduType.C2HTermReq, fes: FatalErrorStatus.InvalidPduHeaderField, fei: 2, errorHeader: hex('0400490048000000') },
  },
  {
    name: 'H2CTermReq (no error header)',
    bytes: `02 00 18 00 18000000  0200 00000000 ${zeros(10)}`,
    pdu: { type: PduType.H2CTermReq, fes: FatalErrorStatus.PduSequenceError, fei: 0, errorHeader: Buffer.alloc(0) },
  },
];

describe('PDU codec golden fixtures', () => {
  for (const g of golden) {
    const digests = g.digests ?? { header: false, data: false };
    it(`encodes ${g.name}`, () => {
      const bytes = encodePduBytes(g.pdu, { headerDigest: digests.header, dataDigest: digests.data });
      assert.equal(bytes.toString('hex'), hex(g.bytes).toString('hex'));
    });
    it(`decodes ${g.name}`, () => {
      assert.deepEqual(decodePdu(frameOne(hex(g.bytes), digests)), g.pdu);
    });
  }

  it('SQE/CQE status helpers', () => {
    const s = makeStatus(1, 0x82, true);
    assert.equal(s, 0x8304);
    assert.deepEqual([statusSct(s), statusSc(s), statusDnr(s)], [1, 0x82, true]);
  });

  it('pads PDO to the requested alignment', () => {
    const pdu: Pdu = { type: PduType.C2HData, cccid: 1, ttag: 0, datao: 0, last: true, success: false, data: hex('aa') };
    const bytes = encodePduBytes(pdu, { headerDigest: false, dataDigest: false, pdoAlignBytes: 32 });
    assert.equal(bytes[3], 32);
    assert.equal(bytes.length, 33);
    assert.deepEqual(decodePdu(frameOne(bytes)), pdu);
  });
});

describe('CRC32C', () => {
  it('matches the check value and RFC 3720 vectors', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
  });

  it('slice-by-8 agrees with the bitwise definition, incrementally', () => {
    const bitwise = (b: Uint8Array) => {
      let c = 0xffffffff;
      for (const x of b) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return ~c >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(100), (bytes, cut) => {
        const at = Math.min(cut, bytes.length);
        assert.equal(crc32c(bytes), bitwise(bytes));
        assert.equal(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at))), bitwise(bytes));
      }),
    );
  });
});

describe('PduFramer', () => {
  const stream = Buffer.concat(golden.filter((g) => !g.digests).map((g) => hex(g.bytes)));
  const expected = golden.filter((g) => !g.digests).map((g) => g.pdu);

  const drain = (f: PduFramer) => {
    const out: Pdu[] = [];
    for (let raw = f.next(); raw; raw = f.next()) out.push(decodePdu(raw));
    return out;
  };

  it('delivers PDUs fed one byte at a time', () => {
    const f = new PduFramer({ maxPduBytes: 4096 });
    const out: Pdu[] = [];
    for (const b of stream) {
      f.push(Buffer.of(b));
      out.push(...drain(f));
    }
    assert.deepEqual(out, expected);
  });

  it('delivers PDUs from coalesced and arbitrarily split chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(stream.length), { maxLength: 12 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        const f = new PduFramer({ maxPduBytes: 4096 });
        const out: Pdu[] = [];
        for (let i = 1; i < points.length; i++) {
          f.push(stream.subarray(points[i - 1], points[i]));
          out.push(...drain(f));
        }
        assert.deepEqual(out, expected);
      }),
    );
  });

  it('waits on a truncated PDU without throwing', () => {
    const f = new PduFramer({ maxPduBytes: 4096 });
    const bytes = hex(golden[3].bytes);
    f.push(bytes.subarray(0, bytes.length - 1));
    assert.equal(f.next(), null);
    f.push(bytes.subarray(bytes.length - 1));
    assert.ok(f.next());
  });

  const hostile: { name: string; bytes: Buffer; field: string; fes: number; digests?: boolean }[] = [
    { name: 'unknown type', bytes: hex('0800180018000000'), field: 'type', fes: FatalErrorStatus.InvalidPduHeaderField },
    { name: 'bad hlen', bytes: hex('0400490048000000'), field: 'hlen', fes: FatalErrorStatus.InvalidPduHeaderField },
    { name: 'plen below hlen', bytes: hex('0400480010000000'), field: 'plen', fes: FatalErrorStatus.InvalidPduHeaderField },
    { name: 'oversized plen', bytes: hex('04004848ffffff7f'), field: 'plen', fes: FatalErrorStatus.DataTransferLimitExceeded },
    { name: 'pdo inside the header', bytes: hex('0400481050000000'), field: 'pdo', fes: FatalErrorStatus.InvalidPduHeaderField },
    { name: 'pdo past plen', bytes: hex('0400489050000000'), field: 'pdo', fes: FatalErrorStatus.InvalidPduHeaderField },
    { name: 'data on an R2T', bytes: hex('0900181820000000'), field: 'plen', fes: FatalErrorStatus.InvalidPduHeaderField },
    {
      name: 'ICReq with extra bytes',
      bytes: hex('0000800084000000'),
      field: 'plen',
      fes: FatalErrorStatus.InvalidPduHeaderField,
    },
    { name: 'missing header digest', bytes: hex('0500180018000000'), field: 'flags', fes: 1, digests: true },
    { name: 'unnegotiated header digest', bytes: hex('050118001c000000'), field: 'flags', fes: 1 },
    {
      name: 'bad header digest',
      bytes: hex('05 01 18 00 1c000000  01000000 00000000 0500 0000 3412 0001  eed8eb9c'),
      field: 'hdgst',
      fes: FatalErrorStatus.HeaderDigestError,
      digests: true,
    },
  ];
  for (const h of hostile) {
    it(`rejects ${h.name} with a PduError naming the field`, () => {
      const f = new PduFramer({ maxPduBytes: 8192 });
      if (h.digests) f.setDigests(true, false);
      f.push(h.bytes);
      assert.throws(
        () => f.next(),
        (e: unknown) => e instanceof PduError && e.field === h.field && e.fes === h.fes,
      );
      // The framer stays failed.
      assert.throws(() => f.next(), PduError);
    });
  }

  it('flags a bad data digest without failing the stream', () => {
    const bytes = hex(golden[7].bytes);
    bytes[bytes.length - 1] ^= 1;
    const raw = frameOne(bytes, { header: true, data: true });
    assert.equal(raw.dataDigestOk, false);
  });

  it('rejects H2CData whose datal disagrees with its length', () => {
    const bytes = hex('06 04 18 18 1c000000  3412 0100 00100000 05000000 00000000  01020304');
    assert.throws(
      () => decodePdu(frameOne(bytes)),
      (e: unknown) => e instanceof PduError && e.field === 'datal',
    );
  });

  it('never throws anything but PduError on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, digests) => {
        const f = new PduFramer({ maxPduBytes: 256 });
        f.setDigests(digests, digests);
        f.push(Buffer.from(bytes));
        try {
          for (let i = 0; i < 50 && f.next(); i++);
        } catch (e) {
          assert.ok(e instanceof PduError, String(e));
        }
      }),
    );
  });

  it('round-trips random data PDUs with digests through split chunks', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.nat(0xffff), fc.nat(700), (data, cid, cut) => {
        const pdu: Pdu = {
          type: PduType.H2CData,
          cccid: cid,
          ttag: 7,
          datao: 512,
          last: false,
          success: false,
          data: Buffer.from(data),
        };
        const bytes = encodePduBytes(pdu, { headerDigest: true, dataDigest: true });
        const f = new PduFramer({ maxPduBytes: 1024 });
        f.setDigests(true, true);
        const at = Math.min(cut, bytes.length);
        f.push(bytes.subarray(0, at));
        const early = at < bytes.length ? f.next() : null;
        assert.equal(early, null);
        f.push(bytes.subarray(at));
        const raw = f.next() ?? assert.fail('no PDU');
        assert.ok(raw.dataDigestOk);
        assert.deepEqual(decodePdu(raw), pdu);
      }),
    );
  });

  it('encodes without copying the data buffer', () => {
    const data = Buffer.alloc(1 << 16, 1);
    const parts = encodePdu({ type: PduType.C2HData, cccid: 1, ttag: 0, datao: 0, last: true, success: false, data });
    assert.equal(parts[1], data);
  });
});

describe('fabrics structures', () => {
  it('round-trips Connect data at the spec offsets', async () => {
    const { encodeConnectData, parseConnectData } = await import('./fabrics.js');
    const d = {
      hostId: Buffer.alloc(16, 0xab),
      cntlid: 0xffff,
      subnqn: 'nqn.2026-11.io.nearbpf:x',
      hostnqn: 'nqn.2014-08.org.nvmexpress:uuid:h',
    };
    const b = encodeConnectData(d);
    assert.equal(b.length, 1024);
    assert.equal(b.readUInt16LE(16), 0xffff);
    assert.equal(b.subarray(256, 256 + d.subnqn.length).toString(), d.subnqn);
    assert.equal(b.subarray(512, 512 + d.hostnqn.length).toString(), d.hostnqn);
    assert.deepEqual(parseConnectData(b), d);
    assert.equal(parseConnectData(b.subarray(0, 1000)), null);
  });

  it('parses a discovery log page', async () => {
    const { parseDiscoveryLog } = await import('./fabrics.js');
    const b = Buffer.alloc(2048);
    b.writeUInt32LE(3, 0); // GENCTR
    b.writeUInt32LE(1, 8); // NUMREC
    b[1024] = 3;
    b[1025] = 1;
    b[1026] = 2;
    b.writeUInt16LE(1, 1028);
    b.writeUInt16LE(0xffff, 1030);
    b.write('4420', 1024 + 32);
    b.write('nqn.a:b', 1024 + 256);
    b.write('127.0.0.1', 1024 + 512);
    assert.deepEqual(parseDiscoveryLog(b), {
      generation: 3,
      records: 1,
      entries: [
        { trtype: 3, adrfam: 1, subtype: 2, portId: 1, cntlid: 0xffff, trsvcid: '4420', subnqn: 'nqn.a:b', traddr: '127.0.0.1' },
      ],
    });
  });
});
