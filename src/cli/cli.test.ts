import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { byteSum, fnv1a, pseudoRandomBytes } from './commands/demo.js';
import type { CliIo } from './io.js';
import { main } from './main.js';

const NEARBPF_BIN = join(REPO_ROOT, 'bin', 'nearbpf.js');

/** An IO whose streams collect what a command writes. */
function captureIo(options: { stdoutIsTTY?: boolean } = {}) {
  const out: Buffer[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (chunk) => out.push(Buffer.from(chunk)), isTTY: options.stdoutIsTTY ?? false },
    stderr: { write: (chunk) => err.push(Buffer.from(chunk).toString('utf8')) },
  };
  return {
    io,
    stdoutBytes: () => Buffer.concat(out),
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => err.join(''),
  };
}

async function runMain(argv: string[], options: { stdoutIsTTY?: boolean } = {}) {
  const capture = captureIo(options);
  const code = await main(argv, capture.io);
  return { code, stdout: capture.stdout(), stderr: capture.stderr(), stdoutBytes: capture.stdoutBytes() };
}

function spawnNearbpf(args: string[]) {
  return spawnSync(process.execPath, [NEARBPF_BIN, ...args], { encoding: 'utf8' });
}

/** Returns mem[1] + length when mem[1] != 0, else 0; faults when the memory is shorter than 2 bytes. */
const SECOND_BYTE_SOURCE = `mov %r0, 0
ldxb %r0, [%r1+1]
jeq %r0, 0, out
add %r0, %r2
out:
exit
`;

/** Loops forever (until its fuel runs out). */
const LOOP_SOURCE = `loop:
add %r0, 1
ja loop
`;

let dir: string;
const path = (name: string) => join(dir, name);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nearbpf-cli-'));
  writeFileSync(path('second-byte.s'), SECOND_BYTE_SOURCE);
  writeFileSync(path('loop.s'), LOOP_SOURCE);
  writeFileSync(path('memory.bin'), Uint8Array.of(0x10, 0x20, 0x30));
  writeFileSync(path('bad.s'), 'mov %r0, 1\nfrobnicate %r0\nexit\n');
  writeFileSync(path('short.bin'), Uint8Array.of(0x95, 0, 0, 0));
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('nearbpf help', () => {
  it('prints the command list on help, --help and -h', async () => {
    for (const argv of [['help'], ['--help'], ['-h']]) {
      const { code, stdout } = await runMain(argv);
      assert.equal(code, 0);
      for (const command of ['asm', 'disasm', 'run', 'demo']) assert.match(stdout, new RegExp(`^  ${command} `, 'm'));
    }
  });

  it('prints one command with help NAME and NAME --help', async () => {
    for (const argv of [
      ['help', 'run'],
      ['run', '--help'],
    ]) {
      const { code, stdout } = await runMain(argv);
      assert.equal(code, 0);
      assert.match(stdout, /^usage: nearbpf run FILE/);
    }
  });

  it('prints usage on stderr and exits 2 without a command', async () => {
    const { code, stdout, stderr } = await runMain([]);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /^usage: nearbpf COMMAND/);
  });

  it('rejects an unknown command with exit 2', async () => {
    const { code, stderr } = await runMain(['frobnicate']);
    assert.equal(code, 2);
    assert.match(stderr, /error\[ERR_USAGE\]: unknown command 'frobnicate'/);
  });
});

describe('nearbpf asm and disasm', () => {
  it('round-trips assembly through a bytecode file', async () => {
    const asm = await runMain(['asm', path('second-byte.s'), '-o', path('second-byte.bin')]);
    assert.deepEqual(asm, { code: 0, stdout: '', stderr: '', stdoutBytes: Buffer.alloc(0) });
    assert.equal(readFileSync(path('second-byte.bin')).length, 5 * 8);

    const fromBinary = await runMain(['disasm', path('second-byte.bin')]);
    assert.equal(fromBinary.code, 0);
    assert.equal(fromBinary.stdout, SECOND_BYTE_SOURCE.replace('out:\n', '').replace(', out', ', +1'));

    // Disassembling the text gives the same canonical form, and reassembling it the same bytes.
    const fromText = await runMain(['disasm', path('second-byte.s')]);
    assert.equal(fromText.stdout, fromBinary.stdout);
    writeFileSync(path('canonical.s'), fromBinary.stdout);
    await runMain(['asm', path('canonical.s'), '--output', path('canonical.bin')]);
    assert.deepEqual(readFileSync(path('canonical.bin')), readFileSync(path('second-byte.bin')));
  });

  it('prints slot indexes and labels on request', async () => {
    await runMain(['asm', path('second-byte.s'), '-o', path('second-byte.bin')]);
    const { code, stdout } = await runMain(['disasm', path('second-byte.bin'), '--pcs', '--labels']);
    assert.equal(code, 0);
    assert.equal(
      stdout,
      [
        '    0: mov %r0, 0',
        '    1: ldxb %r0, [%r1+1]',
        '    2: jeq %r0, 0, L4',
        '    3: add %r0, %r2',
        'L4:',
        '    4: exit',
        '',
      ].join('\n'),
    );
  });

  it('writes bytecode to stdout only when it is not a terminal', async () => {
    await runMain(['asm', path('second-byte.s'), '-o', path('second-byte.bin')]);
    const piped = await runMain(['asm', path('second-byte.s')]);
    assert.equal(piped.code, 0);
    assert.deepEqual(piped.stdoutBytes, readFileSync(path('second-byte.bin')));

    const terminal = await runMain(['asm', path('second-byte.s')], { stdoutIsTTY: true });
    assert.equal(terminal.code, 2);
    assert.equal(terminal.stdoutBytes.length, 0);
    assert.match(terminal.stderr, /refusing to write bytecode to a terminal/);
  });

  it('reports assembly errors with exit 1', async () => {
    const { code, stderr } = await runMain(['asm', path('bad.s'), '-o', path('bad.bin')]);
    assert.equal(code, 1);
    assert.match(stderr, /^error\[ERR_ASSEMBLE\]: line 2: /);
  });

  it('reports bytecode that is not a whole number of instructions with exit 1', async () => {
    const { code, stderr } = await runMain(['disasm', path('short.bin')]);
    assert.equal(code, 1);
    assert.match(stderr, /^error\[ERR_DECODE\]: .*not a multiple of 8 bytes/);
  });
});

describe('nearbpf run', () => {
  for (const engine of ['interpreter', 'jit']) {
    it(`runs assembly and bytecode over --mem and --mem-file on the ${engine}`, async () => {
      await runMain(['asm', path('second-byte.s'), '-o', path('second-byte.bin')]);
      for (const program of ['second-byte.s', 'second-byte.bin']) {
        const hex = await runMain(['run', path(program), '--mem', 'aa 07', '--engine', engine]);
        assert.deepEqual([hex.code, hex.stdout, hex.stderr], [0, '0x9\n', '']);
        const file = await runMain(['run', path(program), '--mem-file', path('memory.bin'), '--engine', engine]);
        assert.deepEqual([file.code, file.stdout, file.stderr], [0, '0x23\n', '']);
        const zero = await runMain(['run', path(program), '--mem', '0100', '--engine', engine]);
        assert.equal(zero.stdout, '0x0\n');
      }
    });

    it(`exits 1 with ERR_FUEL_EXHAUSTED when the budget runs out on the ${engine}`, async () => {
      const { code, stdout, stderr } = await runMain(['run', path('loop.s'), '--fuel', '1000', '--engine', engine]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.match(stderr, /^error\[ERR_FUEL_EXHAUSTED\]: pc \d+: instruction budget of 1000 exhausted\n$/);
    });

    it(`exits 1 with ERR_MEMORY_ACCESS on an out-of-bounds load on the ${engine}`, async () => {
      const { code, stderr } = await runMain(['run', path('second-byte.s'), '--mem', 'aa', '--engine', engine]);
      assert.equal(code, 1);
      assert.match(stderr, /^error\[ERR_MEMORY_ACCESS\]: pc 1: invalid read of 1 bytes/);
    });
  }

  it('prints fuel used, and the JIT compile figures, with --stats', async () => {
    const interpreter = await runMain(['run', path('second-byte.s'), '--mem', 'aa07', '--engine', 'interpreter', '--stats']);
    assert.equal(interpreter.stdout, '0x9\n');
    assert.equal(interpreter.stderr, 'fuel used: 5\n');

    const jit = await runMain(['run', path('second-byte.s'), '--mem', 'aa07', '--stats']);
    assert.equal(jit.stdout, '0x9\n');
    assert.match(
      jit.stderr,
      /^fuel used: 5\njit translate: [\d.]+ ms\njit compile: [\d.]+ ms\njit instantiate: [\d.]+ ms\nwasm size: \d+ bytes\n$/,
    );
  });

  const badUsage: [string, string[], RegExp][] = [
    ['an unknown flag', ['run', 'second-byte.s', '--bogus'], /Unknown option '--bogus'/],
    ['a missing file', ['run', 'missing.bin'], /cannot read '.*missing\.bin': no such file/],
    ['a missing --mem-file', ['run', 'second-byte.s', '--mem-file', 'missing.mem'], /cannot read '.*missing\.mem'/],
    ['a bad --engine', ['run', 'second-byte.s', '--engine', 'llvm'], /--engine must be one of interpreter, jit, got 'llvm'/],
    ['bad --mem hex', ['run', 'second-byte.s', '--mem', 'xyz'], /not a sequence of hex bytes/],
    ['odd-length --mem hex', ['run', 'second-byte.s', '--mem', 'a'], /not a sequence of hex bytes/],
    ['a bad --fuel', ['run', 'second-byte.s', '--fuel', '1e3'], /--fuel must be a non-negative integer/],
    ['both --mem and --mem-file', ['run', 'second-byte.s', '--mem', 'aa', '--mem-file', 'memory.bin'], /at most one/],
    ['no FILE', ['run'], /missing FILE/],
    ['two FILEs', ['run', 'second-byte.s', 'loop.s'], /unexpected argument/],
    ['a --mem without value', ['run', 'second-byte.s', '--mem'], /argument missing/],
  ];
  for (const [what, argv, message] of badUsage) {
    it(`exits 2 on ${what}`, async () => {
      const resolved = argv.map((a) => (/\.(s|bin|mem)$/.test(a) ? path(a) : a));
      const { code, stdout, stderr } = await runMain(resolved);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.match(stderr, /^error\[ERR_USAGE\]: /);
      assert.match(stderr, message);
      assert.match(stderr, /run 'nearbpf help run' for usage/);
    });
  }
});

describe('nearbpf demo', () => {
  it('agrees with known FNV-1a vectors and a byte sum', () => {
    const text = (s: string) => new TextEncoder().encode(s);
    assert.equal(fnv1a(text('')), 0x811c9dc5n);
    assert.equal(fnv1a(text('a')), 0xe40c292cn);
    assert.equal(fnv1a(text('foobar')), 0xbf9cf968n);
    assert.equal(byteSum(Uint8Array.of(255, 255, 2)), 512n);
    assert.deepEqual(pseudoRandomBytes(16), pseudoRandomBytes(16));
  });

  it('runs the storage demo: every operation agrees pushed down and fetched', async () => {
    const { code, stdout, stderr } = await runMain(['demo', '--quick']);
    assert.equal(code, 0, stderr);
    const rows = stdout.split('\n').filter((line) => /\s+pushdown\s+\d/.test(line));
    // Four B+-tree and table operations, then the SQLite section's three.
    assert.equal(rows.length, 7, stdout);
    for (const row of rows) assert.match(row, /\bagree\b/);
  });
});

describe('bin/nearbpf.js', () => {
  it('assembles, disassembles and runs end to end', () => {
    const asm = spawnNearbpf(['asm', path('second-byte.s'), '-o', path('spawned.bin')]);
    assert.equal(asm.status, 0, asm.stderr);
    const disasm = spawnNearbpf(['disasm', path('spawned.bin'), '--labels']);
    assert.equal(disasm.status, 0, disasm.stderr);
    assert.match(disasm.stdout, /^jeq %r0, 0, L4$/m);
    for (const engine of ['interpreter', 'jit']) {
      const run = spawnNearbpf(['run', path('spawned.bin'), '--mem-file', path('memory.bin'), '--engine', engine]);
      assert.deepEqual([run.status, run.stdout, run.stderr], [0, '0x23\n', '']);
    }
  });

  it('pipes bytecode to stdout', () => {
    const piped = spawnSync(process.execPath, [NEARBPF_BIN, 'asm', path('second-byte.s')]);
    assert.equal(piped.status, 0);
    assert.equal(piped.stdout.length, 5 * 8);
  });

  it('exits 1 on a fault and 2 on bad usage', () => {
    const fuel = spawnNearbpf(['run', path('loop.s'), '--fuel', '50']);
    assert.equal(fuel.status, 1);
    assert.match(fuel.stderr, /error\[ERR_FUEL_EXHAUSTED\]/);
    const missing = spawnNearbpf(['run', path('missing.bin')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no such file/);
    const unknown = spawnNearbpf(['disasm', path('second-byte.s'), '--colour']);
    assert.equal(unknown.status, 2);
  });
});

describe('nearbpf on ELF objects', () => {
  const example = (name: string) => join(REPO_ROOT, 'examples', 'build', name);

  it('inspect lists programs and interleaves source lines', async () => {
    const { code, stdout } = await runMain(['inspect', example('calls.o')]);
    assert.equal(code, 0);
    assert.match(stdout, /programs \(3\):/);
    assert.match(stdout, /; calls\.c:\d+: .*sum_of_squares/);
    const plain = await runMain(['inspect', example('calls.o'), '--program', 'squares', '--no-source']);
    assert.doesNotMatch(plain.stdout, /; calls\.c/);
  });

  it('run executes a program of an object on both engines', async () => {
    for (const engine of ['interpreter', 'jit']) {
      const { code, stdout } = await runMain(['run', example('sum.o'), '--mem', '01 02 03 04', '--engine', engine]);
      assert.equal(code, 0);
      assert.equal(stdout, '0xa\n');
    }
  });

  it('fails clearly on a corrupt object and on an unknown program', async () => {
    const corrupt = path('corrupt.o');
    writeFileSync(corrupt, readFileSync(example('sum.o')).subarray(0, 100));
    const bad = await runMain(['run', corrupt]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error\[ERR_ELF/);
    const unknown = await runMain(['inspect', example('sum.o'), '--program', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /nope/);
  });
});
