import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CONFORMANCE_DIR, parseConformanceFile, REPO_ROOT } from '../testing/conformance-data.js';
import { runConformancePlugin } from './conformance-plugin.js';

const PLUGIN_BIN = join(REPO_ROOT, 'bin', 'bpf-conformance-plugin');
const ENGINES = ['interpreter', 'jit'] as const;

interface CompiledCase {
  readonly name: string;
  /** Initial memory as continuous hex, '' when none. */
  readonly mem: string;
  readonly result: string;
  /** Program bytes as continuous hex. */
  readonly code: string;
}

const compiled: CompiledCase[] = JSON.parse(readFileSync(join(CONFORMANCE_DIR, 'compiled.json'), 'utf8'));

/** 10 cases with memory and 10 without, spread over the suite. */
function sampleCases(): CompiledCase[] {
  const spread = (cases: CompiledCase[], count: number) =>
    Array.from({ length: count }, (_, i) => cases[Math.floor((i * cases.length) / count)]);
  return [
    ...spread(
      compiled.filter((c) => c.mem !== ''),
      10,
    ),
    ...spread(
      compiled.filter((c) => c.mem === ''),
      10,
    ),
  ];
}

/** Hex as the suite's runner sends it: bytes separated by spaces (two, for memory). */
function spacedHex(hex: string, separator = ' '): string {
  return (hex.match(/../g) ?? []).map((byte) => `${byte}${separator}`).join('');
}

/** Program hex as stdin lines of 8 bytes each. */
function programLines(hex: string): string {
  return `${(hex.match(/.{16}/g) ?? []).map((slot) => spacedHex(slot).trim()).join('\n')}\n`;
}

function expectedStdout(c: CompiledCase): string {
  return `0x${BigInt(c.result).toString(16)}\n`;
}

/** A negative case: a valid-looking exit with its reserved imm field set. */
const reservedFieldCase = parseConformanceFile(
  'unused-exit-imm.data',
  readFileSync(join(CONFORMANCE_DIR, 'negative', 'unused-exit-imm.data'), 'utf8'),
);
const reservedFieldProgram = spacedHex(Buffer.from(reservedFieldCase.raw!).toString('hex'));

function spawnPlugin(args: string[], stdin: string) {
  return spawnSync(PLUGIN_BIN, args, { input: stdin, encoding: 'utf8' });
}

describe('conformance plugin (in-process)', () => {
  const cases = sampleCases();

  it('samples 20 distinct cases, half with memory', () => {
    assert.equal(new Set(cases.map((c) => c.name)).size, 20);
    assert.equal(cases.filter((c) => c.mem !== '').length, 10);
  });

  for (const engine of ENGINES) {
    it(`reproduces 20 suite results on the ${engine}`, () => {
      for (const c of cases) {
        const memory = c.mem === '' ? [] : [spacedHex(c.mem, '  ')];
        const outcome = runConformancePlugin(['--engine', engine, ...memory], programLines(c.code));
        assert.deepEqual(outcome, { stdout: expectedStdout(c), stderr: '', code: 0 }, c.name);
      }
    });
  }

  it('accepts continuous hex, an empty memory argument and --engine after the memory', () => {
    const withMemory = compiled.find((c) => c.mem !== '')!;
    const after = runConformancePlugin([withMemory.mem, '--engine', 'interpreter'], withMemory.code);
    assert.deepEqual(after, { stdout: expectedStdout(withMemory), stderr: '', code: 0 });

    const noMemory = compiled.find((c) => c.mem === '')!;
    assert.equal(runConformancePlugin([''], noMemory.code).stdout, expectedStdout(noMemory));
    assert.equal(runConformancePlugin([], `${noMemory.code}\n`).stdout, expectedStdout(noMemory));
  });

  for (const engine of ENGINES) {
    it(`rejects a program with a reserved field set, exit 1, on the ${engine}`, () => {
      const outcome = runConformancePlugin(['--engine', engine], reservedFieldProgram);
      assert.equal(outcome.code, 1);
      assert.equal(outcome.stdout, '');
      assert.match(outcome.stderr, /^error\[ERR_DECODE\]: instruction 0: reserved field imm must be 0/);
    });
  }

  it('reports run-time faults with exit 1', () => {
    // ldxb %r0, [%r1+0]; exit — with no memory, r1 points at an empty region.
    const outcome = runConformancePlugin([], '71 10 00 00 00 00 00 00 95 00 00 00 00 00 00 00');
    assert.equal(outcome.code, 1);
    assert.match(outcome.stderr, /^error\[ERR_MEMORY_ACCESS\]/);
  });

  it('exits 2 on bad usage', () => {
    const program = '95 00 00 00 00 00 00 00';
    for (const [argv, stdin, message] of [
      [['--engine', 'llvm'], program, /--engine must be one of/],
      [['--verbose'], program, /Unknown option/],
      [['aa', 'bb'], program, /unexpected argument 'bb'/],
      [['zz'], program, /not a sequence of hex bytes/],
      [[], 'not hex', /not a sequence of hex bytes/],
    ] as const) {
      const outcome = runConformancePlugin([...argv], stdin);
      assert.equal(outcome.code, 2, String(argv));
      assert.match(outcome.stderr, message);
    }
  });
});

describe('bin/bpf-conformance-plugin', () => {
  const cases = sampleCases().filter((_, i) => i % 5 === 0);

  for (const engine of ENGINES) {
    it(`runs suite cases as a process on the ${engine}`, () => {
      for (const c of cases) {
        const memory = c.mem === '' ? '' : spacedHex(c.mem, '  ');
        const child = spawnPlugin([memory, '--engine', engine], programLines(c.code));
        assert.deepEqual([child.status, child.stdout, child.stderr], [0, expectedStdout(c), ''], c.name);
      }
    });
  }

  it('defaults to the JIT and exits 1 on a negative case', () => {
    const child = spawnPlugin([], reservedFieldProgram);
    assert.equal(child.status, 1);
    assert.equal(child.stdout, '');
    assert.match(child.stderr, /error\[ERR_DECODE\]/);
  });
});
