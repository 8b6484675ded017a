/**
 * The C kernels of `npm run bench:vm` (src/bench/kernels/*.c): which there are, the deterministic
 * buffers they run on, the native build of the same source, and the one function through which
 * the benchmark and its test run the committed eBPF objects on our engines.
 *
 * A kernel's buffer is an 8-byte header (u32 rounds, u32 seed; see bench-kernel.h) followed by
 * its payload; the kernel repeats its work `rounds` times over the payload.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProgramEnvironment, loadProgramBytes, type ProgramEnvironment } from '../loader/index.js';

/** src/bench/kernels/ of the repository (this module runs from dist/bench/). */
export const KERNELS_DIR = fileURLToPath(new URL('../../src/bench/kernels/', import.meta.url));
/** The committed eBPF objects (scripts/build-bench-kernels.sh). */
export const KERNELS_BUILD_DIR = join(KERNELS_DIR, 'build');

export const HEADER_BYTES = 8;
/** The payload the benchmark uses (the kernels accept up to this much). */
export const BENCH_PAYLOAD_BYTES = 65536;

export type PayloadKind = 'random' | 'text-lines' | 'sorted-u32' | 'linked-nodes' | 'csv';

export interface Kernel {
  /** File stem in src/bench/kernels/ and build/, and the program's name in the object. */
  readonly name: string;
  readonly description: string;
  readonly payload: PayloadKind;
  readonly seed: number;
  /** Rounds of one benchmark call (a few ms natively) and of one interpreter call. */
  readonly benchRounds: number;
  readonly interpreterRounds: number;
  /** Dominated by loads and stores (the interpreter's ns/insn target applies to these). */
  readonly memoryHeavy: boolean;
}

export const KERNELS: readonly Kernel[] = [
  {
    name: 'alu_mix',
    description: '64/32-bit multiply-shift-rotate chain per u64 word',
    payload: 'random',
    seed: 0x9e3779b9,
    benchRounds: 60,
    interpreterRounds: 1,
    memoryHeavy: false,
  },
  {
    name: 'byte_scan',
    description: 'lines, longest line, high bytes',
    payload: 'text-lines',
    seed: 0,
    benchRounds: 60,
    interpreterRounds: 1,
    memoryHeavy: true,
  },
  {
    name: 'fnv1a',
    description: 'FNV-1a 64 over the bytes',
    payload: 'random',
    seed: 0x811c9dc5,
    benchRounds: 30,
    interpreterRounds: 1,
    memoryHeavy: true,
  },
  {
    name: 'local_calls',
    description: '3 BPF-to-BPF calls per u32 word',
    payload: 'random',
    seed: 7,
    benchRounds: 40,
    interpreterRounds: 1,
    memoryHeavy: false,
  },
  {
    name: 'binary_search',
    description: '1024 lower-bound searches in 16K sorted u32',
    payload: 'sorted-u32',
    seed: 12345,
    benchRounds: 40,
    interpreterRounds: 1,
    memoryHeavy: true,
  },
  {
    name: 'struct_walk',
    description: 'follow next indices through 4K 16-byte nodes',
    payload: 'linked-nodes',
    seed: 3,
    benchRounds: 200,
    interpreterRounds: 4,
    memoryHeavy: true,
  },
  {
    name: 'checksum',
    description: 'Fletcher-64 style sums of u32 words',
    payload: 'random',
    seed: 1,
    benchRounds: 400,
    interpreterRounds: 4,
    memoryHeavy: true,
  },
  {
    name: 'csv_parse',
    description: 'state machine over decimal CSV records',
    payload: 'csv',
    seed: 0,
    benchRounds: 20,
    interpreterRounds: 1,
    memoryHeavy: true,
  },
  {
    name: 'histogram',
    description: '64 stack counters, load+store per byte',
    payload: 'random',
    seed: 5,
    benchRounds: 60,
    interpreterRounds: 1,
    memoryHeavy: true,
  },
];

/** xorshift32: the same bytes on every machine and run. */
function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x12345678;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Printable ASCII (no digits needed) with a newline about every 64 bytes, and some high bytes. */
function textLines(bytes: Uint8Array, next: () => number): void {
  for (let i = 0; i < bytes.length; i++) {
    const x = next();
    bytes[i] = x % 64 === 0 ? 0x0a : x % 16 === 1 ? 0x80 | ((x >>> 8) % 128) : 0x20 + ((x >>> 8) % 95);
  }
}

/** Records of 1-5 decimal fields of 1-7 digits; about one byte in 50 is junk (a space). */
function csvText(bytes: Uint8Array, next: () => number): void {
  let i = 0;
  while (i < bytes.length) {
    const fields = 1 + (next() % 5);
    for (let f = 0; f < fields && i < bytes.length; f++) {
      const digits = 1 + (next() % 7);
      for (let d = 0; d < digits && i < bytes.length; d++) bytes[i++] = 0x30 + (next() % 10);
      if (i < bytes.length && next() % 50 === 0) bytes[i++] = 0x20;
      if (i < bytes.length) bytes[i++] = f + 1 < fields ? 0x2c : 0x0a;
    }
  }
}

/** 16-byte nodes {u32 next, u32 value, u16 kind, u16 weight, u32 flags}, `next` one cycle through all. */
function linkedNodes(bytes: Uint8Array, next: () => number): void {
  const count = Math.floor(bytes.length / 16);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Sattolo's shuffle: a single cycle, so the walk visits every node once per round.
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = next() % i;
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (let i = 0; i < count; i++) {
    const at = i * 16;
    view.setUint32(at, order[i], true);
    view.setUint32(at + 4, next(), true);
    view.setUint16(at + 8, next() & 0xffff, true);
    view.setUint16(at + 10, next() & 0xffff, true);
    view.setUint32(at + 12, next(), true);
  }
}

/** The payload of `kind`, `sizeBytes` long, the same for every call with the same arguments. */
export function makePayload(kind: PayloadKind, sizeBytes: number): Uint8Array {
  const bytes = new Uint8Array(sizeBytes);
  const next = xorshift32(0x2545f491);
  switch (kind) {
    case 'random':
      for (let i = 0; i < sizeBytes; i++) bytes[i] = next() & 0xff;
      break;
    case 'text-lines':
      textLines(bytes, next);
      break;
    case 'sorted-u32': {
      const keys = new Uint32Array(Math.floor(sizeBytes / 4));
      for (let i = 0; i < keys.length; i++) keys[i] = next();
      keys.sort();
      bytes.set(new Uint8Array(keys.buffer));
      break;
    }
    case 'linked-nodes':
      linkedNodes(bytes, next);
      break;
    case 'csv':
      csvText(bytes, next);
      break;
  }
  return bytes;
}

/** Header (rounds, seed) + payload: the buffer a kernel runs on (r1, r2). */
export function kernelBuffer(kernel: Kernel, payload: Uint8Array, rounds: number): Uint8Array {
  const buffer = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(buffer.buffer);
  view.setUint32(0, rounds, true);
  view.setUint32(4, kernel.seed, true);
  buffer.set(payload, HEADER_BYTES);
  return buffer;
}

export function kernelObjectPath(kernel: Kernel, dir = KERNELS_BUILD_DIR): string {
  return join(dir, `${kernel.name}.o`);
}

/** Our engines as the benchmark runs them: the JIT in each of its memory modes, and the interpreter. */
export type BenchEngine = 'interpreter' | 'jit' | 'jit-verified';

/** A kernel object opened on our engines, for buffers up to the size it was opened with. */
export interface KernelOnEngines {
  /** Compile for `engine` now (once); returns the milliseconds it took (0 if already compiled). */
  prepare(engine: BenchEngine): number;
  run(buffer: Uint8Array, engine: BenchEngine): { r0: bigint; fuelUsed: number };
}

/**
 * The one place the benchmark and its test touch the loader and the engines: the loader's
 * high-level API, as `nearbpf run` uses it (src/vm is being reworked; keep every use here).
 * `jit-verified` compiles without bounds checks whether or not the verifier accepted the kernel:
 * the kernels are our own, and every result is checked against native or a reference.
 */
export function openKernel(objectBytes: Uint8Array, maxBufferBytes: number): KernelOnEngines {
  const { object, program } = loadProgramBytes(objectBytes);
  const environments = new Map<BenchEngine, ProgramEnvironment>();
  const environment = (engine: BenchEngine) => {
    let env = environments.get(engine);
    if (env === undefined) {
      env = createProgramEnvironment(object, program.name, {
        memorySizeBytes: maxBufferBytes,
        memoryMode: engine === 'jit-verified' ? 'verified' : 'checked',
      });
      environments.set(engine, env);
    }
    return env;
  };
  const kind = (engine: BenchEngine) => (engine === 'interpreter' ? 'interpreter' : 'jit');
  const prepared = new Set<BenchEngine>();
  return {
    prepare(engine) {
      const env = environment(engine);
      if (prepared.has(engine)) return 0;
      prepared.add(engine);
      const t0 = performance.now();
      env.engine(kind(engine));
      return performance.now() - t0;
    },
    run(buffer, engine) {
      const run = environment(engine).run(buffer, { engine: kind(engine), fuel: Number.MAX_SAFE_INTEGER });
      return { r0: run.r0, fuelUsed: run.fuelUsed };
    },
  };
}

export function readKernelObject(kernel: Kernel, dir = KERNELS_BUILD_DIR): Uint8Array {
  return new Uint8Array(readFileSync(kernelObjectPath(kernel, dir)));
}

/** The system C compiler (CC, else cc), or undefined when there is none. */
export function findCCompiler(): string | undefined {
  const cc = process.env.CC ?? 'cc';
  const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? cc : undefined;
}

/** Build the native harness for `kernel` (the same C source, cc -O2) into `outDir`; returns its path. */
export function buildNativeKernel(cc: string, kernel: Kernel, outDir: string): string {
  const exe = join(outDir, `${kernel.name}-native`);
  const build = spawnSync(
    cc,
    [
      '-O2',
      '-std=c11',
      '-Wall',
      '-Werror',
      '-I',
      KERNELS_DIR,
      join(KERNELS_DIR, 'harness.c'),
      join(KERNELS_DIR, `${kernel.name}.c`),
      '-o',
      exe,
    ],
    { encoding: 'utf8' },
  );
  if (build.status !== 0) throw new Error(`${cc} failed to build ${kernel.name}:\n${build.stdout}${build.stderr}`);
  return exe;
}

/** Run a native kernel: one untimed call, then `calls` timed calls on the buffer in `bufferFile`. */
export function runNativeKernel(exe: string, bufferFile: string, calls: number): { r0: bigint; ns: number[] } {
  const run = spawnSync(exe, [bufferFile, String(calls)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${exe} failed (status ${run.status}): ${run.stderr}`);
  const [r0, ...ns] = run.stdout.trim().split(/\s+/);
  if (r0 === undefined || ns.length !== calls) throw new Error(`${exe}: unexpected output '${run.stdout}'`);
  return { r0: BigInt(`0x${r0}`), ns: ns.map(Number) };
}

export function writeBufferFile(path: string, buffer: Uint8Array): string {
  writeFileSync(path, buffer);
  return path;
}
