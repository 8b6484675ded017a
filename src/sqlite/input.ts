/**
 * The input blob of the SQLite storage functions (struct sq_input in examples/sqlite/sqlite.h):
 * a 64-byte header (location, page geometry, roots, limit), the query's arguments, then the
 * extent table. Also the decoder of their row output (struct sq_row_out + record).
 */
import { SqliteQueryError } from './errors.js';
import type { DatabaseHeader } from './format.js';
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
  readonly flags?: number;
  readonly limit?: number;
}

export function encodeInput(location: DatabaseLocation, header: DatabaseHeader, f: InputFields): Buffer {
  const extents = location.extents ?? [];
  const argOff = INPUT_HEADER_BYTES;
  const extOff = argOff + Math.ceil(f.args.length / 8) * 8;
  const total = extOff + extents.length * EXTENT_BYTES;
  if (total > MAX_INPUT_BYTES)
    throw new SqliteQueryError(
      'ERR_SQLITE_TOO_LARGE',
      `the query and extent map take ${total} bytes; the input blob holds ${MAX_INPUT_BYTES}`,
    );
  const b = Buffer.alloc(total);
  b.writeBigUInt64LE(BigInt(extents.length > 0 ? 0 : location.offsetBytes), 0);
  b.writeUInt32LE(header.pageSize, 8);
  b.writeUInt32LE(header.usableSize, 12);
  b.writeUInt32LE(header.pageCount, 16);
  b.writeUInt32LE(extents.length, 20);
  b.writeUInt32LE(extOff, 24);
  b.writeUInt32LE(f.tableRoot, 28);
  b.writeUInt32LE(f.indexRoot ?? 0, 32);
  b.writeUInt32LE(f.nargs, 36);
  b.writeUInt32LE(argOff, 40);
  b.writeUInt32LE(f.flags ?? 0, 44);
  b.writeBigUInt64LE(BigInt(f.limit ?? 0), 48);
  b.set(f.args, argOff);
  extents.forEach((e, i) => {
    const at = extOff + i * EXTENT_BYTES;
    b.writeBigUInt64LE(BigInt(e.fileOffset), at);
    b.writeBigUInt64LE(BigInt(e.nsOffset), at + 8);
    b.writeBigUInt64LE(BigInt(e.length), at + 16);
  });
  return b;
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
