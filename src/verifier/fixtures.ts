/**
 * Test-only program type (imported by `*.test.ts` only): a context struct with data/data_end pointer
 * fields, a read-only and a writable field, pointers to a scratch area and to read-only data, maps,
 * and helpers with memory arguments, to exercise every rule the conformance type does not.
 */
import { contextLayout, type MemoryRegion, pointerField, scalarField } from '../abi/context.js';
import { type HelperPrototype, helperTable, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM } from '../abi/helpers.js';
import type { MapDefinition } from '../abi/maps.js';
import type { ProgramType } from '../abi/program-types.js';

export const SCRATCH: MemoryRegion = { name: 'scratch', sizeBytes: 64, writable: true };
export const RODATA: MemoryRegion = { name: 'rodata', sizeBytes: 16, writable: false };

/**
 * struct test_ctx {
 *   u8 *data;        // 0   read buffer start
 *   u8 *data_end;    // 8
 *   u32 len;         // 16  read-only
 *   u32 result;      // 20  writable
 *   u8 *scratch;     // 24  64 writable bytes
 *   u8 *rodata;      // 32  16 read-only bytes
 * };
 */
export const TEST_CONTEXT = contextLayout('test_ctx', 40, [
  pointerField('data', 0, { kind: 'data' }),
  pointerField('data_end', 8, { kind: 'data-end' }),
  scalarField('len', 16, 4),
  scalarField('result', 20, 4, true),
  pointerField('scratch', 24, { kind: 'region', region: SCRATCH }),
  pointerField('rodata', 32, { kind: 'region', region: RODATA }),
]);

export const EMIT: HelperPrototype = { id: 100, name: 'emit', args: ['readable-mem', 'mem-size'], returns: 'scalar' };
export const FILL: HelperPrototype = { id: 101, name: 'fill', args: ['writable-mem', 'mem-size-or-zero'], returns: 'scalar' };
export const CTX_INFO: HelperPrototype = { id: 102, name: 'ctx_info', args: ['ctx', 'scalar'], returns: 'scalar' };
export const NOTHING: HelperPrototype = { id: 103, name: 'nothing', args: [], returns: 'void' };

export const TEST_TYPE: ProgramType = {
  name: 'test',
  description: 'test-only: context struct with data pointers, scratch, rodata; maps; memory helpers',
  entryRegisters: ['ctx'],
  context: TEST_CONTEXT,
  data: { maxBytes: 4096, writable: false },
  helpers: helperTable(MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, EMIT, FILL, CTX_INFO, NOTHING),
  returns: { kind: 'range', min: 0n, max: 255n },
};

/** Map 0: 4-byte keys, 16-byte values. */
export const TEST_MAPS: readonly MapDefinition[] = [{ name: 'values', keySizeBytes: 4, valueSizeBytes: 16, maxEntries: 8 }];
