/**
 * Program types: what a program of each kind receives at entry, which helpers it may call and what
 * it may return. The verifier reads only this description, so a new program type (e.g. the storage
 * function: a context with data/data_end pointers to the block just read, a scratch area, helpers to
 * request the next read and to emit output) is a new entry here and needs no change to the analysis.
 */
import type { ContextLayout } from './context.js';
import {
  type HelperPrototype,
  helperTable,
  MAP_DELETE_ELEM,
  MAP_LOOKUP_ELEM,
  MAP_UPDATE_ELEM,
  TRACE_PRINTK,
  UNWIND,
} from './helpers.js';
import { STORAGE_FUNCTION } from './storage.js';

/**
 * How one argument register is typed at entry.
 * - `ctx`: pointer to the context struct (the type must have a `context`).
 * - `data`: pointer to the start of the data buffer; accesses through it must be proven in bounds
 *   by a comparison against the end pointer (`data-end`, or `data` + `data-length`).
 * - `data-end`: pointer one past the end of the data buffer (not dereferenceable).
 * - `data-length`: the length of the data buffer in bytes, a number in [0, data.maxBytes]; adding it to
 *   an unmodified `data` pointer yields the end pointer.
 * - `scalar`: an unknown number.
 */
export type EntryRegisterKind = 'ctx' | 'data' | 'data-end' | 'data-length' | 'scalar';

/** The data buffer of a program type: at most `maxBytes` long; `writable` if stores into it are allowed. */
export interface DataBufferRule {
  readonly maxBytes: number;
  readonly writable: boolean;
}

/** Which r0 values an exit of the entry function may return (always a number, never a pointer). */
export type ReturnRule = { readonly kind: 'any-scalar' } | { readonly kind: 'range'; readonly min: bigint; readonly max: bigint };

export interface ProgramType {
  readonly name: string;
  readonly description: string;
  /** r1, r2, ... at entry; registers not listed are unreadable until written. */
  readonly entryRegisters: readonly EntryRegisterKind[];
  readonly context?: ContextLayout;
  /** The data buffer reached through `data` entry registers or context fields, if the type has one. */
  readonly data?: DataBufferRule;
  /** Allowed helpers by id. */
  readonly helpers: ReadonlyMap<number, HelperPrototype>;
  readonly returns: ReturnRule;
}

/**
 * Programs of the bpf_conformance suite: r1 points to a readable and writable memory buffer whose
 * length is in r2. The buffer is modelled as a data buffer: `r1 + r2` is its end pointer, and an access
 * through r1 is allowed only after a comparison proves it ends at or before that end pointer.
 */
export const CONFORMANCE: ProgramType = {
  name: 'conformance',
  description:
    'bpf_conformance test programs: r1 = memory buffer, r2 = its length; helpers: maps (1-3), unwind (5), trace_printk (6)',
  entryRegisters: ['data', 'data-length'],
  data: { maxBytes: 1 << 20, writable: true },
  helpers: helperTable(MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, UNWIND, TRACE_PRINTK),
  returns: { kind: 'any-scalar' },
};

export const PROGRAM_TYPES = {
  conformance: CONFORMANCE,
  storage: STORAGE_FUNCTION,
} as const satisfies Record<string, ProgramType>;

export type ProgramTypeName = keyof typeof PROGRAM_TYPES;

/** Look a program type up by name; undefined when there is none. */
export function programTypeByName(name: string): ProgramType | undefined {
  return Object.hasOwn(PROGRAM_TYPES, name) ? PROGRAM_TYPES[name as ProgramTypeName] : undefined;
}
