/**
 * The sandbox memory shared by both engines: one WebAssembly.Memory holding a region table and every
 * region a program may address (its stack, context, data buffers and later its maps).
 *
 * A program's addresses are segmented: the high 32 bits name a region (1-based; 0 is never mapped, so
 * NULL plus any offset faults) and the low 32 bits are an offset into it. A check is one table
 * lookup, the same in the interpreter and in the JIT's generated code.
 */
import assert from 'node:assert/strict';
import { type AccessKind, MemoryAccessError, ProgramLoadError } from '../errors.js';

export const WASM_PAGE_SIZE_BYTES = 65536;
/** Region table entries: base u32, readable length u32, writable length u32, reserved u32. */
export const REGION_TABLE_ENTRY_BYTES = 16;
/** Regions per sandbox (id 0 is never mapped): a power of two, so the JIT masks ids into the table. */
export const MAX_REGIONS = 256;
/** The id bits that index the region table. */
export const REGION_ID_MASK = MAX_REGIONS - 1;
const REGION_TABLE_BYTES = REGION_TABLE_ENTRY_BYTES * MAX_REGIONS;
const FIRST_REGION_OFFSET = 4096;
/** Upper bound of one sandbox: regions beyond this are refused rather than allocated. */
export const MAX_SANDBOX_SIZE_BYTES = 1 << 30;

export interface RegionSpec {
  readonly name: string;
  readonly sizeBytes: number;
  readonly writable: boolean;
}

export interface Region extends RegionSpec {
  /** 1-based id: the high 32 bits of every address in the region. */
  readonly id: number;
  /** Offset of the region inside the linear memory. */
  readonly base: number;
}

export const STACK_REGION_ID = 1;

/** Address of `offset` inside region `id`, as a program sees it. */
export function regionAddress(id: number, offset: number): bigint {
  return (BigInt(id) << 32n) | BigInt(offset >>> 0);
}

export class SandboxMemory {
  readonly memory: WebAssembly.Memory;
  readonly regions: readonly Region[];
  private view: DataView;

  /** Lays out `specs` after the region table; the first spec is region 1. */
  constructor(specs: readonly RegionSpec[]) {
    if (specs.length === 0 || specs.length >= MAX_REGIONS) {
      throw new ProgramLoadError(`a sandbox holds 1 to ${MAX_REGIONS - 1} regions, got ${specs.length}`);
    }
    let next = FIRST_REGION_OFFSET;
    const regions: Region[] = [];
    specs.forEach((spec, i) => {
      if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes < 0) {
        throw new ProgramLoadError(`region '${spec.name}' has invalid size ${spec.sizeBytes}`);
      }
      regions.push({ ...spec, id: i + 1, base: next });
      next += (spec.sizeBytes + 15) & ~15;
      if (next > MAX_SANDBOX_SIZE_BYTES) throw new ProgramLoadError(`sandbox exceeds ${MAX_SANDBOX_SIZE_BYTES} bytes`);
    });
    const pages = Math.max(1, Math.ceil(next / WASM_PAGE_SIZE_BYTES));
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.regions = regions;
    this.view = new DataView(this.memory.buffer);
    for (const r of regions) {
      const at = r.id * REGION_TABLE_ENTRY_BYTES;
      this.view.setUint32(at, r.base, true);
      this.view.setUint32(at + 4, r.sizeBytes, true);
      this.view.setUint32(at + 8, r.writable ? r.sizeBytes : 0, true);
    }
    assert.ok(REGION_TABLE_BYTES <= FIRST_REGION_OFFSET);
  }

  get regionCount(): number {
    return this.regions.length;
  }

  region(id: number): Region {
    const r = this.regions[id - 1];
    assert.ok(r !== undefined, `no region ${id}`);
    return r;
  }

  /** The bytes of one region, as a view into the sandbox (writes through it are visible to programs). */
  bytes(id: number): Uint8Array {
    const r = this.region(id);
    return new Uint8Array(this.memory.buffer, r.base, r.sizeBytes);
  }

  /**
   * Offset in the linear memory of `[address, address + sizeBytes)` if it lies inside one region
   * that allows `access`; -1 otherwise. `hi`/`lo` are the two halves of the address.
   */
  translate(hi: number, lo: number, sizeBytes: number, access: AccessKind): number {
    if (hi < 1 || hi > this.regions.length) return -1;
    const r = this.regions[hi - 1];
    const limit = access === 'read' || r.writable ? r.sizeBytes : 0;
    const offset = lo >>> 0;
    return offset + sizeBytes <= limit ? r.base + offset : -1;
  }

  /** Checked copy out of the sandbox, for helpers. */
  read(address: bigint, sizeBytes: number, pc: number): Uint8Array {
    return this.slice(address, sizeBytes, 'read', pc).slice();
  }

  /** Checked view of sandbox memory, for helpers that write. */
  slice(address: bigint, sizeBytes: number, access: AccessKind, pc: number): Uint8Array {
    const hi = Number(BigInt.asUintN(64, address) >> 32n);
    const lo = Number(BigInt.asUintN(32, address));
    const at = sizeBytes < 0 || hi > 0xffff ? -1 : this.translate(hi, lo, sizeBytes, access);
    if (at < 0) throw new MemoryAccessError(pc, access, BigInt.asUintN(64, address), sizeBytes);
    return new Uint8Array(this.memory.buffer, at, sizeBytes);
  }
}
