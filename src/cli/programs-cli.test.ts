/** `nearbpf load/exec/programs/unload` against a real target on an ephemeral port. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assemble, encodeProgram } from '../isa/index.js';
import { startTestTarget, type TestTarget } from '../target/test-helpers.js';
import { runCliAgainst } from './test-helpers.js';

let target: TestTarget;
let dir: string;

const run = (argv: string[]) => runCliAgainst(target.address.port, argv);

describe('nearbpf load, exec, programs, unload', () => {
  before(async () => {
    target = await startTestTarget();
    dir = await mkdtemp(join(tmpdir(), 'nearbpf-cli-programs-'));
    process.env.NEARBPF_NVME_DIR = join(dir, 'etc-nvme');
    process.env.XDG_CONFIG_HOME = join(dir, 'config');
    // Returns param0 + param1 and emits the input back.
    const echo = `
        mov %r6, %r1
        ldxdw %r2, [%r6+32]
        jeq %r2, 0, done
        jgt %r2, 4096, done
        ldxdw %r1, [%r6+24]
        call 101
      done:
        ldxdw %r0, [%r6+40]
        ldxdw %r1, [%r6+48]
        add %r0, %r1
        exit`;
    await writeFile(join(dir, 'echo.bin'), encodeProgram(assemble(echo)));
    await writeFile(join(dir, 'bad.bin'), encodeProgram(assemble('ldxdw %r0, [%r1+512]\nexit')));
    await writeFile(join(dir, 'input.bin'), Buffer.from('abc'));
  });

  after(async () => {
    await target?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads, lists, executes and unloads a program', async () => {
    const loaded = await run(['load', join(dir, 'echo.bin'), '--name', 'echo']);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.match(loaded.stdout, /loaded 'echo' as handle \d+/);
    const listed = await run(['programs']);
    assert.match(listed.stdout, /echo/);
    const executed = await run([
      'exec',
      'echo',
      '--nsid',
      '1',
      '--param0',
      '40',
      '--param1',
      '0x2',
      '--input',
      join(dir, 'input.bin'),
      '--stats',
    ]);
    assert.equal(executed.code, 0, executed.stderr);
    assert.equal(executed.stdout, `0x2a\n${Buffer.from('abc').toString('hex')}\n`);
    assert.match(executed.stderr, /steps: 1/);
    assert.equal((await run(['unload', 'echo'])).code, 0);
    const gone = await run(['exec', 'echo', '--nsid', '1']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no program named 'echo'/);
  });

  it('prints the verifier log of a rejected program and exits 1', async () => {
    const r = await run(['load', join(dir, 'bad.bin'), '--name', 'bad']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error\[ERR_PROGRAM_COMMAND\]/);
    assert.match(r.stderr, /ldxdw %r0, \[%r1\+512\]/);
  });

  it("two users without /etc/nvme are two tenants: neither sees nor unloads the other's programs", async () => {
    const first = process.env.XDG_CONFIG_HOME;
    assert.equal((await run(['load', join(dir, 'echo.bin'), '--name', 'mine'])).code, 0);
    try {
      process.env.XDG_CONFIG_HOME = join(dir, 'other-user-config');
      const theirs = await run(['programs']);
      assert.equal(theirs.code, 0, theirs.stderr);
      assert.doesNotMatch(theirs.stdout, /mine/);
      const unload = await run(['unload', 'mine']);
      assert.equal(unload.code, 1);
      assert.match(unload.stderr, /no program named 'mine'/);
    } finally {
      process.env.XDG_CONFIG_HOME = first;
    }
    assert.match((await run(['programs'])).stdout, /mine/);
    assert.equal((await run(['unload', 'mine'])).code, 0);
  });

  it('rejects bad usage with exit 2', async () => {
    assert.equal((await run(['exec', 'x', '--nsid', '1', '--param0', 'ten'])).code, 2);
    assert.equal((await run(['exec', 'x', '--nsid', '1', '--scan', '5'])).code, 2);
    assert.equal((await run(['load'])).code, 2);
  });
});
