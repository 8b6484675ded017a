/**
 * bpf_map_lookup_elem (1), bpf_map_update_elem (2) and bpf_map_delete_elem (3) against the sandbox:
 * r1 is a map handle (see MAP_HANDLE_BASE), key and value pointers are checked sandbox addresses.
 * Results follow Linux: lookup returns a value address or 0; update/delete return 0 or -errno.
 */
import { HELPER_IDS } from '../abi/helpers.js';
import { HelperError } from '../errors.js';
import type { Helper, HelperCall } from '../vm/helpers.js';
import type { BpfMap, MapSet } from './map.js';

const errno = (result: number): bigint => BigInt.asUintN(64, BigInt(result));

function mapOf(maps: MapSet, r1: bigint, helperId: number, call: HelperCall): BpfMap {
  const map = maps.fromHandle(r1);
  if (map === undefined) throw new HelperError(call.pc, helperId, `r1 (0x${r1.toString(16)}) is not a map reference`);
  return map;
}

export function mapHelpers(maps: MapSet): Helper[] {
  return [
    {
      id: HELPER_IDS.mapLookupElem,
      name: 'map_lookup_elem',
      fn: (r1, r2, _r3, _r4, _r5, call) => {
        const map = mapOf(maps, r1, HELPER_IDS.mapLookupElem, call);
        const key = call.memory.slice(r2, map.spec.keySizeBytes, 'read', call.pc);
        const at = map.lookupOffset(key);
        return at < 0 ? 0n : BigInt(map.valuesAddress + at);
      },
    },
    {
      id: HELPER_IDS.mapUpdateElem,
      name: 'map_update_elem',
      fn: (r1, r2, r3, r4, _r5, call) => {
        const map = mapOf(maps, r1, HELPER_IDS.mapUpdateElem, call);
        const key = call.memory.slice(r2, map.spec.keySizeBytes, 'read', call.pc);
        const value = call.memory.slice(r3, map.spec.valueSizeBytes, 'read', call.pc);
        return errno(map.update(key, value, r4));
      },
    },
    {
      id: HELPER_IDS.mapDeleteElem,
      name: 'map_delete_elem',
      fn: (r1, r2, _r3, _r4, _r5, call) => {
        const map = mapOf(maps, r1, HELPER_IDS.mapDeleteElem, call);
        const key = call.memory.slice(r2, map.spec.keySizeBytes, 'read', call.pc);
        return errno(map.delete(key));
      },
    },
  ];
}
