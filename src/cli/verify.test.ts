import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assemble, encodeProgram } from '../isa/index.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import type { CliIo } from './io.js';
import { main } from './main.js';

async function runMain(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (chunk) => out.push(Buffer.from(chunk).toString('utf8')), isTTY: false },
    stderr: { write: (chunk) => err.push(Buffer.from(chunk).toString('utf8')) },
  };
  const code = await main(argv, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

const example = (name: string) => join(REPO_ROOT, 'examples', 'build', name);
const CHECKED = 'mov %r0, 0\njlt %r2, 8, out\nldxdw %r0, [%r1]\nout:\nexit\n';
const UNCHECKED = 'ldxdw %r0, [%r1]\nexit\n';

let dir: string;
const path = (name: string) => join(dir, name);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nearbpf-verify-'));
  writeFileSync(path('checked.s'), CHECKED);
  writeFileSync(path('unchecked.s'), UNCHECKED);
  writeFileSync(path('checked.bin'), encodeProgram(assemble(CHECKED)));
  writeFileSync(path('garbage.bin'), new Uint8Array([1, 2, 3]));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('nearbpf verify', () => {
  it('accepts an ELF storage function, typed by its section', async () => {
    const r = await runMain(['verify', example('btree.o'), '--program', 'btree_lookup']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^btree_lookup: accepted as storage: processed \d+ insns, \d+ states \(peak \d+\), [\d.]+ ms\n$/);
  });

  it('accepts a conformance object with maps and global data', async () => {
    const r = await runMain(['verify', example('globals.o')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /popcount: accepted as conformance/);
  });

  it('accepts assembly and raw bytecode as conformance programs', async () => {
    for (const file of ['checked.s', 'checked.bin']) {
      const r = await runMain(['verify', path(file)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /accepted as conformance/);
    }
  });

  it('rejects with the reason, the instruction and the state on stderr', async () => {
    const r = await runMain(['verify', path('unchecked.s')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^unchecked\.s: rejected as conformance: processed 1 insns, 0 states: invalid access to data/);
    assert.match(r.stderr, /unchecked\.s: rejected as conformance\n0: ldxdw %r0, \[%r1\]\ninvalid access to data, off=0 size=8/);
    assert.match(r.stderr, /R1=data/);
  });

  it('shows the C source line of the rejected instruction', async () => {
    // sum is a conformance program; as a storage function only r1 is set, and it reads r2 (len).
    const r = await runMain(['verify', example('sum.o'), '--type', 'storage']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\n; sum\.c:\d+: .*len.*\n\d+: [^\n]*%r2[^\n]*\nR2 !read_ok\n/);
  });

  it('--json prints the statistics or the rejection on stdout', async () => {
    const ok = await runMain(['verify', path('checked.s'), '--json']);
    assert.equal(ok.code, 0);
    const accepted = JSON.parse(ok.stdout);
    assert.equal(accepted.ok, true);
    assert.equal(accepted.type, 'conformance');
    assert.ok(accepted.stats.processedInsns > 0);

    const bad = await runMain(['verify', path('unchecked.s'), '--json']);
    assert.equal(bad.code, 1);
    const rejected = JSON.parse(bad.stdout);
    assert.equal(rejected.ok, false);
    assert.equal(rejected.code, 'ERR_VERIFIER_REJECTED');
    assert.equal(rejected.pc, 0);
    assert.match(rejected.reason, /invalid access to data/);
    assert.ok(Array.isArray(rejected.state));
    assert.equal(typeof rejected.log, 'string');
  });

  it('--log-level 1 prints every processed instruction', async () => {
    const r = await runMain(['verify', path('unchecked.s'), '--log-level', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /0: ldxdw %r0, \[%r1\]/);
    const ok = await runMain(['verify', path('checked.s'), '--log-level', '2']);
    assert.equal(ok.code, 0);
    assert.match(ok.stderr, /processed \d+ insns/);
  });

  it('verifies every program of an object by default, one line each (veristat style)', async () => {
    const r = await runMain(['verify', example('btree.o')]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split(':')[0]),
      ['btree_lookup', 'btree_range', 'btree_batch'],
    );
    for (const line of lines)
      assert.match(line, /: accepted as storage: processed \d+ insns, \d+ states \(peak \d+\), [\d.]+ ms$/);
    const one = await runMain(['verify', example('btree.o'), '--program', 'btree_range']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^btree_range: accepted as storage/);
    assert.equal(one.stdout.trim().split('\n').length, 1);
  });

  it('exits 1 when any program of the object is rejected, still verifying the others', async () => {
    // As storage functions the conformance programs read r2, which a storage function does not get.
    const r = await runMain(['verify', example('calls.o'), '--type', 'storage']);
    assert.equal(r.code, 1);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.ok(
      lines.some((l) => /: rejected as storage: processed \d+ insns, \d+ states: R2 !read_ok$/.test(l)),
      r.stdout,
    );
    assert.match(r.stderr, /rejected as storage\n/);
    const json = await runMain(['verify', example('calls.o'), '--type', 'storage', '--json']);
    assert.equal(json.code, 1);
    const objects = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(objects.length, 3);
    assert.ok(objects.some((o) => o.ok === false && o.code === 'ERR_VERIFIER_REJECTED'));
  });

  it('malformed bytecode is a rejected program (exit 1) with a kernel-style line naming the instruction', async () => {
    const ok = encodeProgram(assemble('mov %r0, 0\nexit'));
    const slot = (opcode: number, regs: number, offset = 0, imm = 0) => {
      const b = Buffer.alloc(8);
      b[0] = opcode;
      b[1] = regs;
      b.writeInt16LE(offset, 2);
      b.writeInt32LE(imm, 4);
      return b;
    };
    const cases: [string, Buffer, RegExp][] = [
      ['unknown opcode', Buffer.concat([slot(0x8f, 0), ok]), /^0: \(8f 00 00 00 00 00 00 00\) .*opcode 0x8f/m],
      ['invalid register', Buffer.concat([slot(0xb7, 0x0c), ok]), /^0: \(b7 0c .*invalid dst register r12/m],
      ['nonzero reserved field', Buffer.concat([slot(0xb7, 0x00, 3), ok]), /^0: .*reserved field offset must be 0, is 3/m],
      ['broken lddw', Buffer.concat([slot(0x18, 0), slot(0xb7, 0), ok]), /^1: .*second slot of lddw/m],
    ];
    for (const [name, bytes, line] of cases) {
      writeFileSync(path('bad.bin'), bytes);
      const r = await runMain(['verify', path('bad.bin')]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stdout, /^bad\.bin: rejected as conformance: malformed instruction \d+: /, name);
      assert.match(r.stderr, line, name);
    }
  });

  it('exits 2 on bad usage and unreadable input', async () => {
    const cases = [
      ['verify'],
      ['verify', path('missing.s')],
      ['verify', path('checked.s'), '--type', 'bogus'],
      ['verify', path('checked.s'), '--log-level', '5'],
      ['verify', path('checked.s'), '--program', 'x'],
      ['verify', path('garbage.bin')],
      ['verify', example('btree.o'), '--program', 'no_such_program'],
    ];
    for (const argv of cases) {
      const r = await runMain(argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /error\[/);
    }
  });
});
