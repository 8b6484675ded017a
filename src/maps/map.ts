/**
 * Array and hash maps whose values live in the program's sandbox: each map's values are one
 * region, so the pointer `bpf_map_lookup_elem` returns is a real sandbox address that both engines
 * bounds-check like any other. Keys and the hash index stay on the host: programs never get a
 * pointer to them, and keeping them out of the sandbox means a program cannot corrupt the index.
 *
 * Results follow Linux: 0 on success, a negative errno otherwise (shared by helpers and host API).
 */
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
/** Host bytes charged per hash entry for the index (a JavaScript Map entry and its string key). */
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
  const values = valueStrideBytes(spec.valueSizeBytes) * spec.maxEntries;
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
    const sizeBytes = valueStrideBytes(spec.valueSizeBytes) * spec.maxEntries;
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
  ) {
    checkSpec(spec);
    this.strideBytes = valueStrideBytes(spec.valueSizeBytes);
    this.values = memory.bytes(regionId);
    this.valuesAddress = memory.address(regionId);
    if (this.values.length !== this.strideBytes * spec.maxEntries) {
      throw new MapArgumentError(
        spec.name,
        `region ${regionId} has ${this.values.length} bytes, not ${this.strideBytes * spec.maxEntries}`,
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

export class ArrayMap extends BpfMap {
  constructor(spec: MapSpec, regionId: number, memory: SandboxMemory) {
    super(spec, regionId, memory);
    if (spec.initialValue !== undefined) this.values.set(spec.initialValue, 0);
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

export class HashMap extends BpfMap {
  private readonly index = new Map<string, number>();
  private readonly keyBytes: Uint8Array;
  private readonly free: Int32Array;
  private freeCount: number;

  constructor(spec: MapSpec, regionId: number, memory: SandboxMemory) {
    super(spec, regionId, memory);
    this.keyBytes = new Uint8Array(spec.keySizeBytes * spec.maxEntries);
    this.free = new Int32Array(spec.maxEntries);
    // Hand out low slots first (popped from the end).
    for (let i = 0; i < spec.maxEntries; i++) this.free[i] = spec.maxEntries - 1 - i;
    this.freeCount = spec.maxEntries;
  }

  get size(): number {
    return this.index.size;
  }

  private static keyString(key: Uint8Array): string {
    return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
  }

  lookupOffset(key: Uint8Array): number {
    const slot = this.index.get(HashMap.keyString(key));
    return slot === undefined ? -1 : slot * this.strideBytes;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number | bigint = BPF_ANY): number {
    this.checkKey(key);
    this.checkValue(value);
    const f = flagsOf(flags);
    if (f > BigInt(BPF_EXIST) || f < 0n) return -EINVAL;
    if (this.spec.readonly) return -EPERM;
    const k = HashMap.keyString(key);
    const slot = this.index.get(k);
    if (slot !== undefined) {
      if (f === BigInt(BPF_NOEXIST)) return -EEXIST;
      this.store(slot * this.strideBytes, value);
      return 0;
    }
    if (f === BigInt(BPF_EXIST)) return -ENOENT;
    if (this.freeCount === 0) return -E2BIG;
    const s = this.free[--this.freeCount];
    this.keyBytes.set(key, s * this.spec.keySizeBytes);
    this.store(s * this.strideBytes, value);
    this.index.set(k, s);
    return 0;
  }

  delete(key: Uint8Array): number {
    this.checkKey(key);
    const k = HashMap.keyString(key);
    const slot = this.index.get(k);
    if (slot === undefined) return -ENOENT;
    this.index.delete(k);
    // A program may still hold a pointer to the value: clear it so stale reads see zeros, not old data.
    this.values.fill(0, slot * this.strideBytes, (slot + 1) * this.strideBytes);
    this.free[this.freeCount++] = slot;
    return 0;
  }

  keys(): Uint8Array[] {
    const n = this.spec.keySizeBytes;
    return [...this.index.values()].sort((a, b) => a - b).map((s) => this.keyBytes.slice(s * n, (s + 1) * n));
  }
}

/**
 * What r1 holds for a map helper: a handle, not an address. It is far above 2^32, the end of every
 * sandbox, so a program that dereferences a map reference faults instead of reading host state.
 */
export const MAP_HANDLE_BASE = 0x6d617000n << 32n;

/** The maps of one sandbox, indexed as in `LoadedObject.maps`. */
export class MapSet {
  readonly maps: readonly BpfMap[];

  /** `firstRegionId`: region of the first map; the others follow (see `mapRegionSpecs`). */
  constructor(memory: SandboxMemory, specs: readonly MapSpec[], firstRegionId: number) {
    this.maps = specs.map((spec, i) =>
      spec.type === 'hash' ? new HashMap(spec, firstRegionId + i, memory) : new ArrayMap(spec, firstRegionId + i, memory),
    );
  }

  handle(index: number): bigint {
    if (!Number.isInteger(index) || index < 0 || index >= this.maps.length)
      throw new MapArgumentError(`#${index}`, 'no such map');
    return MAP_HANDLE_BASE | BigInt(index);
  }

  fromHandle(value: bigint): BpfMap | undefined {
    const index = value - MAP_HANDLE_BASE;
    return index >= 0n && index < BigInt(this.maps.length) ? this.maps[Number(index)] : undefined;
  }

  byName(name: string): BpfMap | undefined {
    return this.maps.find((m) => m.name === name);
  }
}
