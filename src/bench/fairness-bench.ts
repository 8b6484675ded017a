/**
 * `bench-pushdown --fairness [--worker-nice LIST]`: only the fairness figures of bench:pushdown,
 * against one target process per execution-worker priority (`programs.executionWorkerNice`), each
 * with the depth-6 B+-tree, their rounds interleaved so that load drift hits every configuration
 * alike. Shows what the workers' priority does to a victim's p99 next to a tenant running long
 * chains (issue #12's targets: plain-read p99 at most 1.5x, pushed-lookup p99 at most 2x).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BenchPlan, spawnTarget, type TargetProcess } from '../showcase/bench.js';
import { buildBtree, planBtree } from '../showcase/btree.js';
import { blockWriter, connectShowcaseHost } from '../showcase/nvme.js';
import { DEFAULT_EXECUTION_WORKER_NICE } from '../target/thread-priority.js';
import { type FairnessFigures, FairnessProbe, type FairnessRound, fairnessPlan, formatFairness } from './pushdown-floors.js';

const DEPTH = 6;

export interface FairnessConfigFigures {
  /** The configured nice of the workers; undefined: the default. */
  readonly nice: number | undefined;
  readonly figures: FairnessFigures;
}

export interface FairnessBenchFigures {
  readonly configs: FairnessConfigFigures[];
  readonly loadBefore: number;
  readonly loadAfter: number;
}

async function startTarget(plan: BenchPlan, nice: number | undefined): Promise<{ target: TargetProcess; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-bench-fairness-'));
  const keys = plan.keysByDepth[DEPTH - 1];
  const namespaces = [{ nsid: DEPTH, sizeBytes: planBtree(keys, DEPTH).layout.totalBytes + 4096 }];
  const target = await spawnTarget(
    dir,
    namespaces,
    { host: '127.0.0.1', port: 0 },
    [],
    [],
    nice === undefined ? {} : { executionWorkerNice: nice },
  );
  try {
    const host = await connectShowcaseHost(target);
    try {
      const w = blockWriter(host, DEPTH, 512);
      await buildBtree(keys, DEPTH, w.write);
      await w.drain();
    } finally {
      await host.close();
    }
  } catch (e) {
    await target.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { target, dir };
}

export async function benchFairness(options: {
  plan: BenchPlan;
  nices: readonly (number | undefined)[];
  progress?: (s: string) => void;
}): Promise<FairnessBenchFigures> {
  const loadBefore = loadavg()[0];
  const { rounds, samples } = fairnessPlan(options.plan.quick);
  const running: { target: TargetProcess; dir: string; probe?: FairnessProbe }[] = [];
  try {
    for (const nice of options.nices) {
      options.progress?.(`  target with executionWorkerNice ${nice ?? 'default'}: building the depth-${DEPTH} tree`);
      const t: (typeof running)[number] = await startTarget(options.plan, nice);
      running.push(t);
      t.probe = await FairnessProbe.open(t.target);
    }
    const perConfig: FairnessRound[][] = options.nices.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (const [i, t] of running.entries()) {
        options.progress?.(`  round ${r + 1}/${rounds}, executionWorkerNice ${options.nices[i] ?? 'default'}`);
        perConfig[i].push(await (t.probe as FairnessProbe).round(samples));
      }
    }
    return {
      configs: options.nices.map((nice, i) => ({ nice, figures: { rounds: perConfig[i], samplesPerPhase: samples } })),
      loadBefore,
      loadAfter: loadavg()[0],
    };
  } finally {
    for (const t of running) {
      await t.probe?.close();
      await t.target.stop();
      await rm(t.dir, { recursive: true, force: true });
    }
  }
}

export function formatFairnessBench(f: FairnessBenchFigures): string {
  const lines: string[] = [];
  for (const c of f.configs) {
    lines.push(`executionWorkerNice ${c.nice ?? `${DEFAULT_EXECUTION_WORKER_NICE} (default)`}:`, ...formatFairness(c.figures));
  }
  lines.push(`load average ${f.loadBefore.toFixed(1)} before, ${f.loadAfter.toFixed(1)} after`);
  return `${lines.join('\n')}\n`;
}
