import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('./vm-bench.js', import.meta.url));

describe('bench:vm arguments', () => {
  // Each fails before any kernel is built or run, so these cost a node start each.
  for (const [args, message] of [
    [['--rounds', '0'], /--rounds must be an integer in 1\.\.50, got '0'/],
    [['--rounds', 'many'], /--rounds must be an integer/],
    [['--kernels', 'fnv1a,nope'], /unknown kernel 'nope'/],
    [['--verify-limit=-1'], /--verify-limit must be an integer in 0\.\.1000000/],
    [['--verify-limit', '2000000'], /--verify-limit must be an integer/],
    [['--fast'], /Unknown option '--fast'/],
  ] as const) {
    it(`refuses ${args.join(' ')} with usage and exit status 2`, () => {
      const run = spawnSync(process.execPath, [BENCH, ...args], { encoding: 'utf8' });
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.match(run.stderr, /usage: npm run bench:vm/);
      assert.equal(run.stdout, '');
    });
  }
});
