import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { checkPrimeSync } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  AuthProtocolError,
  augmentChallenge,
  controllerResponse,
  DhchapKeyError,
  decodeAuthMessage,
  encodeAuthMessage,
  ffdhePrime,
  formatDhchapKey,
  generateDhchapKey,
  hostResponse,
  parseDhchapKey,
  startDhExchange,
  transformKey,
} from './dhchap.js';

const HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:test';
const SUBNQN = 'nqn.2026-11.io.nearbpf:test';
const SECRET32 = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('DH-HMAC-CHAP messages: golden bytes', () => {
  const cases: { name: string; bytes: string; message: Parameters<typeof encodeAuthMessage>[0] }[] = [
    {
      name: 'negotiate (Linux offers 3 hashes, 6 groups)',
      bytes:
        '00 00 0000 3412 00 01' + // common, negotiate, rsvd, t_id 0x1234, sc_c 0, napd 1
        '01 00 03 06' + // authid 1, rsvd, halen 3, dhlen 6
        `010203${'00'.repeat(27)}` +
        `000102030405${'00'.repeat(24)}`,
      message: { kind: 'negotiate', tid: 0x1234, scC: 0, hashIds: [1, 2, 3], dhGroupIds: [0, 1, 2, 3, 4, 5] },
    },
    {
      name: 'challenge, null group',
      bytes: `01 01 0000 0100 04 00 01 00 0000 78563412 ${'aa'.repeat(4)}`,
      message: {
        kind: 'challenge',
        tid: 1,
        hashId: 1,
        dhGroupId: 0,
        seqnum: 0x12345678,
        challenge: Buffer.alloc(4, 0xaa),
        dhValue: Buffer.alloc(0),
      },
    },
    {
      name: 'challenge with a DH value',
      bytes: `01 01 0000 0200 02 00 03 01 0300 01000000 bbbb cccccc`,
      message: {
        kind: 'challenge',
        tid: 2,
        hashId: 3,
        dhGroupId: 1,
        seqnum: 1,
        challenge: Buffer.alloc(2, 0xbb),
        dhValue: Buffer.alloc(3, 0xcc),
      },
    },
    {
      name: 'reply, bidirectional, with DH',
      bytes: `01 02 0000 0300 02 00 01 00 0100 09000000 1111 2222 33`,
      message: {
        kind: 'reply',
        tid: 3,
        response: Buffer.alloc(2, 0x11),
        challenge: Buffer.alloc(2, 0x22),
        seqnum: 9,
        dhValue: Buffer.alloc(1, 0x33),
      },
    },
    {
      name: 'reply, one-way (CVALID 0, C2 zeros)',
      bytes: `01 02 0000 0300 02 00 00 00 0000 00000000 1111 0000`,
      message: { kind: 'reply', tid: 3, response: Buffer.alloc(2, 0x11), challenge: null, seqnum: 0, dhValue: Buffer.alloc(0) },
    },
    {
      name: 'success1 with R2',
      bytes: `01 03 0000 0400 02 00 01 00000000000000 4444`,
      message: { kind: 'success1', tid: 4, hashLength: 2, response: Buffer.alloc(2, 0x44) },
    },
    {
      name: 'success1 without R2',
      bytes: `01 03 0000 0400 20 00 00 00000000000000`,
      message: { kind: 'success1', tid: 4, hashLength: 32, response: null },
    },
    { name: 'success2', bytes: `01 04 0000 0500 ${'00'.repeat(10)}`, message: { kind: 'success2', tid: 5 } },
    { name: 'failure1', bytes: '00 f1 0000 0600 01 01', message: { kind: 'failure1', tid: 6, reason: 1, explanation: 1 } },
    { name: 'failure2', bytes: '00 f0 0000 0700 01 04', message: { kind: 'failure2', tid: 7, reason: 1, explanation: 4 } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(encodeAuthMessage(c.message).toString('hex'), hex(c.bytes).toString('hex'));
      assert.deepEqual(decodeAuthMessage(hex(c.bytes)), c.message);
      // AUTH_Receive buffers come zero-padded to the allocation length.
      assert.deepEqual(decodeAuthMessage(Buffer.concat([hex(c.bytes), Buffer.alloc(100)])), c.message);
    });
  }

  it('refuses truncated and malformed messages with a typed error naming the field', () => {
    const bad: [string, RegExp][] = [
      ['00', /header/],
      ['01 01 0000 0100 20 00 01 00 0000 00000000', /challenge/], // hl 32, no bytes
      ['01 02 0000 0100 02 00 00 00 ff00 00000000 1111 0000', /reply/], // dhvlen 255 beyond the buffer
      ['01 07 0000 0000 00 00 00 00 0000 00000000', /auth_id/],
      ['05 00 0000 0000 00 00', /auth_type/],
      [`00 00 0000 0000 00 00 ${'00'.repeat(64)}`, /napd/],
      [`00 00 0000 0000 00 01 02 00 01 01 ${'00'.repeat(60)}`, /authid/],
      [`00 00 0000 0000 00 01 01 00 1f 00 ${'00'.repeat(60)}`, /halen/],
    ];
    for (const [bytes, field] of bad) {
      assert.throws(
        () => decodeAuthMessage(hex(bytes)),
        (e: unknown) => e instanceof AuthProtocolError && field.test(e.message),
        bytes,
      );
    }
  });
});

describe('DHHC-1 secrets', () => {
  it('match nvme gen-dhchap-key byte for byte (fixtures from nvme-cli 2.3)', () => {
    assert.equal(
      formatDhchapKey(generateDhchapKey({ transform: 0, secret: SECRET32 })),
      'DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:',
    );
    assert.equal(
      formatDhchapKey(generateDhchapKey({ transform: 1, secret: SECRET32, nqn: HOSTNQN })),
      'DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:',
    );
  });

  it('round-trip every length and transformation; random keys differ', () => {
    for (const transform of [0, 1, 2, 3] as const) {
      for (const lengthBytes of [32, 48, 64] as const) {
        if (transform !== 0 && [0, 32, 48, 64][transform] !== lengthBytes) continue;
        const key = generateDhchapKey({ transform, lengthBytes, nqn: HOSTNQN });
        const text = formatDhchapKey(key);
        assert.deepEqual(parseDhchapKey(text), key);
        assert.deepEqual(parseDhchapKey(text.slice(0, -1)), key, 'the trailing colon is optional');
        assert.notDeepEqual(generateDhchapKey({ transform, lengthBytes, nqn: HOSTNQN }).secret, key.secret);
      }
    }
  });

  it('refuse a wrong CRC, length, version, transformation or encoding', () => {
    const good = 'DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:';
    const bad = [
      good.replace('KfiaR', 'KfiaS'), // CRC
      'DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd:', // 24 bytes
      good.replace('DHHC-1', 'DHHC-2'),
      good.replace(':00:', ':04:'),
      good.replace('AAEC', 'AA*C'),
      '',
      'DHHC-1:00::',
    ];
    for (const b of bad) assert.throws(() => parseDhchapKey(b), DhchapKeyError, b);
  });

  it('transform the key with the NQN (HMAC(secret, NQN || "NVMe-over-Fabrics"))', () => {
    assert.equal(
      transformKey({ secret: SECRET32, transform: 1 }, HOSTNQN).toString('hex'),
      '5ae9657820641b8a02b348880b70a2b7d8010c22d6899f4f357ba1ab2b569012',
    );
    assert.equal(transformKey({ secret: SECRET32, transform: 0 }, HOSTNQN), SECRET32);
  });

  it('agree with the nvme binary when it is installed (differential)', (t) => {
    const probe = spawnSync('nvme', ['version'], { encoding: 'utf8' });
    if (probe.status !== 0) return t.skip('nvme-cli not installed');
    for (const hmac of [0, 1, 2, 3]) {
      const len = [32, 32, 48, 64][hmac];
      const secret = Buffer.alloc(len, hmac + 7).toString('hex');
      const r = spawnSync(
        'nvme',
        ['gen-dhchap-key', '--secret', secret, '--hmac', String(hmac), '--nqn', HOSTNQN, '-l', String(len)],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 0, r.stderr);
      const ours = formatDhchapKey(
        generateDhchapKey({ transform: hmac as 0 | 1 | 2 | 3, secret: Buffer.from(secret, 'hex'), nqn: HOSTNQN }),
      );
      assert.equal(r.stdout.trim(), ours);
    }
  });
});

describe('DH-HMAC-CHAP responses (known answers from an independent HMAC implementation)', () => {
  it('host response R1, SHA-256, null group', () => {
    const r1 = hostResponse({
      hash: 'sha256',
      key: transformKey({ secret: SECRET32, transform: 1 }, HOSTNQN),
      challenge: Buffer.alloc(32, 0xa5),
      seqnum: 0x01020304,
      tid: 0x0506,
      hostNqn: HOSTNQN,
      subsystemNqn: SUBNQN,
      sessionKey: null,
    });
    assert.equal(r1.toString('hex'), '50a9e4b97ebb322b4d311e4689f35e971f1871fedbb4cab88ce329f3cc9a0d14');
  });

  it('controller response R2, SHA-384', () => {
    const r2 = controllerResponse({
      hash: 'sha384',
      key: Buffer.from(Array.from({ length: 48 }, (_, i) => 100 + i)),
      challenge: Buffer.alloc(48, 0x3c),
      seqnum: 7,
      tid: 9,
      hostNqn: HOSTNQN,
      subsystemNqn: SUBNQN,
      sessionKey: null,
    });
    assert.equal(
      r2.toString('hex'),
      '1ed49987e8b80503cb23d748b4e3f04bf35a8a4213d290b34f384e4d275480a79708fdb22d3dcb5d51901ff9994aa82f',
    );
  });

  it('augmented challenge with a session key, SHA-512', () => {
    assert.equal(
      augmentChallenge('sha512', Buffer.alloc(64, 0x11), Buffer.alloc(256, 1)).toString('hex'),
      '83d2899f0fef50b2c4442b2b2941ad2be82c919dd7f80ad17683e25a11ed32587f8514dd71bc8a0e07739af918ddd306565e21fbe39d1226c471370f29fbbfff',
    );
  });
});

describe('FFDHE groups', () => {
  const groups = ['ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192'] as const;
  it('have the RFC 7919 shape: top and bottom 64 bits set, the right size; the small ones are safe primes', () => {
    for (const [i, g] of groups.entries()) {
      const p = ffdhePrime(g);
      assert.equal(p.length * 8, [2048, 3072, 4096, 6144, 8192][i]);
      assert.equal(p.subarray(0, 8).toString('hex'), 'ff'.repeat(8));
      assert.equal(p.subarray(-8).toString('hex'), 'ff'.repeat(8));
      assert.equal(p.subarray(8, 12).toString('hex'), 'adf85458', 'the digits of e follow');
    }
    for (const g of ['ffdhe2048', 'ffdhe3072'] as const) {
      const p = BigInt(`0x${ffdhePrime(g).toString('hex')}`);
      assert.ok(checkPrimeSync(p, { checks: 4 }));
      assert.ok(checkPrimeSync((p - 1n) / 2n, { checks: 4 }), `${g}: (p-1)/2 prime`);
    }
  });

  it('match OpenSSL when its CLI is installed', (t) => {
    if (spawnSync('openssl', ['version']).status !== 0) return t.skip('openssl not installed');
    for (const g of groups) {
      const params = spawnSync('openssl', ['genpkey', '-genparam', '-algorithm', 'DH', '-pkeyopt', `group:${g}`], {
        encoding: 'utf8',
      });
      const parsed = spawnSync('openssl', ['asn1parse'], { input: params.stdout, encoding: 'utf8' });
      const m = /INTEGER\s+:([0-9A-F]+)/.exec(parsed.stdout);
      assert.ok(m, parsed.stdout);
      assert.equal(m[1].toLowerCase(), ffdhePrime(g).toString('hex'), g);
    }
  });

  it('both sides derive the same padded session key; degenerate peer values are refused', () => {
    for (const g of ['ffdhe2048', 'ffdhe3072'] as const) {
      const a = startDhExchange(g);
      const b = startDhExchange(g);
      const p = ffdhePrime(g);
      assert.equal(a.publicValue.length, p.length);
      const k = a.sharedSecret(b.publicValue);
      assert.equal(k.length, p.length);
      assert.deepEqual(k, b.sharedSecret(a.publicValue));
      const one = Buffer.alloc(p.length);
      one[p.length - 1] = 1;
      const pMinus1 = Buffer.from(p);
      pMinus1[p.length - 1] -= 1;
      for (const bad of [Buffer.alloc(p.length), one, pMinus1, p, Buffer.alloc(p.length - 1, 5), Buffer.alloc(p.length + 1, 5)]) {
        assert.throws(() => a.sharedSecret(bad), AuthProtocolError);
      }
    }
  });
});
