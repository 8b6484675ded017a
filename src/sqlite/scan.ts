/**
 * Filtered scans: a predicate (comparisons of a column with a constant, AND-ed), a projection and
 * COUNT / SUM / MIN / MAX. Pushed down, `sqlite_scan` evaluates them on the target and hands the
 * host only what it cannot fold (values that are not integers for SUM, TEXT/BLOB for MIN/MAX, rows
 * that spill to overflow pages); the fetched twin does everything here. Both answer as SQLite does
 * for comparisons in its sort order (NULL matches no comparison) and its aggregate rules.
 */
import { SqliteQueryError } from './errors.js';
import { compareValues, decodeRecord, type SqlValue, serialSize } from './format.js';
import { keyBytes, writeKey } from './input.js';

export type CompareOp = '<' | '<=' | '=' | '!=' | '>=' | '>';
export const COMPARE_OPS: readonly CompareOp[] = ['<', '<=', '=', '!=', '>=', '>'];

export interface Term {
  readonly column: string;
  readonly op: CompareOp;
  readonly value: SqlValue;
}

export interface ScanRequest {
  readonly where?: readonly Term[];
  /** Columns of the matching rows to return (none: only aggregates). */
  readonly columns?: readonly string[];
  readonly sum?: string;
  readonly min?: string;
  readonly max?: string;
  /** Rows returned at most (aggregates still cover every matching row). */
  readonly limit?: number;
}

export interface ScanAnswer {
  /** Matching rows (rowid and the requested columns), in rowid order. */
  readonly rows: { rowid: bigint; values: SqlValue[] }[];
  readonly count: number;
  readonly sum: SqlValue;
  readonly min: SqlValue;
  readonly max: SqlValue;
}

export const MAX_TERMS = 8;

/** Does `value` satisfy `op constant`? NULL on either side matches nothing. */
export function termMatches(value: SqlValue, op: CompareOp, constant: SqlValue): boolean {
  if (value === null || constant === null) return false;
  const c = compareValues(value, constant);
  switch (op) {
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
    case '>=':
      return c >= 0;
    case '>':
      return c > 0;
  }
}

/** SUM as SQLite computes it: integers exactly (overflow is an error), anything else as doubles. */
export class SumAccumulator {
  private int = 0n;
  private approx = false;
  private any = false;
  private double = 0;
  private compensation = 0;

  /** A value of the summed column; `isReal` when it was stored as a REAL. */
  add(v: SqlValue, isReal: boolean): void {
    if (v === null) return;
    if (typeof v === 'bigint' || (typeof v === 'number' && !isReal)) this.addInteger(BigInt(v));
    else this.addReal(typeof v === 'number' ? v : typeof v === 'string' ? numericPrefix(v) : 0);
  }

  /** Integers (the target sends its exact partial sum of them). */
  addInteger(v: bigint): void {
    this.any = true;
    this.int += v;
  }

  addReal(x: number): void {
    this.any = true;
    this.approx = true;
    // Kahan-Babuska-Neumaier, as SQLite (3.43+).
    const t = this.double + x;
    if (Math.abs(this.double) >= Math.abs(x)) this.compensation += this.double - t + x;
    else this.compensation += x - t + this.double;
    this.double = t;
  }

  result(): SqlValue {
    if (!this.any) return null;
    if (this.approx) return this.double + this.compensation + Number(this.int);
    if (this.int > 2n ** 63n - 1n || this.int < -(2n ** 63n))
      throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', 'integer overflow in SUM');
    return this.int >= -(2n ** 53n) && this.int <= 2n ** 53n ? Number(this.int) : this.int;
  }
}

function numericPrefix(s: string): number {
  const m = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(s);
  return m ? Number(m[0]) : 0;
}

/** Keeps the least (or greatest) non-NULL value in SQLite's order. */
export class BestValue {
  value: SqlValue = null;
  constructor(private readonly greatest: boolean) {}
  offer(v: SqlValue): void {
    if (v === null) return;
    if (this.value === null) {
      this.value = v;
      return;
    }
    const c = compareValues(v, this.value);
    if (this.greatest ? c > 0 : c < 0) this.value = v;
  }
}

// ---- the wire format of sqlite_scan (examples/sqlite/sqlite_scan.c) ----

const TAG = { row: 1, colval: 2, foldSum: 3, foldMin: 4, foldMax: 5, needsHost: 6, end: 7 } as const;
export const SCAN_ARGS_FIXED_BYTES = 64 + MAX_TERMS * 40;
export const CURSOR_BYTES = 56 + 24 * 4 * 2 + 32 * 4;
export const SCAN_ARGS_BYTES = SCAN_ARGS_FIXED_BYTES + CURSOR_BYTES;
const OP_CODE: Record<CompareOp, number> = { '<': 0, '<=': 1, '=': 2, '!=': 3, '>=': 4, '>': 5 };

export interface ScanPlan {
  /** Column indexes. */
  readonly terms: { col: number; op: CompareOp; value: SqlValue }[];
  readonly proj: number[];
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly rowidColumn: number;
}

/** The argument block of sqlite_scan; `argOff` is where it will lie in the input blob. */
export function encodeScanArgs(plan: ScanPlan, argOff: number, cursor: Uint8Array | undefined): Buffer {
  const bytesNeeded = plan.terms.reduce((n: number, t) => n + keyBytes(t.value), 0);
  const b = Buffer.alloc(SCAN_ARGS_BYTES + Math.ceil(bytesNeeded / 8) * 8 + 8);
  let mask = 0n;
  for (const c of plan.proj) mask |= 1n << BigInt(c);
  const needed = [...plan.proj, plan.sum, plan.min, plan.max].filter((c) => c >= 0);
  b.writeBigUInt64LE(BigInt(plan.terms.length), 0);
  b.writeBigUInt64LE(mask, 8);
  b.writeBigUInt64LE(BigInt(plan.sum + 1), 16);
  b.writeBigUInt64LE(BigInt(plan.min + 1), 24);
  b.writeBigUInt64LE(BigInt(plan.max + 1), 32);
  b.writeBigUInt64LE(BigInt(plan.rowidColumn + 1), 40);
  b.writeBigUInt64LE(BigInt(needed.length ? Math.max(...needed) + 1 : 0), 48);
  b.writeBigUInt64LE(cursor ? 1n : 0n, 56);
  let extra = SCAN_ARGS_BYTES;
  // Terms sorted by column: the program walks a record's columns once.
  const terms = [...plan.terms].sort((x, y) => x.col - y.col);
  terms.forEach((t, i) => {
    const at = 64 + i * 40;
    b.writeBigUInt64LE(BigInt(t.col), at);
    b.writeBigUInt64LE(BigInt(OP_CODE[t.op]), at + 8);
    extra = writeKey(b, at + 16, t.value, argOff, extra);
  });
  if (cursor) Buffer.from(cursor).copy(b, SCAN_ARGS_FIXED_BYTES);
  return b.subarray(0, Math.max(extra, SCAN_ARGS_BYTES));
}

/** What one execution of sqlite_scan returned. */
export interface ScanPart {
  rows: { rowid: bigint; cols: Map<number, SqlValue> }[];
  foldSum: { value: SqlValue; isReal: boolean }[];
  foldMin: SqlValue[];
  foldMax: SqlValue[];
  needsHost: bigint[];
  count: number;
  isum: bigint;
  nsum: number;
  min?: { kind: number; bits: bigint };
  max?: { kind: number; bits: bigint };
  cursor?: Buffer;
}

function valueOfSerial(serial: number, bytes: Uint8Array): SqlValue {
  // A one-column record: header (2 bytes) then the value.
  if (serial >= 128) {
    const rec = Buffer.alloc(bytes.length + 10);
    let n = serial;
    const v: number[] = [];
    do {
      v.unshift(n & 0x7f);
      n = Math.floor(n / 128);
    } while (n > 0);
    const head = v.map((x, i) => (i < v.length - 1 ? x | 0x80 : x));
    rec[0] = head.length + 1;
    Buffer.from(head).copy(rec, 1);
    Buffer.from(bytes).copy(rec, head.length + 1);
    return decodeRecord(rec.subarray(0, head.length + 1 + bytes.length))[0];
  }
  const rec = Buffer.alloc(bytes.length + 2);
  rec[0] = 2;
  rec[1] = serial;
  Buffer.from(bytes).copy(rec, 2);
  return decodeRecord(rec)[0];
}

export function decodeScanOutput(out: Uint8Array, rowidColumn: number, sumIsRowid: boolean): ScanPart {
  const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  const part: ScanPart = { rows: [], foldSum: [], foldMin: [], foldMax: [], needsHost: [], count: 0, isum: 0n, nsum: 0 };
  let at = 0;
  const bad = () => new SqliteQueryError('ERR_SQLITE_ARGUMENT', `malformed sqlite_scan output at byte ${at}`);
  while (at < b.length) {
    if (at + 16 > b.length) throw bad();
    const tag = b.readUInt32LE(at);
    const a = b.readUInt32LE(at + 4);
    const v = b.readBigUInt64LE(at + 8);
    at += 16;
    const take = (n: number) => {
      if (at + n > b.length) throw bad();
      const x = b.subarray(at, at + n);
      at += n;
      return x;
    };
    switch (tag) {
      case TAG.row:
        part.rows.push({ rowid: BigInt.asIntN(64, v), cols: new Map() });
        break;
      case TAG.colval: {
        const row = part.rows[part.rows.length - 1];
        if (!row) throw bad();
        if (a === rowidColumn) row.cols.set(a, null);
        else row.cols.set(a, valueOfSerial(Number(v), take(serialSize(Number(v)))));
        break;
      }
      case TAG.foldSum: {
        if (sumIsRowid) part.foldSum.push({ value: b.readBigInt64LE(take(8).byteOffset - b.byteOffset), isReal: false });
        else part.foldSum.push({ value: valueOfSerial(a, take(serialSize(a))), isReal: a === 7 });
        break;
      }
      case TAG.foldMin:
        part.foldMin.push(valueOfSerial(a, take(serialSize(a))));
        break;
      case TAG.foldMax:
        part.foldMax.push(valueOfSerial(a, take(serialSize(a))));
        break;
      case TAG.needsHost:
        part.needsHost.push(BigInt.asIntN(64, v));
        break;
      case TAG.end: {
        const r = take(64);
        part.count = Number(r.readBigUInt64LE(0));
        part.isum = r.readBigInt64LE(8);
        part.nsum = Number(r.readBigUInt64LE(16));
        const mk = Number(r.readBigUInt64LE(24));
        if (mk) part.min = { kind: mk, bits: r.readBigUInt64LE(32) };
        const xk = Number(r.readBigUInt64LE(40));
        if (xk) part.max = { kind: xk, bits: r.readBigUInt64LE(48) };
        if (r.readBigUInt64LE(56) === 1n) part.cursor = Buffer.from(take(CURSOR_BYTES));
        if (at !== b.length) throw bad();
        return part;
      }
      default:
        throw bad();
    }
  }
  throw bad();
}

/** A number folded on the target (integer or real bits) as a JavaScript value. */
export function foldedNumber(kind: number, bits: bigint): SqlValue {
  if (kind === 2) {
    const f = Buffer.alloc(8);
    f.writeBigUInt64LE(bits);
    return f.readDoubleLE();
  }
  const i = BigInt.asIntN(64, bits);
  return i >= -(2n ** 53n) && i <= 2n ** 53n ? Number(i) : i;
}
