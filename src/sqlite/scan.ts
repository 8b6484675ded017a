/**
 * Filtered scans: a predicate (comparisons of a column with a constant, AND-ed), a projection and
 * COUNT / SUM / MIN / MAX. Pushed down, `sqlite_scan` evaluates them on the target and hands the
 * host only what it cannot fold (values that are not integers for SUM, TEXT/BLOB for MIN/MAX, rows
 * that spill to overflow pages); the fetched twin does everything here. Both answer as SQLite does
 * for comparisons in its sort order (NULL matches no comparison) and its aggregate rules.
 */
import { SqliteQueryError } from './errors.js';
import { compareValues, decodeRecord, exactInteger, type SqlValue, serialSize } from './format.js';
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
  /** Matching rows (rowid and the requested columns), in rowid order; none when no columns were asked for. */
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
    return exactInteger(this.int);
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

const TAG = { row: 1, value: 2, needsHost: 6, end: 7 } as const;
/** Roles of an SC_VALUE item (sc_out_op): projected, or an aggregate's input the target left to the host. */
const ROLE = { proj: 1, sum: 2, min: 4, max: 8 } as const;
/** struct sc_args up to its terms (the host sends only the terms in use, then their bytes, then the cursor). */
export const SCAN_ARGS_FIXED_BYTES = 64;
const TERM_BYTES = 40;
/** The cursor's head (struct sc_cursor up to its levels), then 8 bytes per interior level. */
const CURSOR_HEAD_BYTES = 40;
const CURSOR_LEVEL_BYTES = 8;
const CURSOR_MAX_LEVELS = 20;
/** struct sc_result: count, isum, nsum, flags, then the best integer and real for MIN and MAX. */
const RESULT_BYTES = 64;
const HAVE_MORE = 16;
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

/**
 * The argument block of sqlite_scan (struct sc_args: 64 bytes, the terms in use, their constants'
 * bytes, then the cursor to resume from); `argOff` is where it will lie in the input blob.
 */
export function encodeScanArgs(plan: ScanPlan, argOff: number, cursor: Uint8Array | undefined): Buffer {
  const keys = plan.terms.reduce((n: number, t) => n + keyBytes(t.value), 0);
  const cursorAt = SCAN_ARGS_FIXED_BYTES + plan.terms.length * TERM_BYTES + keys;
  const b = Buffer.alloc(cursorAt + (cursor?.length ?? 0));
  let proj = 0n;
  for (const c of plan.proj) proj |= 1n << BigInt(c);
  let need = proj;
  for (const c of [plan.sum, plan.min, plan.max]) if (c >= 0) need |= 1n << BigInt(c);
  b.writeBigUInt64LE(BigInt(plan.terms.length), 0);
  b.writeBigUInt64LE(proj, 8);
  b.writeBigUInt64LE(need, 16);
  b.writeBigUInt64LE(BigInt(plan.sum + 1), 24);
  b.writeBigUInt64LE(BigInt(plan.min + 1), 32);
  b.writeBigUInt64LE(BigInt(plan.max + 1), 40);
  b.writeBigUInt64LE(BigInt(plan.rowidColumn + 1), 48);
  b.writeBigUInt64LE(BigInt(cursor ? argOff + cursorAt : 0), 56);
  let extra = SCAN_ARGS_FIXED_BYTES + plan.terms.length * TERM_BYTES;
  // Terms sorted by column: the program walks a record's columns once.
  const terms = [...plan.terms].sort((x, y) => x.col - y.col);
  terms.forEach((t, i) => {
    const at = SCAN_ARGS_FIXED_BYTES + i * TERM_BYTES;
    b.writeBigUInt64LE(BigInt(t.col), at);
    b.writeBigUInt64LE(BigInt(OP_CODE[t.op]), at + 8);
    extra = writeKey(b, at + 16, t.value, argOff, extra);
  });
  if (cursor) b.set(cursor, cursorAt);
  return b;
}

/** What one execution of sqlite_scan returned. */
export interface ScanPart {
  rows: { rowid: bigint; cols: Map<number, SqlValue> }[];
  foldSum: { value: SqlValue; isReal: boolean }[];
  /** Candidates for MIN and MAX: values the target left to the host, and its best integer and real. */
  foldMin: SqlValue[];
  foldMax: SqlValue[];
  needsHost: bigint[];
  count: number;
  isum: bigint;
  nsum: number;
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

export function decodeScanOutput(out: Uint8Array, rowidColumn: number): ScanPart {
  const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  const part: ScanPart = { rows: [], foldSum: [], foldMin: [], foldMax: [], needsHost: [], count: 0, isum: 0n, nsum: 0 };
  let at = 0;
  const bad = () => new SqliteQueryError('ERR_SQLITE_ARGUMENT', `malformed sqlite_scan output at byte ${at}`);
  const take = (n: number) => {
    if (at + n > b.length) throw bad();
    const x = b.subarray(at, at + n);
    at += n;
    return x;
  };
  while (at < b.length) {
    if (at + 16 > b.length) throw bad();
    const tag = b.readUInt32LE(at);
    const a = b.readUInt32LE(at + 4);
    const v = b.readBigUInt64LE(at + 8);
    at += 16;
    switch (tag) {
      case TAG.row:
        part.rows.push({ rowid: BigInt.asIntN(64, v), cols: new Map() });
        break;
      case TAG.value: {
        const col = a & 0xff;
        const roles = a >>> 8;
        const serial = Number(v);
        // The rowid alias travels as the rowid's 8 bytes, little-endian; other values as stored.
        const value =
          col === rowidColumn ? foldedNumber(1, take(8).readBigUInt64LE(0)) : valueOfSerial(serial, take(serialSize(serial)));
        if (roles & ROLE.proj) {
          const row = part.rows[part.rows.length - 1];
          if (!row) throw bad();
          row.cols.set(col, value);
        }
        if (roles & ROLE.sum) part.foldSum.push({ value, isReal: serial === 7 });
        if (roles & ROLE.min) part.foldMin.push(value);
        if (roles & ROLE.max) part.foldMax.push(value);
        break;
      }
      case TAG.needsHost:
        part.needsHost.push(BigInt.asIntN(64, v));
        break;
      case TAG.end: {
        const r = take(RESULT_BYTES);
        part.count = Number(r.readBigUInt64LE(0));
        part.isum = r.readBigInt64LE(8);
        part.nsum = Number(r.readBigUInt64LE(16));
        const flags = Number(r.readBigUInt64LE(24));
        // best[]: MIN of the integers, MIN of the reals, MAX of the integers, MAX of the reals.
        for (let i = 0; i < 4; i++) {
          if (!(flags & (1 << i))) continue;
          const best = foldedNumber(i & 1 ? 2 : 1, r.readBigUInt64LE(32 + i * 8));
          (i < 2 ? part.foldMin : part.foldMax).push(best);
        }
        if (flags & HAVE_MORE) {
          if (at + CURSOR_HEAD_BYTES > b.length) throw bad();
          const depth = Number(b.readBigUInt64LE(at + 24));
          if (depth > CURSOR_MAX_LEVELS) throw bad();
          part.cursor = Buffer.from(take(CURSOR_HEAD_BYTES + depth * CURSOR_LEVEL_BYTES));
        }
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
  return exactInteger(i);
}
