/**
 * Mutation fuzzing of the loader: real example objects with bytes changed by a seeded PRNG. Every
 * outcome must be a LoadedObject or a LoaderError; loaded objects are also run briefly, where any
 * failure must be a typed NearbpfError (never a raw exception or a hang).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NearbpfError } from '../errors.js';
import { parseElf } from './elf.js';
import { createProgramEnvironment } from './environment.js';
import { LoaderError } from './errors.js';
import { exampleObject, exampleObjectNames, prng, sectionHeaderAt } from './fixtures.js';
import { loadObject } from './object.js';

const ITERATIONS = 2000;
const SEED = 0x6e656172; // "near"
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40];

/** Where mutations matter most: headers, section headers, symbols, relocations, BTF, code. */
function hotRanges(bytes: Uint8Array): [number, number][] {
  const file = parseElf(bytes);
  const ranges: [number, number][] = [[0, 64]];
  const shoff = sectionHeaderAt(bytes, 0);
  ranges.push([shoff, shoff + file.sections.length * 64]);
  for (const s of file.sections) {
    if (/^(\.symtab|\.BTF|\.BTF\.ext|\.rel.*|conformance.*|\.text|\.maps|license)$/.test(s.name) && s.sizeBytes > 0) {
      ranges.push([s.offsetBytes, s.offsetBytes + s.sizeBytes]);
    }
  }
  return ranges;
}

describe('loader fuzz', () => {
  it(`${ITERATIONS} mutated objects load or fail with a LoaderError`, (t) => {
    const random = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const originals = exampleObjectNames().map((n) => ({ name: n, bytes: exampleObject(n), hot: hotRanges(exampleObject(n)) }));
    const outcomes = { loaded: 0, ran: 0, rejected: new Map<string, number>() };
    const start = performance.now();
    for (let i = 0; i < ITERATIONS; i++) {
      const original = pick(originals);
      const bytes = original.bytes.slice();
      const mutations = 1 + Math.floor(random() * 4);
      let data = bytes;
      for (let m = 0; m < mutations; m++) {
        const [lo, hi] = random() < 0.8 ? pick(original.hot) : [0, data.length];
        const at = lo + Math.floor(random() * (hi - lo));
        const r = random();
        if (r < 0.4) data[at] = Math.floor(random() * 256);
        else if (r < 0.7) data[at] ^= 1 << Math.floor(random() * 8);
        else if (r < 0.9) data[at] = pick(INTERESTING);
        else data = data.subarray(0, at); // truncate
      }
      const label = `iteration ${i} (${original.name}, seed ${SEED})`;
      let object: ReturnType<typeof loadObject>;
      try {
        object = loadObject(data);
      } catch (e) {
        assert.ok(e instanceof LoaderError, `${label}: ${e instanceof Error ? e.stack : String(e)}`);
        outcomes.rejected.set(e.code, (outcomes.rejected.get(e.code) ?? 0) + 1);
        continue;
      }
      outcomes.loaded++;
      for (const p of object.programs.slice(0, 2)) {
        try {
          const env = createProgramEnvironment(object, p.name, { memorySizeBytes: 256, mapMemoryLimitBytes: 1 << 20 });
          env.run(
            Uint8Array.from({ length: 64 }, (_, k) => k),
            { engine: 'interpreter', fuel: 10_000 },
          );
          outcomes.ran++;
        } catch (e) {
          assert.ok(e instanceof NearbpfError, `${label}, program ${p.name}: ${e instanceof Error ? e.stack : String(e)}`);
        }
      }
    }
    const seconds = (performance.now() - start) / 1000;
    // Mutations must exercise both paths, or the fuzzer tests nothing.
    assert.ok(outcomes.loaded > 50, `only ${outcomes.loaded} mutated objects loaded`);
    assert.ok(outcomes.rejected.size >= 5, `rejections: ${[...outcomes.rejected.keys()].join(', ')}`);
    // Reported, not asserted: timings belong in benchmarks (a loaded machine would fail a bound).
    t.diagnostic(`${ITERATIONS} objects in ${seconds.toFixed(1)} s`);
  });
});
