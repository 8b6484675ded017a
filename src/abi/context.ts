/**
 * Context layouts: the struct a program receives in r1 for program types that have one. Each field
 * has an offset, a size and an access rule; some fields hold pointers (the data buffer and its end,
 * or a fixed-size memory area such as a scratch buffer). The verifier allows a context access only
 * when it stays inside one field; pointer fields are read whole (8 bytes) and are never writable.
 */

/** A memory area of a size known at load time (scratch buffer, map value, read-only data). */
export interface MemoryRegion {
  readonly name: string;
  readonly sizeBytes: number;
  readonly writable: boolean;
  /** Known, unchanging contents (read-only global data), when the verifier may rely on them. */
  readonly contents?: Uint8Array;
}

/**
 * What loading a field yields: a number (`scalar`), the start of the data buffer (`data`), one past
 * its end (`data-end`), or a pointer to the start of a fixed-size region.
 */
export type ContextFieldValue =
  | { readonly kind: 'scalar' }
  | { readonly kind: 'data' }
  | { readonly kind: 'data-end' }
  | { readonly kind: 'region'; readonly region: MemoryRegion };

export interface ContextField {
  readonly name: string;
  readonly offset: number;
  readonly sizeBytes: 1 | 2 | 4 | 8;
  /** Whether the program may store to the field. Pointer fields are always read-only. */
  readonly writable: boolean;
  readonly value: ContextFieldValue;
}

export interface ContextLayout {
  readonly name: string;
  readonly sizeBytes: number;
  /** Sorted by offset, non-overlapping. */
  readonly fields: readonly ContextField[];
}

const SCALAR: ContextFieldValue = { kind: 'scalar' };

/** Field constructors, so layouts read like struct declarations. */
export const scalarField = (name: string, offset: number, sizeBytes: 1 | 2 | 4 | 8, writable = false): ContextField => ({
  name,
  offset,
  sizeBytes,
  writable,
  value: SCALAR,
});
export const pointerField = (
  name: string,
  offset: number,
  value: Exclude<ContextFieldValue, { kind: 'scalar' }>,
): ContextField => ({
  name,
  offset,
  sizeBytes: 8,
  writable: false,
  value,
});

/** Build a layout, checking the fields are in order, aligned, inside the struct and non-overlapping. */
export function contextLayout(name: string, sizeBytes: number, fields: readonly ContextField[]): ContextLayout {
  let end = 0;
  for (const f of fields) {
    if (f.offset < end) throw new Error(`context ${name}: field ${f.name} overlaps the previous field or is out of order`);
    if (f.offset % f.sizeBytes !== 0) throw new Error(`context ${name}: field ${f.name} is misaligned`);
    if (f.value.kind !== 'scalar' && (f.sizeBytes !== 8 || f.writable)) {
      throw new Error(`context ${name}: pointer field ${f.name} must be 8 bytes and read-only`);
    }
    end = f.offset + f.sizeBytes;
  }
  if (end > sizeBytes) throw new Error(`context ${name}: fields extend past the struct size ${sizeBytes}`);
  return { name, sizeBytes, fields };
}

/** The field that contains byte `offset`, if any. */
export function fieldAt(layout: ContextLayout, offset: number): ContextField | undefined {
  return layout.fields.find((f) => offset >= f.offset && offset < f.offset + f.sizeBytes);
}
