/**
 * Differential test: thousands of generated programs must behave identically on the interpreter
 * and the JIT, and the generator must really produce every instruction kind and every outcome.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { disassemble, layoutProgram } from '../isa/index.js';
import { ALL_INSTRUCTION_KINDS, generateProgram, generatorHelpers } from '../testing/program-generator.js';
import { compareEngines, describeDifference, describeOutcome, type Outcome } from './differential.js';
import { type FuzzSummary, fuzz } from './differential-cli.js';

/** Fixed seeds, so a failure reproduces with `node dist/vm/differential-cli.js --seed <seed> --count 1`. */
const FIRST_SEED = 1;
const PROGRAM_COUNT = 3000;

describe('interpreter and JIT agree on generated programs', () => {
  let summary: FuzzSummary;
  before(() => {
    summary = fuzz(FIRST_SEED, PROGRAM_COUNT);
  });

  it(`agree on all ${PROGRAM_COUNT} programs`, () => {
    assert.equal(summary.programs, PROGRAM_COUNT);
    if (summary.first !== undefined) {
      const { generated, comparison } = summary.first;
      assert.fail(
        [
          `${summary.disagreements} disagreement(s); first at seed ${generated.seed}: ${comparison.diff}`,
          `interpreter: ${describeOutcome(comparison.interpreter)}`,
          `jit:         ${describeOutcome(comparison.jit)}`,
          disassemble(generated.program, { labels: true, pcs: true }),
        ].join('\n'),
      );
    }
  });

  it('run most fault-free programs in verified memory mode too, with the same outcomes', () => {
    // The programs that made no memory fault are rerun with the JIT's unchecked loads and stores.
    assert.ok(summary.verifiedCompared >= PROGRAM_COUNT / 2, `${summary.verifiedCompared} compared`);
  });

  it('cover every instruction kind', () => {
    const missing = ALL_INSTRUCTION_KINDS.filter((k) => !summary.instructionKinds.has(k));
    assert.deepEqual(missing, []);
  });

  it('produce every outcome', () => {
    const expected = [
      'ok',
      'stop',
      'ERR_MEMORY_ACCESS(read)',
      'ERR_MEMORY_ACCESS(write)',
      'ERR_FUEL_EXHAUSTED',
      'ERR_CALL_DEPTH',
      'ERR_HELPER',
      'ERR_UNKNOWN_HELPER',
    ];
    const seen = Object.fromEntries(expected.map((k) => [k, summary.outcomes.get(k) ?? 0]));
    assert.deepEqual(
      expected.filter((k) => seen[k] === 0),
      [],
      JSON.stringify(seen),
    );
    // Most programs should run to the end, or the interesting code after a fault is never reached.
    assert.ok((summary.outcomes.get('ok') ?? 0) > PROGRAM_COUNT / 2, JSON.stringify(seen));
  });

  it('exercise bounds checks hoisted out of unrolled loops (walking pointers), faulting ones too', () => {
    assert.ok(summary.hoistingPrograms >= PROGRAM_COUNT / 10, `${summary.hoistingPrograms} programs`);
    assert.ok(summary.hoistingMemoryFaults >= 50, `${summary.hoistingMemoryFaults} faulting`);
  });

  it('exercise both structured and dispatched (irreducible) functions', () => {
    assert.ok(summary.dispatchedFunctions >= 100, `${summary.dispatchedFunctions} dispatched`);
    assert.ok(summary.structuredFunctions > summary.dispatchedFunctions);
  });
});

describe('program generator', () => {
  it('is deterministic and produces well-formed programs', () => {
    for (let seed = 0; seed < 200; seed++) {
      const a = generateProgram(seed);
      const b = generateProgram(seed);
      assert.deepEqual(a, b);
      assert.doesNotThrow(() => layoutProgram(a.program));
    }
    assert.notDeepEqual(generateProgram(1).program, generateProgram(2).program);
  });
});

describe('compareEngines', () => {
  const base = {
    kind: 'ok',
    r0: 1n,
    fuelUsed: 5,
    stopped: false,
    memory: new Uint8Array(4),
    stack: new Uint8Array(4),
  } as const;
  const fault: Outcome = {
    kind: 'error',
    code: 'ERR_MEMORY_ACCESS',
    pc: 3,
    detail: 'MemoryAccessError: pc 3: invalid read of 8 bytes at 0x0',
    access: 'read',
    memory: new Uint8Array(4),
    stack: new Uint8Array(4),
  };

  it('sees every kind of difference', () => {
    assert.equal(describeDifference(base, { ...base }), undefined);
    assert.match(describeDifference(base, { ...base, r0: 2n }) ?? '', /^r0/);
    assert.match(describeDifference(base, { ...base, fuelUsed: 6 }) ?? '', /^fuelUsed/);
    assert.match(describeDifference(base, { ...base, stopped: true }) ?? '', /^stopped/);
    assert.match(
      describeDifference(base, { ...base, memory: Uint8Array.of(0, 0, 1, 0) }) ?? '',
      /data region differs at offset 2/,
    );
    assert.match(describeDifference(base, { ...base, stack: Uint8Array.of(1, 0, 0, 0) }) ?? '', /stack differs at offset 0/);
    assert.ok(describeDifference(base, fault) !== undefined);
    assert.equal(describeDifference(fault, { ...fault }), undefined);
    assert.ok(describeDifference(fault, { ...fault, pc: 4 }) !== undefined);
    assert.ok(
      describeDifference(fault, { ...fault, detail: 'MemoryAccessError: pc 3: invalid read of 4 bytes at 0x0' }) !== undefined,
    );
    assert.match(describeDifference(fault, { ...fault, code: 'UNTYPED' }) ?? '', /untyped/);
  });

  it('runs both engines and reports their outcomes', () => {
    const { program, data, readOnly, fuel, args } = generateProgram(7);
    const c = compareEngines(program, { memory: data, readOnlyMemory: readOnly, fuel, helpers: generatorHelpers(), args });
    assert.ok(c.agree, c.diff);
    assert.deepEqual(c.interpreter, c.jit);
    assert.ok(c.structured !== undefined && c.structured.length >= 1);
  });
});
