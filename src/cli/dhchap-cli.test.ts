/** The CLI's DH-HMAC-CHAP: secrets from flags, files and the environment; gen-dhchap-key and check-dhchap-key. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatDhchapKey, generateDhchapKey, parseDhchapKey } from '../protocol/dhchap.js';
import { startTestTarget, type TestTarget } from '../target/test-helpers.js';
import { main } from './main.js';

const SUB = 'nqn.2026-11.io.nearbpf:cli-auth';
const HOST = 'nqn.2014-08.org.nvmexpress:uuid:cli-auth-host';
const key = formatDhchapKey(generateDhchapKey({ transform: 2, nqn: HOST }));
const ctrlKey = formatDhchapKey(generateDhchapKey({ transform: 0, lengthBytes: 64 }));
let target: TestTarget;
let dir: string;

async function run(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (c) => void (stdout += String(c)) },
    stderr: { write: (c) => void (stderr += String(c)) },
  });
  return { code, stdout, stderr };
}
const idCtrl = (...extra: string[]) =>
  run(['id-ctrl', '--addr', `127.0.0.1:${target.address.port}`, '--nqn', SUB, '--hostnqn', HOST, ...extra]);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nearbpf-cli-auth-'));
  process.env.NEARBPF_NVME_DIR = join(dir, 'etc-nvme');
  process.env.XDG_CONFIG_HOME = join(dir, 'config');
  target = await startTestTarget({
    auth: { hosts: { [HOST]: { key, controllerKey: ctrlKey } } },
    subsystems: [{ nqn: SUB, requireAuthentication: true, namespaces: [{ nsid: 1, path: 'a.img', sizeBytes: 1 << 20 }] }],
  });
});
after(async () => {
  await target?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe('nearbpf with DH-HMAC-CHAP', () => {
  it('connects with the secret from the flag, a file, or the environment; bidirectional too', async () => {
    assert.equal((await idCtrl('--dhchap-secret', key)).code, 0);
    await writeFile(join(dir, 'host.key'), `${key}\n`);
    await writeFile(join(dir, 'ctrl.key'), `${ctrlKey}\n`);
    const fromFiles = await idCtrl(
      '--dhchap-secret-file',
      join(dir, 'host.key'),
      '--dhchap-ctrl-secret-file',
      join(dir, 'ctrl.key'),
    );
    assert.equal(fromFiles.code, 0, fromFiles.stderr);
    process.env.NEARBPF_DHCHAP_SECRET = key;
    try {
      assert.equal((await idCtrl()).code, 0);
    } finally {
      delete process.env.NEARBPF_DHCHAP_SECRET;
    }
  });

  it('fails clearly, without echoing secrets, for a missing, wrong or malformed key', async () => {
    const missing = await idCtrl();
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /requires authentication/);
    const other = formatDhchapKey(generateDhchapKey({ transform: 0 }));
    const wrong = await idCtrl('--dhchap-secret', other);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused authentication/);
    const wrongCtrl = await idCtrl('--dhchap-secret', key, '--dhchap-ctrl-secret', other);
    assert.equal(wrongCtrl.code, 1);
    assert.match(wrongCtrl.stderr, /controller failed to authenticate/);
    const bad = await idCtrl('--dhchap-secret', key.replace(/.:$/, 'A:'));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--dhchap-secret: /);
    assert.ok(!bad.stderr.includes(key.slice(10, 30)));
    assert.equal((await idCtrl('--dhchap-ctrl-secret', ctrlKey)).code, 2);
  });

  it('gen-dhchap-key makes keys that check-dhchap-key and the parser accept, like nvme-cli', async () => {
    for (const [hmac, len] of [
      ['0', '32'],
      ['0', '64'],
      ['1', '32'],
      ['3', '64'],
    ]) {
      const g = await run(['gen-dhchap-key', '--hmac', hmac, '--key-length', len, '--nqn', HOST]);
      assert.equal(g.code, 0, g.stderr);
      const k = parseDhchapKey(g.stdout.trim());
      assert.equal(k.secret.length, Number(len));
      assert.equal(k.transform, Number(hmac));
      const c = await run(['check-dhchap-key', g.stdout.trim()]);
      assert.equal(c.code, 0);
      assert.match(c.stdout, new RegExp(`${len} bytes`));
    }
    const fixed = await run([
      'gen-dhchap-key',
      '--hmac',
      '1',
      '--nqn',
      'nqn.2014-08.org.nvmexpress:uuid:test',
      '--secret',
      '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    ]);
    assert.equal(fixed.stdout, 'DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:\n');
    const broken = await run(['check-dhchap-key', 'DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGz:']);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /CRC/);
    assert.equal((await run(['gen-dhchap-key', '--hmac', '1', '--key-length', '64', '--nqn', HOST])).code, 2);
    assert.equal((await run(['gen-dhchap-key', '--hmac', '7'])).code, 2);
  });
});
