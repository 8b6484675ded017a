/**
 * CPU time of a process, for "CPU per operation" figures: the sum over its threads (the event loop,
 * libuv's thread pool, V8's helpers) of the nanoseconds the kernel ran them, from
 * /proc/PID/task/TID/schedstat; /proc/PID/stat's utime + stime (clock ticks) where schedstat is
 * missing. Linux only; null elsewhere.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

export function processCpuNs(pid: number): number | null {
  try {
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    if (total > 0) return total;
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after "(comm) ".
    return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1e9;
  } catch {
    return null;
  }
}

/** CPU time of this process so far (all threads), in microseconds. */
export function selfCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** CPU time of one thread of a process (its main thread: `tid` = `pid`), in nanoseconds; null where /proc lacks it. */
export function threadCpuNs(pid: number, tid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}
