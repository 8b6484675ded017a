/** The scaling flags of the benchmarks: which configurations they run, and their argument errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchIoCommand } from '../../bench/io-bench.js';
import { UsageError } from '../../errors.js';
import { scalingConfigs } from './bench-pushdown.js';

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
});
