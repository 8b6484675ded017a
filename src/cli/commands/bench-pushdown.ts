/**
 * `nearbpf bench-pushdown [--quick] [--netns] [--rtt] [--out DIR]`: storage functions pushed down to
 * an NVMe/TCP target vs the same operations fetched to the client (src/showcase/bench.ts), written as
 * CSV and SVG under results/, with the headline ratios against the targets of issue #7; `--rtt` (and
 * `--netns` where netem cannot run) sweeps the round-trip time through a userspace delay proxy
 * (src/showcase/rtt.ts).
 */
import { join } from 'node:path';
import { type DataPathFigures, fairnessPlan, formatDataPath, measureDataPath } from '../../bench/pushdown-floors.js';
import { formatScanRate, measureScanRate, type ScanRateFigures } from '../../bench/scan-rate.js';
import type { WorkersConfig } from '../../bench/workers-bench.js';
import { UsageError } from '../../errors.js';
import { type BenchPlan, benchLoopback, benchPlan, type ClientFigures, runClient, TABLE_NSID } from '../../showcase/bench.js';
import { figureFiles, headline, writeFigures } from '../../showcase/figures.js';
import { benchNetns, netnsUnavailable, type RttFigure } from '../../showcase/netns.js';
import { say, times } from '../../showcase/report.js';
import { benchRtt, formatRttTable, type RttSweep, rttFigureFiles } from '../../showcase/rtt.js';
import { ROW_SIZE_BYTES } from '../../showcase/table.js';
import { parseListen } from '../../target/serve.js';
import { MAX_NICE } from '../../target/thread-priority.js';
import { REPO_ROOT } from '../../testing/conformance-data.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import type { Command } from './command.js';

const USAGE = `nearbpf bench-pushdown [--quick] [--metrics] [--netns] [--rtt] [--out DIR]
       nearbpf bench-pushdown [--execution-workers LIST] [--io-threads N] [--ops N]
       nearbpf bench-pushdown --fairness [--quick] [--worker-nice LIST]

Runs an NVMe/TCP target as a separate process on 127.0.0.1, builds B+-trees of depth 1..6 and a
table through NVMe writes, and measures storage functions pushed down to the target against the
same operations fetched to the client: lookup latency by depth (QD1), throughput against 1, 4, 16
and 32 outstanding lookups, bytes on the wire and commands per operation, and a scan across
selectivities 0.1%..100%. Writes CSV and SVG figures to DIR (default results/) and prints the
headline ratios against the targets.
  --quick   smaller trees and table, fewer operations
  --netns   also run client and target in two network namespaces joined by a veth pair with netem
            delay (0, 25, 100, 500 µs RTT) and report the gain against RTT (needs root and iproute2;
            falls back to --rtt otherwise, e.g. without root or when the kernel lacks sch_netem)
  --rtt     only the RTT sweep, through a userspace TCP delay proxy on 127.0.0.1 (no root, no netem):
            depth-6 lookups at QD1 and a 1% scan, pushed down vs fetched, straight to the target and
            through the proxy at +0, +25, +100 and +500 µs RTT (12.5/50/250 µs each way), with the
            RTT the proxy achieves measured by a ping-pong; writes pushdown-gain-by-rtt.{csv,svg}.
            The proxy adds its own per-chunk cost: the +0 µs proxy row shows it, so read the delayed
            rows against that row (under a minute)
  --fairness
            only the fairness figures: a victim tenant's plain-read and pushed-lookup p99 alone and
            next to another tenant's long chains (from a client process of its own), in rounds,
            with the median of the rounds' ratios
  --worker-nice LIST
            with --fairness: one target per value of programs.executionWorkerNice (0-19, e.g.
            0,19), rounds interleaved (default: the configured default only)`;

function printRtt(rtt: readonly RttFigure[], write: (s: string) => unknown): void {
  write('\npushdown gain against RTT (depth-6 lookup p50 at QD1, 16 outstanding lookups, 1% scan):\n');
  for (const r of rtt) {
    const l = r.figures.depth.find((d) => d.depth === 6);
    const c = r.figures.concurrency.find((x) => x.concurrency === 16);
    const s = r.figures.selectivity[0];
    write(
      `  RTT +${String(r.rttUs).padStart(3)} µs: lookup ${l?.pushdown ? `${l.pushdown.p50Us.toFixed(0)} vs ${l.fetched.p50Us.toFixed(0)} µs = ${times(l.fetched.p50Us / l.pushdown.p50Us)}` : 'n/a'}` +
        `; throughput ${c?.pushdown ? times(c.pushdown.opsPerSec / c.fetched.opsPerSec) : 'n/a'}` +
        `; scan ${s?.pushdownAggregate ? times(s.fetched.meanUs / s.pushdownAggregate.meanUs) : 'n/a'}\n`,
    );
  }
}

function count(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} takes whole numbers ${min}-${max}, got '${text}'`);
  }
  return n;
}

/** `--worker-nice 0,19`: nice increments of the execution workers, 0-19 each. */
export function niceList(text: string): number[] {
  const list = text.split(',').map((v) => count(v.trim(), '--worker-nice', 0, MAX_NICE));
  if (list.length > 4) throw new UsageError(`--worker-nice takes at most 4 values, got ${list.length}`);
  return list;
}

/** The configurations of a scaling run: each worker count on the main thread, then 1+1 vs N+N. */
export function scalingConfigs(workers: string | undefined, ioThreads: string | undefined): WorkersConfig[] {
  const configs: WorkersConfig[] = [];
  if (workers !== undefined) {
    for (const w of workers.split(',')) configs.push({ ioThreads: 0, workers: count(w.trim(), '--execution-workers', 0, 64) });
  }
  if (ioThreads !== undefined) {
    const n = count(ioThreads, '--io-threads', 2, 64);
    configs.push({ ioThreads: 1, workers: 1 }, { ioThreads: n, workers: n });
  }
  return configs;
}

export const benchPushdownCommand: Command = {
  name: 'bench-pushdown',
  summary: 'benchmark storage functions pushed down to the target vs fetched (figures in results/)',
  usage: USAGE,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      quick: { type: 'boolean' },
      metrics: { type: 'boolean' },
      netns: { type: 'boolean' },
      rtt: { type: 'boolean' },
      out: { type: 'string' },
      'execution-workers': { type: 'string' },
      'io-threads': { type: 'string' },
      ops: { type: 'string' },
      fairness: { type: 'boolean' },
      'worker-nice': { type: 'string' },
      // Internal: the client side of --netns, run inside the client namespace.
      role: { type: 'string' },
      connect: { type: 'string' },
      profile: { type: 'string' },
      build: { type: 'boolean' },
    });
    expectPositionals(positionals, []);
    const plan: BenchPlan = { ...benchPlan(values.quick ?? false), metrics: values.metrics ?? false };
    const err = io.stderr as { write(s: string): unknown; isTTY?: boolean };

    if (values.role !== undefined) {
      if (values.role !== 'client' || values.connect === undefined)
        throw new UsageError('--role client needs --connect HOST:PORT');
      const { host, port } = parseListen(values.connect);
      const profile = values.profile === 'rtt' ? 'rtt' : 'full';
      const figures = await runClient({ host, port, plan, build: values.build ?? false, profile }, err);
      io.stdout.write(`${JSON.stringify(figures)}\n`);
      return 0;
    }

    if (values['worker-nice'] !== undefined && !values.fairness) throw new UsageError('--worker-nice goes with --fairness');
    if (values.fairness) {
      const nices = values['worker-nice'] === undefined ? [undefined] : niceList(values['worker-nice']);
      const { benchFairness, formatFairnessBench } = await import('../../bench/fairness-bench.js');
      say(err, `bench-pushdown --fairness${plan.quick ? ' --quick' : ''}`);
      const figures = await benchFairness({ plan, nices, progress: (s) => say(err, s) });
      io.stdout.write(formatFairnessBench(figures));
      return 0;
    }

    if (values['execution-workers'] !== undefined || values['io-threads'] !== undefined) {
      const configs = scalingConfigs(values['execution-workers'], values['io-threads']);
      const ops = values.ops === undefined ? 4000 : count(values.ops, '--ops', 1, 10_000_000);
      const { benchWorkers, formatWorkers } = await import('../../bench/workers-bench.js');
      const figures = await benchWorkers({ configs, ops, progress: (s) => say(err, s) });
      io.stdout.write(formatWorkers(figures));
      return 0;
    }

    const outDir = values.out ?? join(REPO_ROOT, 'results');
    const started = Date.now();
    const w = (s: string) => io.stdout.write(s);
    // --rtt alone: only the sweep through the delay proxy (the loopback figures are left as they are).
    let figures: ClientFigures | undefined;
    let dataPath: DataPathFigures | undefined;
    let scanRate: ScanRateFigures | undefined;
    if (!values.rtt || values.netns) {
      say(err, `bench-pushdown${plan.quick ? ' --quick' : ''}: loopback (target process on 127.0.0.1)`);
      figures = await benchLoopback(plan, err, async (target) => {
        say(err, '  data path: floors, server CPU per lookup, fairness');
        dataPath = await measureDataPath(target, {
          latency: plan.latencyOps,
          throughput: plan.throughputOps,
          fairness: fairnessPlan(plan.quick),
        });
        say(err, '  scan rate against a local sequential read');
        const table = { nsid: TABLE_NSID, imagePath: join(target.dataDir, `showcase-ns${TABLE_NSID}.img`) };
        scanRate = await measureScanRate(
          target,
          { ...table, lengthBytes: plan.tableRows * ROW_SIZE_BYTES },
          plan.scanRuns * 2 + 1,
        );
      });
    }
    let rtt: RttFigure[] = [];
    let sweepRtt = values.rtt ?? false;
    if (values.netns) {
      const why = await netnsUnavailable();
      if (why) {
        say(err, `--netns unavailable: ${why}; falling back to --rtt (userspace delay proxy)`);
        sweepRtt = true;
      } else {
        try {
          rtt = await benchNetns(plan, err);
        } catch (e) {
          say(err, `--netns failed (namespaces removed): ${(e as Error).message}; falling back to --rtt`);
          sweepRtt = true;
        }
      }
    }
    let sweep: RttSweep | undefined;
    if (sweepRtt) sweep = await benchRtt(plan, err);
    const written = await writeFigures(outDir, [
      ...(figures ? figureFiles(figures, rtt) : []),
      ...(sweep ? rttFigureFiles(sweep.rows) : []),
    ]);
    const refused = [...(figures?.refused ?? []), ...(sweep?.refused ?? [])];
    const mismatches = (figures?.mismatches ?? 0) + (sweep?.mismatches ?? 0);
    if (refused.length > 0) {
      w(`\nREFUSED by the target's verifier (their pushdown figures are missing):\n`);
      for (const r of refused) w(`  ${r.name}: ${r.message}\n`);
    }
    if (figures) {
      w('\nheadline (loopback, target in its own process):\n');
      w(headline(figures).text);
    }
    if (dataPath) {
      w('\ndata path (server CPU from /proc of the target process; ratios measured in this run):\n');
      w(formatDataPath(dataPath, figures?.depth.find((d) => d.depth === 6)?.fetched.p50Us));
    }
    if (scanRate) w(formatScanRate(scanRate));
    if (rtt.length > 0) printRtt(rtt, w);
    if (sweep) {
      w('\npushdown gain against RTT, through a userspace TCP delay proxy (depth-6 lookup at QD1, 1% scan):\n');
      w(formatRttTable(sweep.rows));
    }
    w(`\nresults agree: ${mismatches === 0 ? 'yes' : `NO, ${mismatches} differ`}\n`);
    w(`figures: ${written.join(', ')}\n`);
    w(`took ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    return mismatches > 0 || refused.length > 0 ? 1 : 0;
  },
};
