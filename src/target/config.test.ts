import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../protocol/errors.js';
import { DEFAULT_SUBSYSTEM_NQN, hostAccess, loadConfigFile, validateConfig } from './config.js';
import { parseListen, unauthenticatedExposureWarning } from './serve.js';

const fails = (input: unknown, field: string) =>
  assert.throws(
    () => validateConfig(input, '/base'),
    (e: unknown) => e instanceof ConfigError && e.field === field,
    field,
  );

describe('target config', () => {
  it('has the documented defaults', () => {
    const c = validateConfig({}, '/base');
    assert.deepEqual(c.listen, [{ host: '127.0.0.1', port: 4420 }]);
    assert.equal(c.dataDir, '/base/nearbpf-data');
    assert.equal(c.subsystems[0].nqn, DEFAULT_SUBSYSTEM_NQN);
    assert.deepEqual(c.subsystems[0].namespaces[0], {
      nsid: 1,
      path: '/base/nearbpf-data/default-ns1.img',
      sizeBytes: 1 << 30,
      blockSize: 512,
    });
    assert.deepEqual(c.subsystems[0].hosts, [{ nqn: '*', access: 'read-write' }]);
  });

  it('names the bad field', () => {
    fails([], '(root)');
    fails({ listen: { port: 70000 } }, 'listen.port');
    fails({ listen: [{ port: 4420 }, { port: 70000 }] }, 'listen[1].port');
    fails({ listen: [{ port: 4420 }, 'x'] }, 'listen[1]');
    fails({ listen: [{ port: 4420 }, { port: 4420 }] }, 'listen[1]');
    fails({ listen: [] }, 'listen');
    fails({ listen: Array.from({ length: 65 }, (_, i) => ({ port: 5000 + i })) }, 'listen');
    fails({ bogus: 1 }, 'bogus');
    fails({ limits: { maxDataTransferBytes: 12288 } }, 'limits.maxDataTransferBytes');
    fails({ limits: { maxQueueDepth: 1 } }, 'limits.maxQueueDepth');
    fails({ limits: { maxInFlightBytesPerConnection: 65536 } }, 'limits.maxInFlightBytesPerConnection');
    fails({ subsystems: [] }, 'subsystems');
    fails({ subsystems: [{ nqn: 'foo', namespaces: [{ path: 'a', sizeBytes: 512 }] }] }, 'subsystems[0].nqn');
    fails(
      { subsystems: [{ nqn: 'nqn.2014-08.org.nvmexpress.discovery', namespaces: [{ path: 'a', sizeBytes: 512 }] }] },
      'subsystems[0].nqn',
    );
    fails(
      { subsystems: [{ nqn: 'nqn.a:b', namespaces: [{ path: 'a', sizeBytes: 1000 }] }] },
      'subsystems[0].namespaces[0].sizeBytes',
    );
    fails(
      { subsystems: [{ nqn: 'nqn.a:b', namespaces: [{ path: 'a', blockSize: 1024 }] }] },
      'subsystems[0].namespaces[0].blockSize',
    );
    fails(
      {
        subsystems: [
          {
            nqn: 'nqn.a:b',
            namespaces: [
              { nsid: 1, path: 'a' },
              { nsid: 1, path: 'b' },
            ],
          },
        ],
      },
      'subsystems[0].namespaces[1].nsid',
    );
    fails(
      { subsystems: [{ nqn: 'nqn.a:b', hosts: [{ nqn: '*', access: 'all' }], namespaces: [{ path: 'a' }] }] },
      'subsystems[0].hosts[0].access',
    );
    fails({ subsystems: [{ nqn: 'nqn.a:b', serial: 'x'.repeat(21), namespaces: [{ path: 'a' }] }] }, 'subsystems[0].serial');
  });

  it('resolves host access with exact NQNs before the wildcard', () => {
    const hosts = {
      hosts: [
        { nqn: '*', access: 'read-write' as const },
        { nqn: 'nqn.h:ro', access: 'read-only' as const },
      ],
    };
    assert.equal(hostAccess(hosts, 'nqn.h:ro'), 'read-only');
    assert.equal(hostAccess(hosts, 'nqn.h:other'), 'read-write');
    assert.equal(hostAccess({ hosts: [{ nqn: 'nqn.h:a', access: 'read-write' }] }, 'nqn.h:b'), null);
  });

  it('loads a file with paths relative to it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nearbpf-config-'));
    try {
      const file = join(dir, 'c.json');
      await writeFile(
        file,
        JSON.stringify({ dataDir: 'data', subsystems: [{ nqn: 'nqn.a:b', namespaces: [{ path: 'x.img', sizeBytes: 4096 }] }] }),
      );
      const c = await loadConfigFile(file);
      assert.equal(c.subsystems[0].namespaces[0].path, join(dir, 'data', 'x.img'));
      await writeFile(file, '{');
      await assert.rejects(loadConfigFile(file), ConfigError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes one port or a list of ports', () => {
    assert.deepEqual(validateConfig({ listen: { port: 4430 } }, '/base').listen, [{ host: '127.0.0.1', port: 4430 }]);
    assert.deepEqual(
      validateConfig({ listen: [{ port: 4420 }, { host: '::1', port: 4421 }, { port: 0 }, { port: 0 }] }, '/b').listen,
      [
        { host: '127.0.0.1', port: 4420 },
        { host: '::1', port: 4421 },
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: 0 },
      ],
    );
  });

  it('parses --listen', () => {
    assert.deepEqual(parseListen('0.0.0.0:4420'), { host: '0.0.0.0', port: 4420 });
    assert.deepEqual(parseListen('[::1]:8009'), { host: '::1', port: 8009 });
    assert.deepEqual(parseListen(':4421'), { host: '127.0.0.1', port: 4421 });
    assert.throws(() => parseListen('localhost'));
    assert.throws(() => parseListen('h:99999'));
  });

  it('reads DH-HMAC-CHAP host keys (inline or from a file), never echoing a bad secret', async () => {
    const key = 'DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:';
    const ctrl = 'DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:';
    const host = 'nqn.2014-08.org.nvmexpress:uuid:h';
    const dir = await mkdtemp(join(tmpdir(), 'nearbpf-auth-config-'));
    try {
      await writeFile(join(dir, 'h.key'), `${ctrl}\n`);
      const c = validateConfig(
        {
          auth: { hosts: { [host]: { key, controllerKeyFile: 'h.key' } }, hashes: ['sha256'] },
          subsystems: [{ nqn: 'nqn.a:b', requireAuthentication: true, namespaces: [{ path: 'x', sizeBytes: 512 }] }],
        },
        dir,
      );
      assert.equal(c.auth.hosts.get(host)?.key.transform, 0);
      assert.equal(c.auth.hosts.get(host)?.controllerKey?.transform, 1);
      assert.deepEqual(c.auth.hashes, ['sha256']);
      assert.equal(c.subsystems[0].requireAuthentication, true);
      const bad = key.replace('KfiaR', 'KfiaS');
      assert.throws(
        () => validateConfig({ auth: { hosts: { [host]: { key: bad } } } }, dir),
        (e: unknown) => e instanceof ConfigError && e.field === `auth.hosts.${host}.key` && !e.message.includes('AAEC'),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    fails({ auth: { hosts: { [host]: {} } } }, `auth.hosts.${host}.key`);
    fails({ auth: { hosts: { [host]: { key, keyFile: 'x' } } } }, `auth.hosts.${host}.key`);
    fails({ auth: { hosts: { [host]: { key, controllerKey: key } } } }, `auth.hosts.${host}.controllerKey`);
    fails(
      { auth: { hosts: { [host]: { key, keyFile: undefined, controllerKeyFile: '/nonexistent/k' } } } },
      `auth.hosts.${host}.controllerKeyFile`,
    );
    fails({ auth: { hosts: { 'not-an-nqn': { key } } } }, 'auth.hosts.not-an-nqn');
    fails({ auth: { hashes: ['md5'] } }, 'auth.hashes[0]');
    fails({ auth: { dhGroups: [] } }, 'auth.dhGroups');
    fails(
      { subsystems: [{ nqn: 'nqn.a:b', requireAuthentication: 'yes', namespaces: [{ path: 'x', sizeBytes: 512 }] }] },
      'subsystems[0].requireAuthentication',
    );
  });

  it('warns when serving beyond loopback with no host keys, and only then', () => {
    const key = 'DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:';
    assert.equal(unauthenticatedExposureWarning(validateConfig({}, '/base')), null, 'the quick start needs no keys');
    assert.equal(unauthenticatedExposureWarning(validateConfig({ listen: { host: '::1' } }, '/base')), null);
    assert.match(
      unauthenticatedExposureWarning(validateConfig({ listen: [{ host: '::1' }, { host: '10.0.0.1' }] }, '/base')) ?? '',
      /listening on 10\.0\.0\.1 .*any host/,
    );
    assert.match(
      unauthenticatedExposureWarning(validateConfig({ listen: { host: '0.0.0.0' } }, '/base')) ?? '',
      /any host .* can claim any host NQN/,
    );
    const keyed = validateConfig(
      { listen: { host: '0.0.0.0' }, auth: { hosts: { 'nqn.2014-08.org.nvmexpress:uuid:h': { key } } } },
      '/base',
    );
    assert.equal(unauthenticatedExposureWarning(keyed), null);
  });
});
