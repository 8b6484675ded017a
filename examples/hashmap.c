// Hash-map counter: counts each byte value of mem in a hash map, and the bytes seen in an array map.
// r0 = distinct byte values * 1000 + occurrences of mem[0]; the entry of mem[0] is then deleted.
#include "nearbpf.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, __u64);
} counts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u64));
} stats SEC(".maps");

NEARBPF_CONFORMANCE_PROGRAM(count_bytes) {
  __u64 distinct = 0;
  if (len == 0 || len > 4096) return 0;
  for (__u64 i = 0; i < len; i++) {
    __u32 key = mem[i];
    __u64 *v = bpf_map_lookup_elem(&counts, &key);
    if (v) {
      *v += 1;
    } else {
      __u64 one = 1;
      if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST) == 0) distinct++;
    }
  }
  __u32 zero = 0;
  __u64 *seen = bpf_map_lookup_elem(&stats, &zero);
  if (seen) *seen += len;

  __u32 first = mem[0];
  __u64 *c = bpf_map_lookup_elem(&counts, &first);
  __u64 result = distinct * 1000 + (c ? *c : 0);
  bpf_map_delete_elem(&counts, &first);
  if (bpf_map_lookup_elem(&counts, &first)) return ~0ULL; // deleted entries must be gone
  return result;
}

char LICENSE[] SEC("license") = "Apache-2.0";
