/**
 * Maps a program references: `lddw %rN, map_by_idx K` (or `map_by_fd K`) names the K-th map given to
 * the loader; `map_value_by_idx K, off` points `off` bytes into the value of a single-entry map.
 */
export interface MapDefinition {
  readonly name?: string;
  /** `hash` or `array` (informational for the verifier). */
  readonly type?: 'hash' | 'array';
  readonly keySizeBytes: number;
  readonly valueSizeBytes: number;
  readonly maxEntries: number;
  /** Programs may not write its values (`.rodata` global data): the verifier rejects stores into them. */
  readonly readonly?: boolean;
  /** Contents of entry 0 of a global-data map; with `readonly`, the verifier may read constants from it (format strings). */
  readonly initialValue?: Uint8Array;
}
