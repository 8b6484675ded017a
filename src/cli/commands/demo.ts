/**
 * A self-check and a taste of speed, until the storage demo replaces it: two small programs over a
 * 64 KiB buffer on both engines, each checked against a plain TypeScript implementation.
 */
import { assemble, type Instruction } from '../../isa/index.js';
import { CONFORMANCE_MEMORY_REGION_ID, createConformanceEngine } from '../../vm/conformance.js';
import type { EngineKind } from '../../vm/engine.js';
import { regionAddress } from '../../vm/memory.js';
import { ENGINE_KINDS, expectPositionals, parseCommandArgs } from '../args.js';
import type { Command } from './command.js';

const DEMO_BUFFER_SIZE_BYTES = 64 * 1024;
/** Timed runs per program and engine; the fastest counts, to keep warm-up and GC out of the figure. */
const TIMED_RUNS = 5;

const FNV1A_OFFSET_BASIS = 0x811c9dc5;
const FNV1A_PRIME = 0x01000193;

/** 32-bit FNV-1a over [r1, r1 + r2). */
const FNV1A_SOURCE = `
  mov32 %r0, 0x${FNV1A_OFFSET_BASIS.toString(16)}
  mov64 %r3, %r1
  add64 %r3, %r2
loop:
  jge %r1, %r3, done
  ldxb %r4, [%r1]
  xor32 %r0, %r4
  mul32 %r0, 0x${FNV1A_PRIME.toString(16)}
  add64 %r1, 1
  ja loop
done:
  exit
`;

/** 64-bit sum of the bytes in [r1, r1 + r2). */
const BYTE_SUM_SOURCE = `
  mov64 %r0, 0
  mov64 %r3, %r1
  add64 %r3, %r2
loop:
  jge %r1, %r3, done
  ldxb %r4, [%r1]
  add64 %r0, %r4
  add64 %r1, 1
  ja loop
done:
  exit
`;

export function fnv1a(bytes: Uint8Array): bigint {
  let hash = FNV1A_OFFSET_BASIS;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, FNV1A_PRIME) >>> 0;
  return BigInt(hash);
}

export function byteSum(bytes: Uint8Array): bigint {
  let sum = 0;
  for (const byte of bytes) sum += byte;
  return BigInt(sum);
}

/** Deterministic bytes (xorshift32), so every run of the demo sees the same buffer. */
export function pseudoRandomBytes(length: number, seed = 0x9e3779b9): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

interface DemoProgram {
  readonly name: string;
  readonly program: Instruction[];
  readonly reference: (bytes: Uint8Array) => bigint;
}

export interface DemoRow {
  readonly program: string;
  readonly engine: EngineKind;
  readonly r0: bigint;
  readonly expected: bigint;
  readonly nsPerInstruction: number;
  readonly compileMicros: number;
}

/** Run every demo program on every engine over `buffer`. */
export function runDemo(buffer: Uint8Array): DemoRow[] {
  const programs: DemoProgram[] = [
    { name: 'fnv1a', program: assemble(FNV1A_SOURCE), reference: fnv1a },
    { name: 'byte-sum', program: assemble(BYTE_SUM_SOURCE), reference: byteSum },
  ];
  const rows: DemoRow[] = [];
  for (const { name, program, reference } of programs) {
    const expected = reference(buffer);
    for (const engine of ENGINE_KINDS) {
      // The conformance environment (r1 = buffer, r2 = length), built by hand so that loading and
      // running can be timed apart.
      const compileStart = process.hrtime.bigint();
      const { instance, memory } = createConformanceEngine(program, engine, buffer.length);
      const compileNs = Number(process.hrtime.bigint() - compileStart);
      memory.bytes(CONFORMANCE_MEMORY_REGION_ID).set(buffer);
      const args = [regionAddress(CONFORMANCE_MEMORY_REGION_ID, 0), BigInt(buffer.length)];
      let bestNs = Number.POSITIVE_INFINITY;
      let r0 = 0n;
      let fuelUsed = 1;
      for (let i = 0; i < TIMED_RUNS; i++) {
        const start = process.hrtime.bigint();
        const result = instance.run(args, { fuel: Number.MAX_SAFE_INTEGER });
        bestNs = Math.min(bestNs, Number(process.hrtime.bigint() - start));
        r0 = result.r0;
        fuelUsed = Math.max(1, result.fuelUsed);
      }
      rows.push({
        program: name,
        engine,
        r0,
        expected,
        nsPerInstruction: bestNs / fuelUsed,
        compileMicros: compileNs / 1000,
      });
    }
  }
  return rows;
}

export function formatDemoTable(rows: readonly DemoRow[]): string {
  const header = ['program', 'engine', 'result', 'expected', 'ns/insn', 'compile µs'];
  const cells = rows.map((r) => [
    r.program,
    r.engine,
    `0x${r.r0.toString(16)}`,
    r.r0 === r.expected ? 'ok' : `MISMATCH (0x${r.expected.toString(16)})`,
    r.nsPerInstruction.toFixed(2),
    r.compileMicros.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i >= 4 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[header, ...cells].map(line).join('\n')}\n`;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run built-in FNV-1a and byte-sum programs on both engines and compare them',
  usage: `nearbpf demo

Assembles a FNV-1a and a byte-sum program, runs them over a 64 KiB pseudo-random buffer on the
interpreter and the JIT, checks each result against a TypeScript implementation and prints the
results with nanoseconds per instruction and compile time. Exit status 1 if any result disagrees.`,

  async run(args, io) {
    const { positionals } = parseCommandArgs(args, {});
    expectPositionals(positionals, []);
    const buffer = pseudoRandomBytes(DEMO_BUFFER_SIZE_BYTES);
    io.stdout.write(`${DEMO_BUFFER_SIZE_BYTES} byte pseudo-random buffer\n\n`);
    const rows = runDemo(buffer);
    io.stdout.write(formatDemoTable(rows));
    const mismatches = rows.filter((r) => r.r0 !== r.expected);
    if (mismatches.length === 0) return 0;
    // An engine disagreeing with plain TypeScript is a nearbpf bug, not bad input.
    io.stderr.write(`demo: ${mismatches.length} result(s) disagree with the TypeScript reference\n`);
    return 1;
  },
};
