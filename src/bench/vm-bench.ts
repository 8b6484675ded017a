/**
 * `npm run bench:vm`: our C kernels (src/bench/kernels) run natively (the same source, cc -O2), on
 * the JIT and on the interpreter, interleaved in one run; per kernel the median over rounds, the
 * JIT's ratio to native and the geomean, beside the targets of issue #10. Then the load, verify
 * and compile time of a 1,000-instruction program and the overhead of one storage-function step.
 * Prints figures; nothing here is a pass/fail test (src/bench/kernels.test.ts checks the kernels).
 *
 *   npm run bench:vm [-- --rounds N] [--kernels a,b,...] [--verify-limit N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_VERIFIER_PROCESSED_INSNS } from '../abi/limits.js';
import { STORAGE_CTX } from '../abi/storage.js';
import { assemble, decodeProgram, encodeProgram } from '../isa/index.js';
import { loadProgramBytes } from '../loader/index.js';
import { MemoryNamespace } from '../runtime/namespace.js';
import { StorageRuntime } from '../runtime/runtime.js';
import { StorageFunction } from '../runtime/storage-function.js';
import { VerifierPool } from '../target/verify-worker.js';
import { VerifierError, verifyProgram } from '../verifier/index.js';
import {
  BENCH_PAYLOAD_BYTES,
  type BenchEngine,
  buildNativeKernel,
  findCCompiler,
  KERNELS,
  type Kernel,
  type KernelOnEngines,
  kernelBuffer,
  makePayload,
  openKernel,
  readKernelObject,
  runNativeKernel,
  writeBufferFile,
} from './kernels.js';

const TARGET_JIT_GEOMEAN = 1.3;
const TARGET_JIT_WORST = 1.6;
const TARGET_INTERPRETER_NS_PER_INSN = 10;
const TARGET_LOAD_MS = 2;
/** Programs per load-time row (each a different one). */
const LOAD_SAMPLES = 20;
/** Timed calls per engine and round; a round's sample is their minimum (a descheduled call is noise). */
const CALLS_PER_SAMPLE = 3;
const MAX_ROUNDS = 50;
/**
 * Processed-instruction limit of the verifier runs (the product's is 1,000,000): long loops take the
 * verifier tens of seconds to reject. Accepted under a lower limit means accepted under the product's.
 */
const DEFAULT_VERIFY_LIMIT = 100_000;

const USAGE = `usage: npm run bench:vm [-- --rounds N] [--kernels NAME,NAME,...] [--verify-limit N]
  --rounds N        interleaved rounds, each kernel on every engine once per round (default 5, max ${MAX_ROUNDS})
  --kernels LIST    only these kernels (${KERNELS.map((k) => k.name).join(', ')})
  --verify-limit N  verify each kernel (conformance type) with this processed-instruction limit
                    (default ${DEFAULT_VERIFY_LIMIT}; ${MAX_VERIFIER_PROCESSED_INSNS} as the product; 0 skips verification)`;

class BenchUsageError extends Error {}

interface Options {
  rounds: number;
  kernels: readonly Kernel[];
  verifyLimit: number;
}

function parseOptions(argv: string[]): Options {
  let values: { rounds?: string; kernels?: string; 'verify-limit'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { rounds: { type: 'string' }, kernels: { type: 'string' }, 'verify-limit': { type: 'string' } },
    }));
  } catch (e) {
    throw new BenchUsageError((e as Error).message);
  }
  const rounds = values.rounds === undefined ? 5 : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS)
    throw new BenchUsageError(`--rounds must be an integer in 1..${MAX_ROUNDS}, got '${values.rounds}'`);
  const names = values.kernels?.split(',') ?? KERNELS.map((k) => k.name);
  const kernels = names.map((name) => {
    const k = KERNELS.find((x) => x.name === name);
    if (k === undefined) throw new BenchUsageError(`unknown kernel '${name}'`);
    return k;
  });
  const verifyLimit = values['verify-limit'] === undefined ? DEFAULT_VERIFY_LIMIT : Number(values['verify-limit']);
  if (!Number.isInteger(verifyLimit) || verifyLimit < 0 || verifyLimit > MAX_VERIFIER_PROCESSED_INSNS)
    throw new BenchUsageError(
      `--verify-limit must be an integer in 0..${MAX_VERIFIER_PROCESSED_INSNS}, got '${values['verify-limit']}'`,
    );
  return { rounds, kernels, verifyLimit };
}

interface Verdict {
  readonly kernel: Kernel;
  readonly accepted: boolean;
  /** Processed instructions and time if accepted; the rejection's reason otherwise. */
  readonly detail: string;
}

/** The verifier's verdict on a kernel's committed object (conformance program type). */
function verifyKernel(kernel: Kernel, maxProcessedInsns: number): Verdict {
  const { object, program } = loadProgramBytes(readKernelObject(kernel));
  try {
    const { stats } = verifyProgram(program.instructions, { type: 'conformance', maps: object.maps, maxProcessedInsns });
    return {
      kernel,
      accepted: true,
      detail: `${stats.processedInsns} insns processed in ${stats.durationMs.toFixed(0)} ms`,
    };
  } catch (e) {
    if (!(e instanceof VerifierError)) throw e;
    return { kernel, accepted: false, detail: `pc ${e.pc}: ${e.reason}` };
  }
}

/** One kernel's state over the run: its buffers, engines, native executable and samples. */
interface KernelRun {
  readonly kernel: Kernel;
  readonly full: Uint8Array;
  readonly scaled: Uint8Array;
  readonly engines: KernelOnEngines;
  readonly native?: { exe: string; fullFile: string; r0: bigint };
  /** The result every engine must give on the full and the scaled buffer. */
  readonly expectedFull: bigint;
  readonly expectedScaled: bigint;
  readonly compileMs: number;
  readonly firstCallNs: number;
  readonly nativeNs: number[];
  readonly jitNs: number[];
  /** The JIT in the `verified` memory mode (no bounds checks). */
  readonly verifiedNs: number[];
  readonly interpreterNs: number[];
  interpreterInsns: number;
  jitInsns: number;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const geomean = (xs: readonly number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

class ResultMismatchError extends Error {}

function check(kernel: Kernel, engine: string, got: bigint, expected: bigint, what: string): void {
  if (got !== expected) {
    throw new ResultMismatchError(
      `${kernel.name}: ${engine} returned 0x${got.toString(16)} on the ${what} buffer, expected 0x${expected.toString(16)}`,
    );
  }
}

/** Minimum of `calls` timed calls of `engine`, each checked; returns ns and the instructions of one call. */
function timeEngine(run: KernelRun, engine: BenchEngine, calls: number): { ns: number; insns: number } {
  const [buffer, expected, what] =
    engine === 'interpreter' ? [run.scaled, run.expectedScaled, 'scaled'] : [run.full, run.expectedFull, 'full'];
  let best = Number.POSITIVE_INFINITY;
  let insns = 0;
  for (let i = 0; i < calls; i++) {
    // CPU time, as the native harness measures it: wall time on a shared 2-core machine mostly
    // measures the neighbours. (Process-wide, but V8's background threads are idle by now.)
    const t0 = process.cpuUsage();
    const result = run.engines.run(buffer, engine);
    const used = process.cpuUsage(t0);
    const ns = (used.user + used.system) * 1000;
    check(run.kernel, engine, result.r0, expected, what);
    best = Math.min(best, ns);
    insns = result.fuelUsed;
  }
  return { ns: best, insns };
}

/** Build, check and warm up one kernel on every engine; the first JIT call is timed before anything else. */
function openRun(kernel: Kernel, cc: string | undefined, dir: string): KernelRun {
  const payload = makePayload(kernel.payload, BENCH_PAYLOAD_BYTES);
  const full = kernelBuffer(kernel, payload, kernel.benchRounds);
  const scaled = kernelBuffer(kernel, payload, kernel.interpreterRounds);
  const engines = openKernel(readKernelObject(kernel), full.length);
  const compileMs = engines.prepare('jit');
  const t0 = process.cpuUsage();
  const first = engines.run(full, 'jit');
  const firstUsed = process.cpuUsage(t0);
  const firstCallNs = (firstUsed.user + firstUsed.system) * 1000;
  engines.prepare('interpreter');
  engines.prepare('jit-verified');
  let native: KernelRun['native'];
  let expectedFull = first.r0;
  let expectedScaled: bigint;
  if (cc !== undefined) {
    const exe = buildNativeKernel(cc, kernel, dir);
    const fullFile = writeBufferFile(join(dir, `${kernel.name}.full.bin`), full);
    const scaledFile = writeBufferFile(join(dir, `${kernel.name}.scaled.bin`), scaled);
    expectedFull = runNativeKernel(exe, fullFile, 1).r0;
    expectedScaled = runNativeKernel(exe, scaledFile, 1).r0;
    native = { exe, fullFile, r0: expectedFull };
    check(kernel, 'the JIT (first call)', first.r0, expectedFull, 'full');
  } else {
    // No native reference: the JIT on the scaled buffer is the interpreter's reference.
    expectedScaled = engines.run(scaled, 'jit').r0;
  }
  const run: KernelRun = {
    kernel,
    full,
    scaled,
    engines,
    native,
    expectedFull,
    expectedScaled,
    compileMs,
    firstCallNs,
    nativeNs: [],
    jitNs: [],
    verifiedNs: [],
    interpreterNs: [],
    interpreterInsns: 0,
    jitInsns: first.fuelUsed,
  };
  timeEngine(run, 'jit', 2); // warm-up (and the first check of the results)
  timeEngine(run, 'jit-verified', 2);
  timeEngine(run, 'interpreter', 1); // warm-up: V8 optimises the dispatch loop
  return run;
}

/** One interleaved round: every kernel natively, on the JIT and on the interpreter. */
function round(runs: readonly KernelRun[]): void {
  for (const run of runs) {
    if (run.native !== undefined) {
      const n = runNativeKernel(run.native.exe, run.native.fullFile, CALLS_PER_SAMPLE);
      check(run.kernel, 'native', n.r0, run.expectedFull, 'full');
      run.nativeNs.push(Math.min(...n.ns));
    }
    const jit = timeEngine(run, 'jit', CALLS_PER_SAMPLE);
    run.jitNs.push(jit.ns);
    run.jitInsns = jit.insns;
    run.verifiedNs.push(timeEngine(run, 'jit-verified', CALLS_PER_SAMPLE).ns);
    const interpreter = timeEngine(run, 'interpreter', 2);
    run.interpreterNs.push(interpreter.ns);
    run.interpreterInsns = interpreter.insns;
  }
}

const col = (s: string, w: number) => s.padStart(w);
const ratio = (x: number) => `${x.toFixed(2)}x`;

function kernelTable(runs: readonly KernelRun[], verdicts: ReadonlyMap<string, Verdict>, withNative: boolean): string[] {
  const header = [
    'kernel'.padEnd(14),
    col('native µs', 10),
    col('JIT µs', 8),
    col('JIT/nat', 8),
    col('verified µs', 12),
    col('ver/nat', 8),
    col('1st/nat', 8),
    col('JIT ns/insn', 12),
    col('interp ns/insn', 15),
    col('interp/nat', 11),
    col('compile ms', 11),
    col('verifier', 9),
  ].join(' ');
  const lines = [header];
  for (const run of runs) {
    const scale = run.kernel.benchRounds / run.kernel.interpreterRounds;
    const nat = median(run.nativeNs);
    const jit = median(run.jitNs);
    const verified = median(run.verifiedNs);
    const interp = median(run.interpreterNs);
    const toNative = (ns: number) => (withNative ? ratio(ns / nat) : '-');
    const verdict = verdicts.get(run.kernel.name);
    lines.push(
      [
        `${run.kernel.name}${run.kernel.memoryHeavy ? '*' : ''}`.padEnd(14),
        col(withNative ? (nat / 1000).toFixed(0) : '-', 10),
        col((jit / 1000).toFixed(0), 8),
        col(toNative(jit), 8),
        col((verified / 1000).toFixed(0), 12),
        col(toNative(verified), 8),
        col(toNative(run.firstCallNs), 8),
        col((jit / run.jitInsns).toFixed(3), 12),
        col((interp / run.interpreterInsns).toFixed(2), 15),
        col(toNative(interp * scale), 11),
        col(run.compileMs.toFixed(2), 11),
        col(verdict === undefined ? '-' : verdict.accepted ? 'accepted' : 'rejected', 9),
      ].join(' '),
    );
  }
  return lines;
}

/** Geomean and worst of `ns(run) / native` against the JIT targets. */
function jitLine(label: string, runs: readonly KernelRun[], ns: (r: KernelRun) => number): string {
  const ratios = runs.map((r) => ({ name: r.kernel.name, x: ns(r) / median(r.nativeNs) }));
  const worst = ratios.reduce((a, b) => (b.x > a.x ? b : a));
  const g = geomean(ratios.map((r) => r.x));
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return (
    `${label}: geomean ${ratio(g)} of native (target <= ${TARGET_JIT_GEOMEAN}x: ${mark(g <= TARGET_JIT_GEOMEAN)}); ` +
    `worst ${worst.name} ${ratio(worst.x)} (target <= ${TARGET_JIT_WORST}x: ${mark(worst.x <= TARGET_JIT_WORST)})`
  );
}

function summary(runs: readonly KernelRun[], withNative: boolean): string[] {
  const lines: string[] = [];
  if (withNative) {
    lines.push(
      jitLine('JIT, checked memory (nearbpf run)', runs, (r) => median(r.jitNs)),
      jitLine('JIT, verified memory (the target)', runs, (r) => median(r.verifiedNs)),
      jitLine('JIT, first call after compile', runs, (r) => r.firstCallNs),
    );
  }
  const heavy = runs.filter((r) => r.kernel.memoryHeavy);
  if (heavy.length > 0) {
    const perInsn = heavy.map((r) => ({ name: r.kernel.name, ns: median(r.interpreterNs) / r.interpreterInsns }));
    const worst = perInsn.reduce((a, b) => (b.ns > a.ns ? b : a));
    lines.push(
      `interpreter on memory-heavy kernels (*): worst ${worst.name} ${worst.ns.toFixed(2)} ns/insn, ` +
        `median ${median(perInsn.map((p) => p.ns)).toFixed(2)} (target <= ${TARGET_INTERPRETER_NS_PER_INSN}: ${worst.ns <= TARGET_INTERPRETER_NS_PER_INSN ? 'met' : 'MISSED'})`,
    );
  }
  return lines;
}

/** A 1,000-instruction program (straight-line ALU, a branch every 10); `salt` changes its immediates. */
function straightLineProgram(salt: number): Uint8Array {
  const lines: string[] = ['mov %r0, 0'];
  while (lines.length < 999) lines.push(lines.length % 10 === 0 ? 'jgt %r0, 100000000, +0' : `add %r0, ${lines.length + salt}`);
  lines.push('exit');
  return encodeProgram(assemble(lines.join('\n')));
}

/**
 * A 1,000-instruction program V8 cannot fold away: values from the context (param0) and the scratch
 * area, a data-dependent branch, a store and a load in every 10 instructions. `salt` changes its
 * immediates.
 */
function mixedProgram(salt: number): Uint8Array {
  const lines = [
    'mov %r6, %r1',
    `ldxdw %r7, [%r6+${STORAGE_CTX.param0}]`,
    `ldxdw %r8, [%r6+${STORAGE_CTX.scratch}]`,
    'mov %r0, 0',
  ];
  for (let k = 0; lines.length < 990; k++) {
    lines.push(
      'add %r0, %r7',
      'mov %r9, %r0',
      'and %r9, 255',
      'jgt %r9, 100, +1',
      `xor %r0, ${salt + k}`,
      `stxdw [%r8+${(k * 8) % 256}], %r0`,
      `ldxdw %r9, [%r8+${(k * 8 + 64) % 256}]`,
      'add %r0, %r9',
      'rsh %r9, 3',
      'sub %r0, %r9',
    );
  }
  lines.push('exit');
  return encodeProgram(assemble(lines.join('\n')));
}

const LOAD_PROGRAMS = [
  { name: 'straight-line ALU', make: straightLineProgram },
  { name: 'mixed (loads, stores, branches)', make: mixedProgram },
] as const;

/** Medians over the samples of a load, in ms: the whole load and its parts. */
interface LoadTimes {
  readonly insns: number;
  readonly samples: number;
  /** Wall time of the whole load (decode to an instantiated program), and the CPU time of this process (all threads) over it. */
  readonly totalMs: number;
  readonly totalCpuMs: number;
  readonly decodeMs: number;
  readonly verifyMs: number;
  /**
   * Sandbox, maps, helpers and linked program of the storage function (built apart, same program).
   * In the load, it and the translation run on this thread while the verifier's worker runs.
   */
  readonly sandboxMs: number;
  /** eBPF to Wasm bytes (our translator). */
  readonly translateMs: number;
  /** V8's optimising compile of the module, from its start (before verification) to its result. */
  readonly compileMs: number;
  /** What is left of the total: the wait for the compile after the verdict, and the runtime's own work. */
  readonly afterVerdictMs: number;
  readonly instantiateMs: number;
  /** Wasm bytes of the compiled program. */
  readonly wasmBytes: number;
}

/**
 * Load (decode), verify and compile through the storage runtime, as the target does: the verifier
 * on a worker thread (the target's `VerifierPool`) while V8 compiles on its background threads, in
 * the memory mode the target uses (verified). Every sample is a different program: V8 reuses the
 * compiled module of identical Wasm bytes.
 */
async function loadTimes(pool: VerifierPool, make: (salt: number) => Uint8Array, samples: number): Promise<LoadTimes> {
  let verifyMs = 0;
  const runtime = new StorageRuntime({
    verify: async (program, _name, maps, tenant) => {
      const v0 = performance.now();
      await pool.verify(tenant, program, maps);
      verifyMs = performance.now() - v0;
    },
    memoryMode: 'verified',
  });
  const limits = runtime.limits('bench');
  const rows: Omit<LoadTimes, 'insns' | 'samples'>[] = [];
  let insns = 0;
  for (let i = 0; i < samples; i++) {
    const bytes = make(i + 1);
    // The storage function's build alone (sandbox, maps, link), for the same program: part of the load below.
    const s0 = performance.now();
    new StorageFunction({
      name: 'apart',
      program: decodeProgram(bytes),
      slots: limits.maxConcurrentExecutions,
      compile: 'later',
    });
    const sandboxMs = performance.now() - s0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const program = decodeProgram(bytes);
    const t1 = performance.now();
    await runtime.load('bench', 'thousand', program);
    const totalMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const engine = runtime.functionOf('bench', 'thousand')?.engine;
    if (engine === undefined) throw new Error('internal: the loaded function has no engine');
    const { translateMs, compileMs, wasmSizeBytes } = engine.stats;
    const decodeMs = t1 - t0;
    rows.push({
      totalMs,
      totalCpuMs: (cpu.user + cpu.system) / 1000,
      decodeMs,
      verifyMs,
      sandboxMs,
      translateMs,
      compileMs,
      afterVerdictMs: Math.max(0, totalMs - decodeMs - verifyMs - engine.instantiateMs),
      instantiateMs: engine.instantiateMs,
      wasmBytes: wasmSizeBytes,
    });
    runtime.unload('bench', 'thousand');
    insns = program.length;
  }
  const med = (key: keyof (typeof rows)[number]) => median(rows.map((r) => r[key]));
  return {
    insns,
    samples,
    totalMs: med('totalMs'),
    totalCpuMs: med('totalCpuMs'),
    decodeMs: med('decodeMs'),
    verifyMs: med('verifyMs'),
    sandboxMs: med('sandboxMs'),
    translateMs: med('translateMs'),
    compileMs: med('compileMs'),
    afterVerdictMs: med('afterVerdictMs'),
    instantiateMs: med('instantiateMs'),
    wasmBytes: med('wasmBytes'),
  };
}

function loadLine(name: string, t: LoadTimes): string {
  const ms = (v: number) => v.toFixed(3);
  return (
    `  ${name}, ${t.insns} insns: median ${ms(t.totalMs)} ms wall, ${ms(t.totalCpuMs)} ms CPU ` +
    `(target <= ${TARGET_LOAD_MS} ms: ${t.totalMs <= TARGET_LOAD_MS ? 'met' : 'MISSED'}); decode ${ms(t.decodeMs)}, ` +
    `sandbox ${ms(t.sandboxMs)}, translate ${ms(t.translateMs)} (${Math.round(t.wasmBytes)} B of Wasm), verify (worker) ${ms(t.verifyMs)}, ` +
    `V8 compile ${ms(t.compileMs)} (in the background, during verification; wait after the verdict: ${ms(t.afterVerdictMs)}), ` +
    `instantiate ${ms(t.instantiateMs)}`
  );
}

/** Median ns of one execution (one step: context setup, JS to Wasm and back) of an empty storage function. */
async function stepOverheadNs(): Promise<number> {
  const runtime = new StorageRuntime({ verify: () => {} });
  await runtime.load('bench', 'empty', assemble('mov %r0, 0\nexit'));
  const namespace = new MemoryNamespace(new Uint8Array(4096));
  const perBatch: number[] = [];
  const executions = 2000;
  for (let b = 0; b < 7; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < executions; i++) await runtime.execute('bench', 'empty', { reader: namespace, params: [0n, 0n] });
    perBatch.push(Number(process.hrtime.bigint() - t0) / executions);
  }
  return median(perBatch.slice(2)); // the first batches warm up
}

async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (e) {
    if (!(e instanceof BenchUsageError)) throw e;
    console.error(`bench:vm: ${e.message}\n${USAGE}`);
    return 2;
  }
  const cc = findCCompiler();
  if (cc === undefined) {
    console.log('No C compiler (cc, or $CC): the native column is skipped, and the engines are checked against each other only.');
  }
  const verdicts = options.verifyLimit === 0 ? [] : options.kernels.map((k) => verifyKernel(k, options.verifyLimit));
  const pool = new VerifierPool({ workers: 1, maxPerTenant: 1, timeoutMs: 60_000, memoryBytes: 512 * 2 ** 20 });
  for (const p of LOAD_PROGRAMS) await loadTimes(pool, p.make, 1); // the first load in a process pays for V8's one-time setup
  const dir = mkdtempSync(join(tmpdir(), 'nearbpf-bench-vm-'));
  try {
    const runs = options.kernels.map((k) => openRun(k, cc, dir));
    for (let r = 0; r < options.rounds; r++) round(runs);
    const withNative = cc !== undefined;
    console.log(
      `${runs.length} kernels over a ${BENCH_PAYLOAD_BYTES / 1024} KiB payload; median of ${options.rounds} interleaved rounds, ` +
        `each the best of ${CALLS_PER_SAMPLE} calls (CPU time); native = the same C with ${cc ?? '(none)'} -O2; ` +
        'JIT = checked memory mode, verified = without bounds checks (run for every kernel: they are ours and their results are checked); ' +
        'interpreter on fewer rounds, scaled back for interp/nat; 1st = first JIT call after compile (one sample).\n',
    );
    const byName = new Map(verdicts.map((v) => [v.kernel.name, v]));
    console.log([...kernelTable(runs, byName, withNative), '', ...summary(runs, withNative)].join('\n'));
    if (verdicts.length > 0) {
      const accepted = verdicts.filter((v) => v.accepted).length;
      console.log(
        `\nverifier (conformance type, limit ${options.verifyLimit} processed insns): ${accepted} of ${verdicts.length} kernels accepted`,
      );
      for (const v of verdicts) console.log(`  ${v.kernel.name.padEnd(14)} ${v.accepted ? 'accepted' : 'rejected'}: ${v.detail}`);
    }
  } catch (e) {
    if (e instanceof ResultMismatchError) {
      console.error(`bench:vm: result mismatch: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  console.log(
    `\nload + verify + compile through the storage runtime as the target does (verifier worker, verified memory mode; medians of ${LOAD_SAMPLES} different programs, ms):`,
  );
  for (const p of LOAD_PROGRAMS) console.log(loadLine(p.name, await loadTimes(pool, p.make, LOAD_SAMPLES)));
  await pool.close();
  console.log(`storage-function step overhead (empty program, one step, in-process): ${(await stepOverheadNs()).toFixed(0)} ns`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
