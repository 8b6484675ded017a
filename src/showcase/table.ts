/**
 * The scan showcase: a table of fixed 64-byte rows, a filter on `quantity` whose threshold sets the
 * selectivity, a projection of (id, price) and aggregates of price. The client-side functions here
 * are the baseline the `table_scan` storage function (examples/scan.c) is measured against.
 */
import type { ByteReader, ByteWriter } from './btree.js';

export const ROW_SIZE_BYTES = 64;
/** Quantities are uniform in [0, QUANTITY_RANGE): a threshold of s * QUANTITY_RANGE selects a fraction s. */
export const QUANTITY_RANGE = 100_000;

export interface Row {
  readonly id: bigint;
  readonly category: number;
  readonly quantity: number;
  readonly price: bigint;
  readonly timestamp: bigint;
}

export interface Aggregate {
  count: bigint;
  sum: bigint;
  min: bigint;
  max: bigint;
}

/** Deterministic pseudo-random row `i`. */
export function rowAt(i: number): Row {
  let x = (i + 1) * 0x9e3779b1;
  x ^= x >>> 15;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  const r = x >>> 0;
  return {
    id: BigInt(i),
    category: r % 16,
    quantity: r % QUANTITY_RANGE,
    price: BigInt((Math.imul(r, 2654435761) >>> 0) % 1_000_000) - 500_000n,
    timestamp: 1_700_000_000_000n + BigInt(i),
  };
}

export function encodeRow(row: Row, into: DataView, at: number): void {
  into.setBigUint64(at, row.id, true);
  into.setUint32(at + 8, row.category, true);
  into.setUint32(at + 12, row.quantity, true);
  into.setBigInt64(at + 16, row.price, true);
  into.setBigUint64(at + 24, row.timestamp, true);
}

/** Write `rowCount` rows from `offsetBytes` in chunks of `chunkBytes`. */
export async function buildTable(
  rowCount: number,
  offsetBytes: number,
  write: ByteWriter,
  options: { chunkBytes?: number; progress?: (doneBytes: number, totalBytes: number) => void } = {},
): Promise<{ offsetBytes: number; lengthBytes: number }> {
  const rowsPerChunk = Math.max(1, Math.floor((options.chunkBytes ?? 1 << 20) / ROW_SIZE_BYTES));
  for (let first = 0; first < rowCount; first += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rowCount - first);
    const buf = new Uint8Array(n * ROW_SIZE_BYTES);
    const view = new DataView(buf.buffer);
    for (let j = 0; j < n; j++) encodeRow(rowAt(first + j), view, j * ROW_SIZE_BYTES);
    await write(offsetBytes + first * ROW_SIZE_BYTES, buf);
    options.progress?.((first + n) * ROW_SIZE_BYTES, rowCount * ROW_SIZE_BYTES);
  }
  return { offsetBytes, lengthBytes: rowCount * ROW_SIZE_BYTES };
}

export const thresholdFor = (selectivity: number): number => Math.round(selectivity * QUANTITY_RANGE);

/** Client-side scan: read every row, filter, project and aggregate here. */
export async function scanAtClient(
  read: ByteReader,
  table: { offsetBytes: number; lengthBytes: number },
  threshold: number,
  options: { project?: boolean; chunkBytes?: number } = {},
): Promise<{ aggregate: Aggregate; projected: { id: bigint; price: bigint }[] }> {
  const chunk = options.chunkBytes ?? 128 * 1024;
  const aggregate: Aggregate = { count: 0n, sum: 0n, min: 0n, max: 0n };
  const projected: { id: bigint; price: bigint }[] = [];
  const end = table.offsetBytes + table.lengthBytes;
  // Keep a few reads in flight, as a sensible client would.
  const inflight: Promise<Uint8Array>[] = [];
  let next = table.offsetBytes;
  const issue = () => {
    if (next >= end) return;
    const n = Math.min(chunk, end - next);
    inflight.push(read(next, n));
    next += n;
  };
  for (let k = 0; k < 4; k++) issue();
  while (inflight.length > 0) {
    const bytes = await (inflight.shift() as Promise<Uint8Array>);
    issue();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 0; at + ROW_SIZE_BYTES <= bytes.length; at += ROW_SIZE_BYTES) {
      if (view.getUint32(at + 12, true) >= threshold) continue;
      const price = view.getBigInt64(at + 16, true);
      if (aggregate.count === 0n || price < aggregate.min) aggregate.min = price;
      if (aggregate.count === 0n || price > aggregate.max) aggregate.max = price;
      aggregate.count++;
      aggregate.sum += price;
      if (options.project) projected.push({ id: view.getBigUint64(at, true), price });
    }
  }
  return { aggregate, projected };
}

/** Decode the output of `table_scan`: projected pairs, then the aggregate. */
export function decodeScanOutput(output: Uint8Array): { aggregate: Aggregate; projected: { id: bigint; price: bigint }[] } {
  const view = new DataView(output.buffer, output.byteOffset, output.byteLength);
  const tail = output.length - 32;
  if (tail < 0 || tail % 16 !== 0) throw new Error(`scan output of ${output.length} bytes is malformed`);
  const projected: { id: bigint; price: bigint }[] = [];
  for (let at = 0; at < tail; at += 16)
    projected.push({ id: view.getBigUint64(at, true), price: view.getBigInt64(at + 8, true) });
  return {
    projected,
    aggregate: {
      count: view.getBigUint64(tail, true),
      sum: view.getBigInt64(tail + 8, true),
      min: view.getBigInt64(tail + 16, true),
      max: view.getBigInt64(tail + 24, true),
    },
  };
}
