/**
 * `npm run bench:vm`: nanoseconds per executed eBPF instruction on both engines, compile times,
 * and the same algorithms in plain TypeScript. Prints a table; figures, not pass/fail.
 */
import { assemble, type Instruction } from '../isa/index.js';
import { CONFORMANCE_MEMORY_REGION_ID, conformanceHelpers } from '../vm/conformance.js';
import { createSandbox, type Engine } from '../vm/engine.js';
import { Interpreter } from '../vm/interpreter.js';
import { JitEngine } from '../vm/jit/engine.js';
import { regionAddress } from '../vm/memory.js';

interface Workload {
  name: string;
  source: string;
  memory: Uint8Array;
  /** Reduce the problem for the interpreter by this factor (runs scale linearly). */
  interpreterScale: number;
  /** What the unit of work is and how many there are in one full run. */
  unit: string;
  units: number;
  /** The same computation in plain TypeScript, returning r0. */
  native: (mem: Uint8Array, scale: number) => bigint;
  /** Source with the repeat count scaled. */
  scaled: (factor: number) => string;
}

const KIB64 = 65536;
const data = new Uint8Array(KIB64);
for (let i = 0, x = 0x12345678; i < data.length; i++) {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  data[i] = x & 0xff;
}
const sortedNode = new Uint8Array(31 * 8);
{
  const view = new DataView(sortedNode.buffer);
  for (let i = 0; i < 31; i++) view.setBigUint64(i * 8, BigInt(i * 1000 + 7), true);
}

function workload(
  name: string,
  template: (n: number) => string,
  n: number,
  memory: Uint8Array,
  interpreterScale: number,
  unit: string,
  units: number,
  native: (mem: Uint8Array, n: number) => bigint,
): Workload {
  return {
    name,
    source: template(n),
    memory,
    interpreterScale,
    unit,
    units,
    native: (mem, scale) => native(mem, n / scale),
    scaled: (factor) => template(n / factor),
  };
}

/** Sum the memory `n` times, loading with `load` and stepping `step` bytes (byte and word sums). */
const sumLoop = (load: 'ldxb' | 'ldxdw', step: number, n: number) => `
      mov %r0, 0
      mov %r5, ${n}
    outer:
      mov %r3, %r1
      mov %r4, %r1
      add %r4, %r2
    inner:
      ${load} %r6, [%r3]
      add %r0, %r6
      add %r3, ${step}
      jlt %r3, %r4, inner
      sub %r5, 1
      jne %r5, 0, outer
      exit`;

const workloads: Workload[] = [
  workload(
    'ALU loop (1e8 iterations)',
    (n) => `
      mov %r0, 0
      mov %r1, ${n}
    loop:
      add %r0, %r1
      sub %r1, 1
      jne %r1, 0, loop
      exit`,
    1e8,
    new Uint8Array(0),
    100,
    'insn',
    3e8,
    (_m, n) => {
      let r0 = 0n;
      // BigInt-free version of the same sum, modulo 2^64: exact below 2^53.
      let acc = 0;
      for (let i = n; i > 0; i--) acc += i;
      r0 = BigInt(acc);
      return r0;
    },
  ),
  workload(
    'byte sum, 64 KiB x 1000',
    (n) => sumLoop('ldxb', 1, n),
    1000,
    data,
    100,
    'byte',
    1000 * KIB64,
    (m, n) => {
      let s = 0;
      for (let k = 0; k < n; k++) for (let i = 0; i < m.length; i++) s += m[i];
      return BigInt(s);
    },
  ),
  workload(
    'u64 word sum, 64 KiB x 1000',
    (n) => sumLoop('ldxdw', 8, n),
    1000,
    data,
    100,
    'word',
    1000 * (KIB64 / 8),
    (m, n) => {
      const words = new BigUint64Array(m.buffer, m.byteOffset, m.length / 8);
      let s = 0n;
      for (let k = 0; k < n; k++) for (let i = 0; i < words.length; i++) s += words[i];
      return BigInt.asUintN(64, s);
    },
  ),
  workload(
    'FNV-1a, 64 KiB x 100',
    (n) => `
      mov %r5, ${n}
      lddw %r7, 0x100000001b3
    outer:
      lddw %r0, 0xcbf29ce484222325
      mov %r3, %r1
      mov %r4, %r1
      add %r4, %r2
    inner:
      ldxb %r6, [%r3]
      xor %r0, %r6
      mul %r0, %r7
      add %r3, 1
      jlt %r3, %r4, inner
      sub %r5, 1
      jne %r5, 0, outer
      exit`,
    100,
    data,
    20,
    'byte',
    100 * KIB64,
    (m) => {
      // Same hash with 32-bit halves (the natural way to do it fast in JS).
      let hlo = 0x84222325;
      let hhi = 0xcbf29ce4;
      for (let i = 0; i < m.length; i++) {
        hlo ^= m[i];
        // h * 0x100000001b3 = h * 0x1b3 + (h << 40)
        const lo = (hlo >>> 0) * 0x1b3;
        const carry = Math.floor(lo / 0x100000000);
        const newHi = (Math.imul(hhi, 0x1b3) + carry + (hlo << 8)) >>> 0;
        hlo = lo >>> 0;
        hhi = newHi;
      }
      return (BigInt(hhi >>> 0) << 32n) | BigInt(hlo >>> 0);
    },
  ),
  workload(
    'local calls (1e7)',
    (n) => `
      mov %r6, ${n}
      mov %r7, 0
    loop:
      mov %r1, %r6
      call local f
      add %r7, %r0
      sub %r6, 1
      jne %r6, 0, loop
      mov %r0, %r7
      exit
    f:
      mov %r0, %r1
      and %r0, 7
      exit`,
    1e7,
    new Uint8Array(0),
    20,
    'call',
    1e7,
    (_m, n) => {
      const f = (x: number) => x & 7;
      let s = 0;
      for (let i = n; i > 0; i--) s += f(i);
      return BigInt(s);
    },
  ),
  workload(
    'binary search, 31 keys x 1e6',
    (n) => `
      mov %r9, ${n}
      mov %r0, 0
    outer:
      mov %r8, %r9
      mod %r8, 31000
      mov %r3, 0
      mov %r4, 31
    search:
      jge %r3, %r4, done
      mov %r5, %r3
      add %r5, %r4
      rsh %r5, 1
      mov %r6, %r5
      lsh %r6, 3
      add %r6, %r1
      ldxdw %r6, [%r6]
      jge %r6, %r8, upper
      mov %r3, %r5
      add %r3, 1
      ja search
    upper:
      mov %r4, %r5
      ja search
    done:
      add %r0, %r3
      sub %r9, 1
      jne %r9, 0, outer
      exit`,
    1e6,
    sortedNode,
    20,
    'search',
    1e6,
    (m, n) => {
      const view = new DataView(m.buffer, m.byteOffset);
      let total = 0;
      for (let k = n; k > 0; k--) {
        const key = k % 31000;
        let lo = 0;
        let hi = 31;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (Number(view.getBigUint64(mid * 8, true)) >= key) hi = mid;
          else lo = mid + 1;
        }
        total += lo;
      }
      return BigInt(total);
    },
  ),
];

function makeEngine(kind: 'interpreter' | 'jit', program: Instruction[], memory: Uint8Array) {
  const sandbox = createSandbox([{ name: 'mem', sizeBytes: memory.length, writable: true }]);
  sandbox.bytes(CONFORMANCE_MEMORY_REGION_ID).set(memory);
  const options = { helpers: conformanceHelpers, memory: sandbox };
  const t0 = performance.now();
  const engine: Engine = kind === 'jit' ? new JitEngine(program, options) : new Interpreter(program, options);
  const compileMs = performance.now() - t0;
  const args = [regionAddress(CONFORMANCE_MEMORY_REGION_ID, 0), BigInt(memory.length)];
  return { engine, compileMs, args };
}

function timeRun(engine: Engine, args: bigint[]) {
  const t0 = process.hrtime.bigint();
  const result = engine.run(args, { fuel: Number.MAX_SAFE_INTEGER });
  const ns = Number(process.hrtime.bigint() - t0);
  return { ns, result };
}

const fmt = (x: number, digits = 2) => x.toFixed(digits).padStart(9);

function main(): void {
  const rows: string[] = [];
  rows.push(
    `${'workload'.padEnd(30)} ${'unit'.padStart(6)} ${'jit ns/insn'.padStart(11)} ${'jit ns/unit'.padStart(11)} ${'interp ns/insn'.padStart(14)} ${'TS ns/unit'.padStart(10)} ${'jit/TS'.padStart(7)} ${'compile µs'.padStart(10)}`,
  );
  for (const w of workloads) {
    const program = assemble(w.source);
    const jit = makeEngine('jit', program, w.memory);
    timeRun(jit.engine, jit.args); // warm-up: lets V8 tier the module up
    const j = timeRun(jit.engine, jit.args);
    const insns = j.result.fuelUsed;
    const small = assemble(w.scaled(w.interpreterScale));
    const interp = makeEngine('interpreter', small, w.memory);
    timeRun(interp.engine, interp.args); // warm-up: V8 optimises the dispatch loop
    // Best of three: the interpreter's runs are short, so one scheduling hiccup would dominate.
    const i = [
      timeRun(interp.engine, interp.args),
      timeRun(interp.engine, interp.args),
      timeRun(interp.engine, interp.args),
    ].reduce((a, b) => (b.ns < a.ns ? b : a));
    const nativeT0 = process.hrtime.bigint();
    const nativeR0 = w.native(w.memory, 1);
    const nativeNs = Number(process.hrtime.bigint() - nativeT0);
    if (nativeR0 !== j.result.r0) throw new Error(`${w.name}: TypeScript gave ${nativeR0}, JIT ${j.result.r0}`);
    rows.push(
      `${w.name.padEnd(30)} ${w.unit.padStart(6)} ${fmt(j.ns / insns, 3).padStart(11)} ${fmt(j.ns / w.units, 3).padStart(11)} ${fmt(i.ns / i.result.fuelUsed).padStart(14)} ${fmt(nativeNs / w.units, 3).padStart(10)} ${fmt(j.ns / nativeNs).padStart(7)} ${fmt(jit.compileMs * 1000, 0).padStart(10)}`,
    );
  }
  console.log(rows.join('\n'));

  // Load + compile of a 1,000-instruction program (straight-line ALU with branches every 10).
  const lines: string[] = ['mov %r0, 0'];
  for (let k = 0; k < 99; k++) {
    for (let m = 0; m < 9; m++) lines.push(`add %r0, ${k * 9 + m}`);
    lines.push('jgt %r0, 100000000, +0');
  }
  lines.push('exit');
  const big = assemble(lines.join('\n'));
  const samples: number[] = [];
  for (let k = 0; k < 30; k++) samples.push(makeEngine('jit', big, new Uint8Array(0)).compileMs);
  samples.sort((a, b) => a - b);
  console.log(
    `\ncompile ${big.length}-instruction program (JIT, translate + V8 compile + instantiate): median ${fmt(samples[15], 3)} ms, min ${fmt(samples[0], 3)} ms`,
  );
}

main();
