import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { STORAGE_FUNCTION } from '../abi/storage.js';
import { verifyProgram } from '../verifier/index.js';
import type { EngineKind } from '../vm/engine.js';
import { createProgramEnvironment } from './environment.js';
import { caseMemory, EXAMPLES_BUILD_DIR, exampleObject, exampleObjectNames, expectedCases } from './fixtures.js';
import { loadObject } from './object.js';

const ENGINES: EngineKind[] = ['interpreter', 'jit'];

/** Run every expected case on objects from `dir`; returns the failures as text. */
function checkCases(dir: string, engine: EngineKind): string[] {
  const failures: string[] = [];
  for (const c of expectedCases()) {
    const label = `${c.object}/${c.program} on ${engine}`;
    try {
      // A fresh environment per case: maps and globals start from their initial values.
      const env = createProgramEnvironment(loadObject(exampleObject(c.object, dir)), c.program);
      const run = env.run(caseMemory(c.memory), { engine });
      if (run.r0 !== BigInt(c.r0)) failures.push(`${label}: r0 = ${run.r0}, expected ${c.r0}`);
      if (c.log !== undefined) assert.deepEqual(run.log, c.log, `${label}: log`);
      for (const [mapName, entries] of Object.entries(c.maps ?? {})) {
        const map = env.maps.byName(mapName);
        assert.ok(map, `${label}: map ${mapName}`);
        for (const [key, value] of Object.entries(entries)) {
          const got = map.lookup(Uint8Array.from(Buffer.from(key, 'hex')));
          assert.equal(got && Buffer.from(got).toString('hex'), value, `${label}: ${mapName}[${key}]`);
        }
      }
    } catch (e) {
      failures.push(`${label}: ${(e as Error).message}`);
    }
  }
  return failures;
}

/** Programs of the objects in `dir` that the verifier rejects (with the reason). */
function verifyObjects(dir: string): string[] {
  const failures: string[] = [];
  for (const name of exampleObjectNames(dir)) {
    const object = loadObject(exampleObject(name, dir));
    for (const p of object.programs) {
      try {
        verifyProgram(p.instructions, {
          type: p.programType === 'storage' ? STORAGE_FUNCTION : 'conformance',
          maps: object.maps,
        });
      } catch (e) {
        failures.push(`${name}/${p.name}: ${(e as Error).message}`);
      }
    }
  }
  return failures;
}

describe('examples', () => {
  it('has an expected result for every example object, and an object for every case', () => {
    // Storage functions run in the storage runtime; their results are pinned by src/showcase tests
    // (sqlite_*.o by src/sqlite tests).
    const storageObjects = new Set(['btree.o', 'scan.o', 'counter.o']);
    const objects = new Set(exampleObjectNames().filter((n) => !storageObjects.has(n) && !n.startsWith('sqlite_')));
    const covered = new Set(expectedCases().map((c) => c.object));
    assert.deepEqual([...objects].sort(), [...covered].sort());
  });

  for (const engine of ENGINES) {
    it(`committed objects give the expected results on the ${engine}`, () => {
      assert.deepEqual(checkCases(EXAMPLES_BUILD_DIR, engine), []);
    });
  }

  it('maps and globals persist across runs and are shared by both engines', () => {
    const env = createProgramEnvironment(loadObject(exampleObject('globals.o')));
    const input = Uint8Array.from([1]);
    assert.equal(env.run(input, { engine: 'interpreter' }).r0, 1101n);
    assert.equal(env.run(input, { engine: 'jit' }).r0, 1102n);
    assert.equal(env.log.lines.length, 2);
  });

  it('rebuilding the examples with clang (-mcpu=v1, v2, v3, and v4 where supported) gives the same results', (t) => {
    const clang = process.env.CLANG ?? 'clang';
    const probe = spawnSync(clang, ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip('clang is not installed: rebuild check skipped (apt-get install -y clang llvm)');
      return;
    }
    const cpus = spawnSync(clang, ['-target', 'bpf', '-print-supported-cpus'], { encoding: 'utf8' });
    const versions = ['v1', 'v2', 'v3', 'v4'].filter((v) => new RegExp(`\\b${v}\\b`).test(`${cpus.stdout}${cpus.stderr}`));
    assert.ok(versions.includes('v3'), `clang does not support -mcpu=v3: ${probe.stdout.split('\n')[0]}`);
    const script = fileURLToPath(new URL('../../scripts/build-examples.sh', import.meta.url));
    for (const mcpu of versions) {
      const out = mkdtempSync(join(tmpdir(), `nearbpf-examples-${mcpu}-`));
      try {
        const build = spawnSync('bash', [script, out], { encoding: 'utf8', env: { ...process.env, MCPU: mcpu } });
        assert.equal(build.status, 0, `build-examples.sh (${mcpu}) failed:\n${build.stdout}${build.stderr}`);
        const dir = `${out}/`;
        assert.deepEqual(exampleObjectNames(dir), exampleObjectNames());
        for (const engine of ENGINES) assert.deepEqual(checkCases(dir, engine), [], `-mcpu=${mcpu}`);
        // The committed configuration must also still verify, program by program.
        if (mcpu === 'v3') assert.deepEqual(verifyObjects(dir), [], 'rebuilt objects that fail verification');
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }
  });
});
