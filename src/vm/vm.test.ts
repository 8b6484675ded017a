/**
 * The engines' run contract, checked on both engines with the same tables: memory faults, fuel,
 * call depth, the local-call convention, helpers, load-time rejections and division edge cases.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CallDepthError,
  ExecutionError,
  FuelExhaustedError,
  HelperError,
  MemoryAccessError,
  ProgramLoadError,
  UnknownHelperError,
} from '../errors.js';
import { alu, assemble, exit, type Instruction, imm, jump, type Program } from '../isa/index.js';
import { compareEngines } from './differential.js';
import { createSandbox, type Engine, type EngineKind, layoutOfSandbox } from './engine.js';
import { type Helper, helperTable, ProgramStop } from './helpers.js';
import { Interpreter } from './interpreter.js';
import { JitEngine } from './jit/engine.js';
import { NULL_GUARD_BYTES } from './memory.js';

const ENGINES: EngineKind[] = ['interpreter', 'jit'];
const DATA_REGION = 2;
const READ_ONLY_REGION = 3;
const DATA_SIZE = 16;
const SANDBOX_REGIONS = [
  { name: 'data', sizeBytes: DATA_SIZE, writable: true },
  { name: 'rodata', sizeBytes: 8, writable: false },
];
// Flat addresses (memory.ts): the NULL guard, the stack, the data region, then the read-only one.
const LAYOUT = layoutOfSandbox(SANDBOX_REGIONS);
const DATA = BigInt(LAYOUT.bases[DATA_REGION - 1]);
const READ_ONLY = BigInt(LAYOUT.bases[READ_ONLY_REGION - 1]);
const STACK_TOP = BigInt(LAYOUT.bases[0] + 4096);
const FUEL = 100_000;

const helpers: Helper[] = [
  { id: 1, name: 'add', fn: (a) => BigInt.asUintN(64, a.u64(1) + a.u64(2)) },
  {
    id: 2,
    name: 'throws',
    fn: () => {
      throw new Error('helper refuses');
    },
  },
  {
    id: 3,
    name: 'stop',
    fn: (a) => {
      throw new ProgramStop(a.u64(1));
    },
  },
];

interface Setup {
  readonly helpers?: readonly Helper[];
  readonly maxCallDepth?: number;
}

/** An engine over a sandbox with a 16-byte writable data region (2) and an 8-byte read-only one (3). */
function load(kind: EngineKind, program: Program | string, setup: Setup = {}): Engine {
  const memory = createSandbox(SANDBOX_REGIONS);
  memory.bytes(DATA_REGION).set(Uint8Array.from({ length: DATA_SIZE }, (_, i) => i + 1));
  memory.bytes(READ_ONLY_REGION).set([0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4]);
  const options = {
    helpers: helperTable(setup.helpers ?? helpers),
    memory,
    ...(setup.maxCallDepth === undefined ? {} : { maxCallDepth: setup.maxCallDepth }),
  };
  const p = typeof program === 'string' ? assemble(program) : program;
  return kind === 'jit' ? new JitEngine(p, options) : new Interpreter(p, options);
}

function run(kind: EngineKind, program: Program | string, fuel = FUEL, setup: Setup = {}) {
  return load(kind, program, setup).run([DATA, BigInt(DATA_SIZE), READ_ONLY], { fuel });
}

/** The error a run throws (fails the test if it returns). */
function runError(kind: EngineKind, program: Program | string, fuel = FUEL, setup: Setup = {}): ExecutionError {
  try {
    const result = run(kind, program, fuel, setup);
    assert.fail(`expected an error, got r0 = 0x${result.r0.toString(16)}`);
  } catch (e) {
    if (e instanceof ExecutionError) return e;
    throw e;
  }
}

describe('memory faults name pc, address and size', () => {
  const cases: { name: string; program: string; pc: number; access: 'read' | 'write'; address: bigint; size: number }[] = [
    {
      name: 'NULL dereference',
      program: 'mov %r1, 0\nmov %r0, 1\nldxdw %r0, [%r1]\nexit',
      pc: 2,
      access: 'read',
      address: 0n,
      size: 8,
    },
    { name: 'NULL plus an offset', program: 'mov %r2, 0\nstw [%r2+16], 7\nexit', pc: 1, access: 'write', address: 16n, size: 4 },
    {
      name: 'read just past the end of the sandbox',
      program: 'ldxb %r0, [%r3+8]\nexit',
      pc: 0,
      access: 'read',
      address: READ_ONLY + 8n,
      size: 1,
    },
    {
      name: 'read straddling the end of the sandbox',
      program: 'mov %r0, 0\nldxw %r0, [%r3+6]\nexit',
      pc: 1,
      access: 'read',
      address: READ_ONLY + 6n,
      size: 4,
    },
    {
      name: 'write straddling the end of the writable regions',
      program: 'stxdw [%r1+9], %r1\nexit',
      pc: 0,
      access: 'write',
      address: DATA + 9n,
      size: 8,
    },
    {
      name: 'negative offset from the first region into the NULL guard',
      program: `lddw %r1, ${NULL_GUARD_BYTES}\nldxb %r0, [%r1-1]\nexit`,
      pc: 2,
      access: 'read',
      address: BigInt(NULL_GUARD_BYTES - 1),
      size: 1,
    },
    {
      name: 'largest offset from NULL',
      program: 'mov %r1, 0\nldxb %r0, [%r1+32767]\nexit',
      pc: 1,
      access: 'read',
      address: 32767n,
      size: 1,
    },
    {
      name: 'write to a read-only region',
      program: 'ldxw %r0, [%r3]\nstw [%r3+4], 1\nexit',
      pc: 1,
      access: 'write',
      address: READ_ONLY + 4n,
      size: 4,
    },
    {
      name: 'atomic on a read-only region is a write',
      program: 'mov %r2, 1\nlock add [%r3], %r2\nexit',
      pc: 1,
      access: 'write',
      address: READ_ONLY,
      size: 8,
    },
    {
      name: 'below the whole stack (all 8 frames)',
      program: 'stxdw [%r10-4104], %r1\nexit',
      pc: 0,
      access: 'write',
      address: STACK_TOP - 4104n,
      size: 8,
    },
    {
      name: 'address at 2^34',
      program: 'lddw %r1, 0x400000000\nldxb %r0, [%r1]\nexit',
      pc: 2,
      access: 'read',
      address: 0x400000000n,
      size: 1,
    },
    {
      // Only the low half of this address lies inside the sandbox: the high half must not be dropped.
      name: 'address above 2^32 whose low half is a valid address',
      program: `lddw %r1, 0x${((1n << 32n) + DATA).toString(16)}\nldxdw %r0, [%r1]\nexit`,
      pc: 2,
      access: 'read',
      address: (1n << 32n) + DATA,
      size: 8,
    },
    {
      name: 'negative address whose low half is a valid address',
      program: `lddw %r1, 0x${((0xffffffffn << 32n) + DATA).toString(16)}\nstb [%r1], 0\nexit`,
      pc: 2,
      access: 'write',
      address: (0xffffffffn << 32n) + DATA,
      size: 1,
    },
    {
      name: 'address with every high bit set',
      program: 'lddw %r1, 0xffffffff00000000\nstb [%r1+2], 0\nexit',
      pc: 2,
      access: 'write',
      address: 0xffffffff00000002n,
      size: 1,
    },
    {
      name: 'helper reading through a bad pointer faults at the call',
      program: 'mov %r1, 0\nmov %r2, 4\ncall 4\nexit',
      pc: 2,
      access: 'read',
      address: 0n,
      size: 4,
    },
  ];
  const readingHelper: Helper = {
    id: 4,
    name: 'read',
    fn: (a) => a.bytes(1, a.num(2), 'read').length,
  };
  for (const c of cases) {
    for (const kind of ENGINES) {
      it(`${c.name} [${kind}]`, () => {
        const e = runError(kind, c.program, FUEL, { helpers: [...helpers, readingHelper] });
        assert.ok(e instanceof MemoryAccessError, `${e}`);
        assert.deepEqual(
          { pc: e.pc, access: e.access, address: e.address, size: e.sizeBytes },
          { pc: c.pc, access: c.access, address: c.address, size: c.size },
        );
      });
    }
  }

  for (const kind of ENGINES) {
    it(`in-bounds accesses at the very edges succeed [${kind}]`, () => {
      const program = `
        ldxb %r0, [%r1+15]
        ldxw %r2, [%r3+4]
        add %r0, %r2
        stxdw [%r10-4096], %r0
        ldxdw %r0, [%r10-4096]
        exit`;
      assert.equal(run(kind, program).r0, 16n + 0x04030201n);
    });
  }
});

describe('fuel', () => {
  const programs: { name: string; program: string }[] = [
    { name: 'straight line', program: 'mov %r0, 1\nadd %r0, 2\nmul %r0, 3\nexit' },
    {
      name: 'counted loop',
      program: 'mov %r0, 0\nmov %r1, 5\nloop:\nadd %r0, 1\nsub %r1, 1\njne %r1, 0, loop\nexit',
    },
    {
      name: 'local calls and a helper',
      program: `
        mov %r6, 3
      again:
        call local f
        sub %r6, 1
        jne %r6, 0, again
        mov %r1, 1
        mov %r2, 2
        call 1
        exit
      f:
        mov %r0, 1
        jeq %r1, 0, done
        add %r0, 1
      done:
        exit`,
    },
  ];
  for (const { name, program } of programs) {
    it(`${name}: exactly N instructions run with fuel N and fail at the same pc with N - 1`, () => {
      const needed = run('interpreter', program).fuelUsed;
      let failedAt: number | undefined;
      for (const kind of ENGINES) {
        const result = run(kind, program, needed);
        assert.equal(result.fuelUsed, needed, kind);
        const e = runError(kind, program, needed - 1);
        assert.ok(e instanceof FuelExhaustedError, `${kind}: ${e}`);
        assert.equal(e.fuel, needed - 1);
        failedAt ??= e.pc;
        assert.equal(e.pc, failedAt, `${kind} ran out at another pc`);
      }
    });
  }

  for (const kind of ENGINES) {
    it(`counted loop uses 18 fuel, charged per basic block [${kind}]`, () => {
      // Blocks: [mov, mov] once, [add, sub, jne] five times, [exit] once.
      assert.equal(run(kind, programs[1].program).fuelUsed, 2 + 5 * 3 + 1);
      const e = runError(kind, programs[1].program, 17);
      assert.ok(e instanceof FuelExhaustedError);
      assert.equal(e.pc, 5, 'runs out on entering the exit block');
    });

    it(`checks exhaustion at loop headers, exits and helper calls, never later [${kind}]`, () => {
      // Straight-line blocks before the first checkpoint may overrun; the exit still fails, and a
      // helper is never called once the budget is gone.
      const straight = 'mov %r0, 1\njeq %r1, 0, +1\nadd %r0, 1\nadd %r0, 2\nexit';
      const e = runError(kind, straight, 2);
      assert.ok(e instanceof FuelExhaustedError);
      assert.equal(e.pc, 4, 'faults at the exit, after the overrun');
      let calls = 0;
      const counting: Helper = { id: 1, name: 'count', fn: () => BigInt(++calls) };
      const withHelper = 'mov %r0, 1\njeq %r1, 0, +1\nadd %r0, 1\ncall 1\nexit';
      const h = runError(kind, withHelper, 3, { helpers: [counting] });
      assert.ok(h instanceof FuelExhaustedError);
      assert.equal(h.pc, 3, 'faults before the helper call');
      assert.equal(calls, 0);
    });

    it(`zero fuel fails at pc 0 [${kind}]`, () => {
      const e = runError(kind, 'exit', 0);
      assert.ok(e instanceof FuelExhaustedError);
      assert.equal(e.pc, 0);
    });

    it(`fuel is per run, not per engine [${kind}]`, () => {
      const engine = load(kind, programs[1].program);
      for (let i = 0; i < 3; i++) assert.equal(engine.run([], { fuel: 18 }).fuelUsed, 18);
    });
  }
});

describe('call depth', () => {
  // main sets r1 = k and calls f, which recurses k more times: k + 2 frames in all.
  const recursion = (k: number) => `
      mov %r1, ${k}
      call local f
      exit
    f:
      jeq %r1, 0, base
      sub %r1, 1
      call local f
      add %r0, 1
      exit
    base:
      mov %r0, 100
      exit`;
  const innerCallPc = 5;
  for (const kind of ENGINES) {
    it(`8 frames run, the 9th fails [${kind}]`, () => {
      assert.equal(run(kind, recursion(6)).r0, 106n);
      const e = runError(kind, recursion(7));
      assert.ok(e instanceof CallDepthError, `${e}`);
      assert.equal(e.pc, innerCallPc);
      assert.equal(e.maxDepth, 8);
    });

    it(`maxCallDepth 3 allows 3 frames [${kind}]`, () => {
      assert.equal(run(kind, recursion(1), FUEL, { maxCallDepth: 3 }).r0, 101n);
      const e = runError(kind, recursion(2), FUEL, { maxCallDepth: 3 });
      assert.ok(e instanceof CallDepthError);
      assert.equal(e.pc, innerCallPc);
    });

    it(`the deepest frame's stack is usable [${kind}]`, () => {
      // Frame 8's r10 is 4096 - 7 * 512 = 512: its whole 512 bytes are in the stack region.
      const program = recursion(6).replace(
        'base:\n      mov %r0, 100',
        'base:\n      stdw [%r10-512], 100\n      ldxdw %r0, [%r10-512]',
      );
      assert.equal(run(kind, program).r0, 106n);
    });
  }
});

describe('local calls', () => {
  for (const kind of ENGINES) {
    it(`preserve r6-r9 and r10 of the caller [${kind}]`, () => {
      const program = `
        lddw %r6, 0x1111111111111111
        lddw %r7, 0x2222222222222222
        lddw %r8, 0x3333333333333333
        lddw %r9, 0x4444444444444444
        stdw [%r10-8], 5
        call local f
        ldxdw %r0, [%r10-8]
        add %r0, %r6
        add %r0, %r7
        add %r0, %r8
        add %r0, %r9
        exit
      f:
        mov %r6, -1
        mov %r7, -1
        mov %r8, -1
        mov %r9, -1
        stdw [%r10-8], 99
        mov %r0, 0
        exit`;
      assert.equal(run(kind, program).r0, 0xaaaaaaaaaaaaaaaan + 5n);
    });

    it(`give the callee r1-r5, a frame 512 bytes lower, and zeroed r0 and r6-r9 [${kind}]`, () => {
      const program = `
        mov %r1, 1
        mov %r5, 5
        mov %r0, 7
        mov %r6, 6
        call local f
        exit
      f:
        mov %r0, %r0
        add %r0, %r6
        add %r0, %r9
        add %r0, %r1
        add %r0, %r5
        lddw %r3, ${STACK_TOP - 512n}
        mov %r2, %r10
        sub %r2, %r3
        add %r0, %r2
        exit`;
      assert.equal(run(kind, program).r0, 6n);
    });

    it(`a program that overwrote r10 gets r10 - 512 in 64 bits [${kind}]`, () => {
      // Regression: the interpreter subtracted 512 from the low half only, without the borrow.
      const program = 'mov %r10, 256\ncall local f\nexit\nf:\nmov %r0, %r10\nexit';
      assert.equal(run(kind, program).r0, BigInt.asUintN(64, 256n - 512n));
    });
  }
});

describe('runs', () => {
  for (const kind of ENGINES) {
    it(`start with a zeroed stack [${kind}]`, () => {
      const program = `
        ldxdw %r6, [%r10-8]
        stxdw [%r10-8], %r10
        call local f
        add %r0, %r6
        exit
      f:
        ldxdw %r0, [%r10-16]
        stxdw [%r10-16], %r10
        exit`;
      const engine = load(kind, program);
      for (let i = 0; i < 3; i++) assert.equal(engine.run([], { fuel: FUEL }).r0, 0n, `run ${i}`);
    });

    it(`a helper stopping the program returns its value and the fuel used so far [${kind}]`, () => {
      const result = run(kind, 'mov %r1, 42\ncall local f\nmov %r0, 1\nexit\nf:\ncall 3\nexit');
      // Blocks charged: [mov, call local] and [call 3].
      assert.deepEqual(result, { r0: 42n, fuelUsed: 3 });
    });
  }
});

describe('helpers', () => {
  for (const kind of ENGINES) {
    it(`a plain Error from a helper becomes HelperError [${kind}]`, () => {
      const e = runError(kind, 'mov %r0, 0\ncall 2\nexit');
      assert.ok(e instanceof HelperError, `${e}`);
      assert.deepEqual({ pc: e.pc, id: e.helperId, reason: e.reason }, { pc: 1, id: 2, reason: 'helper refuses' });
    });

    it(`callx to an unregistered id is UnknownHelperError [${kind}]`, () => {
      const e = runError(kind, 'mov %r1, 2\nmov %r2, 3\nmov %r4, 77\ncall %r4\nexit');
      assert.ok(e instanceof UnknownHelperError, `${e}`);
      assert.deepEqual({ pc: e.pc, id: e.helperId }, { pc: 3, id: 77 });
    });

    it(`callx to an id beyond 32 bits names no helper [${kind}]`, () => {
      const e = runError(kind, 'lddw %r4, 0x100000001\ncall %r4\nexit');
      assert.ok(e instanceof UnknownHelperError, `${e}`);
      assert.equal(e.pc, 2);
    });

    it(`callx to a registered id calls it with r1-r5 [${kind}]`, () => {
      assert.equal(run(kind, 'mov %r1, 40\nmov %r2, 2\nmov %r4, 1\ncall %r4\nexit').r0, 42n);
    });

    // What a helper returns becomes r0 as 64 bits: numbers in two's complement, BigInts modulo 2^64.
    const results: [string, number | bigint, bigint][] = [
      ['zero', 0, 0n],
      ['a negative errno', -22, 2n ** 64n - 22n],
      ['2^53 - 1', Number.MAX_SAFE_INTEGER, 2n ** 53n - 1n],
      ['-(2^53 - 1)', -Number.MAX_SAFE_INTEGER, 2n ** 64n - (2n ** 53n - 1n)],
      ['2^32 (high word only)', 2 ** 32, 2n ** 32n],
      ['a BigInt with every bit set', 2n ** 64n - 1n, 2n ** 64n - 1n],
      ['a BigInt beyond 64 bits', 2n ** 64n + 5n, 5n],
      ['a negative BigInt', -1n, 2n ** 64n - 1n],
    ];
    for (const [name, value, r0] of results) {
      it(`a helper result of ${name} becomes r0 [${kind}]`, () => {
        const h: Helper = { id: 9, name: 'value', fn: () => value };
        assert.equal(run(kind, 'call 9\nexit', FUEL, { helpers: [h] }).r0, r0);
      });
    }

    for (const value of [1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      it(`a helper result of ${value} (not a 64-bit integer) is a HelperError [${kind}]`, () => {
        const e = runError(kind, 'call 9\nexit', FUEL, { helpers: [{ id: 9, name: 'value', fn: () => value }] });
        assert.ok(e instanceof HelperError, `${e}`);
        assert.equal(e.pc, 0);
      });
    }

    it(`a helper reads r1-r5 exactly, as numbers and as BigInts [${kind}]`, () => {
      const seen: unknown[] = [];
      const h: Helper = {
        id: 9,
        name: 'args',
        fn: (a) => {
          seen.push(
            [1, 2, 3, 4, 5].map((i) => [a.u64(i), a.num(i), a.u32(i), a.high32(i), a.fitsU32(i)]),
            a.pc,
          );
          return 0;
        },
      };
      run(
        kind,
        'lddw %r1, 0xffffffffffffffff\nlddw %r2, 0x1fffffffffffff\nlddw %r3, 0x100000000\nmov %r4, 7\nmov %r5, -1\ncall 9\nexit',
        FUEL,
        { helpers: [h] },
      );
      assert.deepEqual(seen, [
        [
          [2n ** 64n - 1n, 2 ** 64, 0xffffffff, 0xffffffff, false],
          [2n ** 53n - 1n, 2 ** 53 - 1, 0xffffffff, 0x1fffff, false],
          [2n ** 32n, 2 ** 32, 0, 1, false],
          [7n, 7, 7, 0, true],
          [2n ** 64n - 1n, 2 ** 64, 0xffffffff, 0xffffffff, false],
        ],
        8, // three two-slot lddw, two movs
      ]);
    });

    it(`a static call to an unregistered helper is refused at load [${kind}]`, () => {
      assert.throws(() => load(kind, 'call 9\nexit'), ProgramLoadError);
    });

    it(`lddw with a source other than 0 is refused at load [${kind}]`, () => {
      const program: Instruction[] = [{ kind: 'lddw', dst: 1, source: 1, imm: 3, nextImm: 0 }, { kind: 'exit' }];
      assert.throws(() => load(kind, program), ProgramLoadError);
    });
  }
});

describe('division edge cases', () => {
  const INT64_MIN = 0x8000000000000000n;
  const cases: { name: string; program: string; r0: bigint }[] = [
    { name: 'INT64_MIN sdiv -1 (imm)', program: 'lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit', r0: INT64_MIN },
    {
      name: 'INT64_MIN sdiv -1 (reg)',
      program: 'lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit',
      r0: INT64_MIN,
    },
    { name: 'INT64_MIN smod -1 (imm)', program: 'lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit', r0: 0n },
    { name: 'INT64_MIN smod -1 (reg)', program: 'lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1\nexit', r0: 0n },
    { name: 'INT32_MIN sdiv32 -1', program: 'lddw %r0, 0xffffffff80000000\nsdiv32 %r0, -1\nexit', r0: 0x80000000n },
    { name: 'INT32_MIN smod32 -1 (reg)', program: 'mov32 %r0, 0x80000000\nmov %r1, -1\nsmod32 %r0, %r1\nexit', r0: 0n },
    { name: '-13 sdiv 3 truncates', program: 'mov %r0, -13\nsdiv %r0, 3\nexit', r0: BigInt.asUintN(64, -4n) },
    { name: '-13 smod 3 takes the dividend sign', program: 'mov %r0, -13\nsmod %r0, 3\nexit', r0: BigInt.asUintN(64, -1n) },
    { name: '13 smod32 -3', program: 'mov %r0, 13\nsmod32 %r0, -3\nexit', r0: 1n },
    { name: 'div by 0 (imm) is 0', program: 'mov %r0, 7\ndiv %r0, 0\nexit', r0: 0n },
    { name: 'sdiv by 0 (reg) is 0', program: 'mov %r0, -7\nmov %r1, 0\nsdiv %r0, %r1\nexit', r0: 0n },
    { name: 'mod by 0 (64) leaves dst', program: 'lddw %r0, 0x123456789\nmov %r1, 0\nmod %r0, %r1\nexit', r0: 0x123456789n },
    { name: 'smod by 0 (64) leaves dst', program: 'mov %r0, -5\nsmod %r0, 0\nexit', r0: BigInt.asUintN(64, -5n) },
    { name: 'mod32 by 0 zero-extends dst', program: 'lddw %r0, 0x123456789\nmod32 %r0, 0\nexit', r0: 0x23456789n },
    {
      name: 'mod32 tests only the low 32 bits of src for zero',
      program: 'lddw %r0, 0x123456789\nlddw %r1, 0x100000000\nmod32 %r0, %r1\nexit',
      r0: 0x23456789n,
    },
    {
      name: 'div32 by a src whose low half is 0 gives 0',
      program: 'mov %r0, 9\nlddw %r1, 0x500000000\ndiv32 %r0, %r1\nexit',
      r0: 0n,
    },
    { name: 'div32 takes imm as u32', program: 'mov32 %r0, -2\ndiv32 %r0, -1\nexit', r0: 0n },
    { name: 'div (64) sign-extends imm, then divides unsigned', program: 'mov %r0, -1\ndiv %r0, -1\nexit', r0: 1n },
    { name: 'mod (64) by -1 is unsigned', program: 'mov %r0, 5\nmod %r0, -1\nexit', r0: 5n },
  ];
  for (const c of cases) {
    for (const kind of ENGINES) {
      it(`${c.name} [${kind}]`, () => assert.equal(run(kind, c.program).r0, c.r0));
    }
  }
});

describe('JIT', () => {
  it('reports compile statistics', () => {
    const jit = load('jit', 'call local f\nexit\nf:\nmov %r0, 1\nexit') as JitEngine;
    const { stats } = jit;
    assert.ok(stats.translateMs >= 0 && stats.compileMs >= 0, 'timings');
    assert.ok(stats.wasmSizeBytes > 0 && stats.wasmSizeBytes === jit.compiled.wasm.length);
    assert.equal(stats.structuredFunctions, 2);
    assert.equal(stats.dispatchedFunctions, 0);
  });

  // Two entries into the cycle A -> B -> A: no nesting of Wasm blocks and loops expresses it.
  const irreducible = `
      mov %r0, 0
      mov %r6, 0
      jgt %r2, 20, b
    a:
      add %r0, 3
    b:
      add %r0, %r6
      add %r6, 1
      jlt %r6, 4, a
      exit`;
  it('compiles irreducible control flow to a dispatch loop, with the interpreter’s results', () => {
    const jit = load('jit', irreducible) as JitEngine;
    assert.deepEqual(jit.compiled.structured, [false]);
    assert.equal(jit.stats.dispatchedFunctions, 1);
    for (const length of [0n, 20n, 21n, 1000n]) {
      const expected = load('interpreter', irreducible).run([DATA, length], { fuel: FUEL });
      assert.deepEqual(jit.run([DATA, length], { fuel: FUEL }), expected, `r2 = ${length}`);
    }
    const c = compareEngines(assemble(irreducible), { memory: new Uint8Array(21), fuel: 12, helpers });
    assert.ok(c.agree, c.diff);
    assert.equal(c.interpreter.kind, 'error', 'runs out of fuel inside the cycle');
  });

  describe('inlines small leaf callees, with the semantics of a real call', () => {
    // Each program calls a leaf; the inlined copy must agree with the interpreter on r0, fuel,
    // memory, and the pc and kind of every fault (in the callee, at the call, or after it).
    const leafPrograms: [string, string, number][] = [
      [
        'callee sees r1-r5 and a lower frame, caller keeps its registers',
        'mov %r6, 6\nmov %r1, 1\nmov %r5, 5\ncall local f\nadd %r0, %r6\nadd %r0, %r1\nexit\nf:\nmov %r0, %r1\nadd %r0, %r5\nadd %r0, %r6\nmov %r1, 100\nmov %r6, 100\nstxdw [%r10-8], %r0\nldxdw %r0, [%r10-8]\nexit',
        1,
      ],
      [
        'loop inside the leaf, called twice',
        'mov %r1, 5\ncall local f\nmov %r6, %r0\nmov %r1, 7\ncall local f\nadd %r0, %r6\nexit\nf:\nmov %r0, 0\nloop:\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, loop\nexit',
        2,
      ],
      ['memory fault inside the leaf', 'mov %r1, 0\ncall local f\nexit\nf:\nldxb %r0, [%r1+3]\nexit', 1],
      ['helper call inside the leaf', 'mov %r1, 2\nmov %r2, 3\ncall local f\nexit\nf:\ncall 1\nexit', 1],
      [
        'a caller of two leaves is inlined with them (two levels)',
        'mov %r1, 7\ncall local g\nadd %r0, 1\nexit\ng:\nmov %r6, %r1\ncall local f1\nmov %r1, %r0\nmov %r2, %r6\ncall local f2\nstxdw [%r10-8], %r0\nldxdw %r0, [%r10-8]\nexit\nf1:\nmov %r0, %r1\nmul %r0, 3\nexit\nf2:\nmov %r0, %r1\nadd %r0, %r2\nstxdw [%r10-16], %r0\nexit',
        5, // g's 3 in main, and f1 and f2 again in g's own function
      ],
      [
        'three levels deep, a loop and a fault at the bottom',
        'mov %r1, 4\ncall local a\nexit\na:\ncall local b\nadd %r0, 1\nexit\nb:\ncall local c\nadd %r0, 2\nexit\nc:\nmov %r0, 0\nl:\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, l\njgt %r0, 100, bad\nexit\nbad:\nldxb %r0, [%r1]\nexit',
        6, // a, b, c in main; b, c in a; c in b
      ],
      [
        'four levels: the deepest call stays a real call',
        'call local a\nexit\na:\ncall local b\nexit\nb:\ncall local c\nexit\nc:\ncall local d\nexit\nd:\nmov %r0, 5\nexit',
        6, // a takes 4 levels: called for real; b, c, d in a; c, d in b; d in c
      ],
      [
        'early exit from a branch of the leaf',
        'mov %r1, 3\ncall local f\nadd %r0, 1\nexit\nf:\nmov %r0, 10\njgt %r1, 2, out\nmov %r0, 20\nexit\nout:\nmov %r0, 30\nexit',
        1,
      ],
    ];
    for (const [name, program, sites] of leafPrograms) {
      it(name, () => {
        const jit = load('jit', program) as JitEngine;
        assert.equal(jit.compiled.inlinedCallSites, sites);
        for (const fuel of [FUEL, 3, 7, 11]) {
          const c = compareEngines(assemble(program), { memory: new Uint8Array(DATA_SIZE), fuel, helpers });
          assert.ok(c.agree, `fuel ${fuel}: ${c.diff}`);
        }
      });
    }

    it('keeps the call-depth limit exact through nested inlined calls', () => {
      // main -> a -> b -> c, all inlined into main: with maxCallDepth 3, c's call is the 4th frame.
      const program = 'call local a\nexit\na:\ncall local b\nexit\nb:\ncall local c\nexit\nc:\nmov %r0, 9\nexit';
      assert.equal((load('jit', program) as JitEngine).compiled.inlinedCallSites, 6);
      for (const kind of ENGINES) {
        const e = runError(kind, program, FUEL, { maxCallDepth: 3 });
        assert.ok(e instanceof CallDepthError, `${kind}: ${e}`);
        assert.equal(e.pc, 4);
        assert.equal(run(kind, program, FUEL, { maxCallDepth: 4 }).r0, 9n);
      }
    });

    it('keeps the call-depth limit exact at an inlined call site', () => {
      // main -> g -> g -> leaf: with maxCallDepth 3 the leaf's call is the 4th frame and fails.
      const program =
        'mov %r1, 1\ncall local g\nexit\ng:\njeq %r1, 0, leafcall\nsub %r1, 1\ncall local g\nexit\nleafcall:\ncall local leaf\nexit\nleaf:\nmov %r0, 9\nexit';
      for (const kind of ENGINES) {
        const e = runError(kind, program, FUEL, { maxCallDepth: 3 });
        assert.ok(e instanceof CallDepthError, `${kind}: ${e}`);
        assert.equal(e.pc, 7);
        assert.equal(run(kind, program, FUEL, { maxCallDepth: 4 }).r0, 9n);
      }
    });
  });

  it('dispatches a function nested too deeply for the structured translation, instead of overflowing the stack', () => {
    // Regression: 3000 if-statements in a row made the recursive structured translation throw a
    // RangeError (maximum call stack size exceeded) out of the JIT's constructor.
    const program: Instruction[] = [];
    for (let i = 0; i < 3000; i++) program.push(jump(64, 'eq', 2, imm(i % 7), 1), alu(64, 'add', 0, imm(i)));
    program.push(exit());
    const jit = load('jit', program) as JitEngine;
    assert.deepEqual(jit.compiled.structured, [false]);
    const c = compareEngines(program, { memory: new Uint8Array(3), fuel: FUEL, helpers });
    assert.ok(c.agree, c.diff);
    assert.equal(c.jit.kind, 'ok');
  });
});

describe('unrolled inner loops (jit/unroll.ts) run out of fuel exactly where the interpreter does', () => {
  // r1 = a 16-byte buffer holding 1..16, r2 = its length. Each program runs with every budget from 0
  // to what it needs + 2, so the budget runs out in every block of every unrolled copy and of the
  // slow path; engines must agree on r0, fuel used, the faulting pc, memory and stack.
  const loops: { name: string; program: string; unrolled: number }[] = [
    {
      name: 'one-block counted loop',
      program: 'mov %r0, 0\nmov %r4, 9\nl:\nadd %r0, %r4\nsub %r4, 1\njne %r4, 0, l\nexit',
      unrolled: 1,
    },
    {
      name: 'loop with a side exit (break)',
      program:
        'mov %r0, 0\nmov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5]\njeq %r6, 11, out\nadd %r0, %r6\nadd %r4, 1\njlt %r4, %r2, l\nout:\nexit',
      unrolled: 1,
    },
    {
      name: 'if/else of different costs inside the body',
      program:
        'mov %r0, 0\nmov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5]\njgt %r6, 8, big\nadd %r0, 1\nja next\nbig:\nmul %r6, 3\nadd %r0, %r6\nadd %r0, 1\nnext:\nadd %r4, 1\njlt %r4, %r2, l\nexit',
      unrolled: 1,
    },
    {
      name: 'two back edges (continue)',
      program:
        'mov %r0, 0\nmov %r4, 0\nl:\nadd %r4, 1\njgt %r4, %r2, out\nmov %r5, %r4\nand %r5, 1\njeq %r5, 0, l\nadd %r0, %r4\nja l\nout:\nexit',
      unrolled: 1,
    },
    {
      name: 'inner loop of a nest (the outer one is not unrolled)',
      program:
        'mov %r0, 0\nmov %r7, 0\nouter:\nmov %r4, 0\ninner:\nadd %r0, %r4\nadd %r4, 1\njlt %r4, 5, inner\nadd %r7, 1\njlt %r7, 4, outer\nexit',
      unrolled: 1,
    },
    {
      name: 'memory fault in a later iteration',
      program:
        'mov %r0, 0\nmov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5]\nadd %r0, %r6\nadd %r4, 1\njlt %r4, 40, l\nexit',
      unrolled: 1,
    },
    {
      name: 'stores in the body',
      program:
        'mov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5]\nadd %r6, %r4\nstxb [%r5], %r6\nstxb [%r10-1], %r6\nadd %r4, 1\njlt %r4, %r2, l\nldxb %r0, [%r10-1]\nexit',
      unrolled: 1,
    },
    {
      // Found by the differential tester: charges deferred in an order other than the blocks' own lost fuel.
      name: 'blocks laid out out of order (a diamond joined by a jump)',
      program:
        'mov %r9, %r1\nmov %r0, 5\nmov %r6, 0\nl:\njge %r9, %r3, b\njle32 %r9, 155, out\nja32 j\nb:\ndiv %r7, 3\nj:\nadd %r6, 1\njne %r6, 3, l\nout:\nexit',
      unrolled: 1,
    },
    { name: 'loop headed by the entry (left as is)', program: 'l:\nadd %r0, 1\njlt %r0, 10, l\nexit', unrolled: 0 },
    {
      name: 'loop with a helper call (left as is)',
      program: 'mov %r6, 0\nmov %r7, 0\nl:\nmov %r1, %r6\nmov %r2, 2\ncall 1\nmov %r6, %r0\nadd %r7, 1\njlt %r7, 5, l\nexit',
      unrolled: 0,
    },
    {
      name: 'two inner loops in a row',
      program:
        'mov %r0, 0\nmov %r4, 0\na:\nadd %r0, %r4\nadd %r4, 1\njlt %r4, 6, a\nb:\nsub %r4, 1\nadd %r0, 2\njne %r4, 0, b\nexit',
      unrolled: 2,
    },
  ];
  const memory = Uint8Array.from({ length: DATA_SIZE }, (_, i) => i + 1);
  for (const { name, program, unrolled } of loops) {
    it(name, () => {
      const jit = load('jit', program) as JitEngine;
      assert.equal(jit.compiled.unrolledLoops, unrolled, 'unrolled loops');
      const full = compareEngines(assemble(program), { memory, fuel: FUEL, helpers });
      assert.ok(full.agree, full.diff);
      const needed = full.interpreter.kind === 'ok' ? full.interpreter.fuelUsed : 400;
      for (let fuel = 0; fuel <= needed + 2; fuel++) {
        const c = compareEngines(assemble(program), { memory, fuel, helpers, alsoVerified: true });
        assert.ok(c.agree, `fuel ${fuel}: ${c.diff}`);
      }
    });
  }

  it('a long loop unrolled: every budget near the guard threshold agrees', () => {
    // 200 iterations of a 3-instruction body: the guard switches to the slow path in the last ones.
    const program = 'mov %r0, 0\nmov %r4, 200\nl:\nadd %r0, %r4\nsub %r4, 1\njne %r4, 0, l\nexit';
    for (let fuel = 560; fuel <= 610; fuel++) {
      const c = compareEngines(assemble(program), { memory, fuel, helpers });
      assert.ok(c.agree, `fuel ${fuel}: ${c.diff}`);
    }
  });
});

describe('bounds checks hoisted out of unrolled loops (jit/bounds.ts) fault exactly where the interpreter does', () => {
  // r1 = a 64-byte writable data region (then an 8-byte read-only one, the end of the sandbox), r2 =
  // 64, r3 = the read-only region. Checked mode: each program's hoisted accesses must exist (or not),
  // and with every budget the engines agree on r0, fuel, the faulting pc, address and size, memory
  // and stack, including partial writes before a fault.
  const loops: { name: string; program: string; hoisted: boolean }[] = [
    {
      name: 'a byte walk that reads past the sandbox (guard fails near the end: the slow path faults)',
      program:
        'mov %r0, 0\nmov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5+2]\nadd %r0, %r6\nadd %r4, 1\njlt %r4, 90, l\nexit',
      hoisted: true,
    },
    {
      name: 'a walking pointer storing before it loads past the end (partial writes agree)',
      program:
        'mov %r0, 0\nmov %r5, %r1\nmov %r4, 0\nl:\nstxb [%r5+0], %r4\nldxdw %r6, [%r5+1]\nadd %r0, %r6\nadd %r5, 3\nadd %r4, 1\njlt %r4, 40, l\nexit',
      hoisted: true,
    },
    {
      name: 'a walk down, below the region (writes into the stack region, then faults)',
      program:
        'mov %r5, %r1\nadd %r5, 60\nmov %r4, 0\nl:\nstxw [%r5+0], %r4\nsub %r5, 12\nadd %r4, 1\njlt %r4, 800, l\nmov %r0, %r4\nexit',
      hoisted: true,
    },
    {
      name: 'writes walking from the data region into the read-only one',
      program: 'mov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nstxh [%r5+0], %r4\nadd %r4, 2\njlt %r4, 80, l\nmov %r0, %r4\nexit',
      hoisted: true,
    },
    {
      name: 'a table indexed by a masked byte (counts on the stack)',
      program:
        'mov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5]\nand %r6, 60\nmov %r7, %r10\nadd %r7, -64\nadd %r7, %r6\nldxw %r8, [%r7]\nadd %r8, 1\nstxw [%r7], %r8\nadd %r4, 1\njlt %r4, %r2, l\nldxw %r0, [%r10-64]\nexit',
      hoisted: true,
    },
    {
      name: 'a masked index that reaches past the sandbox (the hoisted range fails: the slow path faults)',
      program:
        'mov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5]\nand %r6, 255\nmov %r7, %r10\nadd %r7, -64\nadd %r7, %r6\nldxb %r8, [%r7]\nadd %r0, %r8\nadd %r4, 1\njlt %r4, %r2, l\nexit',
      hoisted: true,
    },
    {
      name: 'a NULL base walking up (the guard fails at once: the first access faults)',
      program: 'mov %r5, 0\nmov %r4, 0\nl:\nldxb %r6, [%r5+16]\nadd %r5, 1\nadd %r4, 1\njlt %r4, 8, l\nmov %r0, %r4\nexit',
      hoisted: true,
    },
    {
      name: 'a base with garbage in its high bits',
      program:
        'lddw %r5, 0x100000000\nadd %r5, %r1\nmov %r4, 0\nl:\nldxb %r6, [%r5]\nadd %r5, 1\nadd %r4, 1\njlt %r4, 8, l\nexit',
      hoisted: true,
    },
    {
      name: 'atomics walking the data region past its end',
      program:
        'mov %r5, %r1\nmov %r4, 0\nmov %r6, 1\nl:\nlock add32 [%r5+0], %r6\nlock fetch add [%r5+4], %r6\nadd %r5, 8\nadd %r4, 1\njlt %r4, 12, l\nmov %r0, %r6\nexit',
      hoisted: true,
    },
    {
      name: 'two bases: a walk and the read-only region at a constant offset',
      program:
        'mov %r4, 0\nl:\nmov %r5, %r1\nadd %r5, %r4\nldxb %r6, [%r5]\nldxb %r7, [%r3+7]\nadd %r0, %r7\nadd %r0, %r6\nadd %r4, 1\njlt %r4, 70, l\nexit',
      hoisted: true,
    },
    {
      name: 'a pointer that is not affine in the iteration (32-bit arithmetic): checked per access',
      program:
        'mov %r4, 0\nl:\nmov32 %r5, %r4\nmul32 %r5, 7\nadd %r5, %r1\nldxb %r6, [%r5]\nadd %r0, %r6\nadd %r4, 1\njlt %r4, 12, l\nexit',
      hoisted: false,
    },
    {
      name: 'a base loaded from memory in the body: its accesses checked one by one (the stack load is hoisted)',
      program:
        'mov %r4, 0\nstxdw [%r10-8], %r1\nl:\nldxdw %r5, [%r10-8]\nadd %r5, %r4\nldxb %r6, [%r5]\nadd %r0, %r6\nadd %r4, 9\njlt %r4, 100, l\nexit',
      hoisted: true,
    },
  ];
  const memory = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
  const readOnlyMemory = Uint8Array.from({ length: 8 }, (_, i) => 0xf0 + i);
  for (const { name, program, hoisted } of loops) {
    it(name, () => {
      const memoryOf = createSandbox([
        { name: 'data', sizeBytes: memory.length, writable: true },
        { name: 'rodata', sizeBytes: readOnlyMemory.length, writable: false },
      ]);
      const jit = new JitEngine(assemble(program), { helpers: helperTable(helpers), memory: memoryOf });
      assert.equal(jit.compiled.unrolledLoops, 1, 'unrolled loops');
      assert.equal(jit.compiled.hoistedAccesses > 0, hoisted, `hoisted accesses: ${jit.compiled.hoistedAccesses}`);
      const full = compareEngines(assemble(program), { memory, readOnlyMemory, fuel: FUEL, helpers });
      assert.ok(full.agree, full.diff);
      const needed = full.interpreter.kind === 'ok' ? full.interpreter.fuelUsed : 2000;
      for (let fuel = 0; fuel <= needed + 2; fuel += fuel < 200 ? 1 : 7) {
        const c = compareEngines(assemble(program), { memory, readOnlyMemory, fuel, helpers, alsoVerified: true });
        assert.ok(c.agree, `fuel ${fuel}: ${c.diff}`);
      }
    });
  }
});
