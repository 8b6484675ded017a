/**
 * Helper functions a program may call (`call <id>`): ids and prototypes. The verifier checks every
 * call against the prototype; the VM implements the helper under the same id. A program type picks
 * the helpers it allows (see program-types.ts).
 */
import { CONFORMANCE_UNWIND_HELPER_ID } from './limits.js';

/**
 * What a helper expects in one argument register (r1 is the first).
 * - `scalar`: a number; never a pointer (a pointer passed as a number leaks an address).
 * - `ctx`: the program's context pointer, unmodified.
 * - `readable-mem` / `writable-mem`: a pointer to memory the helper reads / fills; the next argument
 *   must be `mem-size` or `mem-size-or-zero` and gives its length in bytes. The helper fills all
 *   `size` bytes of a writable buffer.
 * - `mem-size` / `mem-size-or-zero`: length of the preceding memory argument: a bounded scalar,
 *   at least 1 (or 0) and such that the whole range fits the memory.
 * - `map`: a map reference (from `lddw %rN, map_by_idx K`).
 * - `map-key` / `map-value`: a pointer to readable memory of the key / value size of the map argument.
 * - `format-arg`: a number consumed by the format string of the first (memory) argument. When that
 *   format is known (read-only global data), arguments past its conversions are never read and may
 *   hold anything (clang leaves stale registers there); otherwise it is checked as `scalar`.
 */
export type HelperArgKind =
  | 'scalar'
  | 'ctx'
  | 'readable-mem'
  | 'writable-mem'
  | 'mem-size'
  | 'mem-size-or-zero'
  | 'map'
  | 'map-key'
  | 'map-value'
  | 'format-arg';

/**
 * What a helper leaves in r0: a number, a pointer to a value of the map argument or 0 (the program
 * must test it against 0 before use), or nothing (r0 is then unreadable).
 */
export type HelperReturnKind = 'scalar' | 'map-value-or-null' | 'void';

export interface HelperPrototype {
  readonly id: number;
  readonly name: string;
  /** Kinds of r1, r2, ... (at most 5). */
  readonly args: readonly HelperArgKind[];
  readonly returns: HelperReturnKind;
}

/** Helper ids shared by every program type that offers the helper. */
export const HELPER_IDS = {
  mapLookupElem: 1,
  mapUpdateElem: 2,
  mapDeleteElem: 3,
  unwind: CONFORMANCE_UNWIND_HELPER_ID,
  tracePrintk: 6,
} as const;

export const MAP_LOOKUP_ELEM: HelperPrototype = {
  id: HELPER_IDS.mapLookupElem,
  name: 'map_lookup_elem',
  args: ['map', 'map-key'],
  returns: 'map-value-or-null',
};
export const MAP_UPDATE_ELEM: HelperPrototype = {
  id: HELPER_IDS.mapUpdateElem,
  name: 'map_update_elem',
  args: ['map', 'map-key', 'map-value', 'scalar'],
  returns: 'scalar',
};
export const MAP_DELETE_ELEM: HelperPrototype = {
  id: HELPER_IDS.mapDeleteElem,
  name: 'map_delete_elem',
  args: ['map', 'map-key'],
  returns: 'scalar',
};
/** The conformance suite's "unwind": returns its argument; an argument of 0 stops the program with r0 = 0. */
export const UNWIND: HelperPrototype = { id: HELPER_IDS.unwind, name: 'unwind', args: ['scalar'], returns: 'scalar' };

/** `long trace_printk(const char *fmt, u32 fmt_size, ...)`: debug output (bpf_printk); up to three number arguments. */
export const TRACE_PRINTK: HelperPrototype = {
  id: HELPER_IDS.tracePrintk,
  name: 'trace_printk',
  args: ['readable-mem', 'mem-size', 'format-arg', 'format-arg', 'format-arg'],
  returns: 'scalar',
};

/** Index prototypes by id; throws on a duplicate id (a registry bug). */
export function helperTable(...prototypes: readonly HelperPrototype[]): ReadonlyMap<number, HelperPrototype> {
  const table = new Map<number, HelperPrototype>();
  for (const p of prototypes) {
    if (table.has(p.id)) throw new Error(`helper id ${p.id} registered twice (${table.get(p.id)?.name}, ${p.name})`);
    if (p.args.length > 5) throw new Error(`helper ${p.name} has more than 5 arguments`);
    table.set(p.id, p);
  }
  return table;
}
