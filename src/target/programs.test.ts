import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient, ProgramCommandError } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { NvmeStatusError } from '../protocol/errors.js';
import { ProgramOpcode } from '../protocol/programs.js';
import { makeSqe } from '../protocol/sqe.js';
import { LIST_WALK_ASM } from '../testing/storage-programs.js';
import { SUBNQN, startTestTarget, TEST_HOST_NQN, type TestTarget } from './test-helpers.js';

const LIST_WALK = LIST_WALK_ASM;

const bytecode = (source: string) => encodeProgram(assemble(source));

// Both ways an Execute runs: steps on the execution workers (the default), and on the I/O thread
// (`executionWorkers: 0`), where a cached execution is answered in the turn it started in.
for (const [mode, programsConfig] of [
  ['on execution workers', undefined],
  ['steps on the I/O thread', { executionWorkers: 0 }],
] as const) {
  describe(`storage functions over NVMe/TCP (${mode})`, () => {
    let t: TestTarget;
    let host: NvmeTcpHost;
    let programs: ProgramClient;
    const values = Array.from({ length: 10 }, (_, i) => BigInt(i * i + 1));
    const head = 8192;

    before(async () => {
      t = await startTestTarget(programsConfig === undefined ? {} : { programs: programsConfig });
      host = await NvmeTcpHost.connect({
        hostNqn: TEST_HOST_NQN,
        host: '127.0.0.1',
        port: t.address.port,
        subsystemNqn: SUBNQN,
        ioQueues: 2,
      });
      programs = new ProgramClient(host);
      // A linked list at 8 KiB, 1 KiB apart, written through plain NVMe writes.
      const image = Buffer.alloc(16 * 1024);
      values.forEach((v, i) => {
        const at = head + i * 512;
        image.writeBigUInt64LE(v, at);
        image.writeBigUInt64LE(i + 1 < values.length ? BigInt(at + 512) : 0n, at + 8);
      });
      await host.write(1, 0, image);
    });

    after(async () => {
      await host?.close();
      await t?.cleanup();
    });

    it('loads a program, runs a chain of reads in one command, lists and unloads it', async () => {
      const handle = await programs.load(bytecode(LIST_WALK), { name: 'walk' });
      const result = await programs.execute(handle, { nsid: 1, params: [BigInt(head), 0n] });
      const sum = values.reduce((a, b) => a + b);
      assert.equal(result.returnValue, sum);
      assert.equal(result.output.readBigUInt64LE(0), sum);
      assert.equal(result.stats.steps, values.length + 1);
      assert.equal(result.stats.reads, values.length);
      const listed = await programs.list();
      assert.equal(listed.length, 1);
      assert.equal(listed[0].name, 'walk');
      assert.equal(listed[0].executions, 1);
      await programs.unload(handle);
      assert.deepEqual(await programs.list(), []);
      await assert.rejects(
        programs.execute(handle, { nsid: 1 }),
        (e: unknown) => e instanceof ProgramCommandError && e.status === 'UnknownProgram',
      );
    });

    it('surfaces a verifier rejection with its log', async () => {
      await assert.rejects(
        programs.load(bytecode('ldxdw %r0, [%r1+200]\nexit'), { name: 'bad' }),
        (e: unknown) =>
          e instanceof ProgramCommandError &&
          e.status === 'Rejected' &&
          e.targetCode === 'ERR_VERIFIER_REJECTED' &&
          (e.log ?? '').length > 0,
      );
    });

    it('refuses a duplicate name and a corrupt image', async () => {
      const handle = await programs.load(bytecode('mov %r0, 7\nexit'), { name: 'seven' });
      await assert.rejects(
        programs.load(bytecode('mov %r0, 7\nexit'), { name: 'seven' }),
        (e: unknown) => e instanceof ProgramCommandError && e.status === 'NameInUse',
      );
      await assert.rejects(
        programs.load(Uint8Array.from([1, 2, 3]), { name: 'junk' }),
        (e: unknown) => e instanceof ProgramCommandError && e.status === 'BadImage',
      );
      const r = await programs.execute(handle, { nsid: 1 });
      assert.equal(r.returnValue, 7n);
      await programs.unload(handle);
    });

    it('ends an execution over budget with its own status, and the target goes on', async () => {
      // A list longer than the 1024-step budget.
      const long = Buffer.alloc(1100 * 512);
      const base = 1 << 20;
      for (let i = 0; i < 1100; i++) {
        long.writeBigUInt64LE(1n, i * 512);
        long.writeBigUInt64LE(i + 1 < 1100 ? BigInt(base + (i + 1) * 512) : 0n, i * 512 + 8);
      }
      await host.write(1, base / 512, long);
      const handle = await programs.load(bytecode(LIST_WALK), { name: 'long-walk' });
      await assert.rejects(
        programs.execute(handle, { nsid: 1, params: [BigInt(base), 0n] }),
        (e: unknown) => e instanceof ProgramCommandError && e.status === 'BudgetSteps' && /steps budget of 1024/.test(e.message),
      );
      // Output larger than the buffer the host offered.
      await assert.rejects(
        programs.execute(handle, { nsid: 1, params: [BigInt(head), 0n], maxOutputBytes: 4 }),
        (e: unknown) => e instanceof ProgramCommandError && e.status === 'OutputTooLarge',
      );
      const ok = await programs.execute(handle, { nsid: 1, params: [BigInt(head), 0n] });
      assert.equal(
        ok.returnValue,
        values.reduce((a, b) => a + b),
      );
      await programs.unload(handle);
    });

    it('refuses to load a program the verifier cannot prove terminates', async () => {
      await assert.rejects(
        programs.load(bytecode('mov %r0, 0\nloop:\nadd %r0, 1\nja loop'), { name: 'spin' }),
        (e: unknown) => e instanceof ProgramCommandError && e.status === 'Rejected',
      );
    });

    it('passes an input blob with EXECUTE_WITH_INPUT and returns output', async () => {
      // Emits the input back and returns its length.
      const handle = await programs.load(
        bytecode(`
        mov %r6, %r1
        ldxdw %r2, [%r6+32]     # input_len
        jeq %r2, 0, empty
        jgt %r2, 4096, empty
        ldxdw %r1, [%r6+24]     # input
        call 101
      empty:
        ldxdw %r0, [%r6+32]
        exit`),
        { name: 'echo' },
      );
      const input = Buffer.from('hello, storage');
      const r = await programs.execute(handle, { nsid: 1, input });
      assert.equal(r.returnValue, BigInt(input.length));
      assert.deepEqual(r.output, input);
      await programs.unload(handle);
    });

    it('keeps programs private to their host', async () => {
      const handle = await programs.load(bytecode('mov %r0, 1\nexit'), { name: 'mine' });
      const other = await NvmeTcpHost.connect({
        host: '127.0.0.1',
        port: t.address.port,
        subsystemNqn: SUBNQN,
        hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:another-tenant',
        ioQueues: 1,
      });
      try {
        const theirs = new ProgramClient(other);
        assert.deepEqual(await theirs.list(), []);
        await assert.rejects(
          theirs.execute(handle, { nsid: 1 }),
          (e: unknown) => e instanceof ProgramCommandError && e.status === 'UnknownProgram',
        );
        await assert.rejects(
          theirs.unload(handle),
          (e: unknown) => e instanceof ProgramCommandError && e.status === 'UnknownProgram',
        );
      } finally {
        await other.close();
      }
      await programs.unload(handle);
    });

    it('shares a program’s maps between executions and with the host', async () => {
      const { readFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const { REPO_ROOT } = await import('../testing/conformance-data.js');
      const handle = await programs.load(readFileSync(join(REPO_ROOT, 'examples', 'build', 'counter.o')), { name: 'counter' });
      const run = async (key: bigint) => (await programs.execute(handle, { nsid: 1, params: [key, 0n] })).returnValue;
      assert.equal(await run(7n), 1n);
      assert.equal(await run(7n), 2n);
      assert.equal(await run(8n), 1n);
      const maps = await programs.maps(handle);
      assert.deepEqual(maps, [{ name: 'counts', type: 'hash', keySizeBytes: 8, valueSizeBytes: 8, maxEntries: 1024 }]);
      const u64 = (n: bigint) => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(n);
        return b;
      };
      const entries = await programs.mapEntries(handle, 0);
      assert.deepEqual(
        new Map(entries.map((e) => [e.key.readBigUInt64LE(0), e.value.readBigUInt64LE(0)])),
        new Map([
          [7n, 2n],
          [8n, 1n],
        ]),
      );
      await programs.mapUpdate(handle, 0, u64(7n), u64(100n));
      assert.equal(await run(7n), 101n);
      await programs.mapDelete(handle, 0, u64(7n));
      assert.equal(await run(7n), 1n);
      await assert.rejects(
        programs.mapDelete(handle, 0, u64(12345n)),
        (e: unknown) => e instanceof ProgramCommandError && e.status === 'MapOperationFailed',
      );
      await assert.rejects(programs.mapUpdate(handle, 0, u64(1n), Buffer.alloc(3)), NvmeStatusError);
      await programs.unload(handle);
    });

    it('runs many concurrent executions from several hosts, each getting its own results', async () => {
      const hosts = await Promise.all(
        [1, 2, 3].map((i) =>
          NvmeTcpHost.connect({
            host: '127.0.0.1',
            port: t.address.port,
            subsystemNqn: SUBNQN,
            hostNqn: `nqn.2014-08.org.nvmexpress:uuid:concurrent-${i}`,
            ioQueues: 2,
          }),
        ),
      );
      try {
        const sum = values.reduce((a, b) => a + b);
        await Promise.all(
          hosts.map(async (h, i) => {
            const client = new ProgramClient(h);
            // Same name on every host: names are per tenant.
            const handle = await client.load(bytecode(LIST_WALK), { name: 'walk' });
            const results = await Promise.all(
              Array.from({ length: 8 }, (_, k) =>
                client.execute(handle, { nsid: 1, params: [BigInt(head + (k % values.length) * 512), 0n] }),
              ),
            );
            results.forEach((r, k) => {
              const start = k % values.length;
              assert.equal(
                r.returnValue,
                values.slice(start).reduce((a, b) => a + b, 0n),
                `host ${i} execution ${k}`,
              );
            });
            assert.equal(results[0].returnValue, sum);
            await client.unload(handle);
          }),
        );
      } finally {
        await Promise.all(hosts.map((h) => h.close()));
      }
    });

    it('answers malformed program commands with an NVMe status', async () => {
      // A chunk out of sequence, an unknown message, a bidirectional command on the admin queue.
      await assert.rejects(
        host.adminCommand(makeSqe({ opcode: ProgramOpcode.Load, cdw10: 100, cdw11: 1000, cdw12: 5 }), {
          dataOut: Buffer.alloc(10),
        }),
        NvmeStatusError,
      );
      await assert.rejects(
        host.adminCommand(makeSqe({ opcode: ProgramOpcode.GetMessage, cdw10: 9 }), { dataInBytes: 100 }),
        NvmeStatusError,
      );
      await assert.rejects(
        host.ioCommand(makeSqe({ opcode: ProgramOpcode.Execute, nsid: 1, cdw12: 999 }), { dataInBytes: 100 }),
        NvmeStatusError,
      );
      await assert.rejects(
        host.ioCommand(makeSqe({ opcode: ProgramOpcode.Execute, nsid: 77, cdw12: 1 }), { dataInBytes: 100 }),
        NvmeStatusError,
      );
      // The connection still works.
      assert.equal((await host.read(1, 16, 1)).readBigUInt64LE(0), values[0]);
    });
  });
}

describe('storage-function limits per tenant, from the configuration', () => {
  it('parses defaults and per-host overrides and refuses bad values', async () => {
    const { validateConfig } = await import('./config.js');
    const c = validateConfig({ programs: { defaults: { maxSteps: 100 }, tenants: { 'nqn.x': { maxSteps: 3 } } } });
    assert.equal(c.programs.defaults.maxSteps, 100);
    assert.equal(c.programs.tenants.get('nqn.x')?.maxSteps, 3);
    assert.equal(c.programs.tenants.get('nqn.x')?.maxOutputBytes, c.programs.defaults.maxOutputBytes);
    assert.throws(() => validateConfig({ programs: { defaults: { maxSteps: 0 } } }), /programs\.defaults\.maxSteps/);
    assert.throws(() => validateConfig({ programs: { defaults: { maxReadsPerStep: 99 } } }), /maxReadsPerStep/);
    assert.throws(() => validateConfig({ programs: { defaults: { bogus: 1 } } }), /bogus/);
  });

  it('applies a tenant’s own step budget', async () => {
    const strict = 'nqn.2014-08.org.nvmexpress:uuid:strict-tenant';
    const t = await startTestTarget();
    // Restart-free: build a second target whose config limits one host to 3 steps.
    const { startTarget } = await import('./target.js');
    const handle = await startTarget({
      config: {
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: t.dir,
        programs: { tenants: { [strict]: { maxSteps: 3 } } },
        subsystems: [{ nqn: SUBNQN, namespaces: [{ nsid: 1, path: 'limits.img', sizeBytes: 1 << 20, blockSize: 512 }] }],
      },
    });
    try {
      const connectAs = (hostNqn: string) =>
        NvmeTcpHost.connect({ host: '127.0.0.1', port: handle.address.port, subsystemNqn: SUBNQN, hostNqn, ioQueues: 1 });
      const image = Buffer.alloc(4096);
      for (let i = 0; i < 4; i++) {
        image.writeBigUInt64LE(1n, 1024 + i * 512);
        image.writeBigUInt64LE(i < 3 ? BigInt(1024 + (i + 1) * 512) : 0n, 1024 + i * 512 + 8);
      }
      const strictHost = await connectAs(strict);
      const relaxedHost = await connectAs('nqn.2014-08.org.nvmexpress:uuid:relaxed-tenant');
      try {
        await strictHost.write(1, 0, image);
        for (const [host, ok] of [
          [strictHost, false],
          [relaxedHost, true],
        ] as const) {
          const programs = new ProgramClient(host);
          const handleOf = await programs.load(bytecode(LIST_WALK), { name: 'walk' });
          const run = programs.execute(handleOf, { nsid: 1, params: [1024n, 0n] });
          if (ok) assert.equal((await run).returnValue, 4n);
          else await assert.rejects(run, (e: unknown) => e instanceof ProgramCommandError && e.status === 'BudgetSteps');
        }
      } finally {
        await strictHost.close();
        await relaxedHost.close();
      }
    } finally {
      await handle.close();
      await t.cleanup();
    }
  });
});
