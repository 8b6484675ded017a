/**
 * Helpers are host functions a program calls by id. Both engines call them the same way: r1-r5
 * are read through a `HelperArgs` (as numbers, or as exact unsigned 64-bit BigInts where a helper
 * needs every bit); the result (a number or a BigInt) becomes r0.
 */
import { type AccessKind, MemoryAccessError, ProgramLoadError } from '../errors.js';
import type { SandboxMemory } from './memory.js';

const TWO_POW_32 = 2 ** 32;

/**
 * The arguments of one helper call. Each engine keeps one and refills it per call, so a call costs
 * no allocation: read the arguments during the call, never keep the object.
 */
export class HelperArgs {
  /** Slot of the call instruction, for error messages. */
  pc = 0;
  /**
   * @param memory Sandbox of the running program: translate and check pointer arguments through it.
   * @param words r1-r5 as (low, high) 32-bit word pairs, r1 at `base`.
   */
  constructor(
    readonly memory: SandboxMemory,
    private readonly words: Int32Array,
    private readonly base: number,
  ) {}

  /**
   * Argument `i` (1-5) as an unsigned number: exact below 2^53; above, rounded but still at least
   * 2^53, so range checks against any smaller limit stay right.
   */
  num(i: number): number {
    const w = this.base + 2 * (i - 1);
    return (this.words[w + 1] >>> 0) * TWO_POW_32 + (this.words[w] >>> 0);
  }

  /** The low 32 bits of argument `i`, unsigned. */
  u32(i: number): number {
    return this.words[this.base + 2 * (i - 1)] >>> 0;
  }

  /** The high 32 bits of argument `i`, unsigned. */
  high32(i: number): number {
    return this.words[this.base + 2 * (i - 1) + 1] >>> 0;
  }

  /** Whether argument `i` fits in 32 bits (its high word is zero). */
  fitsU32(i: number): boolean {
    return this.words[this.base + 2 * (i - 1) + 1] === 0;
  }

  /**
   * The `sizeBytes` bytes of sandbox memory argument `i` points to, as a view (writes go to the
   * sandbox), if `access` is allowed there: the engines' own rule. Else a `MemoryAccessError`.
   */
  bytes(i: number, sizeBytes: number, access: AccessKind): Uint8Array {
    const w = this.base + 2 * (i - 1);
    const at =
      Number.isSafeInteger(sizeBytes) && sizeBytes >= 0
        ? this.memory.check(this.words[w + 1], this.words[w], sizeBytes, access)
        : -1;
    if (at < 0) throw new MemoryAccessError(this.pc, access, this.u64(i), sizeBytes);
    return new Uint8Array(this.memory.memory.buffer, at, sizeBytes);
  }

  /** Arguments of their own holding `registers` (r1 first; missing ones 0), e.g. to call a helper directly. */
  static of(memory: SandboxMemory, pc: number, registers: readonly bigint[]): HelperArgs {
    const words = new Int32Array(10);
    registers.slice(0, 5).forEach((v, i) => {
      words[2 * i] = Number(BigInt.asUintN(32, v));
      words[2 * i + 1] = Number(BigInt.asUintN(32, v >> 32n));
    });
    const args = new HelperArgs(memory, words, 0);
    args.pc = pc;
    return args;
  }

  /** Argument `i` as an exact unsigned 64-bit BigInt (allocates: for helpers that need every bit). */
  u64(i: number): bigint {
    const w = this.base + 2 * (i - 1);
    return (BigInt(this.words[w + 1] >>> 0) << 32n) | BigInt(this.words[w] >>> 0);
  }
}

/**
 * A helper's body. It returns r0: a number (an integer of magnitude at most 2^53; negative numbers
 * are two's complement, as -errno is) or a BigInt (taken modulo 2^64).
 */
export type HelperFunction = (args: HelperArgs) => number | bigint;

/** Call `helper` directly with `registers` (r1 first) and return its r0 as an unsigned 64-bit BigInt. */
export function callHelper(helper: Helper, memory: SandboxMemory, pc: number, ...registers: bigint[]): bigint {
  const r0 = helper.fn(HelperArgs.of(memory, pc, registers));
  return BigInt.asUintN(64, typeof r0 === 'bigint' ? r0 : BigInt(r0));
}

/**
 * Write `value` (a helper's result) as a 64-bit two's-complement word pair at `words[at]`; false if
 * it is neither a BigInt nor a safe integer (a bug in the helper).
 */
export function storeHelperResult(words: Int32Array, at: number, value: number | bigint): boolean {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return false;
    const hi = Math.floor(value / TWO_POW_32);
    words[at] = value - hi * TWO_POW_32;
    words[at + 1] = hi;
    return true;
  }
  words[at] = Number(BigInt.asUintN(32, value));
  words[at + 1] = Number(BigInt.asUintN(32, value >> 32n));
  return true;
}

export interface Helper {
  readonly id: number;
  readonly name: string;
  readonly fn: HelperFunction;
}

export type HelperTable = ReadonlyMap<number, Helper>;

/**
 * Thrown by a helper to end the program at once with `r0` (not an error: e.g. the conformance
 * suite's unwind helper). Engines catch it and return `r0`.
 */
export class ProgramStop {
  constructor(readonly r0: bigint) {}
}

/** Index helpers by id. Ids are 0..2^31-1, the values a `call` immediate and a `callx` register agree on. */
export function helperTable(helpers: readonly Helper[]): HelperTable {
  for (const h of helpers) {
    if (!Number.isInteger(h.id) || h.id < 0 || h.id > 0x7fffffff)
      throw new ProgramLoadError(`helper '${h.name}' has invalid id ${h.id}`);
  }
  return new Map(helpers.map((h) => [h.id, h]));
}
