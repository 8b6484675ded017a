import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BenchUsageError } from './args.js';
import { parseSqliteBenchArgs } from './sqlite-bench.js';

const BENCH = fileURLToPath(new URL('./sqlite-bench.js', import.meta.url));

describe('bench:sqlite arguments', () => {
  it('defaults, and the RTT sweep switches', () => {
    const o = parseSqliteBenchArgs([]);
    assert.deepEqual(
      [o.rows, o.ops, o.scans, o.out, o.executionWorkers, o.rtt, o.rttOnly],
      [1_000_000, 2000, 2, 'results', undefined, false, false],
    );
    const r = parseSqliteBenchArgs(['--rtt-only', '--rtt-ops', '80', '--execution-workers', '0']);
    assert.deepEqual([r.rttOnly, r.rttOps, r.executionWorkers], [true, 80, 0]);
  });
  for (const [args, message] of [
    [['--rows', '10'], /--rows must be an integer in 1000\.\.100000000, got '10'/],
    [['--ops', '1.5'], /--ops must be an integer/],
    [['--scans', 'x'], /--scans must be an integer/],
    [['--execution-workers=-1'], /--execution-workers must be an integer in 0\.\.64/],
    [['--execution-workers', '65'], /--execution-workers must be an integer in 0\.\.64, got '65'/],
    [['--rtt-ops', '2'], /--rtt-ops must be an integer in 4\.\./],
  ] as const) {
    it(`refuses ${args.join(' ')}`, () => {
      assert.throws(
        () => parseSqliteBenchArgs(args),
        (e: Error) => e instanceof BenchUsageError && message.test(e.message),
      );
    });
  }
  it('exits with status 2 and the usage on an unknown option, before building anything', () => {
    const run = spawnSync(process.execPath, [BENCH, '--fast'], { encoding: 'utf8' });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /Unknown option '--fast'/);
    assert.match(run.stderr, /usage: npm run bench:sqlite/);
    assert.equal(run.stdout, '');
  });
});
