/** The scaling flags of the benchmarks: which configurations they run, and their argument errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchIoCommand } from '../../bench/io-bench.js';
import { UsageError } from '../../errors.js';
import { benchPushdownCommand, niceList, scalingConfigs } from './bench-pushdown.js';

describe('bench scaling flags', () => {
  it('turns --execution-workers and --io-threads into target configurations', () => {
    const cases: [string | undefined, string | undefined, [number, number][]][] = [
      [
        '0,1,2',
        undefined,
        [
          [0, 0],
          [0, 1],
          [0, 2],
        ],
      ],
      [
        '1',
        '2',
        [
          [0, 1],
          [1, 1],
          [2, 2],
        ],
      ],
      [
        undefined,
        '4',
        [
          [1, 1],
          [4, 4],
        ],
      ],
      [' 2 ', undefined, [[0, 2]]],
    ];
    for (const [workers, threads, expected] of cases) {
      assert.deepEqual(
        scalingConfigs(workers, threads),
        expected.map(([ioThreads, w]) => ({ ioThreads, workers: w })),
        `${workers} / ${threads}`,
      );
    }
  });

  it('refuses counts out of range or not numbers', () => {
    const bad: [string | undefined, string | undefined][] = [
      ['-1', undefined],
      ['1,x', undefined],
      ['65', undefined],
      ['', undefined],
      ['1.5', undefined],
      [undefined, '1'],
      [undefined, '0'],
      [undefined, 'two'],
    ];
    for (const [workers, threads] of bad)
      assert.throws(() => scalingConfigs(workers, threads), UsageError, `${workers} / ${threads}`);
  });

  it('bench-io --io-threads refuses a count below 2', async () => {
    const out = { write: () => true };
    await assert.rejects(benchIoCommand.run(['--io-threads', '1'], { stdout: out }), UsageError);
    await assert.rejects(benchIoCommand.run(['--io-threads', '99'], { stdout: out }), UsageError);
  });

  it('--worker-nice takes up to 4 nice increments 0-19, and only with --fairness', async () => {
    assert.deepEqual(niceList('0,10'), [0, 10]);
    assert.deepEqual(niceList(' 19 '), [19]);
    assert.deepEqual(niceList('0,5,10,19'), [0, 5, 10, 19]);
    for (const bad of ['-1', '20', '1.5', 'x', '', '0,1,2,3,4']) assert.throws(() => niceList(bad), UsageError, bad);
    const out = { write: () => true };
    await assert.rejects(benchPushdownCommand.run(['--worker-nice', '0'], { stdout: out, stderr: out }), UsageError);
    await assert.rejects(
      benchPushdownCommand.run(['--fairness', '--worker-nice', '20'], { stdout: out, stderr: out }),
      UsageError,
    );
  });
});
