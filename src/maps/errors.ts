/** Errors of the map implementation (host side; program-side failures are errno results). */
import { NearbpfError } from '../errors.js';

/** Creating the maps of a sandbox would exceed the configured total map memory. */
export class MapMemoryLimitError extends NearbpfError {
  readonly code = 'ERR_MAP_MEMORY_LIMIT';
  constructor(
    readonly limitBytes: number,
    readonly requestedBytes: number,
    readonly mapName: string,
  ) {
    super(`map '${mapName}' brings map memory to ${requestedBytes} bytes, over the limit of ${limitBytes}`);
  }
}

/** A host-side map call with a key or value of the wrong size, or an invalid map specification. */
export class MapArgumentError extends NearbpfError {
  readonly code = 'ERR_MAP_ARGUMENT';
  constructor(
    readonly mapName: string,
    readonly reason: string,
  ) {
    super(`map '${mapName}': ${reason}`);
  }
}
