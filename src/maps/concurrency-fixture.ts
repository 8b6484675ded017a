/**
 * Test fixture of concurrency.test.ts: the hammering one thread does on a hash map shared with
 * others (kept out of the test file, which a worker must not load). Values are 8 equal u64 words
 * (key << 32 | sequence), so any torn or misplaced value is visible.
 */
import { createSandbox } from '../vm/engine.js';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  E2BIG,
  EEXIST,
  ENOENT,
  MapSet,
  type MapSpec,
  mapRegionSpecs,
  type SharedMapSet,
} from './map.js';

export const HAMMER_SPEC: MapSpec = { name: 'h', type: 'hash', keySizeBytes: 4, valueSizeBytes: 64, maxEntries: 64 };
/** Keys drawn from more than the map holds, so inserts also meet a full map. */
export const HAMMER_KEYS = 96;

export function hammerSandbox(memory?: WebAssembly.Memory) {
  return createSandbox(mapRegionSpecs([HAMMER_SPEC]), { shared: true, memory });
}

export function hammerValue(key: number, seq: number): Uint8Array {
  const v = new BigUint64Array(8).fill((BigInt(key) << 32n) | BigInt(seq >>> 0));
  return new Uint8Array(v.buffer);
}

/** Why a value read for `key` is wrong, or null. */
export function badValue(key: number, value: Uint8Array): string | null {
  const words = new BigUint64Array(value.slice().buffer);
  if (words.some((w) => w !== words[0])) return `key ${key}: torn value ${[...words].map((w) => w.toString(16)).join(',')}`;
  if (words[0] >> 32n !== BigInt(key)) return `key ${key}: value of key ${words[0] >> 32n}`;
  return null;
}

export interface HammerResult {
  errors: string[];
  ops: Record<string, number>;
}

/** `ops` random operations on the map; every result checked against what Linux allows. */
export function hammer(data: { memory: WebAssembly.Memory; shared: SharedMapSet; seed: number; ops: number }): HammerResult {
  const sandbox = hammerSandbox(data.memory);
  const map = new MapSet(sandbox, [HAMMER_SPEC], 2, data.shared).maps[0];
  let x = data.seed | 1;
  const rand = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const errors: string[] = [];
  const ops: Record<string, number> = { lookup: 0, hit: 0, update: 0, e2big: 0, delete: 0, enoent: 0, eexist: 0 };
  const key = new Uint8Array(4);
  for (let i = 0; i < data.ops && errors.length < 10; i++) {
    const k = rand(HAMMER_KEYS);
    new DataView(key.buffer).setUint32(0, k, true);
    const op = rand(10);
    if (op < 5) {
      ops.lookup++;
      const v = map.lookup(key);
      if (v !== undefined) {
        ops.hit++;
        const bad = badValue(k, v);
        if (bad) errors.push(bad);
      }
      // The helper's path: an offset, then the value read in place (may race an update of the slot later).
      const at = map.lookupOffset(key);
      if (at !== -1 && (at < 0 || at % 64 !== 0)) errors.push(`key ${k}: offset ${at}`);
    } else if (op < 8) {
      const flags = [BPF_ANY, BPF_NOEXIST, BPF_EXIST][rand(3)];
      const r = map.update(key, hammerValue(k, data.seed + i), flags);
      if (r === 0) ops.update++;
      else if (r === -E2BIG && flags !== BPF_EXIST) ops.e2big++;
      else if (r === -EEXIST && flags === BPF_NOEXIST) ops.eexist++;
      else if (r === -ENOENT && flags === BPF_EXIST) ops.enoent++;
      else errors.push(`update of key ${k} with flags ${flags}: ${r}`);
    } else {
      const r = map.delete(key);
      if (r === 0) ops.delete++;
      else if (r === -ENOENT) ops.enoent++;
      else errors.push(`delete of key ${k}: ${r}`);
    }
  }
  return { errors, ops };
}
