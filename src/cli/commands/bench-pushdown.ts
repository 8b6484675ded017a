/**
 * `nearbpf bench-pushdown [--quick] [--netns] [--out DIR]`: storage functions pushed down to an
 * NVMe/TCP target vs the same operations fetched to the client (src/showcase/bench.ts), written as
 * CSV and SVG under results/, with the headline ratios against the targets of issue #7.
 */
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { type BenchPlan, benchLoopback, benchPlan, type ClientFigures, runClient } from '../../showcase/bench.js';
import { figureFiles, headline, writeFigures } from '../../showcase/figures.js';
import { benchNetns, netnsUnavailable, type RttFigure } from '../../showcase/netns.js';
import { say, times } from '../../showcase/report.js';
import { parseListen } from '../../target/serve.js';
import { REPO_ROOT } from '../../testing/conformance-data.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import type { Command } from './command.js';

const USAGE = `nearbpf bench-pushdown [--quick] [--netns] [--out DIR]

Runs an NVMe/TCP target as a separate process on 127.0.0.1, builds B+-trees of depth 1..6 and a
table through NVMe writes, and measures storage functions pushed down to the target against the
same operations fetched to the client: lookup latency by depth (QD1), throughput against 1, 4, 16
and 32 outstanding lookups, bytes on the wire and commands per operation, and a scan across
selectivities 0.1%..100%. Writes CSV and SVG figures to DIR (default results/) and prints the
headline ratios against the targets.
  --quick   smaller trees and table, fewer operations
  --netns   also run client and target in two network namespaces joined by a veth pair with netem
            delay (0, 25, 100, 500 µs RTT) and report the gain against RTT (needs root and iproute2;
            skipped with a message otherwise)`;

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

export const benchPushdownCommand: Command = {
  name: 'bench-pushdown',
  summary: 'benchmark storage functions pushed down to the target vs fetched (figures in results/)',
  usage: USAGE,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      quick: { type: 'boolean' },
      netns: { type: 'boolean' },
      out: { type: 'string' },
      // Internal: the client side of --netns, run inside the client namespace.
      role: { type: 'string' },
      connect: { type: 'string' },
      profile: { type: 'string' },
      build: { type: 'boolean' },
    });
    expectPositionals(positionals, []);
    const plan: BenchPlan = benchPlan(values.quick ?? false);
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

    const outDir = values.out ?? join(REPO_ROOT, 'results');
    const started = Date.now();
    say(err, `bench-pushdown${plan.quick ? ' --quick' : ''}: loopback (target process on 127.0.0.1)`);
    const figures: ClientFigures = await benchLoopback(plan, err);
    let rtt: RttFigure[] = [];
    if (values.netns) {
      const why = await netnsUnavailable();
      if (why) say(err, `--netns skipped: ${why}`);
      else {
        try {
          rtt = await benchNetns(plan, err);
        } catch (e) {
          say(err, `--netns failed (namespaces removed): ${(e as Error).message}`);
        }
      }
    }
    const written = await writeFigures(outDir, figureFiles(figures, rtt));
    const w = (s: string) => io.stdout.write(s);
    if (figures.refused.length > 0) {
      w(`\nREFUSED by the target's verifier (their pushdown figures are missing):\n`);
      for (const r of figures.refused) w(`  ${r.name}: ${r.message}\n`);
    }
    w('\nheadline (loopback, target in its own process):\n');
    const h = headline(figures);
    w(h.text);
    if (rtt.length > 0) printRtt(rtt, w);
    w(`\nresults agree: ${figures.mismatches === 0 ? 'yes' : `NO, ${figures.mismatches} differ`}\n`);
    w(`figures: ${written.join(', ')}\n`);
    w(`took ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    return figures.mismatches > 0 || figures.refused.length > 0 ? 1 : 0;
  },
};
