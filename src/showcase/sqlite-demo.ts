/**
 * The SQLite section of the demo: a database built with SQLite at start-up (better-sqlite3), put
 * on a namespace of an in-process target, then one kind of query after another — by rowid, by
 * index key, a 1%-selective scan with aggregates — pushed down and fetched side by side, with the
 * answers compared.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgramClient } from '../client/programs.js';
import { loadSqliteFunctions, type Row, SqliteDatabase } from '../sqlite/database.js';
// The builder needs better-sqlite3 (a devDependency, present after `npm install`).
import { benchName, buildBenchDatabase, canon, canonRow } from '../sqlite/generate.js';
import type { ScanAnswer } from '../sqlite/scan.js';
import { blockReader, blockWriter, startLoopbackSession } from './nvme.js';
import { type Measurement, measure, rng } from './pushdown.js';
import { type ProgressStream, say } from './report.js';

export interface SqliteDemoRow {
  operation: string;
  mode: 'pushdown' | 'fetched';
  m: Measurement;
  mismatches?: number;
}

export interface SqliteDemoReport {
  rows: SqliteDemoRow[];
  refused: { name: string; status: string }[];
  tableRows: number;
  pages: number;
  pageSize: number;
}

const sameRows = (a: readonly (Row | undefined)[], b: readonly (Row | undefined)[]) =>
  a.length === b.length && a.every((x, i) => (x && canonRow(x.values)) === (b[i] && canonRow((b[i] as Row).values)));
const sameScan = (a: ScanAnswer, b: ScanAnswer) =>
  a.count === b.count && canon(a.sum) === canon(b.sum) && canon(a.min) === canon(b.min) && canon(a.max) === canon(b.max);

export async function runSqliteDemo(options: { rows: number; lookups: number }, err: ProgressStream): Promise<SqliteDemoReport> {
  const dir = mkdtempSync(join(tmpdir(), 'nearbpf-sqlite-demo-'));
  const file = join(dir, 'demo.db');
  say(
    err,
    `SQLite: building a ${options.rows.toLocaleString('en-US')}-row database with SQLite (4 KiB pages, index on a TEXT column)`,
  );
  buildBenchDatabase(file, options.rows);
  const bytes = readFileSync(file);
  const session = await startLoopbackSession({ namespaces: [{ nsid: 1, sizeBytes: bytes.length + (1 << 20) }] });
  try {
    const { host, blockSize } = session;
    const w = blockWriter(host, 1, blockSize);
    const image = Buffer.alloc(Math.ceil(bytes.length / blockSize) * blockSize);
    bytes.copy(image);
    await w.write(0, image);
    await w.drain();
    const programs = new ProgramClient(host);
    say(err, 'SQLite: loading sqlite_get and sqlite_scan (the target verifies them)');
    const loaded = await loadSqliteFunctions(programs);
    const db = await SqliteDatabase.open({
      read: blockReader(host, 1, blockSize),
      location: { nsid: 1, offsetBytes: 0 },
      programs,
      handles: loaded.handles,
    });
    const out: SqliteDemoRow[] = [];
    const both = async <R>(
      operation: string,
      count: number,
      pushed: ((i: number) => Promise<R>) | undefined,
      fetched: (i: number) => Promise<R>,
      same: (a: R, b: R) => boolean,
    ) => {
      say(err, `SQLite: ${operation} (${count} each way)`);
      const results: R[] = new Array(count);
      await fetched(0);
      const mf = await measure(host, count, 1, async (i) => {
        results[i] = await fetched(i);
      });
      if (pushed) {
        await pushed(0);
        let mismatches = 0;
        const mp = await measure(host, count, 1, async (i) => {
          if (!same(await pushed(i), results[i])) mismatches++;
        });
        out.push({ operation, mode: 'pushdown', m: mp, mismatches });
      }
      out.push({ operation, mode: 'fetched', m: mf });
    };
    const r = rng(5);
    const ids = Array.from({ length: options.lookups }, () => BigInt(1 + Math.floor(r() * options.rows)));
    const names = Array.from({ length: options.lookups }, () => benchName(1 + Math.floor(r() * options.rows)));
    const get = loaded.handles.sqlite_get !== undefined;
    await both(
      'SQLite rowid lookup',
      options.lookups,
      get ? (i) => db.getMany('t', [ids[i]]) : undefined,
      (i) => db.getMany('t', [ids[i]], { fetched: true }),
      sameRows,
    );
    await both(
      'SQLite index lookup (TEXT) + row',
      options.lookups,
      get ? (i) => db.lookup('t_name', [names[i]]) : undefined,
      (i) => db.lookup('t_name', [names[i]], { fetched: true }),
      sameRows,
    );
    const req = { where: [{ column: 'k', op: '<' as const, value: 100 }], sum: 'k', min: 'v', max: 'v' };
    await both(
      'SQLite 1% scan + COUNT/SUM/MIN/MAX',
      1,
      loaded.handles.sqlite_scan !== undefined ? () => db.scan('t', req) : undefined,
      () => db.scan('t', req, { fetched: true }),
      sameScan,
    );
    return {
      rows: out,
      refused: loaded.refused.map((x) => ({ name: x.name, status: x.message })),
      tableRows: options.rows,
      pages: db.header.pageCount,
      pageSize: db.header.pageSize,
    };
  } finally {
    await session.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
