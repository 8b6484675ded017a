import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HelperError, MemoryAccessError } from '../errors.js';
import { createSandbox } from '../vm/engine.js';
import { callHelper } from '../vm/helpers.js';
import { MapArgumentError, MapMemoryLimitError } from './errors.js';
import { mapHelpers } from './helpers.js';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  E2BIG,
  EEXIST,
  EINVAL,
  ENOENT,
  EPERM,
  MAP_HANDLE_BASE,
  MapSet,
  type MapSpec,
  mapRegionSpecs,
} from './map.js';

const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
const u64 = (v: bigint) => new Uint8Array(new BigUint64Array([v]).buffer);

/** A sandbox with a scratch region (2) and the maps from region 3 on. */
function setup(specs: MapSpec[], limitBytes?: number) {
  const memory = createSandbox([{ name: 'scratch', sizeBytes: 64, writable: true }, ...mapRegionSpecs(specs, limitBytes)]);
  return { memory, maps: new MapSet(memory, specs, 3) };
}

/** Address of byte `offset` of region `id`, as programs see it. */
const at = (memory: ReturnType<typeof createSandbox>, id: number, offset: number) => BigInt(memory.address(id, offset));

const hash: MapSpec = { name: 'h', type: 'hash', keySizeBytes: 4, valueSizeBytes: 8, maxEntries: 2 };
const array: MapSpec = { name: 'a', type: 'array', keySizeBytes: 4, valueSizeBytes: 12, maxEntries: 3 };

describe('hash map', () => {
  it('implements BPF_ANY, BPF_NOEXIST, BPF_EXIST, delete and a full map like Linux', () => {
    const m = setup([hash]).maps.maps[0];
    assert.equal(m.update(u32(1), u64(10n), BPF_EXIST), -ENOENT);
    assert.equal(m.update(u32(1), u64(10n), BPF_NOEXIST), 0);
    assert.equal(m.update(u32(1), u64(11n), BPF_NOEXIST), -EEXIST);
    assert.equal(m.update(u32(1), u64(12n), BPF_EXIST), 0);
    assert.deepEqual(m.lookup(u32(1)), u64(12n));
    assert.equal(m.update(u32(2), u64(20n), BPF_ANY), 0);
    assert.equal(m.update(u32(3), u64(30n), BPF_ANY), -E2BIG);
    assert.equal(m.update(u32(3), u64(30n), 7), -EINVAL);
    assert.deepEqual(
      m
        .keys()
        .map((k) => k[0])
        .sort(),
      [1, 2],
    );
    assert.equal(m.delete(u32(1)), 0);
    assert.equal(m.delete(u32(1)), -ENOENT);
    assert.equal(m.lookup(u32(1)), undefined);
    assert.equal(m.update(u32(3), u64(30n), BPF_ANY), 0, 'a deleted slot is reused');
    assert.deepEqual(m.entries().length, 2);
  });

  it('checks key and value sizes on the host API', () => {
    const m = setup([hash]).maps.maps[0];
    assert.throws(() => m.lookup(new Uint8Array(3)), MapArgumentError);
    assert.throws(() => m.update(u32(1), new Uint8Array(4)), MapArgumentError);
  });
});

describe('array map', () => {
  it('has every index, refuses NOEXIST, delete and out-of-range indexes', () => {
    const m = setup([array]).maps.maps[0];
    assert.deepEqual(m.lookup(u32(2)), new Uint8Array(12));
    assert.equal(m.lookup(u32(3)), undefined);
    assert.equal(m.update(u32(0), new Uint8Array(12).fill(7), BPF_NOEXIST), -EEXIST);
    assert.equal(m.update(u32(0), new Uint8Array(12).fill(7), BPF_EXIST), 0);
    assert.equal(m.update(u32(3), new Uint8Array(12), BPF_ANY), -E2BIG);
    assert.equal(m.delete(u32(0)), -EINVAL);
    assert.equal(m.keys().length, 3);
    // Values are 8-byte aligned in the region: entry 1 starts at 16, not 12.
    assert.equal(m.lookupOffset(u32(1)), 16);
  });

  it('keeps read-only (.rodata) maps frozen and their region unwritable', () => {
    const spec: MapSpec = { ...array, maxEntries: 1, readonly: true, initialValue: new Uint8Array(12).fill(5) };
    const { memory, maps } = setup([spec]);
    assert.equal(maps.maps[0].update(u32(0), new Uint8Array(12), BPF_ANY), -EPERM);
    assert.equal(maps.maps[0].lookup(u32(0))?.[11], 5);
    assert.throws(() => memory.slice(at(memory, 3, 0), 1, 'write', 0), MemoryAccessError);
  });
});

describe('map memory limit', () => {
  it('refuses maps beyond the configured total', () => {
    const big: MapSpec = { name: 'big', type: 'array', keySizeBytes: 4, valueSizeBytes: 1024, maxEntries: 1024 };
    assert.throws(
      () => mapRegionSpecs([big, { ...big, name: 'big2' }], 1.5 * 1024 * 1024),
      (e: unknown) => e instanceof MapMemoryLimitError && e.mapName === 'big2' && e.code === 'ERR_MAP_MEMORY_LIMIT',
    );
    assert.equal(mapRegionSpecs([big], 1024 * 1024).length, 1);
  });

  it('refuses nonsensical specifications', () => {
    assert.throws(() => mapRegionSpecs([{ ...hash, maxEntries: 0 }]), MapArgumentError);
    assert.throws(() => mapRegionSpecs([{ ...array, keySizeBytes: 8 }]), MapArgumentError);
  });
});

describe('map helpers', () => {
  it('look up, update and delete through sandbox pointers; lookup returns a value address', () => {
    const { memory, maps } = setup([hash]);
    const [lookup, update, del] = mapHelpers(maps);
    const call = { memory, pc: 7 };
    const scratch = memory.bytes(2);
    scratch.set(u32(42), 0);
    scratch.set(u64(99n), 8);
    const key = at(memory, 2, 0);
    const value = at(memory, 2, 8);
    const handle = maps.handle(0);
    assert.equal(callHelper(lookup, call.memory, call.pc, handle, key, 0n, 0n, 0n), 0n);
    assert.equal(callHelper(update, call.memory, call.pc, handle, key, value, BigInt(BPF_ANY), 0n), 0n);
    const address = callHelper(lookup, call.memory, call.pc, handle, key, 0n, 0n, 0n);
    const region = memory.region(3);
    assert.ok(address >= BigInt(region.base) && address + 8n <= BigInt(region.base + region.sizeBytes), 'in the map region');
    assert.deepEqual(memory.read(address, 8, 0), u64(99n));
    assert.equal(
      callHelper(update, call.memory, call.pc, handle, key, value, BigInt(BPF_NOEXIST), 0n),
      BigInt.asUintN(64, BigInt(-EEXIST)),
    );
    assert.equal(callHelper(del, call.memory, call.pc, handle, key, 0n, 0n, 0n), 0n);
    assert.equal(callHelper(del, call.memory, call.pc, handle, key, 0n, 0n, 0n), BigInt.asUintN(64, BigInt(-ENOENT)));
  });

  it('reject a non-map r1 and fault on keys outside the sandbox', () => {
    const { memory, maps } = setup([hash]);
    const [lookup] = mapHelpers(maps);
    const call = { memory, pc: 3 };
    assert.throws(() => callHelper(lookup, call.memory, call.pc, at(memory, 2, 0), at(memory, 2, 0), 0n, 0n, 0n), HelperError);
    assert.throws(
      () => callHelper(lookup, call.memory, call.pc, MAP_HANDLE_BASE + 1n, at(memory, 2, 0), 0n, 0n, 0n),
      HelperError,
    );
    // A key straddling the end of the sandbox, and one at NULL.
    assert.throws(
      () => callHelper(lookup, call.memory, call.pc, maps.handle(0), BigInt(memory.readableEnd - 2), 0n, 0n, 0n),
      MemoryAccessError,
    );
    assert.throws(() => callHelper(lookup, call.memory, call.pc, maps.handle(0), 0n, 0n, 0n, 0n), MemoryAccessError);
    // A map handle is not an address: dereferencing it faults.
    assert.throws(() => memory.slice(maps.handle(0), 1, 'read', 0), MemoryAccessError);
  });
});
