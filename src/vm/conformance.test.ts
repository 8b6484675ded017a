import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NearbpfError } from '../errors.js';
import { loadCaseProgram, readConformanceCases } from '../testing/conformance-data.js';
import { runConformance } from './conformance.js';
import type { EngineKind } from './engine.js';

const positive = readConformanceCases();
const negative = readConformanceCases('negative');

describe('bpf_conformance suite', () => {
  it('has the expected number of cases', () => {
    assert.equal(positive.length, 313);
    assert.equal(negative.length, 60);
  });

  for (const engine of ['interpreter', 'jit'] as EngineKind[]) {
    it(`passes all 313 positive tests on the ${engine}`, () => {
      const failures: string[] = [];
      for (const c of positive) {
        try {
          const { r0 } = runConformance(loadCaseProgram(c), c.memory, { engine });
          if (c.error !== undefined) failures.push(`${c.name}: expected error '${c.error}', got 0x${r0.toString(16)}`);
          else if (r0 !== c.result) failures.push(`${c.name}: r0 = 0x${r0.toString(16)}, expected 0x${c.result?.toString(16)}`);
        } catch (e) {
          if (c.error === undefined) failures.push(`${c.name}: ${(e as Error).message}`);
        }
      }
      assert.deepEqual(failures, []);
    });
  }

  it('the JIT in verified memory mode (no bounds checks) agrees on every case that expects no fault', () => {
    // Verified mode is for programs the verifier accepted; every case whose expected outcome is a
    // result (not an error) accesses only its memory, so it must run identically without checks.
    let cases = 0;
    for (const c of positive) {
      if (c.error !== undefined) continue;
      const program = loadCaseProgram(c);
      const checked = runConformance(program, c.memory, { engine: 'jit' });
      const verified = runConformance(program, c.memory, { engine: 'jit', memoryMode: 'verified' });
      assert.deepEqual([verified.r0, verified.fuelUsed, verified.memory], [checked.r0, checked.fuelUsed, checked.memory], c.name);
      assert.equal(verified.r0, c.result, c.name);
      cases++;
    }
    assert.ok(cases > 280, `${cases} cases`);
  });

  it('the JIT over a shared memory (Wasm atomics) agrees with the unshared one, in both memory modes', () => {
    let atomics = 0;
    for (const c of positive) {
      const program = loadCaseProgram(c);
      for (const memoryMode of ['checked', 'verified'] as const) {
        if (memoryMode === 'verified' && c.error !== undefined) continue;
        const outcome = (sharedMemory: boolean) => {
          try {
            const r = runConformance(program, c.memory, { engine: 'jit', memoryMode, sharedMemory });
            return [r.r0, r.fuelUsed, r.memory];
          } catch (e) {
            return [(e as Error).constructor.name, (e as Error).message];
          }
        };
        assert.deepEqual(outcome(true), outcome(false), `${c.name} (${memoryMode})`);
      }
      if (program.some((insn) => insn.kind === 'atomic')) atomics++;
    }
    assert.ok(atomics >= 20, `${atomics} cases with atomics`);
  });

  it('both engines leave the test memory identical', () => {
    for (const c of positive) {
      const program = loadCaseProgram(c);
      const a = runConformance(program, c.memory, { engine: 'interpreter' });
      const b = runConformance(program, c.memory, { engine: 'jit' });
      assert.deepEqual([b.r0, b.fuelUsed, b.memory], [a.r0, a.fuelUsed, a.memory], c.name);
    }
  });

  it('rejects every negative case at load', () => {
    const accepted: string[] = [];
    for (const c of negative) {
      try {
        const program = loadCaseProgram(c);
        // Two negative cases are well-formed programs whose stated outcome is wrong; they must not
        // reproduce it. The verifier rejects both at load (see src/verifier tests).
        const outcome = runConformance(program, c.memory, { engine: 'jit' });
        if (c.error === undefined && outcome.r0 === c.result) accepted.push(c.name);
      } catch (e) {
        assert.ok(e instanceof NearbpfError, `${c.name}: untyped error ${e}`);
      }
    }
    assert.deepEqual(accepted, []);
  });
});
