import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError } from '../protocol/errors.js';
import { DEFAULT_TENANT_LIMITS } from '../runtime/budget.js';
import { DEFAULT_AUTH_POLICY } from './auth.js';
import { DEFAULT_LIMITS, effectiveConfigJson, REDACTED, validateConfig } from './config.js';
import {
  CONFIG_SCHEMA,
  type Field,
  LIMIT_FIELDS,
  type ObjectField,
  renderConfigReference,
  TENANT_LIMIT_FIELDS,
} from './config-schema.js';
import { runServe } from './serve.js';
import { DEFAULT_EXECUTION_WORKER_NICE } from './thread-priority.js';

const HOST_KEY = 'DHHC-1:00:yZ6CVWUAQyBpvauKZRHUtHBsvCt8orIvx4Rhx3Yhc+CeseJZ:';
const HOST_NQN = 'nqn.2014-08.org.nvmexpress:uuid:0c0c0c0c-0000-4000-8000-000000000001';

const rejects = (input: unknown, field: string) =>
  assert.throws(
    () => validateConfig(input, '/base'),
    (e: unknown) => e instanceof ConfigError && e.field === field,
    `${field} with ${JSON.stringify(input)}`,
  );

/** Every (path, field) of the schema, for walking it in tests. */
function* walk(node: ObjectField, path: string): Generator<[string, Field]> {
  for (const [name, f] of Object.entries(node.fields)) {
    const p = path ? `${path}.${name}` : name;
    yield [p, f];
    if (f.kind === 'object') yield* walk(f, p);
    if (f.kind === 'map') yield* walk(f.value, `${p}.*`);
    if (f.kind === 'array') yield* walk(f.item, `${p}[]`);
  }
}

describe('configuration schema', () => {
  it('is what docs/configuration.md says (run `npm run docs:config` after changing the schema)', () => {
    const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    assert.equal(committed, renderConfigReference(), 'docs/configuration.md is stale: npm run docs:config');
  });

  it('documents every field (meaning, and a unit for every integer)', () => {
    for (const [path, f] of walk(CONFIG_SCHEMA, '')) {
      assert.ok(f.doc.length > 10, `${path} has a meaning`);
      if (f.kind === 'integer') assert.ok(f.unit, `${path} has a unit`);
      if (f.kind === 'integer' && f.default !== undefined)
        assert.ok(f.default >= f.min && f.default <= f.max, `${path} default in range`);
    }
    const reference = renderConfigReference();
    for (const [path] of walk(CONFIG_SCHEMA, '')) {
      const name = path
        .split(/[.[\]*]+/)
        .filter(Boolean)
        .pop() as string;
      assert.ok(reference.includes(`| \`${name}\` |`), `${path} is in the reference`);
    }
  });

  it('gives the defaults the rest of the code uses', () => {
    const c = validateConfig({}, '/base');
    assert.deepEqual(c.limits, DEFAULT_LIMITS);
    for (const [k, f] of Object.entries(LIMIT_FIELDS)) assert.equal(c.limits[k as keyof typeof LIMIT_FIELDS], f.default, k);
    assert.deepEqual(c.programs.defaults, DEFAULT_TENANT_LIMITS);
    assert.deepEqual(c.auth.hashes, DEFAULT_AUTH_POLICY.hashes);
    assert.deepEqual(c.auth.dhGroups, DEFAULT_AUTH_POLICY.dhGroups);
    assert.deepEqual(c.digests, { header: true, data: true });
  });

  it('refuses every integer limit below its minimum, above its maximum and when not an integer', () => {
    const table: [string, Record<string, { min: number; max: number }>, (v: unknown, k: string) => unknown][] = [
      ['limits', LIMIT_FIELDS, (v, k) => ({ limits: { [k]: v } })],
      ['programs.defaults', TENANT_LIMIT_FIELDS, (v, k) => ({ programs: { defaults: { [k]: v } } })],
      [`programs.tenants.${HOST_NQN}`, TENANT_LIMIT_FIELDS, (v, k) => ({ programs: { tenants: { [HOST_NQN]: { [k]: v } } } })],
    ];
    for (const [at, fields, make] of table) {
      for (const [k, f] of Object.entries(fields)) {
        rejects(make(f.min - 1, k), `${at}.${k}`);
        rejects(make(f.max + 1, k), `${at}.${k}`);
        rejects(make(f.min + 0.5, k), `${at}.${k}`);
        rejects(make(String(f.min), k), `${at}.${k}`);
      }
    }
  });

  it('takes the execution workers and their priority within their ranges', () => {
    const c = validateConfig({}, '/base');
    assert.equal(c.programs.executionWorkers, -1);
    assert.equal(c.programs.executionWorkerNice, DEFAULT_EXECUTION_WORKER_NICE);
    const set = validateConfig({ programs: { executionWorkers: 3, executionWorkerNice: 0 } }, '/base');
    assert.equal(set.programs.executionWorkers, 3);
    assert.equal(set.programs.executionWorkerNice, 0);
    assert.equal(validateConfig({ programs: { executionWorkerNice: 19 } }, '/base').programs.executionWorkerNice, 19);
    for (const bad of [-1, 20, 2.5, '5', true])
      rejects({ programs: { executionWorkerNice: bad } }, 'programs.executionWorkerNice');
    for (const bad of [-2, 65, 0.5, '1']) rejects({ programs: { executionWorkers: bad } }, 'programs.executionWorkers');
    assert.equal(
      (effectiveConfigJson(set).programs as { executionWorkerNice: number }).executionWorkerNice,
      0,
      'printed with the rest',
    );
  });

  it('refuses an unknown field at every level', () => {
    rejects({ nope: 1 }, 'nope');
    rejects({ listen: { nope: 1 } }, 'listen.nope');
    rejects({ limits: { nope: 1 } }, 'limits.nope');
    rejects({ programs: { defaults: { nope: 1 } } }, 'programs.defaults.nope');
    rejects({ auth: { hosts: { [HOST_NQN]: { key: HOST_KEY, nope: 1 } } } }, `auth.hosts.${HOST_NQN}.nope`);
    rejects(
      { subsystems: [{ nqn: 'nqn.2026-01.x:y', nope: 1, namespaces: [{ path: 'a', sizeBytes: 512 }] }] },
      'subsystems[0].nope',
    );
  });

  it('prints an effective configuration that validates to the same one, keys redacted', async () => {
    const input = {
      limits: { maxQueueDepth: 64 },
      programs: { tenants: { [HOST_NQN]: { maxSteps: 7 } } },
      auth: { hosts: { [HOST_NQN]: { key: HOST_KEY } } },
    };
    const c = validateConfig(input, '/base');
    const json = effectiveConfigJson(c);
    const text = JSON.stringify(json);
    assert.ok(!text.includes(HOST_KEY) && !text.includes(HOST_KEY.slice(10, 30)), 'no secret printed');
    assert.equal((json.auth as { hosts: Record<string, { key: string }> }).hosts[HOST_NQN].key, REDACTED);
    const again = validateConfig({ ...json, auth: { ...(json.auth as object), hosts: {} } }, '/elsewhere');
    assert.deepEqual({ ...again, auth: null }, { ...c, auth: null });
    assert.equal(again.programs.tenants.get(HOST_NQN)?.maxSteps, 7);

    let out = '';
    const code = await runServe(['--print-config', '--listen', '127.0.0.1:0', '--listen', '[::1]:4421', '--data-dir', '/tmp/x'], {
      stdout: { write: (s: string | Uint8Array) => (out += String(s)) },
      stderr: { write: () => true },
    });
    assert.equal(code, 0);
    const printed = JSON.parse(out);
    assert.deepEqual(printed.listen, [
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 4421 },
    ]);
    assert.equal(printed.dataDir, '/tmp/x');
    assert.equal(printed.limits.readCacheBytes, LIMIT_FIELDS.readCacheBytes.default);
    assert.equal(printed.subsystems[0].namespaces[0].path, '/tmp/x/default-ns1.img');
  });
});
