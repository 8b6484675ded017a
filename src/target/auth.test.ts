/**
 * DH-HMAC-CHAP end to end: our host library against our target over loopback, in every hash and DH
 * group, one-way and bidirectional; wrong, missing and replayed credentials; hosts that skip
 * authentication or claim another host's NQN.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { HostQueue } from '../client/queue.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { AdminOpcode, CNTLID_DYNAMIC, FabricsType, Property } from '../protocol/constants.js';
import {
  AUTH_CDW10,
  AUTH_MAX_MESSAGE_BYTES,
  AuthenticationError,
  CONNECT_AUTHREQ_ATR,
  DH_GROUP_NAMES,
  decodeAuthMessage,
  encodeAuthMessage,
  formatDhchapKey,
  generateDhchapKey,
  HASH_IDS,
  HASH_NAMES,
  hostResponse,
  parseDhchapKey,
  transformKey,
} from '../protocol/dhchap.js';
import { NvmeStatusError } from '../protocol/errors.js';
import { encodeConnectData } from '../protocol/fabrics.js';
import { makeSqe } from '../protocol/sqe.js';
import type { Logger } from './logger.js';
import { startTestTarget, type TestTarget, waitFor } from './test-helpers.js';

const SECURE = 'nqn.2026-11.io.nearbpf:secure';
const OPEN = 'nqn.2026-11.io.nearbpf:open';
const ALICE = 'nqn.2014-08.org.nvmexpress:uuid:alice';
const BOB = 'nqn.2014-08.org.nvmexpress:uuid:bob';
const MALLORY = 'nqn.2014-08.org.nvmexpress:uuid:mallory';
const aliceKey = formatDhchapKey(generateDhchapKey({ transform: 1, nqn: ALICE }));
const aliceCtrlKey = formatDhchapKey(generateDhchapKey({ transform: 0, lengthBytes: 48 }));
const bobKey = formatDhchapKey(generateDhchapKey({ transform: 3, nqn: BOB }));
const malloryKey = formatDhchapKey(generateDhchapKey({ transform: 0 }));

let t: TestTarget;
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const logger: Logger = {
  debug: (msg, fields) => logs.push({ level: 'debug', msg, fields }),
  info: (msg, fields) => logs.push({ level: 'info', msg, fields }),
  warn: (msg, fields) => logs.push({ level: 'warn', msg, fields }),
  error: (msg, fields) => logs.push({ level: 'error', msg, fields }),
};

const connect = (hostNqn: string, subsystemNqn: string, extra: Partial<Parameters<typeof NvmeTcpHost.connect>[0]> = {}) =>
  NvmeTcpHost.connect({
    host: '127.0.0.1',
    port: t.address.port,
    subsystemNqn,
    hostNqn,
    ioQueues: 1,
    keepAliveTimeoutMs: 0,
    ...extra,
  });

before(async () => {
  t = await startTestTarget(
    {
      limits: { handshakeTimeoutMs: 1500 },
      auth: {
        hosts: {
          [ALICE]: { key: aliceKey, controllerKey: aliceCtrlKey },
          [BOB]: { key: bobKey },
          [MALLORY]: { key: malloryKey },
        },
      },
      subsystems: [
        {
          nqn: SECURE,
          requireAuthentication: true,
          hosts: [{ nqn: '*', access: 'read-write' }],
          namespaces: [{ nsid: 1, path: 'secure.img', sizeBytes: 1 << 20, blockSize: 512 }],
        },
        { nqn: OPEN, namespaces: [{ nsid: 1, path: 'open.img', sizeBytes: 1 << 20, blockSize: 512 }] },
      ],
    },
    { logger },
  );
});

after(() => t?.cleanup());

describe('DH-HMAC-CHAP: our host against our target', () => {
  it('authenticates admin and I/O queues in every hash and DH group, and I/O works', async () => {
    for (const hash of HASH_NAMES) {
      for (const group of DH_GROUP_NAMES) {
        const host = await connect(BOB, SECURE, { dhchap: { secret: bobKey, hashes: [hash], dhGroups: [group] } });
        try {
          assert.deepEqual(host.authentication, { hash, dhGroup: group, bidirectional: false });
          const data = Buffer.alloc(512, HASH_IDS[hash] * 16 + group.length);
          await host.write(1, 3, data);
          assert.deepEqual(await host.read(1, 3, 1), data);
        } finally {
          await host.close();
        }
      }
    }
  });

  it('authenticates the controller too with a controller key (several I/O queues)', async () => {
    const host = await connect(ALICE, SECURE, { ioQueues: 3, dhchap: { secret: aliceKey, controllerSecret: aliceCtrlKey } });
    try {
      assert.equal(host.authentication?.bidirectional, true);
      assert.equal(host.ioQueueCount, 3);
      for (let q = 1; q <= 3; q++) await host.read(1, q, 1, q);
    } finally {
      await host.close();
    }
  });

  it('refuses a wrong host key, a wrong controller key and a missing key', async () => {
    await assert.rejects(connect(BOB, SECURE, { dhchap: { secret: malloryKey } }), (e: unknown) => {
      return e instanceof AuthenticationError && /refused authentication: authentication failed/.test(e.message);
    });
    // The target answers with the real controller key; our host expected another: the target is not trusted.
    await assert.rejects(
      connect(ALICE, SECURE, { dhchap: { secret: aliceKey, controllerSecret: bobKey } }),
      (e: unknown) => e instanceof AuthenticationError && /controller failed to authenticate/.test(e.message),
    );
    await assert.rejects(
      connect(BOB, SECURE),
      (e: unknown) => e instanceof AuthenticationError && /requires authentication/.test(e.message),
    );
    // A host asking for bidirectional authentication when no controller key is configured for it.
    await assert.rejects(
      connect(BOB, SECURE, { dhchap: { secret: bobKey, controllerSecret: aliceCtrlKey } }),
      AuthenticationError,
    );
    await waitFor(() => t.target.associationCount === 0, 'failed associations are gone');
  });

  it('refuses a host without a key on a subsystem that requires authentication; open subsystems need none', async () => {
    await assert.rejects(
      connect('nqn.2014-08.org.nvmexpress:uuid:keyless', SECURE),
      (e: unknown) => e instanceof NvmeStatusError && e.sct === 1 && e.sc === 0x84,
    );
    const open = await connect('nqn.2014-08.org.nvmexpress:uuid:keyless', OPEN);
    assert.equal(open.authentication, null);
    await open.close();
  });

  it('stops impersonation: claiming a keyed NQN without its key gets nothing of that host', async () => {
    const alice = await connect(ALICE, OPEN, { dhchap: { secret: aliceKey } });
    const programs = new ProgramClient(alice);
    const handle = await programs.load(encodeProgram(assemble('mov %r0, 7\nexit')), { name: 'alice-secret' });
    try {
      // Mallory claims Alice's NQN with no key, then with her own key: both refused, even on the open subsystem.
      await assert.rejects(connect(ALICE, OPEN), AuthenticationError);
      await assert.rejects(connect(ALICE, OPEN, { dhchap: { secret: malloryKey } }), AuthenticationError);
      // As herself, Mallory sees none of Alice's programs and cannot run or unload them.
      const mallory = await connect(MALLORY, OPEN, { dhchap: { secret: malloryKey } });
      try {
        const theirs = new ProgramClient(mallory);
        assert.deepEqual(await theirs.list(), []);
        await assert.rejects(theirs.execute(handle, { nsid: 1 }));
        await assert.rejects(theirs.unload(handle));
      } finally {
        await mallory.close();
      }
      assert.equal((await programs.list()).length, 1);
    } finally {
      await programs.unload(handle);
      await alice.close();
    }
  });
});

/** A queue driven by hand: Connect, then raw AUTH_Send/AUTH_Receive. */
async function rawQueue(hostNqn: string, qid = 0, cntlid = CNTLID_DYNAMIC) {
  const q = await HostQueue.open({
    host: '127.0.0.1',
    port: t.address.port,
    qid,
    depth: 8,
    headerDigest: false,
    dataDigest: false,
    maxPduBytes: 1 << 20,
    commandTimeoutMs: 5000,
    connectTimeoutMs: 5000,
  });
  q.inCapsuleBytes = 8192;
  const r = await q.submit(
    makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.Connect, cdw10: (qid << 16) >>> 0, cdw11: 7, cdw12: 0 }),
    { dataOut: encodeConnectData({ hostId: Buffer.alloc(16, 1), cntlid, subnqn: SECURE, hostnqn: hostNqn }) },
  );
  const send = (m: Buffer, cdw10 = AUTH_CDW10) =>
    q.submit(makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.AuthSend, cdw10, cdw11: m.length }), { dataOut: m });
  const receive = async () => {
    const x = await q.submit(
      makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.AuthReceive, cdw10: AUTH_CDW10, cdw11: AUTH_MAX_MESSAGE_BYTES }),
      { dataInBytes: AUTH_MAX_MESSAGE_BYTES, variableDataIn: true },
    );
    return decodeAuthMessage(x.data!);
  };
  return { q, dw0: r.cqe.dw0, send, receive };
}

const negotiate = (tid: number) => encodeAuthMessage({ kind: 'negotiate', tid, scC: 0, hashIds: [1], dhGroupIds: [0] });

describe('DH-HMAC-CHAP: hostile hosts', () => {
  it('a host that skips authentication gets Authentication Required and its queue is closed', async () => {
    const { q, dw0 } = await rawQueue(BOB);
    assert.ok(dw0 & CONNECT_AUTHREQ_ATR, 'Connect asks for authentication');
    await assert.rejects(
      q.submit(makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.PropertyGet, cdw11: Property.CAP })),
      (e: unknown) => e instanceof NvmeStatusError && e.sct === 1 && e.sc === 0x91,
    );
    await waitFor(() => q.closed, 'queue closed');
  });

  it('a host that never finishes authentication is closed after the handshake timeout', async () => {
    const { q, send } = await rawQueue(BOB);
    await send(negotiate(1));
    await waitFor(() => q.closed, 'queue closed by the auth timeout', 400);
    assert.ok(logs.some((l) => l.msg === 'authentication timed out: closing the queue' && l.fields?.host === BOB));
  });

  it('a replayed reply is refused: every challenge is fresh', async () => {
    // A genuine exchange, recorded.
    const first = await rawQueue(BOB);
    await first.send(negotiate(5));
    const c = await first.receive();
    assert.equal(c.kind, 'challenge');
    if (c.kind !== 'challenge') return;
    const key = transformKey(parseDhchapKey(bobKey), BOB);
    const response = hostResponse({
      hash: 'sha256',
      key,
      challenge: c.challenge,
      seqnum: c.seqnum,
      tid: 5,
      hostNqn: BOB,
      subsystemNqn: SECURE,
      sessionKey: null,
    });
    const reply = encodeAuthMessage({ kind: 'reply', tid: 5, response, challenge: null, seqnum: 0, dhValue: Buffer.alloc(0) });
    await first.send(reply);
    assert.equal((await first.receive()).kind, 'success1');
    first.q.close();
    // An eavesdropper replays the same bytes on a new connection.
    const second = await rawQueue(BOB);
    await second.send(negotiate(5));
    const c2 = await second.receive();
    assert.equal(c2.kind, 'challenge');
    await second.send(reply);
    const verdict = await second.receive();
    assert.deepEqual(verdict, { kind: 'failure1', tid: 5, reason: 1, explanation: 1 });
    await waitFor(() => second.q.closed, 'queue closed after Failure1');
  });

  it('malformed or out-of-order messages end in Failure1 (or Invalid Field) without hurting the target', async () => {
    const cases: { name: string; run: (r: Awaited<ReturnType<typeof rawQueue>>) => Promise<void> }[] = [
      { name: 'garbage', run: async (r) => void (await r.send(Buffer.alloc(40, 0xee))) },
      {
        name: 'reply first',
        run: async (r) =>
          void (await r.send(
            encodeAuthMessage({
              kind: 'reply',
              tid: 0,
              response: Buffer.alloc(32),
              challenge: null,
              seqnum: 0,
              dhValue: Buffer.alloc(0),
            }),
          )),
      },
      {
        name: 'unknown hash only',
        run: async (r) =>
          void (await r.send(encodeAuthMessage({ kind: 'negotiate', tid: 1, scC: 0, hashIds: [9], dhGroupIds: [0] }))),
      },
      {
        name: 'secure channel',
        run: async (r) =>
          void (await r.send(encodeAuthMessage({ kind: 'negotiate', tid: 1, scC: 1, hashIds: [1], dhGroupIds: [0] }))),
      },
      { name: 'receive first', run: async () => {} },
    ];
    for (const c of cases) {
      const r = await rawQueue(BOB);
      await c.run(r);
      const m = await r.receive();
      assert.equal(m.kind, 'failure1', c.name);
      await waitFor(() => r.q.closed, `${c.name}: closed`);
    }
    // A wrong SECP is an invalid field of the command itself.
    const r = await rawQueue(BOB);
    await assert.rejects(r.send(negotiate(1), 0x01010100), (e: unknown) => e instanceof NvmeStatusError && e.sc === 0x02);
    r.q.close();
    // The target still serves a well-behaved host.
    const ok = await connect(BOB, SECURE, { dhchap: { secret: bobKey } });
    await ok.close();
  });

  it('logs failures with the host NQN and address, never a secret', () => {
    const failures = logs.filter((l) => l.msg === 'authentication failed');
    assert.ok(failures.length > 0);
    for (const f of failures) {
      assert.ok(typeof f.fields?.host === 'string' && typeof f.fields?.remote === 'string');
    }
    const text = JSON.stringify(logs);
    for (const k of [aliceKey, aliceCtrlKey, bobKey, malloryKey]) assert.ok(!text.includes(k.split(':')[2].slice(0, 16)));
  });
});
