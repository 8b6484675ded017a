/**
 * bpf_map_lookup_elem (1), bpf_map_update_elem (2) and bpf_map_delete_elem (3) against the sandbox:
 * r1 is a map handle (see MAP_HANDLE_BASE), key and value pointers are checked sandbox addresses.
 * Results follow Linux: lookup returns a value address or 0; update/delete return 0 or -errno.
 */
import { HELPER_IDS } from '../abi/helpers.js';
import { HelperError } from '../errors.js';
import type { Helper, HelperArgs } from '../vm/helpers.js';
import type { BpfMap, MapSet } from './map.js';

function mapOf(maps: MapSet, args: HelperArgs, helperId: number): BpfMap {
  const map = maps.fromHandleWords(args.high32(1), args.u32(1));
  if (map === undefined) throw new HelperError(args.pc, helperId, `r1 (0x${args.u64(1).toString(16)}) is not a map reference`);
  return map;
}

export function mapHelpers(maps: MapSet): Helper[] {
  return [
    {
      id: HELPER_IDS.mapLookupElem,
      name: 'map_lookup_elem',
      fn: (args) => {
        const map = mapOf(maps, args, HELPER_IDS.mapLookupElem);
        const at = map.lookupOffset(args.bytes(2, map.spec.keySizeBytes, 'read'));
        return at < 0 ? 0 : map.valuesAddress + at;
      },
    },
    {
      id: HELPER_IDS.mapUpdateElem,
      name: 'map_update_elem',
      fn: (args) => {
        const map = mapOf(maps, args, HELPER_IDS.mapUpdateElem);
        const key = args.bytes(2, map.spec.keySizeBytes, 'read');
        const value = args.bytes(3, map.spec.valueSizeBytes, 'read');
        // Flags: any bit above the known ones is EINVAL, so the exact 64-bit value matters.
        return map.update(key, value, args.fitsU32(4) ? args.u32(4) : args.u64(4));
      },
    },
    {
      id: HELPER_IDS.mapDeleteElem,
      name: 'map_delete_elem',
      fn: (args) => {
        const map = mapOf(maps, args, HELPER_IDS.mapDeleteElem);
        return map.delete(args.bytes(2, map.spec.keySizeBytes, 'read'));
      },
    },
  ];
}
