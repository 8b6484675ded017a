/**
 * Helpers are host functions a program calls by id. Both engines call them the same way, with
 * r1-r5 as unsigned 64-bit values; the result becomes r0.
 */
import { ProgramLoadError } from '../errors.js';
import type { SandboxMemory } from './memory.js';

export interface HelperCall {
  /** Sandbox of the running program: translate and check pointer arguments through it. */
  readonly memory: SandboxMemory;
  /** Slot of the call instruction, for error messages. */
  readonly pc: number;
}

export type HelperFunction = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint, call: HelperCall) => bigint;

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
