import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ProgramClient } from '../client/programs.js';
import { blockReader, blockWriter, type LoopbackSession, startLoopbackSession } from '../showcase/nvme.js';
import { loadSqliteFunctions, type SqliteDatabase, SqliteDatabase as SqliteDb, type SqliteHandles } from './database.js';
import { canonRow, generateDatabase, rng } from './generate.js';
import type { Extent } from './pages.js';

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
    const loaded = await loadSqliteFunctions(programs, { names: ['sqlite_get'] });
    assert.deepEqual(loaded.refused, [], JSON.stringify(loaded.refused));
    handles = loaded.handles;
  });

  after(async () => {
    await session?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Write a file to the namespace (a raw image, or scattered as a file system would) and open it. */
  async function place(file: string, options: { scatterBytes?: number } = {}): Promise<SqliteDatabase> {
    const bytes = readFileSync(file);
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
});
