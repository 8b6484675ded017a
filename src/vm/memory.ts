/**
 * The sandbox memory shared by both engines: one WebAssembly.Memory holding every region a program
 * may address (its stack, context, data buffers, scratch areas and maps).
 *
 * Addresses are flat: a program's pointer is a 32-bit offset into the linear memory, and every
 * region keeps a fixed place in it for the sandbox's life. The layout is
 *
 *     [0, NULL_GUARD_BYTES)            never mapped: NULL plus any 16-bit offset faults
 *     [lowAddress, writableEnd)        the writable regions (the stack first)
 *     [writableEnd, readableEnd)       the read-only regions
 *
 * so a checked access is one unsigned comparison: `address - lowAddress <= end - size - lowAddress`,
 * with `end` the writable or the readable end. Verified programs skip even that (see the JIT's
 * `MemoryMode`): Wasm itself keeps them inside this linear memory.
 */
import { type AccessKind, invariant, MemoryAccessError, ProgramLoadError } from '../errors.js';

export const WASM_PAGE_SIZE_BYTES = 65536;
/** Unmapped bytes at address 0: larger than any instruction offset (s16), so NULL + offset faults. */
export const NULL_GUARD_BYTES = 65536;
/** Regions per sandbox: a sanity bound on what a caller may lay out. */
export const MAX_REGIONS = 4096;
/** Upper bound of one sandbox: regions beyond this are refused rather than allocated. */
export const MAX_SANDBOX_SIZE_BYTES = 1 << 30;
/** Alignment of each region's base: enough for any access size and for 8-byte atomics. */
const REGION_ALIGN_BYTES = 16;

export interface RegionSpec {
  readonly name: string;
  readonly sizeBytes: number;
  readonly writable: boolean;
}

export interface Region extends RegionSpec {
  /** 1-based id, in the order the regions were specified. */
  readonly id: number;
  /** Offset of the region inside the linear memory: the address programs see for its first byte. */
  readonly base: number;
}

export const STACK_REGION_ID = 1;

/** Where each region of a sandbox lies, computed without allocating it. */
export interface SandboxLayout {
  /** Base address of each region, in the order of the specs. */
  readonly bases: readonly number[];
  readonly lowAddress: number;
  readonly writableEnd: number;
  readonly readableEnd: number;
}

/**
 * The layout every sandbox of these specs gets: the NULL guard, then the writable regions, then the
 * read-only ones, each in spec order and 16-byte aligned. Deterministic, so a generator can embed
 * addresses in a program before the sandbox exists.
 */
export function layoutSandbox(specs: readonly RegionSpec[]): SandboxLayout {
  if (specs.length === 0 || specs.length > MAX_REGIONS) {
    throw new ProgramLoadError(`a sandbox holds 1 to ${MAX_REGIONS} regions, got ${specs.length}`);
  }
  for (const spec of specs) {
    if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes < 0) {
      throw new ProgramLoadError(`region '${spec.name}' has invalid size ${spec.sizeBytes}`);
    }
  }
  const bases = new Array<number>(specs.length);
  let next = NULL_GUARD_BYTES;
  // Each end is exact (the last region's last byte + 1), so the padding after it is not addressable.
  let end = NULL_GUARD_BYTES;
  const place = (writable: boolean) => {
    specs.forEach((spec, i) => {
      if (spec.writable !== writable) return;
      bases[i] = next;
      end = next + spec.sizeBytes;
      next += Math.ceil(spec.sizeBytes / REGION_ALIGN_BYTES) * REGION_ALIGN_BYTES;
      if (next > MAX_SANDBOX_SIZE_BYTES) throw new ProgramLoadError(`sandbox exceeds ${MAX_SANDBOX_SIZE_BYTES} bytes`);
    });
    return end;
  };
  const writableEnd = place(true);
  const readableEnd = place(false);
  return { bases, lowAddress: NULL_GUARD_BYTES, writableEnd, readableEnd };
}

export interface SandboxMemoryOptions {
  /**
   * Back the sandbox with a shared `WebAssembly.Memory` (a SharedArrayBuffer), so several threads
   * can run the same program's code over it (execution workers) and see one set of map values.
   */
  readonly shared?: boolean;
  /** Attach to this memory (created by another thread with the same specs) instead of allocating one. */
  readonly memory?: WebAssembly.Memory;
}

export class SandboxMemory {
  readonly memory: WebAssembly.Memory;
  /** Whether the memory is shared between threads (its buffer is a SharedArrayBuffer). */
  readonly shared: boolean;
  readonly regions: readonly Region[];
  /** First mapped address. */
  readonly lowAddress: number;
  /** One past the last writable byte. */
  readonly writableEnd: number;
  /** One past the last readable byte. */
  readonly readableEnd: number;

  /** Lays out `specs` (see `layoutSandbox`); the first spec is region 1. */
  constructor(specs: readonly RegionSpec[], options: SandboxMemoryOptions = {}) {
    const layout = layoutSandbox(specs);
    this.lowAddress = layout.lowAddress;
    this.writableEnd = layout.writableEnd;
    this.readableEnd = layout.readableEnd;
    this.regions = specs.map((spec, i) => ({ ...spec, id: i + 1, base: layout.bases[i] }));
    const pages = Math.max(1, Math.ceil(this.readableEnd / WASM_PAGE_SIZE_BYTES));
    if (options.memory !== undefined) {
      if (options.memory.buffer.byteLength !== pages * WASM_PAGE_SIZE_BYTES) {
        throw new ProgramLoadError(
          `memory of ${options.memory.buffer.byteLength} bytes given to a sandbox laid out for ${pages * WASM_PAGE_SIZE_BYTES}`,
        );
      }
      this.memory = options.memory;
    } else {
      // `maximum` is required for a shared memory; the sandbox never grows anyway.
      this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: options.shared === true });
    }
    this.shared = typeof SharedArrayBuffer !== 'undefined' && this.memory.buffer instanceof SharedArrayBuffer;
  }

  get regionCount(): number {
    return this.regions.length;
  }

  region(id: number): Region {
    const r = this.regions[id - 1];
    invariant(r !== undefined, `no region ${id}`);
    return r;
  }

  /** The address a program uses for byte `offset` of region `id`. */
  address(id: number, offset = 0): number {
    const r = this.region(id);
    invariant(Number.isInteger(offset) && offset >= 0 && offset <= r.sizeBytes, `offset ${offset} outside region ${r.name}`);
    return r.base + offset;
  }

  /** The bytes of one region, as a view into the sandbox (writes through it are visible to programs). */
  bytes(id: number): Uint8Array {
    const r = this.region(id);
    return new Uint8Array(this.memory.buffer, r.base, r.sizeBytes);
  }

  /**
   * Linear-memory offset of `[address, address + sizeBytes)` if `access` is allowed there (the rule
   * both engines apply to every checked load and store); -1 otherwise. `hi`/`lo` are the address's
   * two 32-bit halves.
   */
  check(hi: number, lo: number, sizeBytes: number, access: AccessKind): number {
    const end = access === 'read' ? this.readableEnd : this.writableEnd;
    const at = lo >>> 0;
    return hi === 0 && at >= this.lowAddress && at + sizeBytes <= end ? at : -1;
  }

  /**
   * Like `check`, but the access must also lie inside one region (and a writable one for writes): the
   * per-region rule, stricter than the engines' span check. For test oracles (e.g. the verifier's
   * soundness test), where an access that strays into a neighbouring region must count as a fault.
   */
  checkWithinRegion(hi: number, lo: number, sizeBytes: number, access: AccessKind): number {
    const at = this.check(hi, lo, sizeBytes, access);
    if (at < 0) return -1;
    for (const r of this.regions) {
      if (at >= r.base && at + sizeBytes <= r.base + r.sizeBytes) return access === 'read' || r.writable ? at : -1;
    }
    return -1;
  }

  /** Checked copy out of the sandbox, for helpers. */
  read(address: bigint, sizeBytes: number, pc: number): Uint8Array {
    return this.slice(address, sizeBytes, 'read', pc).slice();
  }

  /** Checked view of sandbox memory, for helpers: the same rule as the engines' accesses. */
  slice(address: bigint, sizeBytes: number, access: AccessKind, pc: number): Uint8Array {
    const a = BigInt.asUintN(64, address);
    const at =
      sizeBytes < 0 || !Number.isSafeInteger(sizeBytes) || a > 0xffffffffn ? -1 : this.check(0, Number(a), sizeBytes, access);
    if (at < 0) throw new MemoryAccessError(pc, access, a, sizeBytes);
    return new Uint8Array(this.memory.buffer, at, sizeBytes);
  }
}
