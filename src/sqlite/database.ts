/**
 * A SQLite database on a namespace, queried two ways: pushed down (the storage functions of
 * examples/sqlite/ walk the B-trees on the target, one EXECUTE per query) or fetched (the same
 * walks on the client over plain reads, fetched.ts). Opening reads the header and `sqlite_schema`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ExecuteResult, type ProgramClient, ProgramCommandError } from '../client/programs.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { programError, SqliteCorruptError, SqliteQueryError } from './errors.js';
import { getRecord, indexEntries, type Tree, tableRows } from './fetched.js';
import { compareKeyPrefix, type DatabaseHeader, decodeHeader, decodeRecord, exactInteger, type SqlValue } from './format.js';
import {
  DEFAULT_STEPS_PER_EXECUTION,
  decodeRowOutput,
  encodeIndexArgs,
  INPUT_HEADER_BYTES,
  type IndexBounds,
  InputEncoder,
  type InputFields,
  MAX_INDEX_KEY_COLUMNS,
  MAX_ROWS_PER_EXECUTION,
  MAX_STEPS_PER_EXECUTION,
  type RowRecord,
} from './input.js';
import { type ByteReader, type DatabaseLocation, normalizeExtents, PageReader } from './pages.js';
import {
  BestValue,
  COMPARE_OPS,
  decodeScanOutput,
  encodeScanArgs,
  MAX_TERMS,
  type ScanAnswer,
  type ScanPlan,
  type ScanRequest,
  SumAccumulator,
  termMatches,
} from './scan.js';
import { buildSchema, type IndexInfo, type Schema, type TableInfo } from './schema.js';

export type SqliteFunctionName = 'sqlite_get' | 'sqlite_scan' | 'sqlite_index';
export const SQLITE_FUNCTION_NAMES: readonly SqliteFunctionName[] = ['sqlite_get', 'sqlite_scan', 'sqlite_index'];
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
    /** Steps one execution of a scan may take before it returns a cursor (see `open`). */
    readonly maxStepsPerExecution: number,
  ) {
    this.inputs = new InputEncoder(location, header);
    for (const t of schema.tables) if (!this.tables.has(t.name.toLowerCase())) this.tables.set(t.name.toLowerCase(), t);
    for (const i of schema.indexes) if (!this.indexes.has(i.name.toLowerCase())) this.indexes.set(i.name.toLowerCase(), i);
  }

  private readonly inputs: InputEncoder;
  /** Tables and indexes by lower-case name (SQLite's names are case-insensitive); the first of a name wins, as `find` did. */
  private readonly tables = new Map<string, TableInfo>();
  private readonly indexes = new Map<string, IndexInfo>();

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
    /**
     * Steps one execution may take before the storage function stops at a row boundary and
     * returns a cursor (default 960, within the target's default budget of 1,024 steps). A tenant
     * whose budget (`maxSteps`, `maxBytesRead`, `maxInstructionsPerExecution`) allows more can run a
     * whole scan in one execution: leave a margin of 64 steps below its `maxSteps` to finish a row.
     */
    maxStepsPerExecution?: number;
  }): Promise<SqliteDatabase> {
    const maxSteps = options.maxStepsPerExecution ?? DEFAULT_STEPS_PER_EXECUTION;
    if (!Number.isInteger(maxSteps) || maxSteps < 1 || maxSteps > MAX_STEPS_PER_EXECUTION)
      throw new SqliteQueryError(
        'ERR_SQLITE_ARGUMENT',
        `maxStepsPerExecution must be an integer in 1..${MAX_STEPS_PER_EXECUTION}, not ${maxSteps}`,
      );
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
    return new SqliteDatabase(location, header, buildSchema(rows), tree, options.programs, options.handles ?? {}, maxSteps);
  }

  /**
   * What the queries so far did: executions per storage function, and index ranges (or their
   * remainders) walked by the client although pushdown was asked for (see `range`).
   */
  readonly counters = {
    executions: { sqlite_get: 0, sqlite_scan: 0, sqlite_index: 0 },
    clientIndexWalks: 0,
    /** Executions repeated with the largest buffer because the rows did not fit the first one. */
    outputRetries: 0,
  };
  /** Record bytes the receive buffer allows per row: the largest record seen, at least 1 KiB. */
  private recordBytesHint = 1024;

  /** Reads and bytes the fetched queries issued so far. */
  get fetchedReads(): { reads: number; bytes: number } {
    return { reads: this.tree.pages.reads, bytes: this.tree.pages.bytes };
  }

  table(name: string): TableInfo {
    const t = this.tables.get(name.toLowerCase());
    if (!t) throw new SqliteQueryError('ERR_SQLITE_NO_SUCH_TABLE', `no table ${name}`);
    if (t.withoutRowid) throw new SqliteQueryError('ERR_SQLITE_UNSUPPORTED_SCHEMA', `${name} is a WITHOUT ROWID table`);
    return t;
  }

  index(name: string): IndexInfo {
    const i = this.indexes.get(name.toLowerCase());
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
    const records = await this.getRecords(table, rowids);
    if (records.length !== rowids.length)
      throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `sqlite_get returned ${records.length} rows for ${rowids.length}`);
    return records.map((rec) => rec.record && this.row(table, rec.rowid, rec.record));
  }

  /**
   * Run a storage function; its error return becomes a typed error naming the page. `rows` (for the
   * functions that return rows) sizes the receive buffer: the programs stop with
   * ERR_SQLITE_OUTPUT_ROOM rather than send more than the host offered, and the query is retried
   * once with the largest buffer. Offering 256 KiB to every lookup cost an allocation of that size
   * per query and most of the host's garbage collection (see the closing note of issue 14).
   */
  private async execute(name: SqliteFunctionName, fields: InputFields, rows?: number): Promise<ExecuteResult> {
    const handle = this.handles[name];
    if (handle === undefined || !this.programs)
      throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `${name} is not loaded on the target: use the fetched twin`);
    const room = rows === undefined ? MAX_OUTPUT_BYTES : Math.min(MAX_OUTPUT_BYTES, 256 + rows * (16 + this.recordBytesHint));
    for (const maxOutputBytes of room < MAX_OUTPUT_BYTES ? [room, MAX_OUTPUT_BYTES] : [MAX_OUTPUT_BYTES]) {
      const input = this.inputs.encode({ ...fields, maxOutputBytes });
      this.counters.executions[name]++;
      const r = await this.programs.execute(handle, { nsid: this.location.nsid, input, maxOutputBytes });
      const err = programError(r.returnValue);
      if (err instanceof SqliteQueryError && err.code === 'ERR_SQLITE_OUTPUT_ROOM' && maxOutputBytes < MAX_OUTPUT_BYTES) {
        this.counters.outputRetries++;
        continue;
      }
      if (err) throw err;
      return r;
    }
    throw new SqliteQueryError('ERR_SQLITE_OUTPUT_ROOM', `${name}: the answer exceeds ${MAX_OUTPUT_BYTES} bytes`);
  }

  /** Records of rows from one execution; the buffer of the next query fits the largest seen. */
  private rowRecords(output: Uint8Array): RowRecord[] {
    const records = decodeRowOutput(output);
    for (const r of records)
      if (r.record && r.record.length > this.recordBytesHint) this.recordBytesHint = Math.min(MAX_OUTPUT_BYTES, r.record.length);
    return records;
  }

  /** Column index of a name (the rowid alias included); `rowid` names the rowid alias too. */
  column(table: TableInfo, name: string): number {
    const i = table.columns.findIndex((c) => c.toLowerCase() === name.toLowerCase());
    if (i >= 0) return i;
    if (/^(rowid|_rowid_|oid)$/i.test(name) && table.rowidColumn >= 0) return table.rowidColumn;
    throw new SqliteQueryError('ERR_SQLITE_NO_SUCH_COLUMN', `no column ${name} in ${table.name}`);
  }

  private plan(table: TableInfo, req: ScanRequest): ScanPlan {
    const terms = (req.where ?? []).map((t) => {
      if (!COMPARE_OPS.includes(t.op)) throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `unknown comparison ${t.op}`);
      return {
        col: this.column(table, t.column),
        op: t.op,
        value: checkSqlValue(t.value, `the value compared with ${t.column}`),
      };
    });
    if (terms.length > MAX_TERMS) throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `at most ${MAX_TERMS} comparisons`);
    const col = (n: string | undefined) => (n === undefined ? -1 : this.column(table, n));
    const proj = (req.columns ?? []).map((c) => this.column(table, c));
    const plan = { terms, proj, sum: col(req.sum), min: col(req.min), max: col(req.max), rowidColumn: table.rowidColumn };
    for (const c of [...proj, plan.sum, plan.min, plan.max, ...terms.map((t) => t.col)])
      if (c >= 64) throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', 'the scan reaches columns 0-63 only');
    return plan;
  }

  /**
   * Rows of `table` matching every comparison of `where`, with the columns asked for, and the
   * aggregates over all of them (COUNT always).
   */
  async scan(tableName: string, req: ScanRequest, options: QueryOptions = {}): Promise<ScanAnswer & { executions: number }> {
    const table = this.table(tableName);
    const plan = this.plan(table, req);
    const sum = new SumAccumulator();
    const min = new BestValue(false);
    const max = new BestValue(true);
    const rows: { rowid: bigint; values: SqlValue[] }[] = [];
    let count = 0;
    let executions = 0;
    // A row the host evaluates itself (fetched, or spilling to overflow pages on the target).
    const atHost = (row: Row, reals: boolean[]) => {
      if (!plan.terms.every((t) => termMatches(row.values[t.col] ?? null, t.op, t.value))) return;
      count++;
      // No columns asked for: only the aggregates, as the target answers (and as SQL would).
      if (plan.proj.length > 0) rows.push({ rowid: row.rowid, values: plan.proj.map((c) => row.values[c] ?? null) });
      if (plan.sum >= 0) sum.add(row.values[plan.sum] ?? null, reals[plan.sum] ?? false);
      if (plan.min >= 0) min.offer(row.values[plan.min] ?? null);
      if (plan.max >= 0) max.offer(row.values[plan.max] ?? null);
    };
    const decode = (rowid: bigint, record: Uint8Array) => {
      const reals: boolean[] = [];
      const values = decodeRecord(record, 0, reals);
      while (values.length < table.columns.length) values.push(null);
      if (table.rowidColumn >= 0) {
        values[table.rowidColumn] = rowidValue(rowid);
        reals[table.rowidColumn] = false;
      }
      return { row: { rowid, values }, reals };
    };
    if (plan.terms.some((t) => t.value === null)) {
      // A comparison with NULL matches nothing.
    } else if (options.fetched) {
      for await (const r of tableRows(this.tree, table.rootPage)) {
        const { row, reals } = decode(r.rowid, r.record);
        atHost(row, reals);
      }
    } else {
      let cursor: Buffer | undefined;
      do {
        const args = encodeScanArgs(plan, INPUT_HEADER_BYTES, cursor);
        const r = await this.execute('sqlite_scan', {
          tableRoot: table.rootPage,
          nargs: 0,
          args,
          maxSteps: this.maxStepsPerExecution,
        });
        executions++;
        const part = decodeScanOutput(r.output, table.rowidColumn);
        count += part.count;
        if (part.nsum > 0) sum.addInteger(part.isum);
        for (const f of part.foldSum) sum.add(f.value, f.isReal);
        for (const v of part.foldMin) min.offer(v);
        for (const v of part.foldMax) max.offer(v);
        for (const row of part.rows)
          rows.push({
            rowid: row.rowid,
            values: plan.proj.map((c) => row.cols.get(c) ?? null),
          });
        if (part.needsHost.length > 0) {
          const spilled = await this.getRecords(table, part.needsHost);
          for (const s of spilled) {
            if (!s.record) continue;
            const { row, reals } = decode(s.rowid, s.record);
            atHost(row, reals);
          }
        }
        cursor = part.cursor;
      } while (cursor);
      rows.sort((a, b) => (a.rowid < b.rowid ? -1 : a.rowid > b.rowid ? 1 : 0));
    }
    const limited = req.limit !== undefined ? rows.slice(0, req.limit) : rows;
    return { rows: limited, count, sum: sum.result(), min: min.value, max: max.value, executions };
  }

  /**
   * Rows whose index key starts with `key` (a prefix of the index's columns), in index order (key,
   * then rowid), at most `limit`.
   */
  async lookup(indexName: string, key: readonly SqlValue[], options: QueryOptions & { limit?: number } = {}): Promise<Row[]> {
    return this.range(indexName, key, key, { ...options, hiInclusive: true });
  }

  /**
   * Rows whose index key prefix lies in [lo, hi) (hi included with `hiInclusive`; either bound may
   * be omitted), in index order, at most `limit`. Pushed down, `sqlite_index` walks the index and
   * fetches the rows in one execution per 64 rows; an index it cannot walk (an expression, DESC,
   * COLLATE or partial index, more than 15 columns, keys too large for the input blob, or an entry
   * whose compared bytes spill to overflow pages) is walked by the client, the rows still pushed
   * down. Fetched: the client walks both trees.
   */
  async range(
    indexName: string,
    lo: readonly SqlValue[] | undefined,
    hi: readonly SqlValue[] | undefined,
    options: QueryOptions & { limit?: number; hiInclusive?: boolean } = {},
  ): Promise<Row[]> {
    const index = this.index(indexName);
    const table = this.table(index.table);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (!(limit > 0)) throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', 'the limit must be positive');
    for (const [what, key] of [
      ['lower bound', lo],
      ['upper bound', hi],
    ] as const) {
      if (key === undefined) continue;
      if (!Array.isArray(key) || key.length === 0 || key.length > index.columns.length)
        throw new SqliteQueryError(
          'ERR_SQLITE_ARGUMENT',
          `the ${what} of ${index.name} must have 1 to ${index.columns.length} values (its columns: ${index.columns.join(', ')})`,
        );
      key.forEach((v, i) => {
        checkSqlValue(v, `value ${i + 1} of the ${what} of ${index.name}`);
      });
    }
    // A NULL in a bound matches nothing (as `col = NULL` in SQL).
    if (lo?.some((v) => v === null) || hi?.some((v) => v === null)) return [];
    const bounds: { lo?: readonly SqlValue[]; hi?: readonly SqlValue[]; hiInclusive: boolean; loExclusive: boolean } = {
      lo,
      hi,
      hiInclusive: options.hiInclusive ?? false,
      loExclusive: false,
    };
    // As in SQL, `col < x` leaves out NULLs (they sort first): start after them.
    if (!lo && hi) {
      bounds.lo = [null];
      bounds.loExclusive = true;
    }
    const rows: Row[] = [];
    if (!options.fetched && this.indexPushable(index, table, bounds)) {
      const columns = index.columns.map((c) => this.column(table, c as string));
      while (rows.length < limit) {
        const want = Math.min(MAX_ROWS_PER_EXECUTION, limit - rows.length);
        const part = await this.indexPart(index, table, bounds, want);
        if (part === undefined) break; // the client walks the rest
        rows.push(...part);
        if (part.length < want) return rows;
        // Resume after the last entry: its key is the row's indexed values, then its rowid.
        const last = part[part.length - 1];
        bounds.lo = [...columns.map((c) => last.values[c] ?? null), rowidValue(last.rowid)];
        bounds.loExclusive = true;
      }
      if (rows.length >= limit) return rows;
    }
    if (!options.fetched) this.counters.clientIndexWalks++;
    const rowids = await this.indexRowids(index, bounds, limit - rows.length);
    if (options.fetched) {
      for (const id of rowids) {
        const rec = await getRecord(this.tree, table.rootPage, id);
        rows.push(this.indexedRow(index, table, id, rec));
      }
      return rows;
    }
    for (const r of await this.getRecords(table, rowids)) rows.push(this.indexedRow(index, table, r.rowid, r.record));
    return rows;
  }

  /** Whether sqlite_index can answer a range of this index. */
  private indexPushable(index: IndexInfo, table: TableInfo, b: { lo?: readonly SqlValue[]; hi?: readonly SqlValue[] }): boolean {
    if (this.handles.sqlite_index === undefined || !this.programs || index.unsupported) return false;
    const n = index.columns.length;
    if (n === 0 || n + 1 > MAX_INDEX_KEY_COLUMNS || index.columns.some((c) => c === undefined)) return false;
    if ((b.lo?.length ?? 0) > n || (b.hi?.length ?? 0) > n) return false;
    return index.columns.every((c) => table.columns.some((x) => x.toLowerCase() === (c as string).toLowerCase()));
  }

  /**
   * One execution of sqlite_index: up to `want` rows from the bounds on. Undefined when the target
   * cannot answer (an index entry spilling where it compares, or bounds too large for the input).
   */
  private async indexPart(index: IndexInfo, table: TableInfo, bounds: IndexBounds, want: number): Promise<Row[] | undefined> {
    const args = encodeIndexArgs(bounds, index.columns.length, INPUT_HEADER_BYTES);
    let r: ExecuteResult;
    try {
      r = await this.execute(
        'sqlite_index',
        { tableRoot: table.rootPage, indexRoot: index.rootPage, nargs: 0, args, limit: want },
        want,
      );
    } catch (e) {
      if (e instanceof SqliteQueryError && (e.code === 'ERR_SQLITE_KEY_OVERFLOW' || e.code === 'ERR_SQLITE_TOO_LARGE'))
        return undefined;
      throw e;
    }
    const records = this.rowRecords(r.output);
    if (BigInt(records.length) !== r.returnValue)
      throw new SqliteQueryError(
        'ERR_SQLITE_ARGUMENT',
        `sqlite_index returned ${records.length} rows for ${r.returnValue} entries`,
      );
    return records.map((x) => this.indexedRow(index, table, x.rowid, x.record));
  }

  /** The row an index entry names; an entry whose row is missing is corruption. */
  private indexedRow(index: IndexInfo, table: TableInfo, rowid: bigint, record: Uint8Array | undefined): Row {
    if (!record)
      throw new SqliteCorruptError(
        'ERR_SQLITE_RECORD',
        index.rootPage,
        `index ${index.name} names rowid ${rowid}, absent from ${table.name}`,
      );
    return this.row(table, rowid, record);
  }

  /** Rowids of the entries within the bounds, in index order, walked by the client. */
  private async indexRowids(index: IndexInfo, b: IndexBounds, limit: number): Promise<bigint[]> {
    const rowids: bigint[] = [];
    if (!(limit > 0)) return rowids;
    for await (const entry of indexEntries(this.tree, index.rootPage, b.lo)) {
      if (b.lo) {
        const c = compareKeyPrefix(entry, b.lo);
        if (c < 0 || (c === 0 && b.loExclusive)) continue;
      }
      if (b.hi) {
        const c = compareKeyPrefix(entry, b.hi);
        if (c > 0 || (c === 0 && !b.hiInclusive)) break;
      }
      const rowid = entry[entry.length - 1];
      if (typeof rowid !== 'number' && typeof rowid !== 'bigint')
        throw new SqliteCorruptError('ERR_SQLITE_RECORD', index.rootPage, 'an index entry without a rowid');
      rowids.push(BigInt(rowid));
      if (rowids.length >= limit) break;
    }
    return rowids;
  }

  /** Records by rowid, pushed down. */
  private async getRecords(table: TableInfo, rowids: readonly bigint[]): Promise<RowRecord[]> {
    const out: RowRecord[] = [];
    for (let i = 0; i < rowids.length; i += MAX_ROWS_PER_EXECUTION) {
      const part = rowids.slice(i, i + MAX_ROWS_PER_EXECUTION);
      const args = Buffer.alloc(part.length * 8);
      part.forEach((id, k) => {
        args.writeBigInt64LE(BigInt.asIntN(64, id), k * 8);
      });
      const r = await this.execute('sqlite_get', { tableRoot: table.rootPage, nargs: part.length, args }, part.length);
      out.push(...this.rowRecords(r.output));
    }
    return out;
  }
}

/**
 * A key or constant from the caller, checked: null, a number (not NaN), a bigint within 64 bits, a
 * string or a Uint8Array. Anything else would compare in no defined order.
 */
export function checkSqlValue(v: unknown, what: string): SqlValue {
  if (v === null || typeof v === 'string' || v instanceof Uint8Array) return v;
  if (typeof v === 'number' && !Number.isNaN(v)) return v;
  if (typeof v === 'bigint' && BigInt.asIntN(64, v) === v) return v;
  const shown = typeof v === 'bigint' ? `${v}n` : typeof v === 'number' ? String(v) : typeof v;
  throw new SqliteQueryError(
    'ERR_SQLITE_ARGUMENT',
    `${what} is ${shown}: keys and constants are null, numbers, 64-bit bigints, strings or Uint8Arrays`,
  );
}

/** A rowid as a JavaScript value: a number when exact, else a bigint. */
export function rowidValue(rowid: bigint): number | bigint {
  return exactInteger(rowid);
}

export type { RowRecord };
