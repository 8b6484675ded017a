/**
 * Test and benchmark harness (not the product): SQLite databases built with the real SQLite
 * (better-sqlite3, a devDependency) from random schemas and data — NULLs, negative and 64-bit
 * integers, REAL, text and blobs that overflow, unique, non-unique and multi-column indexes,
 * deletes that leave freeblocks — and canonical forms to compare answers with SQLite's.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { SqlValue } from './format.js';

export type ColumnKind = 'INTEGER' | 'REAL' | 'TEXT' | 'BLOB' | 'ANY';

export interface GeneratedTable {
  readonly name: string;
  readonly columns: readonly { name: string; kind: ColumnKind }[];
  readonly indexes: readonly { name: string; columns: readonly string[]; unique: boolean }[];
}

export interface GenerateOptions {
  readonly rows: number;
  readonly pageSize: number;
  readonly reservedBytes?: number;
  readonly seed: number;
  /** Fraction of rows deleted after the inserts (then a tenth of them re-inserted). */
  readonly deleteFraction?: number;
  /** Longest text/blob (overflow needs more than the page's usable size - 35). */
  readonly maxValueBytes?: number;
}

/** xorshift32: deterministic runs. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
}

const KINDS: ColumnKind[] = ['INTEGER', 'REAL', 'TEXT', 'BLOB', 'ANY'];

export function randomValue(kind: ColumnKind, r: () => number, maxBytes: number): SqlValue {
  if (r() < 0.1) return null;
  const k = kind === 'ANY' ? KINDS[Math.floor(r() * 4)] : kind;
  switch (k) {
    case 'INTEGER': {
      const p = r();
      if (p < 0.1) return BigInt.asIntN(64, BigInt(Math.floor(r() * 2 ** 32)) * BigInt(Math.floor(r() * 2 ** 32)));
      if (p < 0.2) return -Math.floor(r() * 1e6);
      return Math.floor(r() * 1000);
    }
    case 'REAL':
      return r() < 0.2 ? Math.floor(r() * 100) + 0.5 : (r() - 0.5) * 1e6;
    case 'TEXT': {
      const len = r() < 0.05 ? Math.floor(r() * maxBytes) : Math.floor(r() * 12);
      let s = '';
      for (let i = 0; i < len; i++) s += String.fromCharCode(97 + Math.floor(r() * 26));
      return r() < 0.05 ? `${s}é` : s;
    }
    default: {
      const len = r() < 0.05 ? Math.floor(r() * maxBytes) : Math.floor(r() * 10);
      const b = new Uint8Array(len);
      for (let i = 0; i < len; i++) b[i] = Math.floor(r() * 256);
      return b;
    }
  }
}

const toSqlite = (v: SqlValue) => (v instanceof Uint8Array ? Buffer.from(v) : v);

/** An empty database file with the page size and reserved bytes per page asked for. */
function createEmptyDatabase(path: string, pageSize: number, reservedBytes: number): void {
  const db = new Database(path);
  try {
    db.pragma(`page_size = ${pageSize}`);
    db.pragma('journal_mode = DELETE');
    db.pragma('user_version = 1');
    if (reservedBytes) {
      // Reserved bytes cannot be set through SQL: set them in the header of the still-empty file.
      db.close();
      const bytes = readFileSync(path);
      bytes[20] = reservedBytes;
      // The empty schema page's cell content area starts at the end of the usable space.
      bytes.writeUInt16BE((pageSize - reservedBytes) & 0xffff, 105);
      writeFileSync(path, bytes);
    }
  } finally {
    if (db.open) db.close();
  }
}

/** Create a database file at `path` with one random table `t` (plus indexes). */
export function generateDatabase(path: string, o: GenerateOptions): GeneratedTable {
  const r = rng(o.seed);
  const maxBytes = o.maxValueBytes ?? Math.min(3 * o.pageSize, 20_000);
  const ncols = 3 + Math.floor(r() * 4);
  const columns = [
    { name: 'k', kind: 'INTEGER' as ColumnKind },
    { name: 'name', kind: 'TEXT' as ColumnKind },
    ...Array.from({ length: ncols }, (_, i) => ({ name: `c${i}`, kind: KINDS[Math.floor(r() * KINDS.length)] })),
  ];
  const indexes = [
    { name: 't_k', columns: ['k'], unique: false },
    { name: 't_name', columns: ['name'], unique: false },
    { name: 't_k_name', columns: ['k', 'name'], unique: false },
    { name: 't_c0', columns: ['c0'], unique: false },
    { name: 't_uid', columns: ['uid'], unique: true },
  ];
  createEmptyDatabase(path, o.pageSize, o.reservedBytes ?? 0);
  const db2 = new Database(path);
  try {
    const decl = columns.map((c) => `${c.name} ${c.kind === 'ANY' ? '' : c.kind}`).join(', ');
    db2.exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, uid INTEGER UNIQUE, ${decl})`);
    for (const ix of indexes.filter((x) => x.name !== 't_uid'))
      db2.exec(`CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX ${ix.name} ON t(${ix.columns.join(', ')})`);
    db2.exec(`CREATE UNIQUE INDEX t_uid ON t(uid)`);
    const names = ['id', 'uid', ...columns.map((c) => c.name)];
    const ins = db2.prepare(`INSERT INTO t(${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`);
    let id = 0;
    const row = () => {
      id += 1 + (r() < 0.05 ? Math.floor(r() * 1000) : 0);
      const vals: SqlValue[] = [id, id * 7 + 3];
      for (const c of columns) {
        if (c.name === 'k') vals.push(r() < 0.05 ? null : Math.floor(r() * Math.max(10, o.rows / 4)));
        else if (c.name === 'name') vals.push(r() < 0.05 ? null : `n${Math.floor(r() * Math.max(10, o.rows / 3))}`);
        else vals.push(randomValue(c.kind, r, maxBytes));
      }
      return vals.map(toSqlite);
    };
    db2.transaction(() => {
      for (let i = 0; i < o.rows; i++) ins.run(...row());
    })();
    const del = o.deleteFraction ?? 0;
    if (del > 0) {
      db2.prepare('DELETE FROM t WHERE (id * 2654435761) % 1000 < ?').run(Math.floor(del * 1000));
      db2.transaction(() => {
        for (let i = 0; i < o.rows * del * 0.1; i++) ins.run(...row());
      })();
    }
    // A few rowids far out, negative and beyond 2^53.
    ins.run(-5, -32, 1, 'neg', ...columns.slice(2).map(() => null));
    ins.run(2n ** 60n, -31, 2, 'big', ...columns.slice(2).map(() => null));
  } finally {
    db2.close();
  }
  return { name: 't', columns: [{ name: 'id', kind: 'INTEGER' }, { name: 'uid', kind: 'INTEGER' }, ...columns], indexes };
}

/** A canonical string of a value (integers and reals with the same value compare equal, as in our decoding). */
export function canon(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v >= -(2n ** 53n) && v <= 2n ** 53n ? `n:${Number(v)}` : `b:${v}`;
  if (typeof v === 'number') return Object.is(v, -0) ? 'n:0' : `n:${v}`;
  if (typeof v === 'string') return `s:${v}`;
  if (v instanceof Uint8Array) return `x:${Buffer.from(v).toString('hex')}`;
  return `?:${String(v)}`;
}

export const canonRow = (values: readonly unknown[]) => values.map(canon).join('|');

/** Build the benchmark database: t(id, name TEXT indexed, k INTEGER, v REAL, note TEXT). */
export function buildBenchDatabase(path: string, rows: number): void {
  const db = new Database(path);
  try {
    db.pragma('page_size = 4096');
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, k INTEGER, v REAL, note TEXT)');
    const ins = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?)');
    const r = rng(7);
    db.transaction(() => {
      for (let i = 1; i <= rows; i++)
        ins.run(i, `user${(i * 2654435761) % 4294967296}`, Math.floor(r() * 10000), r() * 1000, `note ${i % 977}`);
    })();
    db.exec('CREATE INDEX t_name ON t(name)');
  } finally {
    db.close();
  }
}

export const benchName = (i: number) => `user${(i * 2654435761) % 4294967296}`;

/** Columns of the index test table x and their indexes (one per type, a pair, one with spilling keys). */
export const INDEX_TEST_INDEXES = [
  { name: 'x_i', columns: ['i'] },
  { name: 'x_r', columns: ['r'] },
  { name: 'x_s', columns: ['s'] },
  { name: 'x_b', columns: ['b'] },
  { name: 'x_m', columns: ['m'] },
  { name: 'x_is', columns: ['i', 's'] },
  { name: 'x_u', columns: ['u'] },
  { name: 'x_big', columns: ['big'] },
  // Wider than the 7 columns sqlite_index once took: 10 columns (some twice, as SQLite allows), and
  // a resume bound of 11 (the columns and the rowid).
  { name: 'x_wide', columns: ['s', 'i', 'b', 'r', 'm', 'u', 'i', 's', 'r', 'b'] },
] as const;

/**
 * A table x(id, i INTEGER, r REAL, s TEXT, b BLOB, m (any type), u UNIQUE, big TEXT) whose values
 * come from small domains, so every key has duplicates (some more than 64 rows): 64-bit and
 * negative integers, integral and fractional reals, texts and blobs sharing 8-byte prefixes and
 * differing only in length, and `big` texts long enough to spill out of index pages, half of them
 * sharing a 600-byte prefix. Returns the domains, to draw keys from.
 */
export function generateIndexDatabase(
  path: string,
  o: { rows: number; pageSize: number; reservedBytes?: number; seed: number },
): Record<'i' | 'r' | 's' | 'b' | 'm' | 'big', SqlValue[]> {
  const r = rng(o.seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const ints: SqlValue[] = [0, 1, -1, 7, 255, 256, 65535, -65536, 2 ** 31, 2 ** 40 + 3, 2n ** 62n, -(2n ** 63n), 2n ** 63n - 1n];
  for (let k = 0; k < 20; k++) ints.push(Math.floor(r() * 2000) - 1000);
  const reals: SqlValue[] = [0.5, -0.5, 3, -7, 1e-300, 1e300, 2 ** 53 + 2, 123.25];
  for (let k = 0; k < 15; k++) reals.push((r() - 0.5) * 1e4);
  const texts: SqlValue[] = ['', 'a', 'ab', 'abcdefgh', 'abcdefghi', 'abcdefgh\u0000', 'é', 'zz'];
  for (let k = 0; k < 25; k++) texts.push(`shared-prefix-${Math.floor(r() * 1000)}${k % 3 === 0 ? '-tail-of-words' : ''}`);
  const blobs: SqlValue[] = [
    new Uint8Array(0),
    Uint8Array.of(0),
    Uint8Array.of(0, 0),
    Uint8Array.of(255),
    new Uint8Array(9).fill(1),
  ];
  for (let k = 0; k < 10; k++) blobs.push(Uint8Array.from({ length: 1 + Math.floor(r() * 20) }, () => Math.floor(r() * 256)));
  const mixed = [...ints.slice(0, 8), ...reals.slice(0, 5), ...texts.slice(0, 6), ...blobs.slice(0, 4)];
  const shared = 'p'.repeat(600);
  const bigs: SqlValue[] = [];
  for (let k = 0; k < 12; k++) {
    const tail = `${k}-${'q'.repeat(Math.floor(r() * 2000))}`;
    bigs.push(k % 2 === 0 ? `${shared}${tail}` : `${k}${tail}`);
  }
  createEmptyDatabase(path, o.pageSize, o.reservedBytes ?? 0);
  const db = new Database(path);
  try {
    db.exec('CREATE TABLE x(id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, m, u INTEGER UNIQUE, big TEXT)');
    for (const ix of INDEX_TEST_INDEXES.filter((x) => x.name !== 'x_u'))
      db.exec(`CREATE INDEX ${ix.name} ON x(${ix.columns.join(', ')})`);
    db.exec('CREATE UNIQUE INDEX x_u ON x(u)');
    const ins = db.prepare('INSERT INTO x VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const val = (xs: readonly SqlValue[]) => (r() < 0.05 ? null : toSqlite(pick(xs)));
    db.transaction(() => {
      for (let id = 1; id <= o.rows; id++)
        ins.run(id, val(ints), val(reals), val(texts), val(blobs), val(mixed), id * 7 - 3000, r() < 0.3 ? val(bigs) : null);
    })();
    // Deletes leave freeblocks and half-empty pages in every tree.
    db.prepare('DELETE FROM x WHERE id % 5 = 2').run();
  } finally {
    db.close();
  }
  return { i: ints, r: reals, s: texts, b: blobs, m: mixed, big: bigs };
}
