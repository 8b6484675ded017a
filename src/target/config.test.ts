import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../protocol/errors.js';
import { DEFAULT_SUBSYSTEM_NQN, hostAccess, loadConfigFile, validateConfig } from './config.js';
import { parseListen } from './serve.js';

const fails = (input: unknown, field: string) =>
  assert.throws(
    () => validateConfig(input, '/base'),
    (e: unknown) => e instanceof ConfigError && e.field === field,
    field,
  );

describe('target config', () => {
  it('has the documented defaults', () => {
    const c = validateConfig({}, '/base');
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 4420 });
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

  it('parses --listen', () => {
    assert.deepEqual(parseListen('0.0.0.0:4420'), { host: '0.0.0.0', port: 4420 });
    assert.deepEqual(parseListen('[::1]:8009'), { host: '::1', port: 8009 });
    assert.deepEqual(parseListen(':4421'), { host: '127.0.0.1', port: 4421 });
    assert.throws(() => parseListen('localhost'));
    assert.throws(() => parseListen('h:99999'));
  });
});
