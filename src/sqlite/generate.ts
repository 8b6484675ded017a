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
  const db = new Database(path);
  try {
    db.pragma(`page_size = ${o.pageSize}`);
    db.pragma('journal_mode = DELETE');
    db.pragma('user_version = 1');
    if (o.reservedBytes) {
      // Reserved bytes cannot be set through SQL: set them in the header of the still-empty file.
      db.close();
      const bytes = readFileSync(path);
      bytes[20] = o.reservedBytes;
      // The empty schema page's cell content area starts at the end of the usable space.
      bytes.writeUInt16BE((o.pageSize - o.reservedBytes) & 0xffff, 105);
      writeFileSync(path, bytes);
    }
  } finally {
    if (db.open) db.close();
  }
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
