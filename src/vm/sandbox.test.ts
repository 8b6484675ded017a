/**
 * Hostile programs against the sandbox: whatever an unverified program does, both engines fault
 * cleanly and nothing outside its sandbox changes; a program wrongly compiled in `verified` mode (a
 * verifier bug) can touch only its own linear memory, and an access beyond it is a typed error.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallDepthError, ExecutionError, MemoryAccessError } from '../errors.js';
import { assemble } from '../isa/index.js';
import { createSandbox, type Engine, type EngineKind, STACK_REGION_ID } from './engine.js';
import { helperTable } from './helpers.js';
import { Interpreter } from './interpreter.js';
import { BOUNDARY, boundaryBlockAddress } from './jit/compile.js';
import { JitEngine, type MemoryMode, SandboxTrapError } from './jit/engine.js';
import { NULL_GUARD_BYTES, type SandboxMemory } from './memory.js';

const DATA = 2;
const RODATA = 3;

function sandbox(): SandboxMemory {
  const memory = createSandbox([
    { name: 'data', sizeBytes: 64, writable: true },
    { name: 'rodata', sizeBytes: 64, writable: false },
  ]);
  memory.bytes(DATA).fill(0x11);
  memory.bytes(RODATA).fill(0x22);
  return memory;
}

function engine(kind: EngineKind, source: string, memory: SandboxMemory, memoryMode: MemoryMode = 'checked'): Engine {
  const options = { helpers: helperTable([]), memory };
  return kind === 'jit'
    ? new JitEngine(assemble(source), { ...options, memoryMode })
    : new Interpreter(assemble(source), options);
}

/** r1 = data, r2 = rodata, r3 = the stack's lowest byte, r4 = one past the sandbox's last byte. */
function args(memory: SandboxMemory): bigint[] {
  return [memory.address(DATA), memory.address(RODATA), memory.lowAddress, memory.readableEnd].map(BigInt);
}

const stores = ['stb', 'sth', 'stw', 'stdw'];
const hostile: [string, string][] = [
  ['store through NULL', 'mov %r5, 0\nstdw [%r5], 1\nexit'],
  ['store just below the sandbox (in the NULL guard)', 'stb [%r3-1], 1\nexit'],
  ['store at the largest negative offset from the stack', 'stdw [%r3-32768], 1\nexit'],
  ['store past the end of the sandbox', 'stb [%r4], 1\nexit'],
  ['8-byte store straddling the end of the sandbox', 'stdw [%r4-4], 1\nexit'],
  ['store into a read-only region', 'stw [%r2+8], 1\nexit'],
  ['store at a negative address', 'mov %r5, -16\nstdw [%r5], 1\nexit'],
  ['store at 2^32 + a valid address', 'mov %r5, 1\nlsh %r5, 32\nadd %r5, %r1\nstb [%r5], 1\nexit'],
  ['store at a huge address', 'lddw %r5, 0x7fffffffffff0000\nstw [%r5], 1\nexit'],
  ['atomic add on a read-only region', 'mov %r5, 1\nlock add [%r2], %r5\nexit'],
  ['atomic xchg past the end', 'mov %r5, 1\nlock xchg [%r4-4], %r5\nexit'],
  ['atomic cmpxchg through NULL', 'mov %r0, 0\nmov %r5, 1\nlock cmpxchg [%r0+8], %r5\nexit'],
  ['32-bit atomic fetch-or straddling the end', 'mov %r5, 1\nlock fetch or32 [%r4-2], %r5\nexit'],
  ['load past the end', 'ldxdw %r0, [%r4]\nexit'],
  ['stack overflow through unbounded recursion', 'call local f\nexit\nf:\nstdw [%r10-8], 1\ncall local f\nexit'],
  ...stores.map((op): [string, string] => [
    `${op} through a wild pointer from a loop`,
    `lddw %r5, 0xdeadbeef00\nmov %r6, 0\nl:\n${op} [%r5], 7\nadd %r5, 4096\nadd %r6, 1\njlt %r6, 64, l\nexit`,
  ]),
];

describe('hostile programs in checked mode (both engines)', () => {
  for (const kind of ['interpreter', 'jit'] as EngineKind[]) {
    for (const [name, source] of hostile) {
      it(`${name} [${kind}]`, () => {
        const memory = sandbox();
        const neighbour = sandbox();
        const before = new Uint8Array(memory.memory.buffer).slice();
        const neighbourBefore = new Uint8Array(neighbour.memory.buffer).slice();
        assert.throws(
          () => engine(kind, source, memory).run(args(memory), { fuel: 1_000_000 }),
          (e: unknown) => e instanceof MemoryAccessError || e instanceof CallDepthError,
        );
        const after = new Uint8Array(memory.memory.buffer);
        // Only the stack and the writable data region may differ; the guard and read-only bytes never,
        // but for the JIT's boundary block, where the host itself passes registers in and out.
        const block = boundaryBlockAddress(STACK_REGION_ID);
        assert.deepEqual(after.subarray(0, block), before.subarray(0, block));
        assert.deepEqual(
          after.subarray(block + BOUNDARY.sizeBytes, NULL_GUARD_BYTES),
          before.subarray(block + BOUNDARY.sizeBytes, NULL_GUARD_BYTES),
        );
        assert.deepEqual(memory.bytes(RODATA), new Uint8Array(64).fill(0x22));
        assert.deepEqual(after.subarray(memory.readableEnd), before.subarray(memory.readableEnd));
        assert.deepEqual(new Uint8Array(neighbour.memory.buffer), neighbourBefore);
      });
    }
  }
});

describe('a verifier bug, simulated: hostile programs compiled in verified mode', () => {
  for (const [name, source] of hostile) {
    it(name, () => {
      const memory = sandbox();
      const neighbour = sandbox();
      const neighbourBefore = new Uint8Array(neighbour.memory.buffer).slice();
      try {
        engine('jit', source, memory, 'verified').run(args(memory), { fuel: 1_000_000 });
      } catch (e) {
        // Beyond the linear memory Wasm traps (a typed SandboxTrapError); the fuel, call-depth and
        // helper checks stay in place in either mode.
        assert.ok(e instanceof SandboxTrapError || e instanceof ExecutionError, `untyped: ${e}`);
      }
      // Whatever it did stayed in its own linear memory: the neighbour's is untouched.
      assert.deepEqual(new Uint8Array(neighbour.memory.buffer), neighbourBefore);
    });
  }

  it('an access beyond the linear memory is a SandboxTrapError, and the engine stays usable', () => {
    const memory = sandbox();
    const jit = engine(
      'jit',
      'jeq %r1, 0, out\nlddw %r5, 0x7ffffff0\nldxdw %r0, [%r5]\nexit\nout:\nmov %r0, 0\nexit',
      memory,
      'verified',
    );
    assert.throws(() => jit.run(args(memory), { fuel: 100 }), SandboxTrapError);
    assert.equal(jit.run([0n], { fuel: 100 }).r0, 0n);
  });
});
