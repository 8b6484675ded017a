// Binary search in one B-tree-like node: mem = u64 key to find, then 31 sorted u64 keys.
// r0 = index of the key in the node, or 31 (NODE_KEYS) when it is absent; ~0 if mem is too short.
#include "nearbpf.h"

#define NODE_KEYS 31

struct node {
  __u64 key;
  __u64 keys[NODE_KEYS];
};

NEARBPF_CONFORMANCE_PROGRAM(bsearch) {
  if (len < sizeof(struct node)) return ~0ULL;
  struct node *n = (struct node *)mem;
  __u64 want = n->key;
  __u32 lo = 0, hi = NODE_KEYS;
  // At most 5 halvings for 31 keys; the bound keeps the loop obviously finite.
  for (int step = 0; step < 6 && lo < hi; step++) {
    __u32 mid = lo + (hi - lo) / 2;
    if (mid >= NODE_KEYS) break;
    __u64 k = n->keys[mid];
    if (k == want) return mid;
    if (k < want)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NODE_KEYS;
}

char LICENSE[] SEC("license") = "Apache-2.0";
