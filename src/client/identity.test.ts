import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultIdentityPaths, HostIdentityError, hostIdForNqn, resolveHostIdentity } from './identity.js';

const root = mkdtempSync(join(tmpdir(), 'nearbpf-identity-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh pair of folders: a fake /etc/nvme and a fake user config dir. */
function dirs(etc?: Record<string, string>) {
  const base = join(root, String(n++));
  const nvmeDir = join(base, 'etc-nvme');
  const configDir = join(base, 'config', 'nearbpf');
  if (etc) {
    mkdirSync(nvmeDir, { recursive: true });
    for (const [name, text] of Object.entries(etc)) writeFileSync(join(nvmeDir, name), text);
  }
  return { nvmeDir, configDir };
}

describe('host identity', () => {
  it('uses /etc/nvme/hostnqn and hostid as nvme-cli does', () => {
    const paths = dirs({
      hostnqn: 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n',
      hostid: '66666666-7777-8888-9999-aaaaaaaaaaaa\n',
    });
    const id = resolveHostIdentity(paths);
    assert.equal(id.hostNqn, 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555');
    assert.equal(id.hostId.toString('hex'), '66666666777788889999aaaaaaaaaaaa');
    assert.equal(id.source, join(paths.nvmeDir, 'hostnqn'));
  });

  it('takes the host ID from a UUID NQN, or derives a stable one, when there is no hostid file', () => {
    const uuid = resolveHostIdentity(dirs({ hostnqn: 'nqn.2014-08.org.nvmexpress:uuid:0123abcd-0000-1111-2222-333344445555' }));
    assert.equal(uuid.hostId.toString('hex'), '0123abcd000011112222333344445555');
    const named = resolveHostIdentity(dirs({ hostnqn: 'nqn.2026-01.com.example:host-a' }));
    assert.deepEqual(named.hostId, hostIdForNqn('nqn.2026-01.com.example:host-a'));
    assert.equal(named.hostId.length, 16);
  });

  it('creates a UUID NQN once per user when /etc/nvme has none, and reuses it', () => {
    const paths = dirs();
    const first = resolveHostIdentity(paths);
    assert.match(first.hostNqn, /^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f-]{36}$/);
    assert.equal(first.hostId.toString('hex'), first.hostNqn.slice(-36).replace(/-/g, ''));
    assert.equal(readFileSync(join(paths.configDir, 'hostnqn'), 'utf8').trim(), first.hostNqn);
    assert.deepEqual(resolveHostIdentity(paths), { ...first, source: join(paths.configDir, 'hostnqn') });
    // Another user (another config dir) is another host.
    assert.notEqual(resolveHostIdentity(dirs()).hostNqn, first.hostNqn);
  });

  it('refuses a corrupt hostnqn or hostid file with a typed error', () => {
    assert.throws(() => resolveHostIdentity(dirs({ hostnqn: 'not-an-nqn\n' })), HostIdentityError);
    assert.throws(() => resolveHostIdentity(dirs({ hostnqn: `nqn.${'x'.repeat(300)}` })), HostIdentityError);
    assert.throws(() => resolveHostIdentity(dirs({ hostnqn: 'nqn.2026-01.com.example:h', hostid: 'xyz' })), /hostid: not a UUID/);
  });

  it('defaults follow NEARBPF_NVME_DIR and XDG_CONFIG_HOME', () => {
    const d = defaultIdentityPaths({ NEARBPF_NVME_DIR: '/x/nvme', XDG_CONFIG_HOME: '/y/cfg', HOME: '/home/u' });
    assert.deepEqual(d, { nvmeDir: '/x/nvme', configDir: '/y/cfg/nearbpf' });
    assert.deepEqual(defaultIdentityPaths({ HOME: '/home/u' }), { nvmeDir: '/etc/nvme', configDir: '/home/u/.config/nearbpf' });
  });
});
