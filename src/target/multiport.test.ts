/**
 * Several ports: every port exports every subsystem, the discovery log lists each subsystem once per
 * port, controller ids are unique across ports, a host sees the same programs and maps on every path,
 * and a port that goes down (or is attacked) leaves the other ports' associations running.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { Cns, CommandSpecificStatus, DISCOVERY_NQN } from '../protocol/constants.js';
import { formatDhchapKey, generateDhchapKey } from '../protocol/dhchap.js';
import { NvmeStatusError } from '../protocol/errors.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { RawHost, RW_HOST, SUBNQN, startTestTarget, TEST_HOST_NQN, type TestTarget, waitFor } from './test-helpers.js';

const connect = (port: number, subsystemNqn = SUBNQN, hostNqn = TEST_HOST_NQN) =>
  NvmeTcpHost.connect({ hostNqn, host: '127.0.0.1', port, subsystemNqn, ioQueues: 2 });

for (const ioThreads of [0, 2])
  describe(`several ports (${ioThreads === 0 ? 'on the main thread' : `${ioThreads} I/O threads`})`, () => {
    let t: TestTarget;
    let ports: number[];

    before(async () => {
      t = await startTestTarget({
        ioThreads,
        listen: [
          { host: '127.0.0.1', port: 0 },
          { host: '127.0.0.1', port: 0 },
          { host: '127.0.0.1', port: 0 },
        ],
      });
      ports = t.addresses.map((a) => a.port);
    });
    after(() => t.cleanup());

    it('listens on every configured port', () => {
      assert.equal(ports.length, 3);
      assert.equal(new Set(ports).size, 3);
      assert.equal(t.address.port, ports[0]);
      assert.deepEqual(
        t.target.portStatus().map((p) => [p.id, p.port, p.listening]),
        ports.map((port, i) => [i + 1, port, true]),
      );
    });

    it('lists every subsystem once per port in the discovery log, with PORTID and TRSVCID', async () => {
      for (const asked of ports) {
        const d = await NvmeTcpHost.connect({
          hostNqn: TEST_HOST_NQN,
          host: '127.0.0.1',
          port: asked,
          subsystemNqn: DISCOVERY_NQN,
          keepAliveTimeoutMs: 0,
        });
        try {
          const log = await d.discoveryLog();
          assert.equal(log.records, 3);
          assert.deepEqual(
            log.entries.map((e) => [e.subnqn, e.portId, e.trsvcid, e.traddr, e.trtype, e.cntlid]),
            ports.map((p, i) => [SUBNQN, i + 1, String(p), '127.0.0.1', 3, 0xffff]),
          );
        } finally {
          await d.close();
        }
      }
      const rw = await NvmeTcpHost.connect({ hostNqn: RW_HOST, host: '127.0.0.1', port: ports[1], subsystemNqn: DISCOVERY_NQN });
      try {
        // Two subsystems for this host, each on three ports: subsystem-major order.
        const log = await rw.discoveryLog();
        assert.equal(log.records, 6);
        assert.deepEqual(
          log.entries.map((e) => e.portId),
          [1, 2, 3, 1, 2, 3],
        );
      } finally {
        await rw.close();
      }
    });

    it('gives one host one controller per port, with distinct CNTLIDs and the identity Linux merges paths by', async () => {
      const paths = await Promise.all(ports.map((p) => connect(p)));
      try {
        const ids = paths.map((h) => h.cntlid);
        assert.equal(new Set(ids).size, ports.length, `CNTLIDs ${ids}`);
        const ctrl = await Promise.all(paths.map((h) => h.identify(Cns.Controller)));
        for (const b of ctrl) {
          // CMIC: MPORTS (several ports) and MCTRS (several controllers); no ANA reporting.
          assert.equal(b[76], 0x03);
          // Serial, model, firmware and subsystem NQN identical on every path.
          assert.deepEqual(b.subarray(4, 72), ctrl[0].subarray(4, 72));
          assert.deepEqual(b.subarray(768, 1024), ctrl[0].subarray(768, 1024));
        }
        for (const nsid of [1, 2]) {
          const ns = await Promise.all(paths.map((h) => h.identify(Cns.Namespace, nsid)));
          const desc = await Promise.all(paths.map((h) => h.identify(Cns.NamespaceDescriptors, nsid)));
          for (let i = 0; i < paths.length; i++) {
            assert.equal(ns[i][30] & 1, 1, 'NMIC: shared namespace');
            assert.deepEqual(ns[i].subarray(104, 120), ns[0].subarray(104, 120), 'NGUID');
            assert.deepEqual(desc[i], desc[0], 'namespace identification descriptors');
          }
        }
        // The same data through every path.
        const data = randomBytes(4096);
        await paths[0].write(1, 100, data);
        for (const h of paths) assert.deepEqual(await h.read(1, 100, 8), data);
        await paths[2].write(1, 100, data.subarray(0, 512).fill(7));
        assert.deepEqual(await paths[1].read(1, 100, 1), Buffer.alloc(512, 7));
      } finally {
        await Promise.all(paths.map((h) => h.close()));
      }
    });

    it('counts I/O per port', async () => {
      const before = t.target.portStatus().map((p) => p.stats);
      const a = await connect(ports[0]);
      const b = await connect(ports[1]);
      try {
        for (let i = 0; i < 5; i++) await a.read(1, i, 1);
        for (let i = 0; i < 3; i++) await b.write(1, 200 + i, Buffer.alloc(512, i));
        const now = t.target.portStatus();
        assert.equal(now[0].stats.readCommands - before[0].readCommands, 5);
        assert.equal(now[0].stats.bytesRead - before[0].bytesRead, 5 * 512);
        assert.equal(now[1].stats.writeCommands - before[1].writeCommands, 3);
        assert.equal(now[1].stats.bytesWritten - before[1].bytesWritten, 3 * 512);
        assert.equal(now[1].stats.readCommands - before[1].readCommands, 0);
        assert.equal(now[2].stats.readCommands + now[2].stats.writeCommands, before[2].readCommands + before[2].writeCommands);
        assert.deepEqual(
          now.map((p) => p.associations),
          [1, 1, 0],
        );
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('refuses an I/O queue Connect on another port than its association', async () => {
      const a = await connect(ports[0]);
      try {
        const r = await RawHost.open(ports[1]);
        try {
          await r.icReq(0);
          r.command(r.connectSqe(1, 1, 31), r.connectData(SUBNQN, TEST_HOST_NQN, a.cntlid, a.hostId));
          const cqe = await r.response(1);
          assert.ok(cqe && cqe.status !== 0, 'refused');
        } finally {
          r.close();
        }
        assert.equal((await a.read(1, 0, 1)).length, 512);
      } finally {
        await a.close();
      }
    });

    it('a host sees the same programs and maps on every path', async () => {
      const a = await connect(ports[0]);
      const b = await connect(ports[2]);
      try {
        const pa = new ProgramClient(a);
        const pb = new ProgramClient(b);
        const handle = await pa.load(readFileSync(join(REPO_ROOT, 'examples', 'build', 'counter.o')), { name: 'mp-counter' });
        assert.equal(await pb.find('mp-counter'), handle);
        const run = async (p: ProgramClient) => (await p.execute(handle, { nsid: 1, params: [9n, 0n] })).returnValue;
        assert.equal(await run(pa), 1n);
        assert.equal(await run(pb), 2n);
        assert.equal(await run(pa), 3n);
        const entries = await pb.mapEntries(handle, 0);
        assert.deepEqual(
          entries.map((e) => [e.key.readBigUInt64LE(0), e.value.readBigUInt64LE(0)]),
          [[9n, 3n]],
        );
        await pb.unload(handle);
        assert.equal(await pa.find('mp-counter'), undefined);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('hostile bytes on one port leave the other ports’ associations running', async () => {
      const victim = await connect(ports[0]);
      try {
        for (let i = 0; i < 5; i++) {
          const r = await RawHost.open(ports[1]);
          r.send(Buffer.concat([Buffer.of(4), randomBytes(400)]));
          await r.waitClosed();
        }
        const data = randomBytes(512);
        await victim.write(1, 300, data);
        assert.deepEqual(await victim.read(1, 300, 1), data);
      } finally {
        await victim.close();
      }
    });

    it('a port going down ends only its associations; I/O continues on the others; it comes back on the same port', async () => {
      const a = await connect(ports[0]);
      const b = await connect(ports[1]);
      const generation = async () => {
        const d = await NvmeTcpHost.connect({
          hostNqn: TEST_HOST_NQN,
          host: '127.0.0.1',
          port: ports[0],
          subsystemNqn: DISCOVERY_NQN,
        });
        try {
          return await d.discoveryLog();
        } finally {
          await d.close();
        }
      };
      try {
        const before = await generation();
        await t.target.stopPort(2);
        await waitFor(() => t.target.portStatus()[1].connections === 0, 'port 2 connections closed');
        await assert.rejects(b.read(1, 0, 1));
        await assert.rejects(connect(ports[1]));
        const data = randomBytes(4096);
        await a.write(1, 400, data);
        assert.deepEqual(await a.read(1, 400, 8), data);
        const down = await generation();
        assert.ok(down.generation > before.generation, 'GENCTR changes with the port set');
        assert.deepEqual(
          down.entries.map((e) => e.portId),
          [1, 3],
        );
        const back = await t.target.startPort(2);
        assert.equal(back.port, ports[1]);
        const b2 = await connect(ports[1]);
        try {
          assert.deepEqual(await b2.read(1, 400, 8), data);
          assert.notEqual(b2.cntlid, a.cntlid);
        } finally {
          await b2.close();
        }
        assert.equal((await generation()).records, 3);
      } finally {
        b.disconnect();
        await a.close();
      }
    });
  });

describe('listen configuration', () => {
  it('refuses a port listed twice and an empty list', async () => {
    await assert.rejects(
      startTestTarget({
        listen: [
          { host: '127.0.0.1', port: 4999 },
          { host: '127.0.0.1', port: 4999 },
        ],
      }),
      /duplicate port/,
    );
    await assert.rejects(startTestTarget({ listen: [] }), /at least one port/);
  });

  it('fails to start, closing the ports it opened, when one port cannot be bound', async () => {
    const t = await startTestTarget();
    try {
      await assert.rejects(
        startTestTarget({
          listen: [
            { host: '127.0.0.1', port: 0 },
            { host: '127.0.0.1', port: t.address.port },
          ],
        }),
        /EADDRINUSE/,
      );
    } finally {
      await t.cleanup();
    }
  });
});

describe('I/O threads: what every thread must see the same way', () => {
  const ALICE = 'nqn.2014-08.org.nvmexpress:uuid:alice';
  const aliceKey = formatDhchapKey(generateDhchapKey({ transform: 1, nqn: ALICE }));
  const aliceCtrlKey = formatDhchapKey(generateDhchapKey({ transform: 0, lengthBytes: 48 }));
  let t: TestTarget;
  let ports: number[];

  before(async () => {
    t = await startTestTarget({
      ioThreads: 2,
      listen: [
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: 0 },
      ],
      limits: { maxAssociationsPerHost: 1, maxConnectionsPerHost: 3 },
      auth: { hosts: { [ALICE]: { key: aliceKey, controllerKey: aliceCtrlKey } } },
    });
    ports = t.addresses.map((a) => a.port);
  });
  after(() => t.cleanup());

  it('authenticates on an I/O thread (keys reach it), bidirectionally', async () => {
    const host = await NvmeTcpHost.connect({
      hostNqn: ALICE,
      host: '127.0.0.1',
      port: ports[1],
      subsystemNqn: SUBNQN,
      ioQueues: 1,
      dhchap: { secret: aliceKey, controllerSecret: aliceCtrlKey },
    });
    try {
      assert.equal(host.authentication?.bidirectional, true);
      const data = randomBytes(512);
      await host.write(1, 9, data);
      assert.deepEqual(await host.read(1, 9, 1), data);
    } finally {
      await host.close();
    }
    const wrong = formatDhchapKey(generateDhchapKey({ transform: 1, nqn: ALICE }));
    await assert.rejects(
      NvmeTcpHost.connect({ hostNqn: ALICE, host: '127.0.0.1', port: ports[0], subsystemNqn: SUBNQN, dhchap: { secret: wrong } }),
    );
  });

  it('holds a host to its quotas across threads (associations per host, queues per host)', async () => {
    const a = await NvmeTcpHost.connect({ hostNqn: TEST_HOST_NQN, host: '127.0.0.1', port: ports[0], subsystemNqn: SUBNQN });
    try {
      // The second association of this host, on the other thread: over maxAssociationsPerHost.
      await assert.rejects(
        NvmeTcpHost.connect({ hostNqn: TEST_HOST_NQN, host: '127.0.0.1', port: ports[1], subsystemNqn: SUBNQN }),
        (e: unknown) => e instanceof NvmeStatusError && e.sc === CommandSpecificStatus.ConnectControllerBusy,
      );
      // Another host is not affected.
      const b = await NvmeTcpHost.connect({ hostNqn: RW_HOST, host: '127.0.0.1', port: ports[1], subsystemNqn: SUBNQN });
      await b.close();
    } finally {
      await a.close();
    }
    // Released when the association ended: the host may connect on the other thread now.
    await waitFor(() => t.target.associationCount === 0, 'associations released');
    const c = await NvmeTcpHost.connect({ hostNqn: TEST_HOST_NQN, host: '127.0.0.1', port: ports[1], subsystemNqn: SUBNQN });
    await c.close();
  });

  it('counts every thread’s associations on their ports and gives them back when they end', async () => {
    const hosts = await Promise.all(ports.map((port, i) => connect(port, SUBNQN, i === 0 ? TEST_HOST_NQN : RW_HOST)));
    assert.equal(t.target.associationCount, 2);
    assert.deepEqual(
      t.target.portStatus().map((p) => p.associations),
      [1, 1],
    );
    for (const h of hosts) await h.close();
    await waitFor(() => t.target.associationCount === 0, 'associations released');
  });
});
