/**
 * The client-side twins of the storage functions: the same B-tree walks over plain reads of
 * pages, one round trip per page. They are the baseline of the benchmark and the cross-check of
 * the pushed-down answers, and they read the schema when a database is opened.
 */
import { SqliteCorruptError } from './errors.js';
import {
  type BtreePage,
  compareKeyPrefix,
  type DatabaseHeader,
  decodePage,
  decodeRecord,
  localPayloadBytes,
  PageType,
  readSmallVarint,
  readVarint,
  type SqlValue,
  u32be,
} from './format.js';
import type { PageReader } from './pages.js';

export const MAX_DEPTH = 20;

export interface Tree {
  readonly pages: PageReader;
  readonly header: DatabaseHeader;
}

async function page(t: Tree, n: number, from: number): Promise<BtreePage> {
  if (n < 1 || n > t.header.pageCount)
    throw new SqliteCorruptError('ERR_SQLITE_CHILD', from, `page ${n} of ${t.header.pageCount}`);
  return decodePage(await t.pages.readPage(n), n, t.header.usableSize);
}

function childAt(p: BtreePage, i: number): number {
  return i < p.cellCount ? u32be(p.bytes, p.cells[i]) : p.rightmost;
}

/** The whole payload of a cell: its local part, then the overflow chain (which must end with 0). */
async function payload(t: Tree, p: BtreePage, start: number, size: number, index: boolean): Promise<Uint8Array> {
  const usable = t.header.usableSize;
  const local = localPayloadBytes(size, usable, index);
  if (start + local + (local < size ? 4 : 0) > usable)
    throw new SqliteCorruptError('ERR_SQLITE_CELL', p.page, 'payload runs past the page');
  if (local === size) return p.bytes.slice(start, start + size);
  const out = new Uint8Array(size);
  out.set(p.bytes.subarray(start, start + local));
  let at = local;
  let next = u32be(p.bytes, start + local);
  let from = p.page;
  while (at < size) {
    if (next < 1 || next > t.header.pageCount) throw new SqliteCorruptError('ERR_SQLITE_OVERFLOW', from, `overflow page ${next}`);
    const o = await t.pages.readPage(next);
    const take = Math.min(size - at, usable - 4);
    out.set(o.subarray(4, 4 + take), at);
    at += take;
    from = next;
    next = u32be(o, 0);
  }
  // A chain that repeats a page never ends with 0 (see examples/sqlite/rows.h).
  if (next !== 0) throw new SqliteCorruptError('ERR_SQLITE_OVERFLOW', from, 'the chain does not end');
  return out;
}

function pushPath(path: number[], child: number, from: number): void {
  if (path.length >= MAX_DEPTH || path.includes(child))
    throw new SqliteCorruptError('ERR_SQLITE_CYCLE', from, `child page ${child}`);
  path.push(child);
}

/** The record of `rowid` in the table whose root is `root`, or undefined. */
export async function getRecord(t: Tree, root: number, rowid: bigint): Promise<Uint8Array | undefined> {
  const path = [root];
  let p = await page(t, root, root);
  for (;;) {
    const leaf = p.type === PageType.TableLeaf;
    if (!leaf && p.type !== PageType.TableInterior)
      throw new SqliteCorruptError('ERR_SQLITE_PAGE_TYPE', p.page, `type ${p.type} in a table tree`);
    // First cell whose rowid is >= the one wanted.
    let lo = 0;
    let hi = p.cellCount;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      let at = p.cells[mid];
      if (leaf) at += readVarint(p.bytes, at, p.usable, p.page).length;
      else at += 4;
      if (readVarint(p.bytes, at, p.usable, p.page).value < rowid) lo = mid + 1;
      else hi = mid;
    }
    if (!leaf) {
      const child = childAt(p, lo);
      if (child < 1 || child > t.header.pageCount)
        throw new SqliteCorruptError('ERR_SQLITE_CHILD', p.page, `child page ${child}`);
      pushPath(path, child, p.page);
      p = await page(t, child, p.page);
      continue;
    }
    if (lo >= p.cellCount) return undefined;
    let at = p.cells[lo];
    const size = readSmallVarint(p.bytes, at, p.usable, p.page);
    at += size.length;
    const key = readVarint(p.bytes, at, p.usable, p.page);
    if (key.value !== rowid) return undefined;
    return payload(t, p, at + key.length, size.value, false);
  }
}

/** Every (rowid, record) of a table in rowid order. */
export async function* tableRows(t: Tree, root: number): AsyncGenerator<{ rowid: bigint; record: Uint8Array }> {
  async function* walk(n: number, path: number[], from: number): AsyncGenerator<{ rowid: bigint; record: Uint8Array }> {
    const p = await page(t, n, from);
    if (p.type === PageType.TableInterior) {
      for (let i = 0; i <= p.cellCount; i++) {
        const child = childAt(p, i);
        if (child < 1 || child > t.header.pageCount)
          throw new SqliteCorruptError('ERR_SQLITE_CHILD', p.page, `child page ${child}`);
        const next = [...path];
        pushPath(next, child, p.page);
        yield* walk(child, next, p.page);
      }
      return;
    }
    if (p.type !== PageType.TableLeaf)
      throw new SqliteCorruptError('ERR_SQLITE_PAGE_TYPE', p.page, `type ${p.type} in a table tree`);
    for (const cell of p.cells) {
      const size = readSmallVarint(p.bytes, cell, p.usable, p.page);
      const key = readVarint(p.bytes, cell + size.length, p.usable, p.page);
      yield { rowid: key.value, record: await payload(t, p, cell + size.length + key.length, size.value, false) };
    }
  }
  yield* walk(root, [root], root);
}

/**
 * Index entries (decoded records, the rowid last) in key order from the first whose key prefix is
 * >= `lo` (every entry when `lo` is undefined). Interior cells of an index tree are entries too:
 * in order, child i, then cell i.
 */
export async function* indexEntries(t: Tree, root: number, lo: readonly SqlValue[] | undefined): AsyncGenerator<SqlValue[]> {
  async function* walk(n: number, path: number[], from: number, bounded: boolean): AsyncGenerator<SqlValue[]> {
    const p = await page(t, n, from);
    const interior = p.type === PageType.IndexInterior;
    if (!interior && p.type !== PageType.IndexLeaf)
      throw new SqliteCorruptError('ERR_SQLITE_PAGE_TYPE', p.page, `type ${p.type} in an index tree`);
    const entry = async (i: number) => {
      let at = p.cells[i] + (interior ? 4 : 0);
      const size = readSmallVarint(p.bytes, at, p.usable, p.page);
      at += size.length;
      return decodeRecord(await payload(t, p, at, size.value, true), p.page);
    };
    let first = 0;
    if (bounded && lo) {
      let a = 0;
      let b = p.cellCount;
      while (a < b) {
        const mid = (a + b) >> 1;
        if (compareKeyPrefix(await entry(mid), lo) < 0) a = mid + 1;
        else b = mid;
      }
      first = a;
    }
    for (let i = first; i <= p.cellCount; i++) {
      if (interior) {
        const child = childAt(p, i);
        if (child < 1 || child > t.header.pageCount)
          throw new SqliteCorruptError('ERR_SQLITE_CHILD', p.page, `child page ${child}`);
        const next = [...path];
        pushPath(next, child, p.page);
        yield* walk(child, next, p.page, bounded && i === first);
      }
      if (i < p.cellCount) yield await entry(i);
    }
  }
  yield* walk(root, [root], root, true);
}
