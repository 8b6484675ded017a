import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, it } from 'node:test';
import { ExecutionPool } from './execution-pool.js';
import { waitFor } from './test-helpers.js';
import { DEFAULT_EXECUTION_WORKER_NICE, kernelThreadId, lowerThreadPriority, type PriorityCalls } from './thread-priority.js';

/** The nice value of thread `tid` of this process, from the kernel (field 19 of its stat line). */
function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Fake OS calls: one thread at `nice`, or failing the way `fail` says. */
function fakeCalls(nice: number, fail?: { on: 'get' | 'set'; code: string }): PriorityCalls & { sets: number[] } {
  const sets: number[] = [];
  const refuse = () => {
    const e = new Error(`A system error occurred: uv_os_setpriority returned ${fail?.code}`) as Error & { code?: string };
    e.code = fail?.code;
    throw e;
  };
  return {
    sets,
    threadId: () => 4242,
    get: () => (fail?.on === 'get' ? refuse() : nice),
    set: (_tid, n) => {
      if (fail?.on === 'set') refuse();
      sets.push(n);
      nice = n;
    },
  };
}

describe('thread priority', () => {
  it('reads the kernel thread id from /proc/thread-self, and nothing where it is missing or odd', () => {
    assert.equal(
      kernelThreadId(() => '1234/task/5678'),
      5678,
    );
    assert.equal(
      kernelThreadId(() => {
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      }),
      undefined,
    );
    assert.equal(
      kernelThreadId(() => 'self'),
      undefined,
    );
    if (existsSync('/proc/thread-self')) assert.equal(kernelThreadId(), process.pid, 'the main thread is the process');
  });

  it('lowers the priority by the increment from where it is, capped at 19', () => {
    const table: [from: number, increment: number, to: number, sets: number][] = [
      [0, 19, 19, 1],
      [0, 10, 10, 1],
      [5, 10, 15, 1],
      [5, 19, 19, 1],
      [-5, 4, -1, 1],
      [7, 0, 7, 0],
    ];
    for (const [from, increment, to, sets] of table) {
      const calls = fakeCalls(from);
      assert.deepEqual(lowerThreadPriority(increment, calls), { applied: true, nice: to, tid: 4242 }, `${from} + ${increment}`);
      assert.equal(calls.sets.length, sets, 'an increment of 0 sets nothing');
    }
  });

  it('says why the priority stayed where the platform or the kernel refuses', () => {
    const noProc: PriorityCalls = { ...fakeCalls(0), threadId: () => undefined };
    const r1 = lowerThreadPriority(19, noProc);
    assert.equal(r1.applied, false);
    assert.match(r1.applied ? '' : r1.reason, /no \/proc\/thread-self/);
    for (const fail of [
      { on: 'set', code: 'EACCES' },
      { on: 'set', code: 'EPERM' },
      { on: 'get', code: 'ESRCH' },
    ] as const) {
      const r = lowerThreadPriority(3, fakeCalls(0, fail));
      assert.equal(r.applied, false, fail.code);
      assert.match(r.applied ? '' : r.reason, new RegExp(`setpriority refused \\(${fail.code}\\)`));
    }
  });

  it('refuses an increment outside 0-19', () => {
    for (const bad of [-1, 20, 1.5, Number.NaN]) assert.throws(() => lowerThreadPriority(bad, fakeCalls(0)), RangeError);
    assert.throws(() => new ExecutionPool({ workers: 1, nice: 20 }), RangeError);
    assert.throws(() => new ExecutionPool({ workers: 1, nice: -1 }), RangeError);
  });

  it('runs each execution worker at the configured nice below the target, and leaves the I/O thread alone', {
    skip: existsSync('/proc/thread-self') ? false : 'threads have no nice value of their own here',
  }, async () => {
    const mainBefore = getPriority(process.pid);
    for (const [nice, expected] of [
      [undefined, DEFAULT_EXECUTION_WORKER_NICE],
      [7, 7],
      [0, 0],
    ] as const) {
      const pool = new ExecutionPool({ workers: 2, nice });
      try {
        // A message ping: the worker's ready message (with its priority) comes before the pong.
        await pool.pingRoundTrip(0, 'message');
        await pool.pingRoundTrip(1, 'message');
        const priorities = pool.priorities();
        assert.equal(priorities.length, 2);
        for (const p of priorities) {
          assert.ok(p?.applied, JSON.stringify(p));
          assert.equal(p.nice, Math.min(19, mainBefore + expected));
          assert.equal(niceOf(p.tid), p.nice, 'the kernel agrees');
          assert.notEqual(p.tid, process.pid);
        }
      } finally {
        await pool.close();
      }
      assert.equal(getPriority(process.pid), mainBefore, 'the I/O thread keeps its priority');
    }
    // A replacement for a worker that died lowers its priority too.
    const pool = new ExecutionPool({ workers: 1, nice: 9 });
    try {
      await pool.pingRoundTrip(0, 'message');
      const before = pool.priorities()[0];
      await pool.crashForTest(0);
      await waitFor(() => pool.replaced === 1, 'the worker replaced');
      await pool.pingRoundTrip(0, 'message');
      const after = pool.priorities()[0];
      assert.ok(before?.applied && after?.applied, JSON.stringify([before, after]));
      assert.notEqual(after.tid, before.tid, 'a new thread');
      assert.equal(niceOf(after.tid), Math.min(19, mainBefore + 9));
    } finally {
      await pool.close();
    }
  });
});
