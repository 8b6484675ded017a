import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ProgramClient } from '../client/programs.js';
import { blockReader, blockWriter, type LoopbackSession, startLoopbackSession } from '../showcase/nvme.js';
import { loadSqliteFunctions, type SqliteDatabase, SqliteDatabase as SqliteDb, type SqliteHandles } from './database.js';
import { programError, SqliteCorruptError, SqliteFormatError, SqliteQueryError } from './errors.js';
import type { SqlValue } from './format.js';
import { canon, canonRow, generateDatabase, generateIndexDatabase, INDEX_TEST_INDEXES, rng } from './generate.js';
import { encodeIndexArgs, encodeInput, INPUT_HEADER_BYTES } from './input.js';
import type { Extent } from './pages.js';
import { COMPARE_OPS, decodeScanOutput, encodeScanArgs, type Term } from './scan.js';

const NSID = 1;
const NS_BYTES = 64 << 20;

describe('SQLite databases queried by storage functions, against SQLite itself', () => {
  let session: LoopbackSession;
  let programs: ProgramClient;
  let handles: SqliteHandles;
  let dir: string;
  let nextOffset = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nearbpf-sqlite-'));
    session = await startLoopbackSession({ namespaces: [{ nsid: NSID, sizeBytes: NS_BYTES }] });
    programs = new ProgramClient(session.host);
    const loaded = await loadSqliteFunctions(programs);
    assert.deepEqual(loaded.refused, [], JSON.stringify(loaded.refused));
    handles = loaded.handles;
  });

  after(async () => {
    await session?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Write a file to the namespace (a raw image, or scattered as a file system would) and open it. */
  async function place(file: string | Buffer, options: { scatterBytes?: number } = {}): Promise<SqliteDatabase> {
    const bytes = typeof file === 'string' ? readFileSync(file) : file;
    const { host, blockSize } = session;
    const w = blockWriter(host, NSID, blockSize);
    const start = nextOffset;
    const padded = Math.ceil(bytes.length / 65536) * 65536;
    nextOffset += padded * 2 + 65536;
    assert.ok(nextOffset <= NS_BYTES, 'namespace too small for the test databases');
    let extents: Extent[] | undefined;
    if (options.scatterBytes) {
      // Runs of scatterBytes in reverse order on the namespace, so every page crossing a run
      // boundary is read in two pieces.
      const runs = Math.ceil(bytes.length / options.scatterBytes);
      extents = [];
      for (let i = 0; i < runs; i++) {
        const fileOffset = i * options.scatterBytes;
        const length = Math.min(options.scatterBytes, bytes.length - fileOffset);
        const nsOffset = start + (runs - 1 - i) * options.scatterBytes;
        const piece = Buffer.alloc(Math.ceil(length / blockSize) * blockSize);
        bytes.copy(piece, 0, fileOffset, fileOffset + length);
        await w.write(nsOffset, piece);
        extents.push({ fileOffset, nsOffset, length });
      }
    } else {
      const image = Buffer.alloc(Math.ceil(bytes.length / blockSize) * blockSize);
      bytes.copy(image);
      await w.write(start, image);
    }
    await w.drain();
    return SqliteDb.open({
      read: blockReader(host, NSID, blockSize),
      location: { nsid: NSID, offsetBytes: start, extents },
      programs,
      handles,
    });
  }

  const configs = [
    { pageSize: 512, reservedBytes: 0, rows: 1500, seed: 1 },
    { pageSize: 1024, reservedBytes: 33, rows: 1500, seed: 2 },
    { pageSize: 4096, reservedBytes: 0, rows: 3000, seed: 3, scatterBytes: 55296 },
    { pageSize: 65536, reservedBytes: 8, rows: 2000, seed: 4 },
  ];

  for (const c of configs) {
    it(`rowid lookups, ${c.pageSize}-byte pages, ${c.reservedBytes} reserved${c.scatterBytes ? ', through an extent map' : ''}`, async () => {
      const file = join(dir, `get-${c.pageSize}-${c.seed}.db`);
      generateDatabase(file, { ...c, deleteFraction: 0.3 });
      const sqlite = new Database(file, { readonly: true });
      sqlite.defaultSafeIntegers(true);
      try {
        assert.equal(sqlite.pragma('integrity_check', { simple: true }), 'ok');
        const db = await place(file, { scatterBytes: c.scatterBytes });
        assert.equal(db.header.pageSize, c.pageSize);
        assert.equal(db.header.usableSize, c.pageSize - c.reservedBytes);
        const ids = (sqlite.prepare('SELECT id FROM t').pluck().all() as bigint[]).map(BigInt);
        const r = rng(c.seed);
        const probes = [...ids.filter(() => r() < 60 / ids.length), -5n, 2n ** 60n, 0n, -1n, 999_999_999n, 2n ** 62n];
        // The longest rows (those with overflow pages).
        const big = sqlite
          .prepare('SELECT id FROM t ORDER BY length(name) + length(CAST(c0 AS BLOB)) DESC LIMIT 5')
          .pluck()
          .all() as bigint[];
        probes.push(...big);
        const byId = sqlite.prepare('SELECT * FROM t WHERE id = ?').raw();
        for (const id of probes) {
          const want = byId.get(id) as unknown[] | undefined;
          const pushed = await db.get('t', id);
          const fetched = await db.get('t', id, { fetched: true });
          assert.equal(pushed && canonRow(pushed.values), want && canonRow(want), `rowid ${id} pushed down`);
          assert.equal(fetched && canonRow(fetched.values), want && canonRow(want), `rowid ${id} fetched`);
        }
        // Several rowids in one execution.
        const many = await db.getMany('t', probes.slice(0, 40));
        assert.deepEqual(
          many.map((x) => x && canonRow(x.values)),
          probes.slice(0, 40).map((id) => {
            const w = byId.get(id) as unknown[] | undefined;
            return w && canonRow(w);
          }),
        );
      } finally {
        sqlite.close();
      }
    });
  }

  const scanConfigs = [
    { pageSize: 1024, reservedBytes: 33, rows: 1200, seed: 11 },
    { pageSize: 4096, reservedBytes: 0, rows: 2500, seed: 12, scatterBytes: 55296 },
  ];
  for (const c of scanConfigs) {
    it(`scans with predicates, projection and aggregates, ${c.pageSize}-byte pages${c.scatterBytes ? ', extent map' : ''}`, async () => {
      const file = join(dir, `scan-${c.pageSize}-${c.seed}.db`);
      const gen = generateDatabase(file, { ...c, deleteFraction: 0.2 });
      const sqlite = new Database(file, { readonly: true });
      sqlite.defaultSafeIntegers(true);
      try {
        const db = await place(file, { scatterBytes: c.scatterBytes });
        const r = rng(c.seed);
        const names = gen.columns.map((x) => x.name);
        const sample = sqlite.prepare('SELECT * FROM t').raw().all() as unknown[][];
        const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
        const toValue = (v: unknown): SqlValue => (Buffer.isBuffer(v) ? new Uint8Array(v) : (v as SqlValue));
        for (let q = 0; q < 6; q++) {
          const nterms = 1 + Math.floor(r() * 4);
          const where: Term[] = [];
          for (let k = 0; k < nterms; k++) {
            const ci = Math.floor(r() * names.length);
            let v: unknown = null;
            for (let tries = 0; tries < 20 && v === null; tries++) v = pick(sample)[ci];
            if (v === null) continue;
            where.push({ column: names[ci], op: pick(COMPARE_OPS), value: toValue(v) });
          }
          const agg = names[1 + Math.floor(r() * (names.length - 1))];
          const req = { where, columns: ['id', 'name', 'c0'], sum: 'k', min: agg, max: agg };
          const sqlWhere = where.length ? `WHERE ${where.map((t) => `${t.column} ${t.op} ?`).join(' AND ')}` : '';
          const params = where.map((t) => (t.value instanceof Uint8Array ? Buffer.from(t.value) : t.value));
          const wantRows = (
            sqlite
              .prepare(`SELECT id, name, c0 FROM t ${sqlWhere} ORDER BY id`)
              .raw()
              .all(...params) as unknown[][]
          ).map(canonRow);
          const wantAgg = (
            sqlite
              .prepare(`SELECT count(*), sum(k), min(${agg}), max(${agg}) FROM t ${sqlWhere}`)
              .raw()
              .get(...params) as unknown[]
          ).map(canon);
          for (const fetched of [false, true]) {
            const got = await db.scan('t', req, { fetched });
            const label = `${fetched ? 'fetched' : 'pushed down'}: ${sqlWhere} ${JSON.stringify(params.map(canon))}`;
            assert.deepEqual(
              got.rows.map((x) => canonRow(x.values)),
              wantRows,
              label,
            );
            assert.deepEqual([got.count, got.sum, got.min, got.max].map(canon), wantAgg, label);
          }
          if (q === 0) {
            // A smaller share of steps per execution: more executions resuming from cursors, the same answer.
            const short = await SqliteDb.open({
              read: blockReader(session.host, NSID, session.blockSize),
              location: db.location,
              programs,
              handles,
              maxStepsPerExecution: 25,
            });
            const [a, b] = [await db.scan('t', req), await short.scan('t', req)];
            assert.ok(b.executions > a.executions * 4, `${b.executions} executions of 25 steps, ${a.executions} of 960`);
            assert.deepEqual(
              b.rows.map((x) => canonRow(x.values)),
              wantRows,
            );
            assert.deepEqual([b.count, b.sum, b.min, b.max].map(canon), wantAgg);
            // Aggregates only: no rows either way.
            for (const fetched of [false, true]) {
              const g = await db.scan('t', { where, sum: 'k', min: agg, max: agg }, { fetched });
              assert.deepEqual(g.rows, [], `aggregates only, ${fetched ? 'fetched' : 'pushed down'}`);
              assert.deepEqual([g.count, g.sum, g.min, g.max].map(canon), wantAgg);
            }
            for (const bad of [0, 1.5, -3, 2 ** 32])
              await assert.rejects(
                SqliteDb.open({
                  read: blockReader(session.host, NSID, session.blockSize),
                  location: db.location,
                  maxStepsPerExecution: bad,
                }),
                (e: unknown) => e instanceof SqliteQueryError && e.code === 'ERR_SQLITE_ARGUMENT',
              );
          }
        }
      } finally {
        sqlite.close();
      }
    });
  }

  it('index lookups (unique, non-unique, multi-column prefixes, mixed types) and ranges with a limit', async () => {
    const file = join(dir, 'index.db');
    generateDatabase(file, { pageSize: 1024, reservedBytes: 0, rows: 2500, seed: 21, deleteFraction: 0.2 });
    const sqlite = new Database(file, { readonly: true });
    sqlite.defaultSafeIntegers(true);
    try {
      const db = await place(file);
      const r = rng(21);
      const sample = sqlite.prepare('SELECT k, name, c0, uid FROM t').raw().all() as unknown[][];
      const toValue = (v: unknown): SqlValue => (Buffer.isBuffer(v) ? new Uint8Array(v) : (v as SqlValue));
      const cases: { index: string; key: SqlValue[]; sql: string; order: string }[] = [];
      for (let q = 0; q < 12; q++) {
        const [k, name, c0, uid] = sample[Math.floor(r() * sample.length)].map(toValue);
        cases.push({ index: 't_k', key: [k], sql: 'k = ?', order: 'k, id' });
        cases.push({ index: 't_name', key: [name], sql: 'name = ?', order: 'name, id' });
        cases.push({ index: 't_k_name', key: [k, name], sql: 'k = ? AND name = ?', order: 'k, name, id' });
        cases.push({ index: 't_k_name', key: [k], sql: 'k = ?', order: 'k, name, id' });
        cases.push({ index: 't_c0', key: [c0], sql: 'c0 = ?', order: 'c0, id' });
        cases.push({ index: 't_uid', key: [uid], sql: 'uid = ?', order: 'uid' });
      }
      cases.push({ index: 't_name', key: ['no such name'], sql: 'name = ?', order: 'name, id' });
      for (const c of cases) {
        const params = c.key.map((v) => (v instanceof Uint8Array ? Buffer.from(v) : v));
        const want = (
          sqlite
            .prepare(`SELECT * FROM t WHERE ${c.sql} ORDER BY ${c.order}`)
            .raw()
            .all(...params) as unknown[][]
        ).map(canonRow);
        for (const fetched of [false, true]) {
          const got = await db.lookup(c.index, c.key, { fetched });
          assert.deepEqual(
            got.map((x) => canonRow(x.values)),
            want,
            `${c.index} ${JSON.stringify(params.map(canon))} ${fetched ? 'fetched' : 'pushed down'}`,
          );
        }
      }
      for (let q = 0; q < 8; q++) {
        const a = Math.floor(r() * 600);
        const b = a + Math.floor(r() * 50);
        const want = (
          sqlite.prepare('SELECT * FROM t WHERE k >= ? AND k < ? ORDER BY k, id LIMIT 20').raw().all(a, b) as unknown[][]
        ).map(canonRow);
        for (const fetched of [false, true]) {
          const got = await db.range('t_k', [a], [b], { limit: 20, fetched });
          assert.deepEqual(
            got.map((x) => canonRow(x.values)),
            want,
            `range [${a}, ${b})`,
          );
        }
      }
    } finally {
      sqlite.close();
    }
  });

  const indexConfigs = [
    { pageSize: 1024, reservedBytes: 33, rows: 3000, seed: 31 },
    { pageSize: 4096, reservedBytes: 0, rows: 4000, seed: 32, scatterBytes: 126976 },
  ];
  for (const c of indexConfigs) {
    it(`index walks pushed down (sqlite_index): keys of every type, duplicates, ranges, limits, spilled keys; ${c.pageSize}-byte pages${c.scatterBytes ? ', extent map' : ''}`, async () => {
      const file = join(dir, `index-${c.pageSize}-${c.seed}.db`);
      const domains = generateIndexDatabase(file, c);
      const sqlite = new Database(file, { readonly: true });
      sqlite.defaultSafeIntegers(true);
      try {
        assert.equal(sqlite.pragma('integrity_check', { simple: true }), 'ok');
        const db = await place(file, { scatterBytes: c.scatterBytes });
        const r = rng(c.seed);
        const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
        const param = (v: SqlValue) => (v instanceof Uint8Array ? Buffer.from(v) : v);
        type Case = {
          index: string;
          lo?: SqlValue[];
          hi?: SqlValue[];
          hiInclusive?: boolean;
          limit?: number;
          sql: string;
          args: SqlValue[];
          order: string;
        };
        const cases: Case[] = [];
        for (const ix of INDEX_TEST_INDEXES) {
          const cols = ix.columns as readonly string[];
          const order = `${cols.join(', ')}, id`;
          const domain = (col: string): SqlValue[] =>
            col === 'u' ? [-2993, 4, 11, 7 * 2999 - 3000, 5, 0] : domains[col as keyof typeof domains];
          for (let q = 0; q < 5; q++) {
            // Equality on the whole key and (for the pair) on its first column.
            // One value per column, so that an index naming a column twice gets the same value twice.
            const chosen = new Map<string, SqlValue>();
            for (const col of cols) if (!chosen.has(col)) chosen.set(col, pick(domain(col)));
            const key = cols.map((col) => chosen.get(col) as SqlValue);
            const where = cols.map((col) => `${col} = ?`).join(' AND ');
            cases.push({ index: ix.name, lo: key, hi: key, hiInclusive: true, sql: where, args: key, order });
            cases.push({
              index: ix.name,
              lo: key.slice(0, 1),
              hi: key.slice(0, 1),
              hiInclusive: true,
              limit: 1 + Math.floor(r() * 100),
              sql: `${cols[0]} = ?`,
              args: key.slice(0, 1),
              order,
            });
            // Ranges on the first column: [a, b), BETWEEN, >= only, < only, with and without a limit.
            const [a, b] = [pick(domain(cols[0])), pick(domain(cols[0]))];
            const first = cols[0];
            const limit = r() < 0.5 ? 1 + Math.floor(r() * 150) : undefined;
            cases.push({ index: ix.name, lo: [a], hi: [b], limit, sql: `${first} >= ? AND ${first} < ?`, args: [a, b], order });
            cases.push({
              index: ix.name,
              lo: [a],
              hi: [b],
              hiInclusive: true,
              limit,
              sql: `${first} BETWEEN ? AND ?`,
              args: [a, b],
              order,
            });
            cases.push({ index: ix.name, lo: [a], limit: limit ?? 70, sql: `${first} >= ?`, args: [a], order });
            cases.push({ index: ix.name, hi: [b], limit: limit ?? 70, sql: `${first} < ?`, args: [b], order });
          }
        }
        // Absent keys of each type, and a key of another type than the column's values.
        cases.push({
          index: 'x_i',
          lo: [123456789],
          hi: [123456789],
          hiInclusive: true,
          sql: 'i = ?',
          args: [123456789],
          order: 'i, id',
        });
        cases.push({
          index: 'x_s',
          lo: ['no such text'],
          hi: ['no such text'],
          hiInclusive: true,
          sql: 's = ?',
          args: ['no such text'],
          order: 's, id',
        });
        cases.push({
          index: 'x_b',
          lo: [Uint8Array.of(9, 9, 9)],
          hi: [Uint8Array.of(9, 9, 9)],
          hiInclusive: true,
          sql: 'b = ?',
          args: [Uint8Array.of(9, 9, 9)],
          order: 'b, id',
        });
        cases.push({ index: 'x_m', lo: [3], hi: [3.5], sql: 'm >= ? AND m < ?', args: [3, 3.5], order: 'm, id' });
        cases.push({ index: 'x_m', lo: [2n ** 62n], hi: ['a'], sql: 'm >= ? AND m < ?', args: [2n ** 62n, 'a'], order: 'm, id' });
        const before = { ...db.counters, executions: { ...db.counters.executions } };
        let clientWalksOutsideBig = 0;
        for (const k of cases) {
          const sql = `SELECT * FROM x WHERE ${k.sql} ORDER BY ${k.order}${k.limit ? ` LIMIT ${k.limit}` : ''}`;
          const want = (
            sqlite
              .prepare(sql)
              .raw()
              .all(...k.args.map(param)) as unknown[][]
          ).map(canonRow);
          const label = `${k.index} ${sql} ${JSON.stringify(k.args.map(canon))}`;
          const walks = db.counters.clientIndexWalks;
          const pushed = await db.range(k.index, k.lo, k.hi, { hiInclusive: k.hiInclusive, limit: k.limit });
          if (k.index !== 'x_big') clientWalksOutsideBig += db.counters.clientIndexWalks - walks;
          assert.deepEqual(
            pushed.map((x) => canonRow(x.values)),
            want,
            `pushed down: ${label}`,
          );
          const fetched = await db.range(k.index, k.lo, k.hi, { hiInclusive: k.hiInclusive, limit: k.limit, fetched: true });
          assert.deepEqual(
            fetched.map((x) => canonRow(x.values)),
            want,
            `fetched: ${label}`,
          );
        }
        // Every index but x_big is walked on the target; x_big's spilled keys send some walks to the client.
        assert.equal(clientWalksOutsideBig, 0);
        assert.ok(db.counters.executions.sqlite_index - before.executions.sqlite_index >= cases.length - 40);
        assert.ok(db.counters.clientIndexWalks > before.clientIndexWalks, 'a spilled key must hand its walk to the client');
      } finally {
        sqlite.close();
      }
    });
  }

  describe('bad input ends with a typed error naming the page, pushed down and fetched', () => {
    let image: Buffer;
    let pageSize: number;
    let root: number;
    let bigRowid: bigint;
    let indexRoot: number;
    before(() => {
      const file = join(dir, 'corrupt.db');
      const db = new Database(file);
      db.pragma('page_size = 1024');
      db.pragma('journal_mode = DELETE');
      db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v)');
      const ins = db.prepare('INSERT INTO t(id, v) VALUES (?, ?)');
      // Row 1 first: 964 bytes of its 3000-byte blob stay on the leaf, the rest fill overflow pages 3 and 4.
      ins.run(1, Buffer.alloc(3000, 7));
      db.transaction(() => {
        for (let i = 2; i <= 400; i++) ins.run(i, `value ${i}`);
      })();
      // Created last, so that the table's pages keep their numbers (root 2, overflow pages 3 and 4).
      db.exec('CREATE INDEX t_v ON t(v)');
      indexRoot = (db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 't_v'").pluck().get() as number) ?? 0;
      db.close();
      image = readFileSync(file);
      pageSize = 1024;
      root = 2;
      bigRowid = 400n;
    });
    const pageAt = (_: Buffer, page: number) => (page - 1) * pageSize;
    async function expectCorrupt(
      patched: Buffer,
      code: string,
      page: number,
      query: (db: SqliteDatabase, fetched: boolean) => Promise<unknown>,
    ) {
      const db = await place(patched);
      for (const fetched of [false, true]) {
        await assert.rejects(query(db, fetched), (e: unknown) => {
          assert.ok(e instanceof SqliteCorruptError, `${fetched ? 'fetched' : 'pushed down'}: ${String(e)}`);
          assert.equal(e.code, code, `${fetched ? 'fetched' : 'pushed down'}: ${e.message}`);
          assert.equal(e.page, page, `${fetched ? 'fetched' : 'pushed down'}: ${e.message}`);
          return true;
        });
      }
    }
    const get = (id: bigint) => (db: SqliteDatabase, fetched: boolean) => db.get('t', id, { fetched });
    const scan = (db: SqliteDatabase, fetched: boolean) =>
      db.scan('t', { where: [{ column: 'id', op: '>', value: 0 }] }, { fetched });

    it('a location without a SQLite file, a WAL-mode file and an encrypted one are refused at open', async () => {
      await assert.rejects(
        place(Buffer.alloc(4096)),
        (e: unknown) => e instanceof SqliteFormatError && e.code === 'ERR_SQLITE_NOT_SQLITE',
      );
      const wal = Buffer.from(image);
      wal[18] = 2;
      wal[19] = 2;
      await assert.rejects(place(wal), (e: unknown) => e instanceof SqliteFormatError && e.code === 'ERR_SQLITE_WAL');
      const encrypted = Buffer.from(image);
      for (let i = 0; i < 1024; i++) encrypted[i] = (i * 131 + 7) & 0xff;
      await assert.rejects(place(encrypted), (e: unknown) => e instanceof SqliteFormatError && /encrypted/.test(e.message));
    });

    it('an unknown page type', async () => {
      const b = Buffer.from(image);
      b[pageAt(b, root)] = 7;
      await expectCorrupt(b, 'ERR_SQLITE_PAGE_TYPE', root, get(5n));
      await expectCorrupt(b, 'ERR_SQLITE_PAGE_TYPE', root, scan);
    });

    it('a cell pointer outside the page', async () => {
      const b = Buffer.from(image);
      // The middle cell: the first one a binary search probes.
      const cells = b.readUInt16BE(pageAt(b, root) + 3);
      b.writeUInt16BE(0xfff0, pageAt(b, root) + 12 + 2 * (cells >> 1));
      await expectCorrupt(b, 'ERR_SQLITE_CELL', root, get(bigRowid));
      await expectCorrupt(b, 'ERR_SQLITE_CELL', root, scan);
    });

    it('a child pointer past the end of the file', async () => {
      const b = Buffer.from(image);
      assert.equal(b[pageAt(b, root)], 5, 'the root must be an interior page');
      b.writeUInt32BE(b.length / pageSize + 5, pageAt(b, root) + 8);
      await expectCorrupt(b, 'ERR_SQLITE_CHILD', root, get(bigRowid));
    });

    it('a cycle among child pages', async () => {
      const b = Buffer.from(image);
      b.writeUInt32BE(root, pageAt(b, root) + 8);
      await expectCorrupt(b, 'ERR_SQLITE_CYCLE', root, get(bigRowid));
      await expectCorrupt(b, 'ERR_SQLITE_CYCLE', root, scan);
    });

    it('a wrong page size in the header', async () => {
      const invalid = Buffer.from(image);
      invalid.writeUInt16BE(1000, 16);
      await assert.rejects(place(invalid), (e: unknown) => e instanceof SqliteFormatError && e.code === 'ERR_SQLITE_NOT_SQLITE');
      // A valid size that is not the file's: page 2 (the table's root) now starts at byte 2048,
      // in the overflow page of row 1.
      const wrong = Buffer.from(image);
      wrong.writeUInt16BE(2048, 16);
      await expectCorrupt(wrong, 'ERR_SQLITE_PAGE_TYPE', root, get(5n));
      await expectCorrupt(wrong, 'ERR_SQLITE_PAGE_TYPE', root, scan);
    });

    it('a truncated file (the pages past its end read as zeros)', async () => {
      // Pages 1-4 (the schema, the table's root, the overflow pages of row 1): every leaf is past the end.
      const half = image.subarray(0, 4 * pageSize);
      const db = await place(half);
      for (const [what, query] of [
        ['get', (fetched: boolean) => db.get('t', bigRowid, { fetched })],
        ['scan', (fetched: boolean) => scan(db, fetched)],
        ['lookup', (fetched: boolean) => db.lookup('t_v', ['value 399'], { fetched })],
      ] as const) {
        for (const fetched of [false, true])
          await assert.rejects(query(fetched), (e: unknown) => {
            assert.ok(e instanceof SqliteCorruptError, `${what} ${fetched}: ${String(e)}`);
            assert.equal(e.code, 'ERR_SQLITE_PAGE_TYPE', `${what} ${fetched}: ${e.message}`);
            assert.ok(e.page > half.length / pageSize, `${what} ${fetched}: page ${e.page} lies past the end`);
            return true;
          });
      }
    });

    it('a corrupt index: unknown page type, a cycle among its pages', async () => {
      const lookup = (db: SqliteDatabase, fetched: boolean) => db.lookup('t_v', ['value 399'], { fetched });
      const typed = Buffer.from(image);
      typed[pageAt(typed, indexRoot)] = 7;
      await expectCorrupt(typed, 'ERR_SQLITE_PAGE_TYPE', indexRoot, lookup);
      const cyclic = Buffer.from(image);
      assert.equal(cyclic[pageAt(cyclic, indexRoot)], 2, 'the index root must be an interior page');
      // The right-most child points back to the root: the largest key ('value 99') leads there.
      cyclic.writeUInt32BE(indexRoot, pageAt(cyclic, indexRoot) + 8);
      await expectCorrupt(cyclic, 'ERR_SQLITE_CYCLE', indexRoot, (db, fetched) => db.lookup('t_v', ['value 99'], { fetched }));
    });

    it('keys and constants of a wrong type or shape are refused before any I/O', async () => {
      const db = await place(image);
      const bad: [string, () => Promise<unknown>][] = [
        ['an object', () => db.lookup('t_v', [{} as unknown as string])],
        ['NaN', () => db.lookup('t_v', [Number.NaN])],
        ['a bigint beyond 64 bits', () => db.lookup('t_v', [2n ** 64n])],
        ['a boolean', () => db.range('t_v', [true as unknown as number], undefined)],
        ['more values than columns', () => db.lookup('t_v', ['a', 'b'])],
        ['an empty key', () => db.range('t_v', [], ['x'])],
        ['a scan constant', () => db.scan('t', { where: [{ column: 'v', op: '=', value: undefined as unknown as null }] })],
        ['a negative limit', () => db.range('t_v', ['a'], undefined, { limit: -1 })],
      ];
      for (const [what, query] of bad)
        await assert.rejects(query(), (e: unknown) => e instanceof SqliteQueryError && e.code === 'ERR_SQLITE_ARGUMENT', what);
    });

    it('a row larger than the buffer the host offered is fetched again with room for it', async () => {
      const db = await place(image);
      const first = await db.get('t', 1n);
      assert.equal(db.counters.outputRetries, 1, 'the 3000-byte row exceeds the first buffer');
      assert.equal(canonRow(first?.values ?? []), canonRow([1, new Uint8Array(3000).fill(7)]));
      // The buffer now fits the largest row seen: no second retry.
      assert.equal(canonRow((await db.get('t', 1n))?.values ?? []), canonRow(first?.values ?? []));
      const lookedUp = await db.lookup('t_v', [new Uint8Array(3000).fill(7)]);
      assert.deepEqual(
        lookedUp.map((r) => r.rowid),
        [1n],
      );
      assert.equal(db.counters.outputRetries, 1);
    });

    it('a malformed scan argument block or cursor ends with ERR_SQLITE_INPUT; a cursor naming a wrong page, with that page', async () => {
      const db = await place(image);
      const plan = { terms: [{ col: 0, op: '>' as const, value: 0 }], proj: [], sum: -1, min: -1, max: -1, rowidColumn: 0 };
      const run = async (args: Buffer) => {
        const input = encodeInput(db.location, db.header, { tableRoot: root, nargs: 0, args, maxSteps: 3 });
        return programs.execute(handles.sqlite_scan as number, { nsid: NSID, input, maxOutputBytes: 65536 });
      };
      const failure = async (args: Buffer) => programError((await run(args)).returnValue);
      // Three steps do not finish the table: the answer carries a cursor (head, then one level).
      const start = encodeScanArgs(plan, INPUT_HEADER_BYTES, undefined);
      const part = decodeScanOutput((await run(start)).output, 0);
      const cursor = part.cursor;
      assert.ok(cursor && cursor.length === 48, `a cursor of one level: ${cursor?.length}`);
      assert.equal(await failure(encodeScanArgs(plan, INPUT_HEADER_BYTES, cursor)), undefined);
      const at = start.length; // where encodeScanArgs puts the cursor
      const cases: [string, (b: Buffer) => void, string, number][] = [
        ['9 terms', (b) => b.writeBigUInt64LE(9n, 0), 'ERR_SQLITE_INPUT', 0],
        ['a cursor offset not 8-aligned', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(56) + 4n, 56), 'ERR_SQLITE_INPUT', 0],
        ['a cursor offset past the input', (b) => b.writeBigUInt64LE(4000n, 56), 'ERR_SQLITE_INPUT', 0],
        ['a cursor 21 levels deep', (b) => b.writeBigUInt64LE(21n, at + 24), 'ERR_SQLITE_INPUT', 0],
        ['a cursor with more levels than sent', (b) => b.writeBigUInt64LE(2n, at + 24), 'ERR_SQLITE_INPUT', 0],
        [
          'a cursor inside an index page',
          (b) => {
            b.writeBigUInt64LE(1n, at);
            b.writeBigUInt64LE(BigInt(indexRoot), at + 8);
          },
          'ERR_SQLITE_PAGE_TYPE',
          indexRoot,
        ],
        [
          'a cursor whose level is not an interior page (an overflow page)',
          (b) => b.writeUInt32LE(3, at + 40),
          'ERR_SQLITE_PAGE_TYPE',
          3,
        ],
      ];
      for (const [what, patch, code, page] of cases) {
        const args = encodeScanArgs(plan, INPUT_HEADER_BYTES, cursor);
        patch(args);
        const e = await failure(args);
        assert.ok(e instanceof SqliteCorruptError, `${what}: ${String(e)}`);
        assert.equal(e.code, code, `${what}: ${e.message}`);
        assert.equal(e.page, page, `${what}: ${e.message}`);
      }
      // The target still answers. Row 1 spills to overflow pages (the host evaluates it): still no
      // rows when no columns are asked for, pushed down or fetched.
      for (const fetched of [false, true]) {
        const all = await db.scan('t', { where: [{ column: 'id', op: '>', value: 0 }] }, { fetched });
        assert.deepEqual([all.count, all.rows.length], [400, 0]);
      }
    });

    it('a malformed index argument block ends with ERR_SQLITE_INPUT, and the target answers afterwards', async () => {
      const db = await place(image);
      const run = async (args: Buffer, limit = 8) => {
        const input = encodeInput(db.location, db.header, { tableRoot: root, indexRoot, nargs: 0, args, limit });
        const r = await programs.execute(handles.sqlite_index as number, { nsid: NSID, input, maxOutputBytes: 65536 });
        return programError(r.returnValue);
      };
      const good = () => encodeIndexArgs({ lo: [0], hi: [1], hiInclusive: true }, 1, INPUT_HEADER_BYTES);
      assert.equal(await run(good()), undefined);
      const cases: [string, (b: Buffer) => void, number?][] = [
        ['17 key columns in the lower bound', (b) => b.writeBigUInt64LE(17n, 0)],
        ['17 key columns in the upper bound', (b) => b.writeBigUInt64LE(17n, 8)],
        ['more keys than the input holds', (b) => b.writeBigUInt64LE(16n, 0)],
        ['a limit of 0 rows', () => {}, 0],
        ['a limit of 65 rows', () => {}, 65],
      ];
      for (const [what, patch, limit] of cases) {
        const args = good();
        patch(args);
        const e = await run(args, limit);
        assert.ok(e instanceof SqliteCorruptError, `${what}: ${String(e)}`);
        assert.equal(e.code, 'ERR_SQLITE_INPUT', `${what}: ${e.message}`);
      }
      assert.equal(await run(good()), undefined);
    });

    it('a cycle among overflow pages', async () => {
      const b = Buffer.from(image);
      assert.equal(b.readUInt32BE(pageAt(b, 3)), 4, 'overflow chain 3 -> 4');
      assert.equal(b.readUInt32BE(pageAt(b, 4)), 0, 'overflow chain ends at 4');
      b.writeUInt32BE(3, pageAt(b, 4));
      // The chain's last page (4) points back into the chain instead of ending it.
      await expectCorrupt(b, 'ERR_SQLITE_OVERFLOW', 4, get(1n));
    });
  });
});
