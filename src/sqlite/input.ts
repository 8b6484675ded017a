/**
 * The input blob of the SQLite storage functions (struct sq_input in examples/sqlite/sqlite.h):
 * a 64-byte header (location, page geometry, roots, limit), the query's arguments, then the
 * extent table. Also the decoder of their row output (struct sq_row_out + record).
 */
import { SqliteQueryError } from './errors.js';
import type { DatabaseHeader, SqlValue } from './format.js';
import type { DatabaseLocation } from './pages.js';

export const INPUT_HEADER_BYTES = 64;
export const MAX_INPUT_BYTES = 4096;
export const EXTENT_BYTES = 24;
/** Rows one execution returns at most (SQ_MAX_ROWS). */
export const MAX_ROWS_PER_EXECUTION = 64;

export interface InputFields {
  readonly tableRoot: number;
  readonly indexRoot?: number;
  readonly nargs: number;
  readonly args: Uint8Array;
  /** Output bytes the host accepts (0: as many as the target sends); see maxOutput in sq_input. */
  readonly maxOutputBytes?: number;
  readonly limit?: number;
  /** Steps a program may take before it stops and returns a cursor (0: its default, 960). */
  readonly maxSteps?: number;
}

/** Steps the storage functions take per execution unless told otherwise (SQ_DEFAULT_STEPS). */
export const DEFAULT_STEPS_PER_EXECUTION = 960;
/** The most a host may ask for (the target's own budget still applies). */
export const MAX_STEPS_PER_EXECUTION = 2 ** 32 - 1;

/**
 * The input blobs of one database: its location, page geometry and extent table are encoded once;
 * each query writes only its own fields (numbers, no BigInt) into a copy.
 */
export class InputEncoder {
  /** The 64-byte header with the database's fields set and the query's fields zero. */
  private readonly head = Buffer.alloc(INPUT_HEADER_BYTES);
  private readonly extents: Buffer;

  constructor(location: DatabaseLocation, header: DatabaseHeader) {
    const extents = location.extents ?? [];
    this.head.writeBigUInt64LE(BigInt(extents.length > 0 ? 0 : location.offsetBytes), 0);
    this.head.writeUInt32LE(header.pageSize, 8);
    this.head.writeUInt32LE(header.usableSize, 12);
    this.head.writeUInt32LE(header.pageCount, 16);
    this.head.writeUInt32LE(extents.length, 20);
    this.head.writeUInt32LE(INPUT_HEADER_BYTES, 40); // arg_off: the arguments follow the header
    this.extents = Buffer.alloc(extents.length * EXTENT_BYTES);
    extents.forEach((e, i) => {
      const at = i * EXTENT_BYTES;
      this.extents.writeBigUInt64LE(BigInt(e.fileOffset), at);
      this.extents.writeBigUInt64LE(BigInt(e.nsOffset), at + 8);
      this.extents.writeBigUInt64LE(BigInt(e.length), at + 16);
    });
  }

  encode(f: InputFields): Buffer {
    const extOff = INPUT_HEADER_BYTES + Math.ceil(f.args.length / 8) * 8;
    const total = extOff + this.extents.length;
    if (total > MAX_INPUT_BYTES)
      throw new SqliteQueryError(
        'ERR_SQLITE_TOO_LARGE',
        `the query and extent map take ${total} bytes; the input blob holds ${MAX_INPUT_BYTES}`,
      );
    const b = Buffer.allocUnsafe(total);
    this.head.copy(b, 0);
    b.fill(0, INPUT_HEADER_BYTES + f.args.length, extOff);
    b.writeUInt32LE(extOff, 24);
    b.writeUInt32LE(f.tableRoot, 28);
    b.writeUInt32LE(f.indexRoot ?? 0, 32);
    b.writeUInt32LE(f.nargs, 36);
    b.writeUInt32LE(f.maxOutputBytes ?? 0, 44);
    writeU64(b, f.limit ?? 0, 48);
    writeU64(b, f.maxSteps ?? 0, 56);
    b.set(f.args, INPUT_HEADER_BYTES);
    this.extents.copy(b, extOff);
    return b;
  }
}

/** A non-negative safe integer as a little-endian u64 (two 32-bit halves: no BigInt). */
function writeU64(b: Buffer, v: number, at: number): void {
  b.writeUInt32LE(v % 0x1_0000_0000, at);
  b.writeUInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}

export function encodeInput(location: DatabaseLocation, header: DatabaseHeader, f: InputFields): Buffer {
  return new InputEncoder(location, header).encode(f);
}

export interface RowRecord {
  readonly rowid: bigint;
  /** The record bytes, or undefined when the table has no such rowid. */
  readonly record: Uint8Array | undefined;
}

/** Decode the output of sqlite_get / sqlite_index: per row, a 16-byte header then the record. */
export function decodeRowOutput(out: Uint8Array): RowRecord[] {
  const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  const rows: RowRecord[] = [];
  let at = 0;
  while (at < b.length) {
    if (at + 16 > b.length) throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', 'truncated row output');
    const rowid = b.readBigInt64LE(at);
    const size = b.readUInt32LE(at + 8);
    const found = b.readUInt32LE(at + 12);
    at += 16;
    if (!found) {
      rows.push({ rowid, record: undefined });
      continue;
    }
    if (at + size > b.length) throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', 'truncated row output');
    rows.push({ rowid, record: b.subarray(at, at + size) });
    at += size;
  }
  return rows;
}

/** Bytes a constant takes after the fixed part of the arguments (TEXT/BLOB bytes and 8 of slack). */
export function keyBytes(v: SqlValue): number {
  if (typeof v === 'string') return Math.ceil(Buffer.byteLength(v, 'utf8') / 8) * 8 + 8;
  if (v instanceof Uint8Array) return Math.ceil(v.length / 8) * 8 + 8;
  return 0;
}

/**
 * Write a constant as struct sq_key (examples/sqlite/compare.h: tag, len, val) at `at`; TEXT/BLOB
 * bytes go to `extra` (an offset in `b`, which sits at `argOff` in the input blob). Returns the
 * next free offset for bytes.
 */
export function writeKey(b: Buffer, at: number, v: SqlValue, argOff: number, extra: number): number {
  let tag = 0;
  let len = 0;
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    tag = 1;
    writeI64(b, v, at + 16);
  } else if (typeof v === 'bigint') {
    tag = 1;
    b.writeBigUInt64LE(BigInt.asUintN(64, v), at + 16);
  } else if (typeof v === 'number') {
    tag = 2;
    b.writeDoubleLE(v, at + 16);
  } else if (typeof v === 'string' || v instanceof Uint8Array) {
    if (typeof v === 'string') {
      tag = 3;
      len = b.write(v, extra, 'utf8'); // keyBytes gave it room: all of it fits
    } else {
      tag = 4;
      b.set(v, extra);
      len = v.length;
    }
    writeU64(b, argOff + extra, at + 16);
    extra += Math.ceil(len / 8) * 8 + 8;
  } else {
    writeU64(b, 0, at + 16);
  }
  writeU64(b, tag, at);
  writeU64(b, len, at + 8);
  return extra;
}

/** A safe integer as a little-endian two's-complement i64 (two 32-bit halves: no BigInt). */
function writeI64(b: Buffer, v: number, at: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  b.writeUInt32LE(v - hi * 0x1_0000_0000, at);
  b.writeInt32LE(hi, at + 4);
}

/** Key columns of a bound of sqlite_index (IX_MAX_KEY): the index's columns, then the rowid. */
export const MAX_INDEX_KEY_COLUMNS = 16;
/** struct ix_args: nlo, nhi, flags, ncols; the keys in use follow (lo's, then hi's), then their bytes. */
const INDEX_ARGS_FIXED_BYTES = 32;
const KEY_BYTES = 24;

export interface IndexBounds {
  /** Entries at or after this key prefix (after it with `loExclusive`); undefined: from the first. */
  readonly lo?: readonly SqlValue[];
  readonly loExclusive?: boolean;
  /** Entries before this key prefix (up to it with `hiInclusive`); undefined: to the last. */
  readonly hi?: readonly SqlValue[];
  readonly hiInclusive?: boolean;
}

/**
 * struct ix_args of examples/sqlite/sqlite_index.c, to sit at `argOff` in the input blob, for an
 * index of `columns` columns (its entries hold them, then the rowid).
 */
export function encodeIndexArgs(bounds: IndexBounds, columns: number, argOff: number): Buffer {
  const lo = bounds.lo ?? [];
  const hi = bounds.hi ?? [];
  if (lo.length > MAX_INDEX_KEY_COLUMNS || hi.length > MAX_INDEX_KEY_COLUMNS)
    throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `a bound has at most ${MAX_INDEX_KEY_COLUMNS} columns`);
  let extraBytes = 0;
  for (const v of lo) extraBytes += keyBytes(v);
  for (const v of hi) extraBytes += keyBytes(v);
  const keysAt = INDEX_ARGS_FIXED_BYTES;
  let extra = keysAt + (lo.length + hi.length) * KEY_BYTES;
  const b = Buffer.alloc(extra + extraBytes);
  writeU64(b, lo.length, 0);
  writeU64(b, hi.length, 8);
  writeU64(b, (bounds.loExclusive ? 1 : 0) | (bounds.hiInclusive ? 2 : 0), 16);
  writeU64(b, columns, 24);
  for (let i = 0; i < lo.length; i++) extra = writeKey(b, keysAt + i * KEY_BYTES, lo[i], argOff, extra);
  for (let i = 0; i < hi.length; i++) extra = writeKey(b, keysAt + (lo.length + i) * KEY_BYTES, hi[i], argOff, extra);
  return b;
}
