/** `nearbpf sqlite put/tables/get/lookup/scan` against a real target on an ephemeral port. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startTestTarget, type TestTarget } from '../target/test-helpers.js';
import { parseSqlValue, parseWhere } from './commands/sqlite.js';
import { runCliAgainst } from './test-helpers.js';

let target: TestTarget;
let dir: string;

const run = (argv: string[]) => runCliAgainst(target.address.port, argv);

describe('nearbpf sqlite', () => {
  before(async () => {
    target = await startTestTarget();
    dir = await mkdtemp(join(tmpdir(), 'nearbpf-cli-sqlite-'));
    process.env.NEARBPF_NVME_DIR = join(dir, 'etc-nvme');
    process.env.XDG_CONFIG_HOME = join(dir, 'config');
    const db = new Database(join(dir, 'shop.db'));
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, big INTEGER, data BLOB)');
    db.exec('CREATE INDEX items_name ON items(name)');
    const ins = db.prepare('INSERT INTO items VALUES (?, ?, ?, ?, ?)');
    for (let i = 1; i <= 300; i++) ins.run(i, `item${i % 50}`, i % 7, 2n ** 60n + BigInt(i), Buffer.from([i & 0xff, 1]));
    db.close();
  });

  after(async () => {
    await target?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('parses literals and comparisons', () => {
    assert.equal(parseSqlValue('42'), 42);
    assert.equal(parseSqlValue('-9223372036854775808'), -(2n ** 63n));
    assert.equal(parseSqlValue('1.5'), 1.5);
    assert.equal(parseSqlValue("'it''s'"), "it's");
    assert.deepEqual(parseSqlValue("x'00ff'"), Uint8Array.from([0, 255]));
    assert.equal(parseSqlValue('NULL'), null);
    assert.equal(parseSqlValue('plain'), 'plain');
    assert.deepEqual(parseWhere('qty <= 3'), { column: 'qty', op: '<=', value: 3 });
    assert.deepEqual(parseWhere("name<>'a b'"), { column: 'name', op: '!=', value: 'a b' });
    assert.throws(() => parseWhere('qty ~ 3'), /COLUMN OP VALUE/);
    assert.throws(() => parseSqlValue('99999999999999999999'), /64 bits/);
  });

  it('puts a database on a namespace and answers get, lookup and scan both ways', async () => {
    const put = await run(['sqlite', 'put', join(dir, 'shop.db'), '--nsid', '1', '--slba', '64']);
    assert.equal(put.code, 0, put.stderr);
    const loc = ['--nsid', '1', '--slba', '64'];
    const tables = await run(['sqlite', 'tables', ...loc]);
    assert.equal(tables.code, 0, tables.stderr);
    assert.match(tables.stdout, /items .*id, name, qty, big, data/);
    assert.match(tables.stdout, /items_name ON items/);
    for (const extra of [[], ['--fetched']]) {
      const get = await run(['sqlite', 'get', 'items', '7', '--json', '--stats', ...loc, ...extra]);
      assert.equal(get.code, 0, get.stderr);
      assert.deepEqual(JSON.parse(get.stdout), { id: 7, name: 'item7', qty: 0, big: (2n ** 60n + 7n).toString(), data: '0701' });
      assert.match(get.stderr, /round trips, \d+ bytes on the wire/);
      const lookup = await run(['sqlite', 'lookup', 'items_name', 'item3', '--json', ...loc, ...extra]);
      assert.equal(lookup.code, 0, lookup.stderr);
      assert.deepEqual(
        lookup.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).id),
        [3, 53, 103, 153, 203, 253],
      );
      const scan = await run([
        'sqlite',
        'scan',
        'items',
        '--where',
        'qty = 3',
        '--where',
        'id < 30',
        '--columns',
        'id,name',
        '--json',
        ...loc,
        ...extra,
      ]);
      assert.equal(scan.code, 0, scan.stderr);
      assert.deepEqual(
        scan.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
        [
          { id: 3, name: 'item3' },
          { id: 10, name: 'item10' },
          { id: 17, name: 'item17' },
          { id: 24, name: 'item24' },
        ],
      );
      const agg = await run([
        'sqlite',
        'scan',
        'items',
        '--where',
        'qty >= 5',
        '--count',
        '--sum',
        'qty',
        '--min',
        'name',
        '--max',
        'id',
        ...loc,
        ...extra,
      ]);
      assert.equal(agg.code, 0, agg.stderr);
      assert.match(agg.stdout, /count\s+sum\(qty\)\s+min\(name\)\s+max\(id\)/);
      assert.match(agg.stdout, /\n86\s+473\s+item0\s+300\n$/);
    }
  });

  it('reports bad usage and a location without a database', async () => {
    assert.equal((await run(['sqlite', 'get', 'items', '7', '--nsid', '1'])).code, 2);
    assert.equal((await run(['sqlite', 'frob', '--nsid', '1', '--slba', '64'])).code, 2);
    const none = await run(['sqlite', 'tables', '--nsid', '1', '--slba', '30000']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no SQLite database here/);
  });
});
