/**
 * Array and hash maps whose values live in the program's sandbox: each map's values are one
 * region, so the pointer `bpf_map_lookup_elem` returns is a real sandbox address that both engines
 * bounds-check like any other. Keys and the hash index stay on the host: programs never get a
 * pointer to them, and keeping them out of the sandbox means a program cannot corrupt the index.
 *
 * Results follow Linux: 0 on success, a negative errno otherwise (shared by helpers and host API).
 */
import { threadId } from 'node:worker_threads';
import type { RegionSpec, SandboxMemory } from '../vm/memory.js';
import { MapArgumentError, MapMemoryLimitError } from './errors.js';

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

export const EPERM = 1;
export const ENOENT = 2;
export const E2BIG = 7;
export const EEXIST = 17;
export const EINVAL = 22;

/** Default bound on the memory of all maps of one sandbox (values, keys and index estimate). */
export const DEFAULT_MAP_MEMORY_LIMIT_BYTES = 64 * 1024 * 1024;
/** Bytes charged per hash entry for the index beyond its key (bucket, chain and free-list words, with room). */
export const HASH_INDEX_OVERHEAD_BYTES_PER_ENTRY = 64;
/** A sandbox region's length is a u32. */
const MAX_REGION_SIZE_BYTES = 0xffffffff;

export type MapType = 'array' | 'hash';

/** Flags as a bigint; anything that is not an integer becomes an invalid flag value (-1). */
function flagsOf(flags: number | bigint): bigint {
  return typeof flags === 'bigint' ? flags : Number.isSafeInteger(flags) ? BigInt(flags) : -1n;
}

export interface MapSpec {
  readonly name: string;
  readonly type: MapType;
  readonly keySizeBytes: number;
  readonly valueSizeBytes: number;
  readonly maxEntries: number;
  /** Read-only for programs (its region is not writable) and frozen for the host (.rodata). */
  readonly readonly?: boolean;
  /** Initial value of entry 0 (array maps; global data sections). */
  readonly initialValue?: Uint8Array;
}

/** Values are 8-byte aligned, as in Linux, so a u64 in a value is always aligned. */
export function valueStrideBytes(valueSizeBytes: number): number {
  return Math.ceil(valueSizeBytes / 8) * 8;
}

/** Bytes a map occupies: its values region plus, for a hash map, host-side keys and index. */
export function mapMemoryBytes(spec: MapSpec): number {
  const values = valueStrideBytes(spec.valueSizeBytes) * (spec.type === 'hash' ? spec.maxEntries + 1 : spec.maxEntries);
  return spec.type === 'hash' ? values + spec.maxEntries * (spec.keySizeBytes + HASH_INDEX_OVERHEAD_BYTES_PER_ENTRY) : values;
}

function checkSpec(spec: MapSpec): void {
  const fail = (reason: string) => new MapArgumentError(spec.name, reason);
  for (const [what, v] of [
    ['key size', spec.keySizeBytes],
    ['value size', spec.valueSizeBytes],
    ['max_entries', spec.maxEntries],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw fail(`${what} ${v} is not a positive integer`);
  }
  if (spec.type === 'array' && spec.keySizeBytes !== 4) throw fail('array maps have 4-byte keys');
  if (spec.type !== 'array' && spec.type !== 'hash') throw fail(`unknown map type ${String(spec.type)}`);
  if (spec.initialValue !== undefined && (spec.type !== 'array' || spec.initialValue.length > spec.valueSizeBytes)) {
    throw fail('an initial value needs an array map and at most value-size bytes');
  }
}

/** The sandbox regions of `specs` (one per map, values only), after checking the total against `limitBytes`. */
export function mapRegionSpecs(specs: readonly MapSpec[], limitBytes = DEFAULT_MAP_MEMORY_LIMIT_BYTES): RegionSpec[] {
  let total = 0;
  return specs.map((spec) => {
    checkSpec(spec);
    total += mapMemoryBytes(spec);
    if (total > limitBytes) throw new MapMemoryLimitError(limitBytes, total, spec.name);
    const sizeBytes = valueStrideBytes(spec.valueSizeBytes) * (spec.type === 'hash' ? hashSlotCount(spec) : spec.maxEntries);
    if (sizeBytes > MAX_REGION_SIZE_BYTES) throw new MapMemoryLimitError(MAX_REGION_SIZE_BYTES, sizeBytes, spec.name);
    return { name: `map:${spec.name}`, sizeBytes, writable: !spec.readonly };
  });
}

/** One map. Key and value arguments are byte arrays of exactly the map's sizes. */
export abstract class BpfMap {
  readonly strideBytes: number;
  /** View of the values region (the sandbox memory never grows, so the view stays valid). */
  protected readonly values: Uint8Array;
  /** The address programs see for the first value byte (values follow at `strideBytes`). */
  readonly valuesAddress: number;

  constructor(
    readonly spec: MapSpec,
    readonly regionId: number,
    memory: SandboxMemory,
    valueSlots = spec.maxEntries,
  ) {
    checkSpec(spec);
    this.strideBytes = valueStrideBytes(spec.valueSizeBytes);
    this.values = memory.bytes(regionId);
    this.valuesAddress = memory.address(regionId);
    if (this.values.length !== this.strideBytes * valueSlots) {
      throw new MapArgumentError(
        spec.name,
        `region ${regionId} has ${this.values.length} bytes, not ${this.strideBytes * valueSlots}`,
      );
    }
  }

  get name(): string {
    return this.spec.name;
  }

  /** Offset of the key's value inside the region, or -1 when the key is absent. */
  abstract lookupOffset(key: Uint8Array): number;
  /** Insert or replace; `fromProgram` tells whether a program (not the host) asks. */
  abstract update(key: Uint8Array, value: Uint8Array, flags?: number | bigint): number;
  abstract delete(key: Uint8Array): number;
  /** Keys present, in an unspecified order (slot order). */
  abstract keys(): Uint8Array[];

  /** A copy of the key's value, or undefined. */
  lookup(key: Uint8Array): Uint8Array | undefined {
    this.checkKey(key);
    const at = this.lookupOffset(key);
    return at < 0 ? undefined : this.values.slice(at, at + this.spec.valueSizeBytes);
  }

  entries(): [Uint8Array, Uint8Array][] {
    return this.keys().map((k) => [k, this.lookup(k)!]);
  }

  protected checkKey(key: Uint8Array): void {
    if (key.length !== this.spec.keySizeBytes)
      throw new MapArgumentError(this.name, `key of ${key.length} bytes, expected ${this.spec.keySizeBytes}`);
  }

  protected checkValue(value: Uint8Array): void {
    if (value.length !== this.spec.valueSizeBytes) {
      throw new MapArgumentError(this.name, `value of ${value.length} bytes, expected ${this.spec.valueSizeBytes}`);
    }
  }

  /** Write a value into a slot; the copy first protects against a source inside the same region. */
  protected store(offset: number, value: Uint8Array): void {
    this.values.set(value.slice(), offset);
  }
}

/**
 * Values updated in place, as Linux's array map: an update is a plain copy, so a concurrent reader
 * may see a mixture of old and new bytes; aligned 8-byte words are never torn, and eBPF atomics on
 * a value are atomic across threads.
 */
export class ArrayMap extends BpfMap {
  /** `attached`: the values already exist (another thread created them): no initial value is written. */
  constructor(spec: MapSpec, regionId: number, memory: SandboxMemory, attached = false) {
    super(spec, regionId, memory);
    if (spec.initialValue !== undefined && !attached) this.values.set(spec.initialValue, 0);
  }

  private index(key: Uint8Array): number {
    return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
  }

  lookupOffset(key: Uint8Array): number {
    const i = this.index(key);
    return i < this.spec.maxEntries ? i * this.strideBytes : -1;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number | bigint = BPF_ANY): number {
    this.checkKey(key);
    this.checkValue(value);
    const f = flagsOf(flags);
    if (f > BigInt(BPF_EXIST) || f < 0n) return -EINVAL;
    if (this.spec.readonly) return -EPERM;
    const i = this.index(key);
    if (i >= this.spec.maxEntries) return -E2BIG;
    // Every element of an array map always exists.
    if (f === BigInt(BPF_NOEXIST)) return -EEXIST;
    this.store(i * this.strideBytes, value);
    return 0;
  }

  delete(key: Uint8Array): number {
    this.checkKey(key);
    return -EINVAL;
  }

  keys(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.spec.maxEntries; i++) out.push(new Uint8Array(new Uint32Array([i]).buffer));
    return out;
  }
}

/**
 * A hash map whose index lives in SharedArrayBuffers, so every thread that attaches to it (execution
 * workers, the host's map commands) sees one map. Chained buckets over entry slots:
 *
 *     header  [lock, seq, count, freeCount, owner]   Int32
 *     buckets head slot of each bucket (-1: empty)    Int32 x bucketCount (a power of two)
 *     next    next slot in the same bucket (-1: end)  Int32 x slotCount
 *     free    stack of free slots                     Int32 x slotCount
 *     keys    key bytes of each slot                  Uint8 x slotCount x keySize
 *
 * Writers (update, delete) take the map's lock (a futex-style mutex on `lock`: 0 free, 1 held, 2 held
 * with waiters) and publish every change of the index between two increments of `seq` (odd while a
 * change is in progress). Lookups take no lock: they walk the index and retry if `seq` moved (a
 * seqlock), so a lookup never waits for a writer's whole operation, only for its pointer swaps.
 *
 * There is one slot more than `maxEntries`: an update of a present key writes the new value into a
 * free slot and then swaps the slot into the index, so a lookup finds either the whole old value or
 * the whole new one, never a mixture (as Linux's preallocated hash map; a program still holding a
 * pointer to the old value may see it reused by a later update, as in Linux).
 */
const H_LOCK = 0;
const H_SEQ = 1;
const H_COUNT = 2;
const H_FREE_COUNT = 3;
const H_OWNER = 4;
const HEADER_WORDS = 8;
/** Spins before a lock waiter sleeps on the futex. */
const LOCK_SPINS = 64;
/** Lock-free lookup attempts before a reader takes the lock (a writer storm). */
const SEQ_RETRIES = 256;

/** This thread's tag as a lock owner (worker threadId + 1; 1 on the main thread). */
function ownerTag(): number {
  return (threadIdOf() + 1) | 0;
}
let cachedThreadId = -1;
function threadIdOf(): number {
  if (cachedThreadId < 0) cachedThreadId = threadId;
  return cachedThreadId;
}

/** What another thread needs to attach to a hash map's index. */
export interface SharedHashIndex {
  readonly words: SharedArrayBuffer;
  readonly keys: SharedArrayBuffer;
}

export class HashMap extends BpfMap {
  /** Entry slots: `maxEntries` plus one spare for replace-by-swap. */
  readonly slotCount: number;
  private readonly bucketMask: number;
  private readonly words: Int32Array;
  private readonly bucketsAt: number;
  private readonly nextAt: number;
  /** Set by `findInChain`: the predecessor of the slot it found (-1 at the bucket head). */
  private chainPrev = -1;
  private readonly freeAt: number;
  private readonly keyBytes: Uint8Array;
  readonly shared: SharedHashIndex;

  constructor(spec: MapSpec, regionId: number, memory: SandboxMemory, attach?: SharedHashIndex) {
    super(spec, regionId, memory, hashSlotCount(spec));
    this.slotCount = hashSlotCount(spec);
    let buckets = 1;
    while (buckets < spec.maxEntries) buckets *= 2;
    this.bucketMask = buckets - 1;
    this.bucketsAt = HEADER_WORDS;
    this.nextAt = this.bucketsAt + buckets;
    this.freeAt = this.nextAt + this.slotCount;
    const wordCount = this.freeAt + this.slotCount;
    this.shared = attach ?? {
      words: new SharedArrayBuffer(wordCount * 4),
      keys: new SharedArrayBuffer(spec.keySizeBytes * this.slotCount),
    };
    if (this.shared.words.byteLength !== wordCount * 4 || this.shared.keys.byteLength !== spec.keySizeBytes * this.slotCount) {
      throw new MapArgumentError(spec.name, 'shared index does not match the map specification');
    }
    this.words = new Int32Array(this.shared.words);
    this.keyBytes = new Uint8Array(this.shared.keys);
    if (attach === undefined) {
      this.words.fill(-1, this.bucketsAt, this.nextAt + this.slotCount);
      // Hand out low slots first (popped from the end).
      for (let i = 0; i < this.slotCount; i++) this.words[this.freeAt + i] = this.slotCount - 1 - i;
      this.words[H_FREE_COUNT] = this.slotCount;
    }
  }

  get size(): number {
    return Atomics.load(this.words, H_COUNT);
  }

  private bucketOf(key: Uint8Array): number {
    // FNV-1a over the key bytes.
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i], 0x01000193);
    return this.bucketsAt + ((h >>> 0) & this.bucketMask);
  }

  private keyMatches(slot: number, key: Uint8Array): boolean {
    const k = this.keyBytes;
    const at = slot * key.length;
    for (let i = 0; i < key.length; i++) if (k[at + i] !== key[i]) return false;
    return true;
  }

  /**
   * The slot holding `key`, or -1. Bounded by the slot count, and every index checked, so a walk that
   * races a writer (and is then retried) can neither loop nor index out of range.
   */
  private find(key: Uint8Array): number {
    const w = this.words;
    let slot = w[this.bucketOf(key)];
    for (let steps = 0; slot >= 0 && slot < this.slotCount && steps <= this.slotCount; steps++) {
      if (this.keyMatches(slot, key)) return slot;
      slot = w[this.nextAt + slot];
    }
    return -1;
  }

  lookupOffset(key: Uint8Array): number {
    const w = this.words;
    for (let attempt = 0; attempt < SEQ_RETRIES; attempt++) {
      const before = Atomics.load(w, H_SEQ);
      if ((before & 1) === 0) {
        const slot = this.find(key);
        if (Atomics.load(w, H_SEQ) === before) return slot < 0 ? -1 : slot * this.strideBytes;
      }
    }
    this.lock();
    try {
      const slot = this.find(key);
      return slot < 0 ? -1 : slot * this.strideBytes;
    } finally {
      this.unlock();
    }
  }

  /** A copy of the value, consistent: no writer changed the index (so reused no slot) during the copy. */
  override lookup(key: Uint8Array): Uint8Array | undefined {
    this.checkKey(key);
    const w = this.words;
    for (let attempt = 0; attempt < SEQ_RETRIES; attempt++) {
      const before = Atomics.load(w, H_SEQ);
      if ((before & 1) !== 0) continue;
      const slot = this.find(key);
      const value =
        slot < 0 ? undefined : this.values.slice(slot * this.strideBytes, slot * this.strideBytes + this.spec.valueSizeBytes);
      if (Atomics.load(w, H_SEQ) === before) return value;
    }
    this.lock();
    try {
      const slot = this.find(key);
      return slot < 0
        ? undefined
        : this.values.slice(slot * this.strideBytes, slot * this.strideBytes + this.spec.valueSizeBytes);
    } finally {
      this.unlock();
    }
  }

  update(key: Uint8Array, value: Uint8Array, flags: number | bigint = BPF_ANY): number {
    this.checkKey(key);
    this.checkValue(value);
    const f = flagsOf(flags);
    if (f > BigInt(BPF_EXIST) || f < 0n) return -EINVAL;
    if (this.spec.readonly) return -EPERM;
    // Copied first: the source may be a value of this very map (a program's pointer).
    const v = value.slice();
    const k = key.slice();
    this.lock();
    try {
      const w = this.words;
      const bucket = this.bucketOf(k);
      const old = this.findInChain(bucket, k);
      const prev = this.chainPrev;
      if (old >= 0 && f === BigInt(BPF_NOEXIST)) return -EEXIST;
      if (old < 0 && f === BigInt(BPF_EXIST)) return -ENOENT;
      if (old < 0 && w[H_COUNT] >= this.spec.maxEntries) return -E2BIG;
      // A free slot always exists: count <= maxEntries and there is one spare.
      const slot = w[this.freeAt + --w[H_FREE_COUNT]];
      this.keyBytes.set(k, slot * this.spec.keySizeBytes);
      this.values.set(v, slot * this.strideBytes);
      w[this.nextAt + slot] = old >= 0 ? w[this.nextAt + old] : w[bucket];
      Atomics.add(w, H_SEQ, 1);
      if (old >= 0) {
        if (prev < 0) w[bucket] = slot;
        else w[this.nextAt + prev] = slot;
      } else {
        w[bucket] = slot;
        w[H_COUNT]++;
      }
      Atomics.add(w, H_SEQ, 1);
      if (old >= 0) w[this.freeAt + w[H_FREE_COUNT]++] = old;
      return 0;
    } finally {
      this.unlock();
    }
  }

  /** Under the lock: the slot holding `k` in `bucket`'s chain (-1 if none); its predecessor in `chainPrev`. */
  private findInChain(bucket: number, k: Uint8Array): number {
    const w = this.words;
    let prev = -1;
    let slot = w[bucket];
    while (slot >= 0 && !this.keyMatches(slot, k)) {
      prev = slot;
      slot = w[this.nextAt + slot];
    }
    this.chainPrev = prev;
    return slot;
  }

  delete(key: Uint8Array): number {
    this.checkKey(key);
    const k = key.slice();
    this.lock();
    try {
      const w = this.words;
      const bucket = this.bucketOf(k);
      const slot = this.findInChain(bucket, k);
      const prev = this.chainPrev;
      if (slot < 0) return -ENOENT;
      Atomics.add(w, H_SEQ, 1);
      if (prev < 0) w[bucket] = w[this.nextAt + slot];
      else w[this.nextAt + prev] = w[this.nextAt + slot];
      w[H_COUNT]--;
      Atomics.add(w, H_SEQ, 1);
      // A program may still hold a pointer to the value: clear it so stale reads see zeros, not old data.
      this.values.fill(0, slot * this.strideBytes, (slot + 1) * this.strideBytes);
      w[this.freeAt + w[H_FREE_COUNT]++] = slot;
      return 0;
    } finally {
      this.unlock();
    }
  }

  /** Keys present, in slot order (a snapshot taken under the lock). */
  keys(): Uint8Array[] {
    const n = this.spec.keySizeBytes;
    const slots: number[] = [];
    this.lock();
    try {
      const w = this.words;
      for (let b = this.bucketsAt; b < this.nextAt; b++) {
        for (let s = w[b]; s >= 0; s = w[this.nextAt + s]) slots.push(s);
      }
      return slots.sort((a, b) => a - b).map((s) => this.keyBytes.slice(s * n, (s + 1) * n));
    } finally {
      this.unlock();
    }
  }

  private lock(): void {
    const w = this.words;
    let c = Atomics.compareExchange(w, H_LOCK, 0, 1);
    if (c !== 0) {
      for (let spin = 0; spin < LOCK_SPINS && c !== 0; spin++) c = Atomics.compareExchange(w, H_LOCK, 0, 1);
      while (c !== 0) {
        // Mark the lock contended, then sleep until the holder releases it (woken by `unlock`).
        if (c === 2 || Atomics.compareExchange(w, H_LOCK, 1, 2) !== 0) Atomics.wait(w, H_LOCK, 2, 10);
        c = Atomics.compareExchange(w, H_LOCK, 0, 2);
      }
    }
    w[H_OWNER] = ownerTag();
  }

  private unlock(): void {
    const w = this.words;
    w[H_OWNER] = 0;
    if (Atomics.sub(w, H_LOCK, 1) !== 1) {
      Atomics.store(w, H_LOCK, 0);
      Atomics.notify(w, H_LOCK, 1);
    }
  }

  /**
   * A thread died, perhaps holding the lock: release it if `deadThreadId` owns it. Its change, if
   * one was in progress, may be half done (an entry unlinked but not freed, at worst); the index
   * stays walkable. Returns whether the lock was taken back.
   */
  recoverLockOf(deadThreadId: number): boolean {
    const w = this.words;
    if (Atomics.load(w, H_LOCK) === 0 || w[H_OWNER] !== ((deadThreadId + 1) | 0)) return false;
    w[H_OWNER] = 0;
    if ((Atomics.load(w, H_SEQ) & 1) !== 0) Atomics.add(w, H_SEQ, 1);
    Atomics.store(w, H_LOCK, 0);
    Atomics.notify(w, H_LOCK);
    return true;
  }
}

/** Value slots of a hash map: one more than its entries (see HashMap). */
export function hashSlotCount(spec: MapSpec): number {
  return spec.maxEntries + 1;
}

/**
 * What r1 holds for a map helper: a handle, not an address. It is far above 2^32, the end of every
 * sandbox, so a program that dereferences a map reference faults instead of reading host state.
 */
export const MAP_HANDLE_BASE = 0x6d617000n << 32n;
const MAP_HANDLE_HIGH_WORD = 0x6d617000;

/** The shared parts of a MapSet beyond its sandbox memory: the hash indexes (null for array maps). */
export interface SharedMapSet {
  readonly indexes: readonly (SharedHashIndex | null)[];
}

/** The maps of one sandbox, indexed as in `LoadedObject.maps`. */
export class MapSet {
  readonly maps: readonly BpfMap[];

  /**
   * `firstRegionId`: region of the first map; the others follow (see `mapRegionSpecs`). With
   * `attach` (another thread's `shareable()`), the maps are the ones that thread created: the same
   * values (the sandbox memory must be the same shared memory) and the same hash indexes.
   */
  constructor(
    memory: SandboxMemory,
    readonly specs: readonly MapSpec[],
    readonly firstRegionId: number,
    attach?: SharedMapSet,
  ) {
    if (attach !== undefined && attach.indexes.length !== specs.length) {
      throw new MapArgumentError('*', `${attach.indexes.length} shared indexes for ${specs.length} maps`);
    }
    this.maps = specs.map((spec, i) =>
      spec.type === 'hash'
        ? new HashMap(spec, firstRegionId + i, memory, attach?.indexes[i] ?? undefined)
        : new ArrayMap(spec, firstRegionId + i, memory, attach !== undefined),
    );
  }

  /** What another thread passes to the constructor to attach to these maps (structured-clonable). */
  shareable(): SharedMapSet {
    return { indexes: this.maps.map((m) => (m instanceof HashMap ? m.shared : null)) };
  }

  /** Take back map locks held by a thread that died (see `HashMap.recoverLockOf`). */
  recoverLocksOf(deadThreadId: number): number {
    let n = 0;
    for (const m of this.maps) if (m instanceof HashMap && m.recoverLockOf(deadThreadId)) n++;
    return n;
  }

  handle(index: number): bigint {
    if (!Number.isInteger(index) || index < 0 || index >= this.maps.length)
      throw new MapArgumentError(`#${index}`, 'no such map');
    return MAP_HANDLE_BASE | BigInt(index);
  }

  fromHandle(value: bigint): BpfMap | undefined {
    return this.fromHandleWords(Number(BigInt.asUintN(32, value >> 32n)), Number(BigInt.asUintN(32, value)));
  }

  /** `fromHandle` of the handle whose high and low 32-bit words (unsigned) are given. */
  fromHandleWords(high: number, low: number): BpfMap | undefined {
    return high === MAP_HANDLE_HIGH_WORD && low < this.maps.length ? this.maps[low] : undefined;
  }

  byName(name: string): BpfMap | undefined {
    return this.maps.find((m) => m.name === name);
  }
}
