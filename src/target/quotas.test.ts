/**
 * The resource attacks, each against a running target: half-open sockets, association hoarding,
 * verifier flooding, half-sent program images, and memory hoarding. Each attack must be held to its
 * quota while a well-behaved tenant's connect, load and I/O keep working.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient, ProgramCommandError } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { NvmeStatusError } from '../protocol/errors.js';
import { ProgramOpcode, ProgramStatus } from '../protocol/programs.js';
import { makeSqe } from '../protocol/sqe.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { Admission, Ledger } from './quotas.js';
import { SUBNQN, startTestTarget, type TestTarget, waitFor } from './test-helpers.js';

const VICTIM = 'nqn.2014-08.org.nvmexpress:uuid:victim';
const ATTACKER = 'nqn.2014-08.org.nvmexpress:uuid:attacker';

const connect = (t: TestTarget, hostNqn: string, ioQueues = 1) =>
  NvmeTcpHost.connect({
    host: '127.0.0.1',
    port: t.address.port,
    subsystemNqn: SUBNQN,
    hostNqn,
    ioQueues,
    keepAliveTimeoutMs: 5000,
  });

/** A round trip of real I/O: write a block, read it back. */
async function io(host: NvmeTcpHost, lba: number): Promise<void> {
  const data = Buffer.alloc(512, lba & 0xff);
  await host.write(1, lba, data);
  assert.deepEqual(await host.read(1, lba, 1), data);
}

/** Within a generous bound: the point is "not starved", not a latency figure. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const programStatus = (e: unknown) =>
  e instanceof ProgramCommandError ? e.statusCode : e instanceof NvmeStatusError ? e.sc : -1;

describe('quota ledger and admission (unit)', () => {
  it('ledger: per key and overall caps, give back', () => {
    const l = new Ledger(10, 15);
    assert.ok(l.tryTake('a', 10));
    assert.equal(l.wouldExceed('a', 1), 'key');
    assert.ok(l.tryTake('b', 5));
    assert.equal(l.wouldExceed('c', 1), 'total');
    l.give('a', 4);
    assert.ok(l.tryTake('c', 4));
    assert.equal(l.total, 15);
  });

  it('admission: a newcomer displaces the oldest pending socket of its address, then of the pool', () => {
    const evicted: string[] = [];
    const a = new Admission<string>(
      {
        maxPendingConnections: 3,
        maxPendingConnectionsPerAddress: 2,
        maxConnectionsPerHost: 2,
        maxConnectionsPerAddress: 3,
        maxAssociationsPerHost: 1,
        maxAssociationsPerAddress: 2,
      },
      (c) => evicted.push(c),
    );
    a.open('x1', 'X');
    a.open('x2', 'X');
    a.open('x3', 'X');
    assert.deepEqual(evicted, ['x1']);
    a.open('y1', 'Y');
    a.open('z1', 'Z'); // pool of 3 full: the oldest (x2) goes
    assert.deepEqual(evicted, ['x1', 'x2']);
    assert.equal(a.pendingCount, 3);
    assert.equal(a.reserve('y1', 'h', true), null);
    assert.match(a.reserve('z1', 'h', true) ?? '', /maxAssociationsPerHost/);
    assert.equal(a.reserve('z1', 'h', false), null);
    assert.match(a.reserve('x3', 'h', false) ?? '', /maxConnectionsPerHost/);
    a.closed('y1');
    assert.deepEqual(a.heldBy('h'), { queues: 1, associations: 0 });
  });
});

describe('resource attacks held to their quotas', () => {
  it('300 bare sockets that never send ICReq: held to the pending pool; established hosts and new hosts keep working', async () => {
    const t = await startTestTarget({ limits: { maxPendingConnections: 16, maxPendingConnectionsPerAddress: 8 } });
    const sockets: Socket[] = [];
    try {
      const established = await connect(t, VICTIM, 1);
      let closedByTarget = 0;
      await Promise.all(
        Array.from(
          { length: 300 },
          () =>
            new Promise<void>((resolve) => {
              const s = netConnect({ host: '127.0.0.1', port: t.address.port }, () => resolve());
              s.on('error', () => resolve());
              s.on('close', () => {
                closedByTarget++;
                resolve();
              });
              sockets.push(s);
            }),
        ),
      );
      await waitFor(() => t.target.admission.pendingCount <= 8 && closedByTarget >= 292, 'bare sockets held to the pending pool');
      // The association made before the attack is untouched, and a new host connects and does I/O.
      await io(established, 1);
      const newcomer = await within(10_000, 'connect during the attack', connect(t, `${VICTIM}-2`, 2));
      await io(newcomer, 2);
      await newcomer.close();
      await established.close();
    } finally {
      for (const s of sockets) s.destroy();
      await t.cleanup();
    }
  });

  it('association hoarding: one host NQN, or one address, is held to its association quota; others still connect', async () => {
    const t = await startTestTarget({ limits: { maxAssociationsPerHost: 4, maxAssociationsPerAddress: 6 } });
    const hosts: NvmeTcpHost[] = [];
    try {
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => connect(t, ATTACKER, 0)));
      for (const r of results) if (r.status === 'fulfilled') hosts.push(r.value);
      assert.equal(hosts.length, 4, 'four associations for the attacker NQN');
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof NvmeStatusError && r.reason.sct === 1 && r.reason.sc === 0x81);
      }
      // Another host (same address: the loopback) still gets in, up to the address quota.
      const victim = await connect(t, VICTIM, 1);
      hosts.push(victim);
      await io(victim, 3);
      hosts.push(await connect(t, `${VICTIM}-b`, 0));
      await assert.rejects(connect(t, `${VICTIM}-c`, 0), (e: unknown) => e instanceof NvmeStatusError && e.sc === 0x81);
    } finally {
      for (const h of hosts) h.disconnect();
      await t.cleanup();
    }
  });

  it('verifier flooding: the attacker is held to its verifications, slow ones time out or run out of memory, and another tenant loads at once', async () => {
    const t = await startTestTarget({
      limits: { verifierWorkers: 2, maxVerificationsPerTenant: 2, verifyTimeoutMs: 1500, verifyMemoryBytes: 512 << 20 },
    });
    const slow = encodeProgram(assemble('mov %r7, 0\nloop:\nadd %r7, 1\njlt %r7, 100000000, loop\nmov %r0, %r7\nexit'));
    const attacker = await connect(t, ATTACKER, 0);
    const victim = await connect(t, VICTIM, 0);
    try {
      const a = new ProgramClient(attacker);
      const floods = [0, 1, 2].map((i) =>
        a.load(slow, { name: `slow${i}` }).then(
          () => 'loaded',
          (e) => e,
        ),
      );
      await waitFor(() => t.target.programs.verifier.load(ATTACKER) === 2, 'attacker verifying');
      const started = Date.now();
      let attackerDoneAt = Number.POSITIVE_INFINITY;
      Promise.all(floods).then(() => {
        attackerDoneAt = Date.now();
      });
      const handle = await new ProgramClient(victim).load(encodeProgram(assemble('mov %r0, 1\nexit')), { name: 'quick' });
      const victimDoneAt = Date.now();
      assert.ok(handle > 0);
      const outcomes = await Promise.all(floods);
      const statuses = outcomes.map(programStatus).sort();
      assert.deepEqual(
        statuses,
        [ProgramStatus.VerifierBusy, ProgramStatus.VerificationTimeout, ProgramStatus.VerificationTimeout].sort(),
      );
      assert.ok(
        victimDoneAt < attackerDoneAt,
        `the victim (${victimDoneAt - started} ms) did not wait for the attacker's timeouts`,
      );
      const msg = outcomes.find((o) => programStatus(o) === ProgramStatus.VerificationTimeout) as ProgramCommandError;
      assert.match(msg.message, /longer than 1500 ms/);
      // The pool replaced its workers: the next load verifies normally.
      assert.ok((await a.load(encodeProgram(assemble('mov %r0, 2\nexit')), { name: 'after' })) > 0);
    } finally {
      await attacker.close();
      await victim.close();
      await t.cleanup();
    }
  });

  it('a verification past its memory limit fails with its own status, and the worker is replaced', async () => {
    const t = await startTestTarget({ limits: { verifierWorkers: 1, verifyTimeoutMs: 120_000, verifyMemoryBytes: 16 << 20 } });
    const host = await connect(t, ATTACKER, 0);
    try {
      const p = new ProgramClient(host);
      const slow = encodeProgram(assemble('mov %r7, 0\nloop:\nadd %r7, 1\njlt %r7, 100000000, loop\nmov %r0, %r7\nexit'));
      await assert.rejects(p.load(slow, { name: 'big' }), (e: unknown) => {
        return programStatus(e) === ProgramStatus.VerificationMemory && /more than 16 MiB/.test((e as Error).message);
      });
      assert.ok((await p.load(encodeProgram(assemble('mov %r0, 2\nexit')), { name: 'after' })) > 0);
    } finally {
      await host.close();
      await t.cleanup();
    }
  });

  it('half-sent images: memory follows the chunks, capped per association, host and target; idle and orphaned loads are dropped', async () => {
    const t = await startTestTarget({
      limits: {
        maxPendingImageBytesPerAssociation: 64 << 10,
        maxPendingImageBytesPerHost: 96 << 10,
        maxPendingImageBytes: 200 << 10,
        pendingLoadTimeoutMs: 400,
      },
    });
    const sixteenMiB = 16 << 20;
    const chunk = Buffer.alloc(16 << 10, 1);
    const sendChunk = (h: NvmeTcpHost, loadId: number, offset = 0) =>
      h.adminCommand(makeSqe({ opcode: ProgramOpcode.Load, cdw10: offset, cdw11: sixteenMiB, cdw12: loadId }), {
        dataOut: chunk,
      });
    const hoarders = await Promise.all(Array.from({ length: 4 }, () => connect(t, ATTACKER, 0)));
    const victim = await connect(t, VICTIM, 0);
    try {
      // Eight loads announcing 16 MiB each: the target holds only what arrived, up to the host's 96 KiB.
      const sent = await Promise.allSettled(hoarders.flatMap((h, i) => [0, 1].map((j) => sendChunk(h, i * 10 + j))));
      const refused = sent.filter((r) => r.status === 'rejected');
      assert.equal(refused.length, 2);
      for (const r of refused) assert.equal(programStatus((r as PromiseRejectedResult).reason), ProgramStatus.UploadQuota);
      assert.equal(t.target.programs.uploadBytes(ATTACKER), 96 << 10);
      await assert.rejects(sendChunk(hoarders[0], 99), (e: unknown) => programStatus(e) === ProgramStatus.UploadQuota);
      // Per association: four chunks of one load fill 64 KiB; the fifth is refused.
      const single = await connect(t, `${ATTACKER}-2`, 0);
      for (let i = 0; i < 4; i++) await sendChunk(single, 1, i * chunk.length);
      await assert.rejects(
        sendChunk(single, 1, 4 * chunk.length),
        (e: unknown) => programStatus(e) === ProgramStatus.UploadQuota,
      );
      // The victim loads a real program meanwhile (its image is small, the target cap still has room).
      const handle = await within(
        10_000,
        'victim load',
        new ProgramClient(victim).load(encodeProgram(assemble('mov %r0, 1\nexit')), { name: 'v' }),
      );
      assert.ok(handle > 0);
      // Idle loads are dropped after pendingLoadTimeoutMs; an ended association frees its loads at once.
      await sendChunk(single, 2);
      single.disconnect();
      await waitFor(() => t.target.programs.uploadBytes() === 0, 'all half-sent images released', 500);
    } finally {
      for (const h of hoarders) h.disconnect();
      await victim.close();
      await t.cleanup();
    }
  });

  it('memory hoarding: map and code memory are capped per tenant, each with its own status; another tenant still loads', async () => {
    const t = await startTestTarget({
      limits: { maxMapMemoryBytesPerTenant: 100_000, maxProgramMemoryBytesPerTenant: 64 * 200 },
    });
    const counter = await readFile(join(REPO_ROOT, 'examples', 'build', 'counter.o'));
    const attacker = await connect(t, ATTACKER, 0);
    const victim = await connect(t, VICTIM, 0);
    try {
      const a = new ProgramClient(attacker);
      await a.load(counter, { name: 'c1' });
      await a.load(counter, { name: 'c2' });
      await assert.rejects(a.load(counter, { name: 'c3' }), (e: unknown) => {
        return programStatus(e) === ProgramStatus.TenantMapMemory && /map memory/.test((e as Error).message);
      });
      const big = encodeProgram(assemble(`${'mov %r0, 1\n'.repeat(250)}exit`));
      await assert.rejects(a.load(big, { name: 'big' }), (e: unknown) => programStatus(e) === ProgramStatus.TenantProgramMemory);
      assert.ok(t.target.programs.memoryOf(ATTACKER).mapBytes <= 100_000);
      const v = new ProgramClient(victim);
      assert.ok((await v.load(counter, { name: 'c1' })) > 0);
      // Unloading gives the memory back.
      await a.unload((await a.find('c1'))!);
      assert.ok((await a.load(counter, { name: 'c3' })) > 0);
    } finally {
      await attacker.close();
      await victim.close();
      await t.cleanup();
    }
  });
});
