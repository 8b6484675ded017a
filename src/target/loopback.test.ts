import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import {
  CommandSpecificStatus,
  DISCOVERY_NQN,
  Feature,
  GenericStatus,
  LogPage,
  NvmeStatusError,
  StatusCodeType,
} from '../protocol/index.js';
import { DENIED_HOST, RO_HOST, RW_HOST, SUBNQN, startTestTarget, TEST_HOST_NQN, type TestTarget } from './test-helpers.js';

const isStatus = (sct: number, sc: number) => (e: unknown) => e instanceof NvmeStatusError && e.sct === sct && e.sc === sc;

describe('client <-> target over loopback', { timeout: 60_000 }, () => {
  let t: TestTarget;
  let host: NvmeTcpHost;
  before(async () => {
    t = await startTestTarget();
    host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
      ioQueues: 2,
      queueDepth: 16,
    });
  });
  after(async () => {
    await host?.close();
    await t?.cleanup();
  });

  it('identifies the controller with the fields Linux requires', async () => {
    const c = host.controller;
    assert.equal(c.cntlid, host.cntlid);
    assert.ok(c.kas > 0);
    assert.ok(c.sgls & 1);
    assert.equal(c.icdoff, 0);
    assert.ok(c.ioccszBytes >= 64 && c.iorcszBytes >= 16 && c.maxcmd > 0);
    assert.equal(c.subnqn, SUBNQN);
    assert.equal(c.cntrltype, 1);
    assert.equal(c.oncs & 0x0c, 0x0c);
    assert.equal(c.vwc & 1, 1);
    assert.equal(c.maxDataTransferBytes, 1 << 20);
    assert.equal(host.ioQueueCount, 2);
  });

  it('lists and identifies namespaces', async () => {
    assert.deepEqual(await host.activeNamespaces(), [1, 2]);
    assert.deepEqual(await host.activeNamespaces(1), [2]);
    const ns1 = await host.identifyNamespace(1);
    assert.equal(ns1.blockSize, 512);
    assert.equal(ns1.blockCount, (16 << 20) / 512);
    const ns2 = await host.identifyNamespace(2);
    assert.equal(ns2.blockSize, 4096);
    const ids = await host.namespaceIds(1);
    assert.equal(ids.uuid?.length, 16);
    assert.deepEqual(ids.nguid, ns1.nguid);
    await assert.rejects(host.identify(0, 99), isStatus(0, GenericStatus.InvalidNamespace));
  });

  it('reads back what it wrote, in-capsule and via R2T, on both block sizes', async () => {
    const small = randomBytes(4096);
    await host.write(1, 8, small);
    assert.deepEqual(await host.read(1, 8, 8), small);
    const big = randomBytes(1 << 20); // > in-capsule and > MAXH2CDATA: several R2Ts
    await host.write(2, 10, big, { fua: true });
    assert.deepEqual(await host.read(2, 10, 256), big);
    await host.flush(1);
  });

  it('write zeroes and deallocate read back as zeros', async () => {
    await host.write(1, 100, randomBytes(512 * 16));
    await host.writeZeroes(1, 102, 4);
    const b = await host.read(1, 100, 16);
    assert.ok(b.subarray(1024, 3072).every((x) => x === 0));
    assert.ok(b.subarray(3072).some((x) => x !== 0));
    await host.deallocate(1, [
      { slba: 100, blocks: 2 },
      { slba: 110, blocks: 6 },
    ]);
    assert.ok((await host.read(1, 100, 16)).every((x, i) => (i < 1024 || i >= 10 * 512 ? x === 0 : true)));
  });

  it('advertises and enforces the deallocate range limit (DMRSL)', async () => {
    const id = await host.identify(0x06, 0, 0);
    const dmrslBlocks = id.readUInt32LE(4);
    assert.equal(dmrslBlocks, (64 << 20) / 4096);
    assert.equal(id[1], 8); // WZSL = MDTS
    // The limit is in bytes per range: 64 MiB, i.e. more than namespace 1 holds, so use a smaller target.
    await assert.rejects(
      host.deallocate(1, [{ slba: 0, blocks: (16 << 20) / 512 + 1 }]),
      isStatus(0, GenericStatus.LbaOutOfRange),
    );
  });

  it('runs many commands in flight on two queues', async () => {
    const writes = Array.from({ length: 64 }, (_, i) => ({ lba: 1000 + i * 8, data: randomBytes(4096) }));
    await Promise.all(writes.map((w, i) => host.write(1, w.lba, w.data, { qid: (i % 2) + 1 })));
    const back = await Promise.all(writes.map((w, i) => host.read(1, w.lba, 8, 2 - (i % 2))));
    back.forEach((b, i) => {
      assert.deepEqual(b, writes[i].data);
    });
  });

  it('rejects out-of-range LBAs, MDTS overruns and unknown opcodes with the right status', async () => {
    const blocks = (16 << 20) / 512;
    await assert.rejects(host.read(1, blocks - 1, 2), isStatus(0, GenericStatus.LbaOutOfRange));
    await assert.rejects(host.write(1, blocks, Buffer.alloc(512)), isStatus(0, GenericStatus.LbaOutOfRange));
    await assert.rejects(host.writeZeroes(1, blocks, 1), isStatus(0, GenericStatus.LbaOutOfRange));
    await assert.rejects(host.deallocate(1, [{ slba: blocks, blocks: 1 }]), isStatus(0, GenericStatus.LbaOutOfRange));
    await assert.rejects(host.read(1, 0, 4096), isStatus(0, GenericStatus.InvalidField)); // 2 MiB > MDTS
    await assert.rejects(
      host.ioCommand({ ...(await import('../protocol/sqe.js')).makeSqe({ opcode: 0x85, nsid: 1 }) }),
      isStatus(0, GenericStatus.InvalidOpcode),
    );
    await assert.rejects(
      host.adminCommand((await import('../protocol/sqe.js')).makeSqe({ opcode: 0xcc })),
      isStatus(0, GenericStatus.InvalidOpcode),
    );
    await assert.rejects(host.read(7, 0, 1), isStatus(0, GenericStatus.InvalidNamespace));
    // The association still works.
    await host.keepAlive();
  });

  it('answers features and log pages', async () => {
    assert.equal(await host.getFeatures(Feature.NumberOfQueues), 1 | (1 << 16)); // two I/O queues granted
    await host.setFeatures(Feature.AsyncEventConfig, 0);
    assert.equal(await host.getFeatures(Feature.KeepAliveTimer), 5000);
    const smart = await host.getLogPage(LogPage.Smart, 512);
    assert.equal(smart[3], 100);
    const effects = await host.getLogPage(LogPage.CommandsSupported, 4096);
    assert.equal(effects.readUInt32LE(1024 + 4) & 3, 3); // Write: supported, changes content
    await assert.rejects(
      host.getLogPage(0x42, 512),
      isStatus(StatusCodeType.CommandSpecific, CommandSpecificStatus.InvalidLogPage),
    );
  });

  it('serves the discovery log with the subsystems this host may see', async () => {
    const d = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: DISCOVERY_NQN,
      keepAliveTimeoutMs: 0,
    });
    try {
      assert.equal(d.controller.cntrltype, 2);
      const log = await d.discoveryLog();
      assert.deepEqual(
        log.entries.map((e) => e.subnqn),
        [SUBNQN],
      );
      assert.equal(log.entries[0].trtype, 3);
      assert.equal(log.entries[0].trsvcid, String(t.address.port));
      assert.equal(log.entries[0].traddr, '127.0.0.1');
    } finally {
      await d.close();
    }
    const d2 = await NvmeTcpHost.connect({
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: DISCOVERY_NQN,
      hostNqn: RW_HOST,
    });
    try {
      assert.equal((await d2.discoveryLog()).records, 2);
    } finally {
      await d2.close();
    }
  });

  it('enforces access control: denied hosts and read-only hosts', async () => {
    await assert.rejects(
      NvmeTcpHost.connect({
        host: '127.0.0.1',
        port: t.address.port,
        subsystemNqn: 'nqn.2026-11.io.nearbpf:private',
        hostNqn: DENIED_HOST,
      }),
      isStatus(StatusCodeType.CommandSpecific, CommandSpecificStatus.ConnectInvalidHost),
    );
    await assert.rejects(
      NvmeTcpHost.connect({
        hostNqn: TEST_HOST_NQN,
        host: '127.0.0.1',
        port: t.address.port,
        subsystemNqn: 'nqn.2026-11.io.nearbpf:nope',
      }),
      isStatus(StatusCodeType.CommandSpecific, CommandSpecificStatus.ConnectInvalidParameters),
    );
    const ro = await NvmeTcpHost.connect({ host: '127.0.0.1', port: t.address.port, subsystemNqn: SUBNQN, hostNqn: RO_HOST });
    try {
      const before = await ro.read(1, 8, 8);
      await assert.rejects(ro.write(1, 8, Buffer.alloc(4096)), isStatus(0, GenericStatus.NamespaceWriteProtected));
      await assert.rejects(ro.writeZeroes(1, 8, 8), isStatus(0, GenericStatus.NamespaceWriteProtected));
      await assert.rejects(ro.deallocate(1, [{ slba: 8, blocks: 8 }]), isStatus(0, GenericStatus.NamespaceWriteProtected));
      assert.deepEqual(await ro.read(1, 8, 8), before);
    } finally {
      await ro.close();
    }
  });
});

describe('digests', { timeout: 60_000 }, () => {
  let t: TestTarget;
  after(async () => t?.cleanup());
  it('negotiates header and data digests and moves data with them', async () => {
    t = await startTestTarget();
    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
      headerDigest: true,
      dataDigest: true,
    });
    try {
      assert.deepEqual(host.digests, { header: true, data: true });
      const data = randomBytes(300 * 1024);
      await host.write(1, 0, data);
      await host.write(1, 2048, data.subarray(0, 2048));
      assert.deepEqual(await host.read(1, 0, 600), data);
    } finally {
      await host.close();
    }
  });
});

describe('target close', { timeout: 60_000 }, () => {
  it('completes in-flight writes before closing', async () => {
    const t = await startTestTarget();
    const host = await NvmeTcpHost.connect({
      hostNqn: TEST_HOST_NQN,
      host: '127.0.0.1',
      port: t.address.port,
      subsystemNqn: SUBNQN,
      ioQueues: 2,
      queueDepth: 32,
    });
    const blocks = Array.from({ length: 48 }, (_, i) => ({ lba: i * 16, data: randomBytes(8192) }));
    const acked: number[] = [];
    const writes = blocks.map((b, i) =>
      host.write(1, b.lba, b.data).then(
        () => acked.push(i),
        () => {},
      ),
    );
    // Close while writes are arriving; whatever the host saw acknowledged must be in the file.
    await new Promise((r) => setImmediate(r));
    const closing = t.close();
    await Promise.all(writes);
    await closing;
    host.disconnect();
    const { readFile } = await import('node:fs/promises');
    const file = await readFile(`${t.dir}/ns1.img`);
    for (const i of acked)
      assert.deepEqual(file.subarray(blocks[i].lba * 512, blocks[i].lba * 512 + 8192), blocks[i].data, `write ${i}`);
    await t.cleanup();
  });
});
