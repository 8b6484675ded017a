/**
 * The on-disk B+-tree of the BPF-KV benchmark (XRP, OSDI'22): 512-byte nodes holding up to 31
 * sorted u64 keys and 31 pointers, 64-byte values stored apart in key order. The builder lays a
 * tree out for a key count and a depth; the client-side operations here are the baseline that
 * storage functions (examples/btree.c) are measured against.
 *
 * Layout: a 512-byte header at offset 0, then the leaves (contiguous, in key order), then each
 * internal level bottom-up (the root last), then the values from a 4 KiB boundary.
 */

export const NODE_SIZE_BYTES = 512;
export const FANOUT = 31;
export const VALUE_SIZE_BYTES = 64;
export const FLAG_LEAF = 1;
const HEADER_MAGIC = 0x3145455254424e4en; // "NNBTREE1"
export const MAX_DEPTH = 6;

export interface BtreeLayout {
  readonly keyCount: number;
  readonly depth: number;
  readonly rootOffset: number;
  readonly leavesStart: number;
  readonly leavesEnd: number;
  readonly valuesStart: number;
  readonly nodeCount: number;
  readonly totalBytes: number;
}

/** The i-th key of a built tree: odd numbers, so even numbers are known misses. */
export const keyAt = (i: number): bigint => BigInt(i) * 2n + 1n;

/** The value stored under `key`: the key itself, then bytes derived from it. */
export function valueForKey(key: bigint): Uint8Array {
  const value = new Uint8Array(VALUE_SIZE_BYTES);
  const view = new DataView(value.buffer);
  view.setBigUint64(0, key, true);
  const seed = Number(key & 0xffffffn);
  for (let j = 8; j < VALUE_SIZE_BYTES; j++) value[j] = (seed * 131 + j * 7) & 0xff;
  return value;
}

/** Fan-out of internal nodes that gives `depth` levels for `leaves` leaves. */
function internalFanout(leaves: number, depth: number): number {
  if (depth === 1) return 1;
  const f = Math.max(2, Math.ceil(leaves ** (1 / (depth - 1)) - 1e-9));
  return f;
}

/**
 * Where each part of a tree of `keyCount` keys and `depth` levels goes. Throws if impossible.
 * Internal nodes get the smallest fan-out that gives `depth` levels, or `options.fanout` when given.
 */
export function planBtree(
  keyCount: number,
  depth: number,
  options: { fanout?: number } = {},
): { layout: BtreeLayout; levelSizes: number[]; fanout: number } {
  if (!Number.isInteger(depth) || depth < 1 || depth > MAX_DEPTH)
    throw new RangeError(`depth must be 1..${MAX_DEPTH}, got ${depth}`);
  if (!Number.isSafeInteger(keyCount) || keyCount < 1) throw new RangeError(`key count must be positive, got ${keyCount}`);
  const leaves = Math.ceil(keyCount / FANOUT);
  if (depth === 1 && leaves > 1) throw new RangeError(`a tree of depth 1 holds at most ${FANOUT} keys`);
  if (options.fanout !== undefined && (!Number.isInteger(options.fanout) || options.fanout < 2 || options.fanout > FANOUT))
    throw new RangeError(`fan-out must be 2..${FANOUT}, got ${options.fanout}`);
  const fanout = depth === 1 ? 1 : (options.fanout ?? internalFanout(leaves, depth));
  if (fanout > FANOUT) throw new RangeError(`${keyCount} keys need more than ${depth} levels`);
  const levelSizes = [leaves];
  while (levelSizes[levelSizes.length - 1] > 1) levelSizes.push(Math.ceil(levelSizes[levelSizes.length - 1] / fanout));
  if (levelSizes.length !== depth) {
    throw new RangeError(`${keyCount} keys cannot form exactly ${depth} levels (got ${levelSizes.length}); use more keys`);
  }
  const nodeCount = levelSizes.reduce((a, b) => a + b, 0);
  const leavesStart = NODE_SIZE_BYTES;
  const nodesEnd = leavesStart + nodeCount * NODE_SIZE_BYTES;
  const valuesStart = Math.ceil(nodesEnd / 4096) * 4096;
  return {
    layout: {
      keyCount,
      depth,
      rootOffset: nodesEnd - NODE_SIZE_BYTES,
      leavesStart,
      leavesEnd: leavesStart + leaves * NODE_SIZE_BYTES,
      valuesStart,
      nodeCount,
      totalBytes: valuesStart + keyCount * VALUE_SIZE_BYTES,
    },
    levelSizes,
    fanout,
  };
}

/** Writes bytes at a byte offset of the namespace; resolves when they are written. */
export type ByteWriter = (offsetBytes: number, bytes: Uint8Array) => Promise<void>;

/**
 * Write a tree of `keyCount` keys and `depth` levels through `write`, in chunks of up to
 * `chunkBytes`. `progress` is called with the bytes written so far and the total.
 */
export async function buildBtree(
  keyCount: number,
  depth: number,
  write: ByteWriter,
  options: { chunkBytes?: number; fanout?: number; progress?: (doneBytes: number, totalBytes: number) => void } = {},
): Promise<BtreeLayout> {
  const { layout, levelSizes, fanout } = planBtree(keyCount, depth, { fanout: options.fanout });
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  let done = 0;
  const emit = async (offset: number, bytes: Uint8Array) => {
    await write(offset, bytes);
    done += bytes.length;
    options.progress?.(done, layout.totalBytes);
  };

  // Nodes, level by level. The first key of each node is remembered for the level above.
  let childFirstKeys: bigint[] = [];
  let childOffsets: number[] = [];
  let offset = layout.leavesStart;
  const nodesPerChunk = Math.max(1, Math.floor(chunkBytes / NODE_SIZE_BYTES));
  for (let level = 0; level < levelSizes.length; level++) {
    const count = levelSizes[level];
    const firstKeys: bigint[] = [];
    const offsets: number[] = [];
    for (let first = 0; first < count; first += nodesPerChunk) {
      const n = Math.min(nodesPerChunk, count - first);
      const buf = new Uint8Array(n * NODE_SIZE_BYTES);
      const view = new DataView(buf.buffer);
      for (let j = 0; j < n; j++) {
        const node = first + j;
        const at = j * NODE_SIZE_BYTES;
        const per = level === 0 ? FANOUT : fanout;
        const lo = node * per;
        const hi = Math.min(lo + per, level === 0 ? keyCount : childFirstKeys.length);
        view.setBigUint64(at, BigInt(hi - lo), true);
        view.setBigUint64(at + 8, BigInt(level === 0 ? FLAG_LEAF : 0), true);
        for (let k = lo; k < hi; k++) {
          const key = level === 0 ? keyAt(k) : childFirstKeys[k];
          const ptr = level === 0 ? layout.valuesStart + k * VALUE_SIZE_BYTES : childOffsets[k];
          view.setBigUint64(at + 16 + (k - lo) * 8, key, true);
          view.setBigUint64(at + 16 + FANOUT * 8 + (k - lo) * 8, BigInt(ptr), true);
        }
        firstKeys.push(level === 0 ? keyAt(lo) : childFirstKeys[lo]);
        offsets.push(offset + at);
      }
      await emit(offset, buf);
      offset += buf.length;
    }
    childFirstKeys = firstKeys;
    childOffsets = offsets;
  }

  // Values, in key order.
  const valuesPerChunk = Math.max(1, Math.floor(chunkBytes / VALUE_SIZE_BYTES));
  for (let first = 0; first < keyCount; first += valuesPerChunk) {
    const n = Math.min(valuesPerChunk, keyCount - first);
    const buf = new Uint8Array(n * VALUE_SIZE_BYTES);
    for (let j = 0; j < n; j++) buf.set(valueForKey(keyAt(first + j)), j * VALUE_SIZE_BYTES);
    await emit(layout.valuesStart + first * VALUE_SIZE_BYTES, buf);
  }

  await emit(0, encodeHeader(layout));
  return layout;
}

export function encodeHeader(layout: BtreeLayout): Uint8Array {
  const header = new Uint8Array(NODE_SIZE_BYTES);
  const view = new DataView(header.buffer);
  const fields = [
    HEADER_MAGIC,
    layout.keyCount,
    layout.depth,
    layout.rootOffset,
    layout.leavesStart,
    layout.leavesEnd,
    layout.valuesStart,
    layout.nodeCount,
    layout.totalBytes,
  ];
  fields.forEach((v, i) => {
    view.setBigUint64(i * 8, BigInt(v), true);
  });
  return header;
}

export function decodeHeader(header: Uint8Array): BtreeLayout {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (header.length < 72 || view.getBigUint64(0, true) !== HEADER_MAGIC) throw new Error('not a nearbpf B+-tree (bad magic)');
  const n = (i: number) => Number(view.getBigUint64(i * 8, true));
  return {
    keyCount: n(1),
    depth: n(2),
    rootOffset: n(3),
    leavesStart: n(4),
    leavesEnd: n(5),
    valuesStart: n(6),
    nodeCount: n(7),
    totalBytes: n(8),
  };
}

/** Reads bytes of the namespace: the baseline's only access to the data. */
export type ByteReader = (offsetBytes: number, lengthBytes: number) => Promise<Uint8Array>;

interface Node {
  leaf: boolean;
  keys: bigint[];
  ptrs: number[];
}

function parseNode(bytes: Uint8Array): Node {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const num = Number(view.getBigUint64(0, true));
  if (num < 1 || num > FANOUT) throw new Error(`corrupt node: ${num} keys`);
  const keys: bigint[] = [];
  const ptrs: number[] = [];
  for (let i = 0; i < num; i++) {
    keys.push(view.getBigUint64(16 + i * 8, true));
    ptrs.push(Number(view.getBigUint64(16 + FANOUT * 8 + i * 8, true)));
  }
  return { leaf: (view.getBigUint64(8, true) & 1n) === 1n, keys, ptrs };
}

/** Index of the last key <= want, or -1. */
function floorIndex(keys: bigint[], want: bigint): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid] <= want) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Client-side point lookup: one read per level, then one for the value. */
export async function lookupAtClient(read: ByteReader, layout: BtreeLayout, key: bigint): Promise<Uint8Array | undefined> {
  let offset = layout.rootOffset;
  for (;;) {
    const node = parseNode(await read(offset, NODE_SIZE_BYTES));
    const i = floorIndex(node.keys, key);
    if (i < 0) return undefined;
    if (node.leaf) return node.keys[i] === key ? read(node.ptrs[i], VALUE_SIZE_BYTES) : undefined;
    offset = node.ptrs[i];
  }
}

/** Client-side range query: pairs with lo <= key < hi, at most `limit`. */
export async function rangeAtClient(
  read: ByteReader,
  layout: BtreeLayout,
  lo: bigint,
  hi: bigint,
  limit = 32,
): Promise<{ key: bigint; value: Uint8Array }[]> {
  let offset = layout.rootOffset;
  let node = parseNode(await read(offset, NODE_SIZE_BYTES));
  while (!node.leaf) {
    offset = node.ptrs[Math.max(0, floorIndex(node.keys, lo))];
    node = parseNode(await read(offset, NODE_SIZE_BYTES));
  }
  const found: { key: bigint; ptr: number }[] = [];
  for (;;) {
    let done = false;
    for (let i = 0; i < node.keys.length; i++) {
      if (node.keys[i] < lo) continue;
      if (node.keys[i] >= hi || found.length >= limit) {
        done = true;
        break;
      }
      found.push({ key: node.keys[i], ptr: node.ptrs[i] });
    }
    offset += NODE_SIZE_BYTES;
    if (done || found.length >= limit || offset >= layout.leavesEnd) break;
    node = parseNode(await read(offset, NODE_SIZE_BYTES));
  }
  if (found.length === 0) return [];
  const values = await read(found[0].ptr, found.length * VALUE_SIZE_BYTES);
  return found.map((f, i) => ({ key: f.key, value: values.subarray(i * VALUE_SIZE_BYTES, (i + 1) * VALUE_SIZE_BYTES) }));
}

/** Client-side batch: all lookups advance together, one level per round of parallel reads. */
export async function batchAtClient(read: ByteReader, layout: BtreeLayout, keys: bigint[]): Promise<(Uint8Array | undefined)[]> {
  return Promise.all(keys.map((k) => lookupAtClient(read, layout, k)));
}
