// A storage function with state: counts its executions per key (param0) in a hash map that every
// execution of the program shares, and the host can read and update (nearbpf map commands).
// Returns the new count.
#include "nearbpf.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} counts SEC(".maps");

NEARBPF_STORAGE_PROGRAM(count_calls) {
  __u64 key = ctx->param0;
  __u64 *v = bpf_map_lookup_elem(&counts, &key);
  if (v) {
    *v += 1;
    return *v;
  }
  __u64 one = 1;
  if (bpf_map_update_elem(&counts, &key, &one, BPF_ANY) != 0) return 0;
  return 1;
}

char LICENSE[] SEC("license") = "Apache-2.0";
