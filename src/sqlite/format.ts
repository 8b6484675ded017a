/**
 * SQLite's file format (https://www.sqlite.org/fileformat2.html), decoded on the host: the
 * 100-byte header, B-tree pages, cells, varints, records and SQLite's sort order. Pure functions
 * over bytes; the walks over pages are in fetched.ts, the storage functions in examples/sqlite/.
 */
import { SqliteCorruptError, SqliteFormatError } from './errors.js';

export const HEADER_BYTES = 100;
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

export const PageType = { IndexInterior: 2, TableInterior: 5, IndexLeaf: 10, TableLeaf: 13 } as const;

export interface DatabaseHeader {
  readonly pageSize: number;
  readonly reservedBytes: number;
  /** pageSize - reservedBytes. */
  readonly usableSize: number;
  /** Pages in the database: the header's count when valid, else derived from the file size. */
  readonly pageCount: number;
  readonly textEncoding: 'utf8' | 'utf16le' | 'utf16be';
  readonly schemaFormat: number;
  readonly writeVersion: number;
  readonly readVersion: number;
}

/**
 * Decode and check the header. `fileBytes` (when known) replaces an in-header page count that a
 * legacy writer left stale.
 */
export function decodeHeader(bytes: Uint8Array, fileBytes?: number): DatabaseHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEADER_BYTES || !b.subarray(0, 16).equals(MAGIC))
    throw new SqliteFormatError(
      'ERR_SQLITE_NOT_SQLITE',
      'no SQLite database here (the header string is missing; encrypted or another format)',
    );
  const raw = b.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0)
    throw new SqliteFormatError('ERR_SQLITE_NOT_SQLITE', `invalid page size ${raw} in the header`);
  const writeVersion = b[18];
  const readVersion = b[19];
  if (readVersion === 2 || writeVersion === 2)
    throw new SqliteFormatError(
      'ERR_SQLITE_WAL',
      'the database is in WAL mode: its latest content may be in the -wal file, which is not on the namespace; checkpoint it and switch to journal_mode=DELETE before writing it',
    );
  if (readVersion !== 1 || writeVersion !== 1)
    throw new SqliteFormatError('ERR_SQLITE_UNSUPPORTED', `unsupported file format version ${writeVersion}/${readVersion}`);
  const reservedBytes = b[20];
  const usableSize = pageSize - reservedBytes;
  if (usableSize < 480) throw new SqliteFormatError('ERR_SQLITE_NOT_SQLITE', `usable page size ${usableSize} is below 480`);
  if (b[21] !== 64 || b[22] !== 32 || b[23] !== 32)
    throw new SqliteFormatError('ERR_SQLITE_UNSUPPORTED', 'payload fractions other than 64/32/32');
  const changeCounter = b.readUInt32BE(24);
  const headerPages = b.readUInt32BE(28);
  const validFor = b.readUInt32BE(92);
  const filePages = fileBytes === undefined ? undefined : Math.floor(fileBytes / pageSize);
  const pageCount = headerPages > 0 && validFor === changeCounter ? headerPages : (filePages ?? headerPages);
  if (pageCount < 1) throw new SqliteFormatError('ERR_SQLITE_NOT_SQLITE', 'the database has no pages');
  const enc = b.readUInt32BE(56);
  const textEncoding = enc === 2 ? 'utf16le' : enc === 3 ? 'utf16be' : 'utf8';
  return {
    pageSize,
    reservedBytes,
    usableSize,
    pageCount,
    textEncoding,
    schemaFormat: b.readUInt32BE(44),
    writeVersion,
    readVersion,
  };
}

// ---- varints ----

/** A varint at `off`: value as bigint (64-bit two's complement) and its length. */
export function readVarint(b: Uint8Array, off: number, limit: number, page: number): { value: bigint; length: number } {
  let small = 0; // exact while below 2^49
  for (let i = 0; i < 6; i++) {
    if (off + i >= limit) throw new SqliteCorruptError('ERR_SQLITE_CELL', page, 'a varint runs past the page');
    const byte = b[off + i];
    small = small * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: BigInt(small), length: i + 1 };
  }
  let v = BigInt(small);
  for (let i = 6; i < 9; i++) {
    if (off + i >= limit) throw new SqliteCorruptError('ERR_SQLITE_CELL', page, 'a varint runs past the page');
    const byte = b[off + i];
    if (i === 8) return { value: BigInt.asIntN(64, (v << 8n) | BigInt(byte)), length: 9 };
    v = (v << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: BigInt.asIntN(64, v), length: i + 1 };
  }
  throw new Error('unreachable');
}

/** A varint known to fit a double exactly (sizes, header lengths, serial types). */
export function readSmallVarint(b: Uint8Array, off: number, limit: number, page: number): { value: number; length: number } {
  // Up to 7 bytes (below 2^49) in doubles: serial types and sizes are that short, and BigInt is slow.
  let small = 0;
  for (let i = 0; i < 7 && off + i < limit; i++) {
    const byte = b[off + i];
    small = small * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: small, length: i + 1 };
  }
  const { value, length } = readVarint(b, off, limit, page);
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new SqliteCorruptError('ERR_SQLITE_CELL', page, `a size of ${value} bytes`);
  return { value: Number(value), length };
}

// ---- pages ----

export interface BtreePage {
  readonly page: number;
  readonly type: number;
  readonly cellCount: number;
  /** Offsets of the cells, in order. */
  readonly cells: readonly number[];
  readonly rightmost: number;
  readonly bytes: Uint8Array;
  readonly usable: number;
}

export function decodePage(bytes: Uint8Array, page: number, usable: number): BtreePage {
  const hoff = page === 1 ? HEADER_BYTES : 0;
  if (bytes.length < usable) throw new SqliteCorruptError('ERR_SQLITE_SHORT', page, `${bytes.length} bytes read`);
  const type = bytes[hoff];
  const interior = type === PageType.IndexInterior || type === PageType.TableInterior;
  if (!interior && type !== PageType.IndexLeaf && type !== PageType.TableLeaf)
    throw new SqliteCorruptError('ERR_SQLITE_PAGE_TYPE', page, `unknown page type ${type}`);
  const cellCount = (bytes[hoff + 3] << 8) | bytes[hoff + 4];
  const hlen = interior ? 12 : 8;
  const arrayEnd = hoff + hlen + 2 * cellCount;
  if (arrayEnd > usable) throw new SqliteCorruptError('ERR_SQLITE_CELL', page, `${cellCount} cells do not fit the page`);
  const rightmost = interior
    ? ((bytes[hoff + 8] << 24) | (bytes[hoff + 9] << 16) | (bytes[hoff + 10] << 8) | bytes[hoff + 11]) >>> 0
    : 0;
  const cells: number[] = new Array(cellCount);
  for (let i = 0; i < cellCount; i++) {
    const at = hoff + hlen + 2 * i;
    const ptr = (bytes[at] << 8) | bytes[at + 1];
    if (ptr < arrayEnd || ptr >= usable)
      throw new SqliteCorruptError('ERR_SQLITE_CELL', page, `cell ${i} points to ${ptr}, outside the cell area`);
    cells[i] = ptr;
  }
  return { page, type, cellCount, cells, rightmost, bytes, usable };
}

export const u32be = (b: Uint8Array, off: number) => ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;

/** Bytes of a payload kept on the page (the rest spills to overflow pages). */
export function localPayloadBytes(size: number, usable: number, index: boolean): number {
  const x = index ? Math.floor(((usable - 12) * 64) / 255) - 23 : usable - 35;
  if (size <= x) return size;
  const m = Math.floor(((usable - 12) * 32) / 255) - 23;
  const k = m + ((size - m) % (usable - 4));
  return k <= x ? k : m;
}

// ---- records ----

export type SqlValue = null | number | bigint | string | Uint8Array;

const decoder = new TextDecoder('utf-8');

/**
 * Decode a record (header of serial types, then values). `reals`, when given, receives whether
 * each value was stored as a REAL (3.0 decodes to the number 3 either way).
 */
export function decodeRecord(rec: Uint8Array, page = 0, reals?: boolean[]): SqlValue[] {
  const { value: headerBytes, length } = readSmallVarint(rec, 0, rec.length, page);
  if (headerBytes > rec.length || headerBytes < length)
    throw new SqliteCorruptError('ERR_SQLITE_RECORD', page, 'record header larger than the record');
  const values: SqlValue[] = [];
  let h = length;
  let d = headerBytes;
  const view = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  while (h < headerBytes) {
    const { value: st, length: l } = readSmallVarint(rec, h, headerBytes, page);
    h += l;
    const size = serialSize(st);
    if (d + size > rec.length) throw new SqliteCorruptError('ERR_SQLITE_RECORD', page, 'record values run past the payload');
    values.push(decodeValue(st, rec, view, d, size, page));
    reals?.push(st === 7);
    d += size;
  }
  return values;
}

const MAX_EXACT = 2n ** 53n;
const MIN_EXACT = -MAX_EXACT;

/** A 64-bit integer as JavaScript gives it back: a number when exact (within 2^53), else a bigint. */
export function exactInteger(v: bigint): number | bigint {
  return v >= MIN_EXACT && v <= MAX_EXACT ? Number(v) : v;
}

const SERIAL_SIZES = [0, 1, 2, 3, 4, 6, 8, 8, 0, 0, 0, 0];

export function serialSize(st: number): number {
  if (st < 12) return SERIAL_SIZES[st];
  return Math.floor((st - 12) / 2);
}

function decodeValue(st: number, rec: Uint8Array, view: DataView, off: number, size: number, page: number): SqlValue {
  switch (st) {
    case 0:
      return null;
    case 1:
      return view.getInt8(off);
    case 2:
      return view.getInt16(off);
    case 3:
      return (view.getInt8(off) << 16) | view.getUint16(off + 1);
    case 4:
      return view.getInt32(off);
    case 5:
      return view.getInt16(off) * 2 ** 32 + view.getUint32(off + 2);
    case 6:
      return exactInteger(view.getBigInt64(off));
    case 7:
      return view.getFloat64(off);
    case 8:
      return 0;
    case 9:
      return 1;
    case 10:
    case 11:
      throw new SqliteCorruptError('ERR_SQLITE_RECORD', page, `reserved serial type ${st}`);
    default:
      return st % 2 === 0 ? rec.slice(off, off + size) : decoder.decode(rec.subarray(off, off + size));
  }
}

// ---- SQLite's sort order (BINARY collation) ----

const classOf = (v: SqlValue) =>
  v === null ? 0 : typeof v === 'number' || typeof v === 'bigint' ? 1 : typeof v === 'string' ? 2 : 3;
const encoder = new TextEncoder();

/** Compare two values as SQLite does: NULL < numbers (integers and reals compared exactly) < TEXT < BLOB. */
export function compareValues(a: SqlValue, b: SqlValue): number {
  const ca = classOf(a);
  const cb = classOf(b);
  if (ca !== cb) return ca - cb;
  if (ca === 0) return 0;
  if (ca === 1) return compareNumbers(a as number | bigint, b as number | bigint);
  const ba = typeof a === 'string' ? encoder.encode(a) : (a as Uint8Array);
  const bb = typeof b === 'string' ? encoder.encode(b) : (b as Uint8Array);
  return Buffer.compare(
    Buffer.from(ba.buffer, ba.byteOffset, ba.byteLength),
    Buffer.from(bb.buffer, bb.byteOffset, bb.byteLength),
  );
}

function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  // An integer beyond 2^53 against a double: compare exactly through the double's integer part.
  const big = typeof a === 'bigint' ? a : (b as bigint);
  const other = typeof a === 'bigint' ? b : a;
  let r: number;
  if (typeof other === 'bigint') r = big < other ? -1 : big > other ? 1 : 0;
  else if (!Number.isFinite(other)) r = other > 0 ? -1 : 1;
  else {
    const t = BigInt(Math.trunc(other));
    r = big < t ? -1 : big > t ? 1 : other === Math.trunc(other) ? 0 : other > 0 ? -1 : 1;
  }
  return typeof a === 'bigint' ? r : -r;
}

/** Compare a key prefix with the first columns of an index record (ASC columns). */
export function compareKeyPrefix(record: readonly SqlValue[], key: readonly SqlValue[]): number {
  for (let i = 0; i < key.length; i++) {
    const c = compareValues(record[i] ?? null, key[i]);
    if (c !== 0) return c;
  }
  return 0;
}
