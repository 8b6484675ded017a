/**
 * A SQLite database on a namespace, queried two ways: pushed down (the storage functions of
 * examples/sqlite/ walk the B-trees on the target, one EXECUTE per query) or fetched (the same
 * walks on the client over plain reads, fetched.ts). Opening reads the header and `sqlite_schema`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ExecuteResult, type ProgramClient, ProgramCommandError } from '../client/programs.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { programError, SqliteQueryError } from './errors.js';
import { getRecord, indexEntries, type Tree, tableRows } from './fetched.js';
import { compareKeyPrefix, type DatabaseHeader, decodeHeader, decodeRecord, type SqlValue } from './format.js';
import { decodeRowOutput, encodeInput, MAX_ROWS_PER_EXECUTION, type RowRecord } from './input.js';
import { type ByteReader, type DatabaseLocation, normalizeExtents, PageReader } from './pages.js';
import { buildSchema, type IndexInfo, type Schema, type TableInfo } from './schema.js';

export type SqliteFunctionName = 'sqlite_get' | 'sqlite_index' | 'sqlite_scan';
export const SQLITE_FUNCTION_NAMES: readonly SqliteFunctionName[] = ['sqlite_get', 'sqlite_index', 'sqlite_scan'];
export const sqliteObjectPath = (name: SqliteFunctionName) => join(REPO_ROOT, 'examples', 'build', `${name}.o`);

/** Handles of the loaded storage functions (a query whose function is missing can only be fetched). */
export type SqliteHandles = Partial<Record<SqliteFunctionName, number>>;

/** Load the SQLite storage functions; a refusal (verifier log) is returned, not thrown. */
export async function loadSqliteFunctions(
  programs: ProgramClient,
  options: { names?: readonly SqliteFunctionName[]; prefix?: string } = {},
): Promise<{ handles: SqliteHandles; refused: { name: SqliteFunctionName; message: string; log?: string }[] }> {
  const handles: SqliteHandles = {};
  const refused: { name: SqliteFunctionName; message: string; log?: string }[] = [];
  for (const name of options.names ?? SQLITE_FUNCTION_NAMES) {
    try {
      handles[name] = await programs.load(readFileSync(sqliteObjectPath(name)), {
        name: `${options.prefix ?? ''}${name}`,
        objectProgram: name,
      });
    } catch (e) {
      if (!(e instanceof ProgramCommandError)) throw e;
      refused.push({ name, message: e.message, log: e.log });
    }
  }
  return { handles, refused };
}

/** A row: its rowid and its values in column order (the rowid alias column holds the rowid). */
export interface Row {
  readonly rowid: bigint;
  readonly values: SqlValue[];
}

export interface QueryOptions {
  /** Answer by client-side traversal over plain reads instead of pushing down. */
  readonly fetched?: boolean;
}

/*
 * Output accepted from one execution. The target cannot learn the host's buffer size from an
 * EXECUTE that carries an input blob (its SGL describes the input), so the host must accept the
 * largest transfer the showcase target allows.
 */
const MAX_OUTPUT_BYTES = 256 * 1024 - 32;

export class SqliteDatabase {
  private constructor(
    readonly location: DatabaseLocation,
    readonly header: DatabaseHeader,
    readonly schema: Schema,
    private readonly tree: Tree,
    private readonly programs: ProgramClient | undefined,
    private readonly handles: SqliteHandles,
  ) {}

  /**
   * Open the database at `location`: `read` reads the namespace (plain NVMe reads), `programs` and
   * `handles` run the storage functions (without them only fetched queries work).
   */
  static async open(options: {
    read: ByteReader;
    location: DatabaseLocation;
    programs?: ProgramClient;
    handles?: SqliteHandles;
    /** Bytes of the file, when known (a fallback for the page count of legacy writers). */
    fileBytes?: number;
  }): Promise<SqliteDatabase> {
    const location: DatabaseLocation = options.location.extents
      ? { ...options.location, extents: normalizeExtents(options.location.extents) }
      : options.location;
    const pages = new PageReader(options.read, location, 512);
    const header = decodeHeader(await pages.readFile(0, 100, 1), options.fileBytes);
    pages.pageSize = header.pageSize;
    if (header.textEncoding !== 'utf8')
      throw new SqliteQueryError(
        'ERR_SQLITE_UNSUPPORTED_SCHEMA',
        `text encoding ${header.textEncoding}: only UTF-8 databases are supported`,
      );
    const tree: Tree = { pages, header };
    const rows: SqlValue[][] = [];
    for await (const r of tableRows(tree, 1)) rows.push(decodeRecord(r.record, 1));
    return new SqliteDatabase(location, header, buildSchema(rows), tree, options.programs, options.handles ?? {});
  }

  /** Reads and bytes the fetched queries issued so far. */
  get fetchedReads(): { reads: number; bytes: number } {
    return { reads: this.tree.pages.reads, bytes: this.tree.pages.bytes };
  }

  table(name: string): TableInfo {
    const t = this.schema.tables.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!t) throw new SqliteQueryError('ERR_SQLITE_NO_SUCH_TABLE', `no table ${name}`);
    if (t.withoutRowid) throw new SqliteQueryError('ERR_SQLITE_UNSUPPORTED_SCHEMA', `${name} is a WITHOUT ROWID table`);
    return t;
  }

  index(name: string): IndexInfo {
    const i = this.schema.indexes.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!i) throw new SqliteQueryError('ERR_SQLITE_NO_SUCH_INDEX', `no index ${name}`);
    return i;
  }

  /** Decode a record of `table` to a row. */
  row(table: TableInfo, rowid: bigint, record: Uint8Array): Row {
    const values = decodeRecord(record);
    // Columns added by ALTER TABLE after the row was written are absent from its record.
    while (values.length < table.columns.length) values.push(null);
    if (table.rowidColumn >= 0) values[table.rowidColumn] = rowidValue(rowid);
    return { rowid, values };
  }

  /** The row of `rowid`, or undefined. */
  async get(tableName: string, rowid: bigint, options: QueryOptions = {}): Promise<Row | undefined> {
    return (await this.getMany(tableName, [rowid], options))[0];
  }

  /** Rows of several rowids (undefined where absent), pushed down as one execution per 64 rowids. */
  async getMany(tableName: string, rowids: readonly bigint[], options: QueryOptions = {}): Promise<(Row | undefined)[]> {
    const table = this.table(tableName);
    if (options.fetched) {
      return Promise.all(
        rowids.map(async (id) => {
          const rec = await getRecord(this.tree, table.rootPage, id);
          return rec && this.row(table, id, rec);
        }),
      );
    }
    const out: (Row | undefined)[] = [];
    for (let i = 0; i < rowids.length; i += MAX_ROWS_PER_EXECUTION) {
      const part = rowids.slice(i, i + MAX_ROWS_PER_EXECUTION);
      const args = Buffer.alloc(part.length * 8);
      part.forEach((id, k) => {
        args.writeBigInt64LE(BigInt.asIntN(64, id), k * 8);
      });
      const input = encodeInput(this.location, this.header, { tableRoot: table.rootPage, nargs: part.length, args });
      const r = await this.execute('sqlite_get', input);
      const records = decodeRowOutput(r.output);
      if (records.length !== part.length)
        throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `sqlite_get returned ${records.length} rows for ${part.length}`);
      for (const rec of records) out.push(rec.record && this.row(table, rec.rowid, rec.record));
    }
    return out;
  }

  /** Run a storage function; its error return becomes a typed error naming the page. */
  private async execute(name: SqliteFunctionName, input: Uint8Array): Promise<ExecuteResult> {
    const handle = this.handles[name];
    if (handle === undefined || !this.programs)
      throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `${name} is not loaded on the target: use the fetched twin`);
    const r = await this.programs.execute(handle, { nsid: this.location.nsid, input, maxOutputBytes: MAX_OUTPUT_BYTES });
    const err = programError(r.returnValue);
    if (err) throw err;
    return r;
  }

  /** Exposed for the other query kinds (index, scan). */
  protected get internals() {
    return { tree: this.tree, execute: this.execute.bind(this) };
  }
}

/** A rowid as a JavaScript value: a number when exact, else a bigint. */
export function rowidValue(rowid: bigint): number | bigint {
  return rowid >= -(2n ** 53n) && rowid <= 2n ** 53n ? Number(rowid) : rowid;
}

export type { RowRecord };
export { compareKeyPrefix, indexEntries };
