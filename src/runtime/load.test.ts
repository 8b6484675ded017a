import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProgramLoadError } from '../errors.js';
import { assemble, type Program } from '../isa/index.js';
import type { JitEngine } from '../vm/jit/engine.js';
import { MemoryNamespace } from './namespace.js';
import { StorageRuntime } from './runtime.js';
import { StorageFunction } from './storage-function.js';

class Refused extends Error {}

const RETURNS_41 = assemble('mov %r0, 41\nadd %r0, 1\nexit');

describe('loading: the program compiles while the verifier runs', () => {
  it('compiles before the verdict, and instantiates only after acceptance', async () => {
    let sawVerify = false;
    const runtime: StorageRuntime = new StorageRuntime({
      verify: async (): Promise<void> => {
        sawVerify = true;
        // The function exists (and compiles) during verification, but nothing of it is loaded or runnable yet.
        assert.deepEqual(runtime.list('t'), []);
        assert.equal(runtime.functionOf('t', 'p'), undefined);
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
      memoryMode: 'verified',
    });
    await runtime.load('t', 'p', RETURNS_41);
    assert.ok(sawVerify);
    const fn = runtime.functionOf('t', 'p');
    assert.ok(fn?.engine !== undefined && fn.jit !== undefined);
    assert.ok(fn.jit.stats.compileMs >= 0 && fn.jit.stats.wasmSizeBytes > 0);
    const result = await runtime.execute('t', 'p', { reader: new MemoryNamespace(new Uint8Array(4096)), params: [0n, 0n] });
    assert.equal(result.returnValue, 42n);
  });

  it('reports the verdict, not the speculative build, when both fail; the name stays free', async () => {
    const failingLink = { instructions: RETURNS_41, link: (): Program => assert.fail('the link fails') };
    const refusing = new StorageRuntime({
      verify: () => {
        throw new Refused('rejected');
      },
    });
    await assert.rejects(refusing.load('t', 'p', failingLink), Refused);
    await assert.rejects(refusing.load('t', 'p', RETURNS_41), Refused);
    assert.deepEqual(refusing.list('t'), []);
    // An accepted program whose build fails reports the build's error.
    const accepting = new StorageRuntime({ verify: () => {} });
    await assert.rejects(accepting.load('t', 'p', failingLink), /the link fails/);
    await accepting.load('t', 'p', RETURNS_41);
    assert.equal(accepting.list('t').length, 1);
  });

  it('reports a compile error (here an unknown helper) after acceptance, typed', async () => {
    const runtime = new StorageRuntime({ verify: () => {} });
    await assert.rejects(runtime.load('t', 'p', assemble('call 9999\nexit')), ProgramLoadError);
    assert.deepEqual(runtime.list('t'), []);
  });
});

describe('StorageFunction compile modes', () => {
  const options = { name: 'f', program: RETURNS_41, slots: 2 } as const;

  it('`later`: no engine until compiled and instantiated', async () => {
    const fn = new StorageFunction({ ...options, compile: 'later' });
    assert.equal(fn.engine, undefined);
    assert.equal(fn.jit, undefined);
    assert.throws(() => fn.instantiate(), ProgramLoadError);
    await fn.compileAsync();
    assert.equal(fn.engine, undefined);
    fn.instantiate();
    const engine = fn.engine as JitEngine | undefined;
    assert.ok(engine !== undefined);
    assert.equal(engine.runAddress(0, 100, true), 3);
    assert.equal(engine.r0(), 42n);
  });

  it('a threads copy hands its compiled program to the threads, which instantiate it without compiling', async () => {
    const main = new StorageFunction({ ...options, threads: 2, compile: 'later' });
    assert.equal(main.shareable().jit, undefined);
    await main.compileAsync();
    main.instantiate();
    assert.equal(main.engine, undefined, 'the threads copy runs nothing itself');
    const shared = main.shareable();
    assert.ok(shared.jit !== undefined);
    const worker = new StorageFunction({ ...options, attach: { ...shared, threadIndex: 1 } });
    assert.equal(worker.jit?.module, shared.jit.module, 'the same compiled module');
    assert.ok(worker.engine !== undefined);
    worker.engine.runAddress(0, 100, true);
    assert.equal(worker.engine.r0(), 42n);
    // Without a compiled program, the thread compiles its own (the way before).
    const plain = new StorageFunction({ ...options, threads: 2 });
    assert.equal(plain.shareable().jit, undefined);
    const own = new StorageFunction({ ...options, attach: { ...plain.shareable(), threadIndex: 1 } });
    assert.ok(own.jit !== undefined && own.engine !== undefined);
  });

  it('refuses a compiled program of the other memory mode', async () => {
    const main = new StorageFunction({ ...options, threads: 2, memoryMode: 'verified', compile: 'later' });
    await main.compileAsync();
    assert.throws(
      () => new StorageFunction({ ...options, memoryMode: 'checked', attach: { ...main.shareable(), threadIndex: 1 } }),
      ProgramLoadError,
    );
  });
});
