/**
 * Differential fuzzing from the command line:
 *
 *   node dist/vm/differential-cli.js --seed N --count N [--time-budget-ms N]
 *
 * Runs `count` generated programs (seeds N, N+1, ...) on both engines, prints a summary and the
 * first disagreement with the program's disassembly, and exits 1 if the engines ever disagree
 * (2 on bad usage).
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { disassemble } from '../isa/index.js';
import {
  ALL_INSTRUCTION_KINDS,
  type GeneratedProgram,
  generateProgram,
  generatorHelpers,
  instructionKind,
} from '../testing/program-generator.js';
import { type Comparison, compareEngines, describeOutcome, outcomeKey } from './differential.js';

export interface FuzzSummary {
  programs: number;
  disagreements: number;
  /** Programs also run (and agreeing) with the JIT in verified memory mode: those that made no memory fault. */
  verifiedCompared: number;
  outcomes: Map<string, number>;
  instructionKinds: Map<string, number>;
  structuredFunctions: number;
  dispatchedFunctions: number;
  /** Programs with loads or stores under a hoisted bounds check (jit/bounds.ts), and those of them that fault on memory. */
  hoistingPrograms: number;
  hoistingMemoryFaults: number;
  first?: { generated: GeneratedProgram; comparison: Comparison };
}

/** Run generated programs from `seed` until `count` are done or the time budget runs out. */
export function fuzz(seed: number, count: number, timeBudgetMs = Number.POSITIVE_INFINITY): FuzzSummary {
  const helpers = generatorHelpers();
  const summary: FuzzSummary = {
    programs: 0,
    disagreements: 0,
    verifiedCompared: 0,
    outcomes: new Map(),
    instructionKinds: new Map(),
    structuredFunctions: 0,
    dispatchedFunctions: 0,
    hoistingPrograms: 0,
    hoistingMemoryFaults: 0,
  };
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const deadline = performance.now() + timeBudgetMs;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const generated = generateProgram(seed + i);
    const comparison = compareEngines(generated.program, {
      memory: generated.data,
      readOnlyMemory: generated.readOnly,
      fuel: generated.fuel,
      helpers,
      args: generated.args,
      // Every other program runs twice on the same engine, to catch state leaking between runs.
      runs: 1 + (generated.seed & 1),
      alsoVerified: true,
    });
    summary.programs++;
    if (comparison.verifiedCompared) summary.verifiedCompared++;
    for (const insn of generated.program) bump(summary.instructionKinds, instructionKind(insn));
    bump(summary.outcomes, outcomeKey(comparison.interpreter));
    for (const s of comparison.structured ?? []) {
      if (s) summary.structuredFunctions++;
      else summary.dispatchedFunctions++;
    }
    if ((comparison.hoistedAccesses ?? 0) > 0) {
      summary.hoistingPrograms++;
      if (comparison.interpreter.kind === 'error' && comparison.interpreter.code === 'ERR_MEMORY_ACCESS')
        summary.hoistingMemoryFaults++;
    }
    if (!comparison.agree) {
      summary.disagreements++;
      summary.first ??= { generated, comparison };
    }
  }
  return summary;
}

function main(): number {
  let values: { seed?: string; count?: string; 'time-budget-ms'?: string };
  try {
    ({ values } = parseArgs({
      options: { seed: { type: 'string' }, count: { type: 'string' }, 'time-budget-ms': { type: 'string' } },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\nusage: differential-cli --seed N --count N [--time-budget-ms N]`);
    return 2;
  }
  const seed = Number(values.seed ?? 1);
  const count = Number(values.count ?? 1000);
  const budget = values['time-budget-ms'] === undefined ? Number.POSITIVE_INFINITY : Number(values['time-budget-ms']);
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(count) || count < 0 || !(budget > 0)) {
    console.error('usage: differential-cli --seed N --count N [--time-budget-ms N] (integers; count >= 0, budget > 0)');
    return 2;
  }
  const t0 = performance.now();
  const s = fuzz(seed, count, budget);
  const seconds = (performance.now() - t0) / 1000;
  console.log(`programs: ${s.programs} (seeds ${seed}..${seed + s.programs - 1}) in ${seconds.toFixed(1)} s`);
  console.log('outcomes:');
  for (const [k, n] of [...s.outcomes].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(32)} ${n}`);
  const covered = ALL_INSTRUCTION_KINDS.filter((k) => s.instructionKinds.has(k));
  const missing = ALL_INSTRUCTION_KINDS.filter((k) => !s.instructionKinds.has(k));
  console.log(
    `instruction kinds covered: ${covered.length}/${ALL_INSTRUCTION_KINDS.length}${missing.length ? ` (missing: ${missing.join(', ')})` : ''}`,
  );
  const byKind = [...s.instructionKinds].sort((a, b) => a[0].localeCompare(b[0]));
  console.log(byKind.map(([k, n]) => `${k}=${n}`).join(' '));
  console.log(`functions: ${s.structuredFunctions} structured, ${s.dispatchedFunctions} dispatched`);
  console.log(
    `programs with bounds checks hoisted out of unrolled loops: ${s.hoistingPrograms} (${s.hoistingMemoryFaults} of them fault on memory)`,
  );
  console.log(`also run in verified memory mode (no memory fault in checked mode): ${s.verifiedCompared}`);
  console.log(`disagreements: ${s.disagreements}`);
  if (s.first === undefined) return 0;
  const { generated, comparison } = s.first;
  console.log(`\nfirst disagreement: seed ${generated.seed}: ${comparison.diff}`);
  console.log(`  interpreter: ${describeOutcome(comparison.interpreter)}`);
  console.log(`  jit:         ${describeOutcome(comparison.jit)}`);
  console.log(`  fuel ${generated.fuel}, args ${generated.args.map((a) => `0x${a.toString(16)}`).join(' ')}`);
  console.log(`  data ${Buffer.from(generated.data).toString('hex')}`);
  console.log(`  rodata ${Buffer.from(generated.readOnly).toString('hex')}`);
  console.log(disassemble(generated.program, { labels: true, pcs: true }));
  return 1;
}

// Run only as a script, so tests can import `fuzz`.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main();
