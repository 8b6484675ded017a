/**
 * The storage-function program type: the contract between a program that runs next to the data and
 * the storage runtime. The verifier checks programs against it; the runtime fills the context and
 * implements the helpers; include/nearbpf.h mirrors it for C authors.
 *
 * An execution is a series of steps. Each step runs the program once, to completion. In a step the
 * program reads its parameters and input, the data of the reads it asked for in the previous step
 * (`data`..`data_end`, in request order), and a scratch area that persists across steps; it may ask
 * for up to `MAX_READS_PER_STEP` reads for the next step (`nb_read`), append output (`nb_emit`) and
 * return. The execution continues while the step asked for reads; otherwise the step's return
 * value is the execution's. In scan mode the runtime streams a byte range through the program chunk
 * by chunk instead, then runs one last step with `NB_FLAG_SCAN_END` set and no data.
 */
import { type ContextLayout, contextLayout, pointerField, scalarField } from './context.js';
import { HELPER_IDS, type HelperPrototype, helperTable, MAP_DELETE_ELEM, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM } from './helpers.js';
import type { ProgramType } from './program-types.js';

/** Reads a step may request (fan-out). */
export const MAX_READS_PER_STEP = 32;
/** Bytes one step may read, all requests together: the size of the data buffer. */
export const MAX_DATA_BYTES_PER_STEP = 256 * 1024;
/** Scratch area that keeps its contents across the steps of one execution. */
export const SCRATCH_SIZE_BYTES = 4096;
/** Largest parameter blob a client may send with an execution. */
export const MAX_INPUT_BYTES = 4096;

/** `ctx->flags` bits. */
export const NB_FLAG_SCAN = 1;
export const NB_FLAG_SCAN_END = 2;

export const STORAGE_HELPER_IDS = {
  /** `long nb_read(u64 offset, u64 length)`: queue a read of the namespace for the next step; 0 or < 0. */
  read: 100,
  /** `long nb_emit(const void *buf, u64 length)`: append bytes to the execution's output; 0 or < 0. */
  emit: 101,
  /** `long nb_scan_stop(void)`: in scan mode, skip the remaining chunks (the end step still runs). */
  scanStop: 102,
} as const;

export const NB_READ: HelperPrototype = {
  id: STORAGE_HELPER_IDS.read,
  name: 'nb_read',
  args: ['scalar', 'scalar'],
  returns: 'scalar',
};
export const NB_EMIT: HelperPrototype = {
  id: STORAGE_HELPER_IDS.emit,
  name: 'nb_emit',
  args: ['readable-mem', 'mem-size'],
  returns: 'scalar',
};
export const NB_SCAN_STOP: HelperPrototype = {
  id: STORAGE_HELPER_IDS.scanStop,
  name: 'nb_scan_stop',
  args: [],
  returns: 'scalar',
};

/** Offsets of `struct nb_ctx` fields (all 8 bytes). */
export const STORAGE_CTX = {
  data: 0,
  dataEnd: 8,
  scratch: 16,
  input: 24,
  inputLen: 32,
  param0: 40,
  param1: 48,
  step: 56,
  nrReads: 64,
  dataOffset: 72,
  flags: 80,
  namespaceSize: 88,
  sizeBytes: 96,
} as const;

export const STORAGE_CONTEXT: ContextLayout = contextLayout('nb_ctx', STORAGE_CTX.sizeBytes, [
  pointerField('data', STORAGE_CTX.data, { kind: 'data' }),
  pointerField('data_end', STORAGE_CTX.dataEnd, { kind: 'data-end' }),
  pointerField('scratch', STORAGE_CTX.scratch, {
    kind: 'region',
    region: { name: 'scratch', sizeBytes: SCRATCH_SIZE_BYTES, writable: true },
  }),
  pointerField('input', STORAGE_CTX.input, {
    kind: 'region',
    region: { name: 'input', sizeBytes: MAX_INPUT_BYTES, writable: false },
  }),
  scalarField('input_len', STORAGE_CTX.inputLen, 8),
  scalarField('param0', STORAGE_CTX.param0, 8),
  scalarField('param1', STORAGE_CTX.param1, 8),
  scalarField('step', STORAGE_CTX.step, 8),
  scalarField('nr_reads', STORAGE_CTX.nrReads, 8),
  scalarField('data_offset', STORAGE_CTX.dataOffset, 8),
  scalarField('flags', STORAGE_CTX.flags, 8),
  scalarField('namespace_size', STORAGE_CTX.namespaceSize, 8),
]);

export const STORAGE_FUNCTION: ProgramType = {
  name: 'storage',
  description: 'storage function: r1 = struct nb_ctx; reads, output and scratch through it and the nb_* helpers',
  entryRegisters: ['ctx'],
  context: STORAGE_CONTEXT,
  data: { maxBytes: MAX_DATA_BYTES_PER_STEP, writable: false },
  helpers: helperTable(NB_READ, NB_EMIT, NB_SCAN_STOP, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM),
  returns: { kind: 'any-scalar' },
};

export { HELPER_IDS };
