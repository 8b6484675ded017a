/** Typed errors of the SQLite host library; corrupt pages name their page number. */
import { NearbpfError } from '../errors.js';

/** The location holds no usable SQLite database (not SQLite, WAL mode, encrypted, unsupported). */
export class SqliteFormatError extends NearbpfError {
  constructor(
    readonly code: 'ERR_SQLITE_NOT_SQLITE' | 'ERR_SQLITE_WAL' | 'ERR_SQLITE_UNSUPPORTED',
    message: string,
  ) {
    super(message);
  }
}

export type CorruptCode =
  | 'ERR_SQLITE_PAGE_TYPE'
  | 'ERR_SQLITE_CELL'
  | 'ERR_SQLITE_CHILD'
  | 'ERR_SQLITE_CYCLE'
  | 'ERR_SQLITE_OVERFLOW'
  | 'ERR_SQLITE_UNMAPPED'
  | 'ERR_SQLITE_RECORD'
  | 'ERR_SQLITE_SHORT'
  | 'ERR_SQLITE_INPUT';

const WHAT: Record<CorruptCode, string> = {
  ERR_SQLITE_PAGE_TYPE: 'unknown or unexpected page type',
  ERR_SQLITE_CELL: 'a cell pointer or cell outside the page',
  ERR_SQLITE_CHILD: 'a child or overflow page number outside the file',
  ERR_SQLITE_CYCLE: 'a cycle among child pages (or a tree deeper than 20 levels)',
  ERR_SQLITE_OVERFLOW: 'a broken or cyclic overflow chain',
  ERR_SQLITE_UNMAPPED: 'a page the extent map does not cover',
  ERR_SQLITE_RECORD: 'a malformed record',
  ERR_SQLITE_SHORT: 'a page shorter than the page size',
  ERR_SQLITE_INPUT: 'the storage function refused its input',
};

/** A corrupt page, found by the client-side walk or by a storage function on the target. */
export class SqliteCorruptError extends NearbpfError {
  constructor(
    readonly code: CorruptCode,
    /** The page the problem was found on (0: not tied to a page). */
    readonly page: number,
    readonly detail?: string,
  ) {
    super(`corrupt database at page ${page}: ${WHAT[code]}${detail ? ` (${detail})` : ''}`);
  }
}

/** Storage-function error codes (examples/sqlite/sqlite.h SQ_ERR_*) to their typed errors. */
const PROGRAM_CODES: Record<number, CorruptCode> = {
  1: 'ERR_SQLITE_INPUT',
  2: 'ERR_SQLITE_PAGE_TYPE',
  3: 'ERR_SQLITE_CELL',
  4: 'ERR_SQLITE_CHILD',
  5: 'ERR_SQLITE_CYCLE',
  6: 'ERR_SQLITE_OVERFLOW',
  7: 'ERR_SQLITE_UNMAPPED',
  8: 'ERR_SQLITE_RECORD',
  9: 'ERR_SQLITE_SHORT',
};

/** The typed error a storage function's return value stands for, or undefined for a success. */
export function programError(returnValue: bigint): SqliteCorruptError | SqliteQueryError | undefined {
  if (returnValue >> 63n === 0n) return undefined;
  const code = Number((returnValue >> 32n) & 0xffffn);
  const page = Number(returnValue & 0xffffffffn);
  if (code === 11)
    return new SqliteQueryError('ERR_SQLITE_OUTPUT_ROOM', 'the rows do not fit the output buffer the host offered');
  if (code === 10)
    return new SqliteQueryError(
      'ERR_SQLITE_KEY_OVERFLOW',
      `an index key spills to overflow pages (page ${page}): not comparable on the target`,
    );
  return new SqliteCorruptError(
    PROGRAM_CODES[code] ?? 'ERR_SQLITE_INPUT',
    page,
    PROGRAM_CODES[code] ? undefined : `code ${code}`,
  );
}

/** A query the library cannot answer as asked (unknown table, bad argument, unsupported schema). */
export class SqliteQueryError extends NearbpfError {
  constructor(
    readonly code:
      | 'ERR_SQLITE_NO_SUCH_TABLE'
      | 'ERR_SQLITE_NO_SUCH_INDEX'
      | 'ERR_SQLITE_NO_SUCH_COLUMN'
      | 'ERR_SQLITE_ARGUMENT'
      | 'ERR_SQLITE_UNSUPPORTED_SCHEMA'
      | 'ERR_SQLITE_KEY_OVERFLOW'
      | 'ERR_SQLITE_OUTPUT_ROOM'
      | 'ERR_SQLITE_TOO_LARGE',
    message: string,
  ) {
    super(message);
  }
}
