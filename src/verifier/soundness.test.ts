/**
 * Soundness, checked end to end: random conformance programs (r1 = memory, r2 = its length), biased
 * toward what the verifier accepts (bounds checks of every style clang emits, some of them subtly
 * wrong; copies of the length, moved by constants; indexes compared with the length; stack spills;
 * branches on loaded data; loops bounded by construction, some walking the buffer; counters of
 * data-dependent branches in loops and nested loops, compared and used as indexes; calls of local
 * functions, some in loops, whose results, pointer arguments and writes through a stack pointer
 * decide later accesses: what function summaries must get right). Every program the verifier
 * accepts must run on random memories of random lengths without a run-time memory fault and must
 * terminate well within its fuel.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FuelExhaustedError, MemoryAccessError } from '../errors.js';
import { assemble } from '../isa/index.js';
import { runConformance } from '../vm/conformance.js';
import { VerifierError, verifyProgram } from './index.js';

/** Seeded PRNG (mulberry32): the test is reproducible. */
class Random {
  constructor(private state: number) {}
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    const u = ((z ^ (z >>> 14)) >>> 0) / 0x100000000;
    return min + Math.floor(u * (max - min + 1));
  }
}

const PROGRAMS = 3000;
const RUNS_PER_PROGRAM = 4;
const FUEL = 1_000_000;
const SIZES = [1, 2, 4, 8] as const;
const SUFFIX: Record<number, string> = { 1: 'b', 2: 'h', 4: 'w', 8: 'dw' };
/** Scratch registers (r6 = memory, r7 = length, r8 = loop counter are reserved). */
const SCRATCH = [0, 3, 4, 5, 9] as const;

class ProgramBuilder {
  private readonly lines: string[] = [
    'mov %r6, %r1',
    'mov %r7, %r2',
    'mov %r0, 0',
    'mov %r3, 0',
    'mov %r4, 0',
    'mov %r5, 0',
    'mov %r9, 0',
  ];
  private labels = 0;
  private spilled = new Set<number>();
  /** Local functions (text after the entry function's exit) and the kind of each. */
  private readonly functions: { name: string; kind: number; text: string[]; callee?: number; used?: boolean }[] = [];
  constructor(private readonly rng: Random) {
    const count = rng.int(0, 3);
    for (let k = 0; k < count; k++) this.functions.push(this.makeFunction(k));
  }

  /**
   * A local function of one of five kinds: 0 returns one of two constants chosen by its number
   * argument; 1 counts up to its argument masked (a loop), returning the count; 2 reads the byte its
   * pointer argument points to; 3 stores a constant through its pointer argument (into the caller's
   * stack); 4 calls an earlier function and returns its result plus a constant.
   */
  private makeFunction(k: number): { name: string; kind: number; text: string[]; callee?: number } {
    const name = `fn${k}`;
    const kind = this.rng.int(0, k > 0 ? 4 : 3);
    const out = `${name}_out`;
    let text: string[];
    switch (kind) {
      case 0:
        text = [
          `mov %r0, ${this.index()}`,
          `j${this.pick(['eq', 'gt', 'lt', 'set'])} %r1, ${this.rng.int(0, 8)}, ${out}`,
          `mov %r0, ${this.index()}`,
          `${out}:`,
          'exit',
        ];
        break;
      case 1:
        text = [
          'mov %r0, 0',
          'mov %r2, 0',
          `and %r1, ${this.pick([3, 7, 7, 15])}`,
          `${name}_head:`,
          `jge %r2, %r1, ${out}`,
          'add %r0, 1',
          'add %r2, 1',
          `ja ${name}_head`,
          `${out}:`,
          'exit',
        ];
        break;
      case 2:
        text = ['ldxb %r0, [%r1+0]', `and %r0, ${this.pick([7, 7, 15])}`, 'exit'];
        break;
      case 3:
        text = [`stdw [%r1+0], ${this.index()}`, 'mov %r0, 0', 'exit'];
        break;
      default: {
        const callee = this.rng.int(0, k - 1);
        text = ['mov %r1, %r9', `call local ${this.functions[callee].name}`, `add %r0, ${this.rng.int(0, 1)}`, 'exit'];
        return { name, kind, text: [`${name}:`, ...text], callee };
      }
    }
    return { name, kind, text: [`${name}:`, ...text] };
  }

  /**
   * An index into fp-8..fp-1: usually safe, sometimes far out (fp-8 + 600 lies beyond the stack and
   * every buffer, so the run faults wherever the verifier let it through).
   */
  private index(): number {
    return this.rng.int(0, 8) === 8 ? 600 : this.rng.int(0, 7);
  }

  /**
   * A call of a local function; its result (or what it stored) is used as an index into fp-8..fp-1,
   * sometimes after a bound check that may be one too large. r0 is kept across the call in fp-40.
   */
  call(): void {
    if (this.functions.length === 0) {
      this.alu();
      return;
    }
    const f = this.pick(this.functions);
    // Only functions something calls are emitted (others would be unreachable code).
    let g: (typeof this.functions)[number] | undefined = f;
    while (g && !g.used) {
      g.used = true;
      g = g.callee === undefined ? undefined : this.functions[g.callee];
    }
    const skip = this.label();
    this.emit('stxdw [%r10-40], %r0');
    switch (f.kind) {
      case 2: {
        // A pointer into the buffer, checked (length or pointer style) with a bound that may be short.
        const off = this.rng.int(0, 6);
        const need = this.fuzz(off + 1);
        this.emit(`jlt %r7, ${need}, ${skip}`, 'mov %r1, %r6', `add %r1, ${off}`, `call local ${f.name}`);
        break;
      }
      case 3:
        this.emit('stdw [%r10-48], 0', 'mov %r1, %r10', 'add %r1, -48', `call local ${f.name}`, 'ldxdw %r0, [%r10-48]');
        break;
      default:
        this.emit(`mov %r1, ${this.pick(['%r9', '%r8', '%r7', '%r0', '3'])}`, `call local ${f.name}`);
    }
    if (this.rng.int(0, 2) === 0) this.emit(`jgt %r0, ${this.pick([7, 7, 8, 600])}, ${skip}`);
    this.emit('stdw [%r10-8], 0', 'mov %r4, %r10', 'add %r4, -8', 'add %r4, %r0', 'ldxb %r5, [%r4]');
    this.emit(`${skip}:`, 'ldxdw %r0, [%r10-40]', 'mov %r3, 0', 'mov %r4, 0', 'mov %r5, 0');
  }

  private label(): string {
    return `L${this.labels++}`;
  }
  private pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(0, xs.length - 1)];
  }
  private scratch(): number {
    return this.pick(SCRATCH);
  }
  /** Usually right, sometimes off by a little (unsafe on short memories). */
  private fuzz(n: number): number {
    const r = this.rng.int(0, 9);
    return r === 0 ? n - 1 : r === 1 ? n + 1 : n;
  }
  private emit(...lines: string[]): void {
    this.lines.push(...lines);
  }

  /** if (len >= K) load/store at an offset below K, by one of several checks. */
  checkedAccess(): void {
    const size = this.pick(SIZES);
    const off = this.rng.int(0, 12);
    const need = this.fuzz(off + size);
    const skip = this.label();
    const t = this.scratch() === 0 ? 3 : 4;
    switch (this.rng.int(0, 4)) {
      case 0:
        this.emit(`jlt %r7, ${need}, ${skip}`);
        break;
      case 1:
        this.emit(`mov %r${t}, %r7`, `jlt %r${t}, ${need}, ${skip}`);
        break;
      case 2: {
        const d = this.rng.int(1, 3);
        this.emit(`jeq %r7, 0, ${skip}`, `mov %r${t}, %r7`, `add %r${t}, -${d}`, `jlt %r${t}, ${need - d}, ${skip}`);
        break;
      }
      case 3:
        this.emit('mov %r4, %r6', 'add %r4, %r7', 'mov %r5, %r6', `add %r5, ${need}`, `jgt %r5, %r4, ${skip}`);
        break;
      default:
        this.emit(`mov %r${t}, %r7`, `jle %r${t}, ${need - 1}, ${skip}`);
    }
    const dst = this.scratch();
    if (this.rng.int(0, 3) === 0) this.emit(`stx${SUFFIX[size]} [%r6+${off}], %r${dst === 0 ? 3 : dst}`);
    else this.emit(`ldx${SUFFIX[size]} %r${dst}, [%r6+${off}]`);
    // r4/r5 may hold pointers from the check: make them numbers again.
    this.emit(`${skip}:`, 'mov %r4, 0', 'mov %r5, 0');
  }

  /** idx = something; if (idx < len) mem[idx] */
  indexedAccess(): void {
    const skip = this.label();
    const src = this.pick(['mov %r3, %r7\nrsh %r3, 1', 'mov %r3, %r0\nand %r3, 63', 'mov %r3, %r9\nand %r3, 7']);
    this.emit(...src.split('\n'));
    const cond = this.rng.int(0, 5);
    if (cond === 0)
      this.emit(`jgt %r3, %r7, ${skip}`); // idx <= len: one past the end is possible
    else if (cond === 1) this.emit(`jle %r7, %r3, ${skip}`);
    else this.emit(`jge %r3, %r7, ${skip}`);
    const off = this.rng.int(0, 9) === 0 ? 1 : 0;
    this.emit('mov %r4, %r6', 'add %r4, %r3', `ldxb %r5, [%r4+${off}]`, 'add %r0, %r5', 'mov %r4, 0', `${skip}:`);
  }

  alu(): void {
    const dst = this.pick([0, 3, 5, 9]);
    const op = this.pick(['add', 'sub', 'mul', 'and', 'or', 'xor', 'lsh', 'rsh', 'mov', 'div', 'mod']);
    const src = this.rng.int(0, 1)
      ? `%r${this.pick([0, 3, 5, 9])}`
      : String(this.rng.int(op === 'div' || op === 'mod' ? 1 : 0, 63));
    this.emit(`${op} %r${dst}, ${src}`);
  }

  /**
   * A number (bounded, wide, or negative in 32 bits) stored in 1-8 bytes of a slot, some of its
   * bytes sometimes overwritten, filled back with any size and signedness, and used as an index into
   * fp-8..fp-1 (unsafe when it can reach 8): narrow spills must never read back as narrower than the
   * bytes hold.
   */
  narrowSpill(): void {
    const slot = this.rng.int(2, 4) * 8;
    const value = this.pick([
      'mov %r3, %r0\nand %r3, 7',
      'mov %r3, %r0\nand %r3, 0x107',
      'mov %r3, %r9\nand %r3, 15',
      'mov32 %r3, -2',
      'lddw %r3, 0x100000003',
      'mov %r3, 5',
    ]);
    const size = this.pick(SIZES);
    this.emit(...value.split('\n'), `stx${SUFFIX[size]} [%r10-${slot}], %r3`);
    if (this.rng.int(0, 3) === 0) {
      const over = this.pick([1, 2, 4] as const);
      const at = this.rng.int(0, 8 / over - 1) * over;
      this.emit(`st${SUFFIX[over]} [%r10-${slot - at}], ${this.rng.int(0, 9)}`);
    }
    const fill = this.pick(SIZES);
    const signed = fill < 8 && this.rng.int(0, 3) === 0 ? 's' : '';
    const at = this.rng.int(0, 4) === 0 ? this.rng.int(0, 8 / fill - 1) * fill : 0;
    this.emit(`ldx${signed}${SUFFIX[fill]} %r3, [%r10-${slot - at}]`);
    this.emit('stdw [%r10-8], 0', 'mov %r4, %r10', 'add %r4, -8', 'add %r4, %r3', 'ldxb %r5, [%r4]', 'add %r0, %r5');
    this.emit('mov %r4, 0', 'mov %r3, 0');
    this.spilled.delete(slot);
  }

  stack(): void {
    if (this.rng.int(0, 2) === 0) {
      this.narrowSpill();
      return;
    }
    const slot = this.rng.int(1, 4) * 8;
    if (this.rng.int(0, 1) === 0 || this.spilled.size === 0) {
      this.emit(`stxdw [%r10-${slot}], %r${this.pick([0, 3, 5, 9])}`);
      this.spilled.add(slot);
    } else {
      const size = this.pick(SIZES);
      this.emit(`ldx${SUFFIX[size]} %r${this.pick([0, 3, 5, 9])}, [%r10-${slot}]`);
    }
  }

  branch(depth: number): void {
    const skip = this.label();
    this.emit(`j${this.pick(['eq', 'ne', 'gt', 'lt', 'set'])} %r${this.pick([0, 3, 5, 9])}, ${this.rng.int(0, 8)}, ${skip}`);
    this.body(depth + 1, this.rng.int(1, 3));
    this.emit(`${skip}:`);
  }

  /** for (r8 = 0; r8 < N; r8++) body, or a walk over the first bytes of the buffer. */
  loop(depth: number): void {
    const head = this.label();
    const out = this.label();
    if (this.rng.int(0, 1) === 0) {
      this.emit('mov %r8, 0', `${head}:`);
      this.body(depth + 1, this.rng.int(1, 3));
      this.emit('add %r8, 1', `jlt %r8, ${this.rng.int(1, 12)}, ${head}`);
    } else {
      const limit = this.rng.int(1, 24);
      this.emit(`jgt %r7, ${limit}, ${out}`, 'mov %r8, 0', `${head}:`, `jge %r8, %r7, ${out}`);
      this.emit('mov %r4, %r6', 'add %r4, %r8', 'ldxb %r5, [%r4]', 'add %r0, %r5', 'mov %r4, 0');
      if (this.rng.int(0, 1)) this.body(depth + 1, 1);
      this.emit(`add %r8, ${this.rng.int(0, 5) === 0 ? 2 : 1}`, `ja ${head}`);
    }
    this.emit(`${out}:`);
  }

  /**
   * A counter (r2) of a data-dependent branch inside a bounded loop (r8), or inside the inner loop
   * (r1) of two nested ones; afterwards it is compared with a constant and used as a stack index,
   * sometimes with a bound one too large (precision and joins must keep that apart).
   */
  countedLoop(nested: boolean): void {
    const outerHead = this.label();
    const innerHead = this.label();
    const skip = this.label();
    const done = this.label();
    this.emit('mov %r2, 0', 'mov %r8, 0', `${outerHead}:`);
    if (nested) this.emit('mov %r1, 0', `${innerHead}:`);
    this.emit(`j${this.pick(['eq', 'gt', 'set'])} %r${this.pick([0, 3, 5, 9])}, ${this.rng.int(0, 8)}, ${skip}`);
    this.emit(`add %r2, ${this.rng.int(0, 4) === 0 ? 2 : 1}`, `${skip}:`);
    this.body(2, 1);
    if (nested) this.emit('add %r1, 1', `jlt %r1, ${this.rng.int(1, 4)}, ${innerHead}`);
    this.emit('add %r8, 1', `jlt %r8, ${this.rng.int(1, nested ? 4 : 10)}, ${outerHead}`);
    // The counter as an index into fp-32..fp-25: safe when it is at most 7.
    const bound = this.pick([7, 7, 7, 8, 12]);
    this.emit('stdw [%r10-32], 0', `jgt %r2, ${bound}, ${done}`);
    this.emit('mov %r4, %r10', 'add %r4, -32', 'add %r4, %r2', 'ldxb %r5, [%r4]', 'add %r0, %r5', 'mov %r4, 0');
    this.emit(`${done}:`, 'mov %r1, 0', 'mov %r2, 0');
  }

  body(depth: number, count: number): void {
    for (let i = 0; i < count; i++) {
      const r = this.rng.int(0, 10);
      if (r === 10) {
        if (depth === 0) this.countedLoop(this.rng.int(0, 1) === 1);
        else this.alu();
        continue;
      }
      if (r <= 2 && this.functions.length > 0 && depth < 2 && this.rng.int(0, 2) === 0) this.call();
      else if (r <= 2) this.checkedAccess();
      else if (r === 3) this.indexedAccess();
      else if (r === 4) this.alu();
      else if (r === 5) this.stack();
      else if (r <= 7 && depth < 2) this.branch(depth);
      else if (depth === 0) this.loop(depth);
      else this.alu();
    }
  }

  text(): string {
    return [...this.lines, 'exit', ...this.functions.filter((f) => f.used).flatMap((f) => f.text)].join('\n');
  }
}

describe('verifier soundness against the interpreter', () => {
  it(`${PROGRAMS} random programs: accepted ones never fault and terminate`, (t) => {
    const rng = new Random(0x5eed);
    let accepted = 0;
    let runs = 0;
    for (let n = 0; n < PROGRAMS; n++) {
      const builder = new ProgramBuilder(rng);
      builder.body(0, rng.int(1, 6));
      const source = builder.text();
      const program = assemble(source);
      try {
        verifyProgram(program, { type: 'conformance', maxProcessedInsns: 200_000 });
      } catch (e) {
        if (e instanceof VerifierError) continue;
        throw e;
      }
      accepted++;
      for (let k = 0; k < RUNS_PER_PROGRAM; k++) {
        const length = rng.int(0, 3) === 0 ? rng.int(0, 4) : rng.int(0, 40);
        const memory = new Uint8Array(length);
        for (let i = 0; i < length; i++) memory[i] = rng.int(0, 255);
        try {
          // withinRegion: reading the stack below the buffer is a fault here too (the engines'
          // span check would allow it).
          const checked = runConformance(program, memory, { engine: 'interpreter', fuel: FUEL, withinRegion: true });
          if (k === 0) {
            // Accepted programs run without bounds checks on the target: that mode must agree.
            const verified = runConformance(program, memory, { engine: 'jit', fuel: FUEL, memoryMode: 'verified' });
            assert.deepEqual(
              [verified.r0, verified.fuelUsed, verified.memory],
              [checked.r0, checked.fuelUsed, checked.memory],
              source,
            );
          }
        } catch (e) {
          if (e instanceof MemoryAccessError || e instanceof FuelExhaustedError) {
            assert.fail(`accepted program faulted (${e.message}) on ${length} bytes:\n${source}`);
          }
          throw e;
        }
        runs++;
      }
    }
    t.diagnostic(`accepted ${accepted} of ${PROGRAMS} programs; ${runs} runs without a fault`);
    assert.ok(
      accepted >= PROGRAMS / 4,
      `only ${accepted} of ${PROGRAMS} accepted: the generator no longer exercises the verifier`,
    );
  });
});
