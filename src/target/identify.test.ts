/**
 * Golden byte-level checks of the Identify structures and log pages the Linux initiator reads to merge
 * paths into one multipath device: CMIC (Identify Controller byte 76), NMIC (Identify Namespace byte 30),
 * the namespace identification descriptor list (CNS 03h) and the discovery log page (70h) with several ports.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ControllerIdentity,
  discoveryLog,
  identifyController,
  identifyNamespace,
  namespaceDescriptors,
} from './identify.js';
import { namespaceIds } from './namespace.js';

const hex = (b: Buffer) => b.toString('hex');
const CTRL: ControllerIdentity = {
  cntlid: 0x1234,
  subsystemNqn: 'nqn.2026-11.io.nearbpf:golden',
  serial: 'nearbpf0001',
  model: 'nearbpf',
  firmware: '0.1.0',
  discovery: false,
  mdts: 8,
  maxQueueDepth: 128,
  inCapsuleDataBytes: 16384,
  maxNsid: 2,
  multiPort: false,
};

describe('identify: multipath fields', () => {
  it('CMIC: MCTRS always on an NVM subsystem, MPORTS with several ports, ANARS never (no ANA reporting)', () => {
    assert.equal(identifyController(CTRL)[76], 0b0000_0010);
    assert.equal(identifyController({ ...CTRL, multiPort: true })[76], 0b0000_0011);
    assert.equal(identifyController({ ...CTRL, discovery: true, multiPort: true })[76], 0);
    const b = identifyController({ ...CTRL, multiPort: true });
    assert.equal(b.readUInt16LE(78), 0x1234, 'CNTLID');
    assert.equal(b.readUInt32LE(92), 0, 'OAES: no ANA change notices');
    assert.equal(b[343], 0, 'ANACAP');
    assert.equal(b.readUInt32LE(348), 0, 'NANAGRPID');
    assert.equal(b.subarray(4, 24).toString('ascii'), 'nearbpf0001         ', 'SN, space padded');
    assert.equal(b.subarray(768, 768 + CTRL.subsystemNqn.length + 1).toString('latin1'), `${CTRL.subsystemNqn}\0`);
  });

  it('NMIC and NGUID in Identify Namespace; ANAGRPID 0', () => {
    const ids = namespaceIds('nqn.2026-11.io.nearbpf:golden', 1);
    const b = identifyNamespace({ blockCount: 2048, lbads: 9, nguid: ids.nguid });
    assert.equal(b[30], 0x01, 'NMIC: shared');
    assert.equal(hex(b.subarray(104, 120)), hex(ids.nguid));
    assert.equal(b.readUInt32LE(92), 0, 'ANAGRPID');
    assert.equal(hex(b.subarray(120, 128)), '0000000000000000', 'EUI64: none (we have no IEEE OUI)');
  });

  it('stable namespace identifiers: a pure function of the subsystem NQN and NSID', () => {
    const a = namespaceIds('nqn.2026-11.io.nearbpf:golden', 1);
    // Golden values: changing them would make Linux see a different namespace after an upgrade.
    assert.equal(hex(a.nguid), '1e5d9d9dbc70a66008b9600c20769685');
    assert.equal(hex(a.uuid), 'ea3cd623310040cca666df7575c2acc3');
    assert.notEqual(hex(namespaceIds('nqn.2026-11.io.nearbpf:golden', 2).nguid), hex(a.nguid));
    assert.notEqual(hex(namespaceIds('nqn.2026-11.io.nearbpf:other', 1).uuid), hex(a.uuid));
    assert.equal(a.uuid[6] >> 4, 4, 'UUID version 4 layout');
    assert.equal(a.uuid[8] >> 6, 0b10, 'RFC 4122 variant');
  });

  it('CNS 03h: NGUID (NIDT 2), UUID (NIDT 3), CSI (NIDT 4), then zeros', () => {
    const nguid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const uuid = Buffer.from('0123456789ab4def8123456789abcdef', 'hex');
    const b = namespaceDescriptors({ nguid, uuid });
    assert.equal(b.length, 4096);
    assert.equal(
      hex(b.subarray(0, 48)),
      // NIDT NIDL rsvd rsvd | NID
      '02100000' +
        '00112233445566778899aabbccddeeff' +
        '03100000' +
        '0123456789ab4def8123456789abcdef' +
        '04010000' +
        '00' +
        '000000',
    );
    assert.ok(b.subarray(48).every((x) => x === 0));
  });
});

describe('discovery log page', () => {
  it('one 1024-byte entry per subsystem per port: TRTYPE, ADRFAM, SUBTYPE, PORTID, CNTLID, ASQSZ, TRSVCID, SUBNQN, TRADDR', () => {
    const b = discoveryLog(
      [
        { subsystemNqn: 'nqn.2026-11.io.nearbpf:a', address: '10.0.0.1', port: 4420, portId: 1 },
        { subsystemNqn: 'nqn.2026-11.io.nearbpf:a', address: '10.0.0.1', port: 4421, portId: 2 },
        { subsystemNqn: 'nqn.2026-11.io.nearbpf:a', address: 'fd00::1', port: 4422, portId: 3 },
      ],
      7,
    );
    assert.equal(b.length, 4 * 1024);
    assert.equal(hex(b.subarray(0, 18)), `${'0700000000000000'}${'0300000000000000'}0000`, 'GENCTR 7, NUMREC 3, RECFMT 0');
    const entry = (i: number) => b.subarray(1024 * (i + 1), 1024 * (i + 2));
    for (const [i, [portId, svc, adrfam, addr]] of [
      [1, '4420', 1, '10.0.0.1'],
      [2, '4421', 1, '10.0.0.1'],
      [3, '4422', 2, 'fd00::1'],
    ].entries()) {
      const e = entry(i);
      assert.equal(
        hex(e.subarray(0, 10)),
        `03${(adrfam as number).toString(16).padStart(2, '0')}0200${hex(Buffer.of(portId as number, 0))}ffff2000`,
      );
      assert.equal(e.subarray(32, 64).toString('ascii'), (svc as string).padEnd(32, ' '), 'TRSVCID, space padded');
      assert.equal(e.subarray(256, 281).toString('ascii'), 'nqn.2026-11.io.nearbpf:a\0');
      assert.equal(e.subarray(512, 768).toString('ascii'), (addr as string).padEnd(256, ' '), 'TRADDR, space padded');
    }
  });
});
