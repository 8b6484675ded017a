/**
 * Benchmark command lines: a bad one is a usage error (message and usage on stderr, exit 2) for every
 * `npm run bench:*` script run directly, never a stack trace or a silently ignored option.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BenchUsageError, integerOption, parseBenchArgs } from './args.js';

const script = (name: string) => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

describe('benchmark command lines', () => {
  it('parses options and refuses unknown ones, missing values and positionals', () => {
    assert.deepEqual({ ...parseBenchArgs(['--runs', '4'], { runs: { type: 'string' } }) }, { runs: '4' });
    for (const argv of [['--bogus'], ['--runs'], ['extra']]) {
      assert.throws(() => parseBenchArgs(argv, { runs: { type: 'string' } }), BenchUsageError, argv.join(' '));
    }
  });

  it('reads integers within their bounds only', () => {
    assert.equal(integerOption({}, 'runs', 3, 1, 100), 3);
    assert.equal(integerOption({ runs: '100' }, 'runs', 3, 1, 100), 100);
    for (const bad of ['0', '101', '-1', '1.5', '1e2', 'x', '']) {
      assert.throws(() => integerOption({ runs: bad }, 'runs', 3, 1, 100), /--runs must be an integer in 1\.\.100/, bad);
    }
  });

  for (const name of ['verifier-bench', 'exec-overhead', 'metrics-overhead', 'sqlite-bench', 'vm-bench']) {
    it(`${name}: an unknown option exits 2 with the usage, no stack trace`, () => {
      const r = spawnSync(process.execPath, [script(name), '--bogus'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /bogus/);
      assert.match(r.stderr, /usage: npm run bench:/);
      assert.doesNotMatch(r.stderr, /^\s+at /m);
    });
  }
});
