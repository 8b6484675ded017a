import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryAccessError } from '../errors.js';
import { assemble } from '../isa/index.js';
import { MapMemoryLimitError } from '../maps/index.js';
import { SandboxTrapError } from '../vm/jit/engine.js';
import { createProgramEnvironment } from './environment.js';
import { EnvironmentError, ProgramNotFoundError } from './errors.js';
import { exampleObject } from './fixtures.js';
import type { LoadedMap, LoadedObject } from './object.js';
import { loadObject } from './object.js';

const counter: LoadedMap = {
  name: 'counter',
  type: 'array',
  keySizeBytes: 4,
  valueSizeBytes: 8,
  maxEntries: 1,
  flags: 0,
  origin: 'btf',
  section: '.maps',
  readonly: false,
};

function objectOf(source: string, maps: LoadedMap[] = [counter]): LoadedObject {
  const instructions = assemble(source);
  return {
    license: 'GPL',
    maps,
    programs: [
      {
        name: 'p',
        section: 'conformance',
        programType: 'conformance',
        instructions,
        lineInfo: [],
        functions: [],
        relocations: [],
      },
    ],
  };
}

describe('program environment', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`map values are sandbox memory the ${engine} bounds-checks`, () => {
      // Look up entry 0, add 5 to it, return the new value.
      const program = `
        stw [%r10-4], 0
        lddw %r1, map_by_idx 0
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, +4
        ldxdw %r1, [%r0]
        add %r1, 5
        stxdw [%r0], %r1
        mov %r0, %r1
        exit`;
      const env = createProgramEnvironment(objectOf(program));
      assert.equal(env.run(new Uint8Array(0), { engine }).r0, 5n);
      assert.equal(env.run(new Uint8Array(0), { engine }).r0, 10n);
      const outOfBounds = program.replace('ldxdw %r1, [%r0]', 'ldxdw %r1, [%r0+8]');
      assert.throws(() => createProgramEnvironment(objectOf(outOfBounds)).run(new Uint8Array(0), { engine }), MemoryAccessError);
      // Dereferencing the map reference itself faults.
      const derefMap = 'lddw %r1, map_by_idx 0\nldxdw %r0, [%r1]\nexit';
      assert.throws(() => createProgramEnvironment(objectOf(derefMap)).run(new Uint8Array(0), { engine }), MemoryAccessError);
    });
  }

  it('compiles the JIT in the memory mode asked for: checked faults cleanly, verified leaves it to Wasm', () => {
    const sum = loadObject(exampleObject('sum.o'));
    const input = Uint8Array.from([1, 2, 3, 4]);
    for (const memoryMode of ['checked', 'verified'] as const) {
      assert.equal(createProgramEnvironment(sum, 'sum', { memoryMode }).run(input, { engine: 'jit' }).r0, 10n);
    }
    // Far past the sandbox: only the checked code's own compare stands between the program and it.
    const wild = objectOf('mov %r2, 0x7fff0000\nadd %r1, %r2\nldxb %r0, [%r1]\nexit', []);
    const run = (memoryMode: 'checked' | 'verified') => () =>
      createProgramEnvironment(wild, undefined, { memoryMode }).run(input, { engine: 'jit' });
    assert.throws(run('checked'), MemoryAccessError);
    assert.throws(run('verified'), SandboxTrapError);
  });

  it('refuses inputs larger than program memory, unknown programs and too much map memory', () => {
    const object = loadObject(exampleObject('sum.o'));
    const env = createProgramEnvironment(object, 'sum', { memorySizeBytes: 4 });
    assert.equal(env.run(Uint8Array.from([1, 2, 3, 4]), { engine: 'interpreter' }).r0, 10n);
    assert.throws(() => env.run(new Uint8Array(5), { engine: 'interpreter' }), EnvironmentError);
    assert.throws(() => createProgramEnvironment(object, 'nope'), ProgramNotFoundError);
    assert.throws(() => createProgramEnvironment(loadObject(exampleObject('calls.o'))), ProgramNotFoundError);
    assert.throws(
      () => createProgramEnvironment(loadObject(exampleObject('hashmap.o')), undefined, { mapMemoryLimitBytes: 1024 }),
      MapMemoryLimitError,
    );
  });

  it('trace_printk formats its arguments into the log, bounded', () => {
    // The format " %d %u" (7 bytes with its NUL) is built on the stack; both arguments are -1.
    const program = `
      stdw [%r10-16], 0
      lddw %r1, 0x00752520642520
      stxdw [%r10-16], %r1
      mov %r1, %r10
      add %r1, -16
      mov %r2, 7
      mov %r3, -1
      mov %r4, -1
      call 6
      exit`;
    const env = createProgramEnvironment(objectOf(program, []), undefined, { maxLogLines: 1 });
    const run = env.run(new Uint8Array(0), { engine: 'interpreter' });
    assert.deepEqual(run.log, [' -1 4294967295']);
    env.run(new Uint8Array(0), { engine: 'jit' });
    assert.equal(env.log.lines.length, 1);
    assert.equal(env.log.dropped, 1);
  });
});
