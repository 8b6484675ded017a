/**
 * `nearbpf top`: a terminal view of a running target through its metrics endpoint (`serve
 * --metrics`): scrapes it every interval and shows the rates between two scrapes (the model is
 * `../top-model.ts`). `--once` prints one frame (two scrapes one interval apart) and exits.
 */
import { NearbpfError, UsageError } from '../../errors.js';
import { parseCommandArgs } from '../args.js';
import { parseSnapshot, renderTop, type TopSnapshot, topFrame } from '../top-model.js';
import type { Command } from './command.js';

/** The metrics endpoint could not be scraped. */
export class MetricsUnreachableError extends NearbpfError {
  readonly code = 'ERR_METRICS_UNREACHABLE';
}

const SCRAPE_TIMEOUT_MS = 5000;
/** Bodies larger than this are refused (a target with label caps stays far below). */
const MAX_SCRAPE_BYTES = 32 * 1024 * 1024;

/** `HOST:PORT`, `[IPv6]:PORT` or an http(s) URL; a bare address gets `/metrics`. */
export function metricsUrl(target: string): string {
  if (/^https?:\/\//.test(target)) {
    try {
      return new URL(target).toString();
    } catch {
      throw new UsageError(`--metrics: not a URL: '${target}'`);
    }
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(target);
  if (!m || Number(m[3]) > 65535) throw new UsageError(`--metrics must be HOST:PORT or a URL, got '${target}'`);
  return m[1] !== undefined ? `http://[${m[1]}]:${m[3]}/metrics` : `http://${m[2]}:${m[3]}/metrics`;
}

export async function scrape(url: string): Promise<TopSnapshot> {
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_SCRAPE_BYTES) throw new Error(`${length} bytes is more than ${MAX_SCRAPE_BYTES}`);
    text = await res.text();
  } catch (e) {
    throw new MetricsUnreachableError(`cannot scrape ${url}: ${(e as Error).message}`);
  }
  const at = performance.now();
  try {
    return parseSnapshot(text, at);
  } catch (e) {
    throw new MetricsUnreachableError(`${url} did not answer Prometheus text: ${(e as Error).message}`);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

export const topCommand: Command = {
  name: 'top',
  summary: 'a live view of a running target through its metrics endpoint: programs, tenants, namespaces',
  usage: `nearbpf top [--metrics HOST:PORT|URL] [--interval SECONDS] [--once] [--json] [--rows N]

Scrapes the target's Prometheus endpoint (nearbpf serve --metrics HOST:PORT) every interval and shows
what happened between two scrapes: per tenant executions/s, reads/s, CPU and scheduler wait p50/p99;
per program executions/s, failures/s, latency p50/p99 (from the histogram buckets), reads/s, CPU
(% of one core) and share of the target's CPU; per namespace IOPS, read and write MiB/s, latency.
  --metrics A       the endpoint (default 127.0.0.1:9464)
  --interval S      seconds between scrapes (default 1; 0.1 to 3600)
  --once            one frame (two scrapes one interval apart), then exit: for scripts and tests
  --json            the frame as JSON instead of text (with --once: one object; else one per line)
  --rows N          at most N rows per table (default 20)`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      metrics: { type: 'string' },
      interval: { type: 'string' },
      once: { type: 'boolean' },
      json: { type: 'boolean' },
      rows: { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const url = metricsUrl(values.metrics ?? '127.0.0.1:9464');
    const intervalSeconds = values.interval === undefined ? 1 : Number(values.interval);
    if (!Number.isFinite(intervalSeconds) || intervalSeconds < 0.1 || intervalSeconds > 3600)
      throw new UsageError(`--interval must be seconds in [0.1, 3600], got '${values.interval}'`);
    const maxRows = values.rows === undefined ? 20 : Number(values.rows);
    if (!Number.isSafeInteger(maxRows) || maxRows < 1 || maxRows > 10_000)
      throw new UsageError(`--rows must be an integer in [1, 10000], got '${values.rows}'`);
    const clear = !values.once && !values.json && io.stdout.isTTY === true;
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    if (!values.once) process.once('SIGINT', onSignal);
    try {
      let prev = await scrape(url);
      while (!stop.signal.aborted) {
        await sleep(intervalSeconds * 1000, stop.signal);
        if (stop.signal.aborted) break;
        const cur = await scrape(url);
        const frame = topFrame(prev, cur);
        prev = cur;
        if (values.json) io.stdout.write(`${JSON.stringify(frame)}\n`);
        else io.stdout.write(`${clear ? '\x1b[H\x1b[2J' : ''}${renderTop(frame, url, { maxRows })}`);
        if (values.once) break;
      }
    } finally {
      process.off('SIGINT', onSignal);
    }
    return 0;
  },
};
