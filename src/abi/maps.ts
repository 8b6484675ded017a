/**
 * Maps a program references: `lddw %rN, map_by_idx K` (or `map_by_fd K`) names the K-th map given to
 * the loader; `map_value_by_idx K, off` points `off` bytes into the value of a single-entry map.
 */
export interface MapDefinition {
  readonly name?: string;
  readonly keySizeBytes: number;
  readonly valueSizeBytes: number;
  readonly maxEntries: number;
}
