// Struct walk: the payload is an array of 16-byte nodes linked by index (a cycle through all of
// them, in shuffled order); each round follows `next` once per node, folding each node into the
// result by its kind, as a walk of an on-disk list or tree of records does.
#include "bench-kernel.h"

struct node {
  __u32 next;  /* index of the following node */
  __u32 value;
  __u16 kind;  /* low 2 bits: how the node folds into the result */
  __u16 weight;
  __u32 flags;
};

#define MAX_NODES (BENCH_MAX_PAYLOAD_BYTES / sizeof(struct node))

BENCH_KERNEL(struct_walk) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  struct node *nodes = (struct node *)in.payload;
  __u32 count = (__u32)((len - BENCH_HEADER_BYTES) / sizeof(struct node));
  __u32 index = 0;
  __u64 acc = in.seed;
  for (__u32 r = 0; r < rounds; r++) {
    for (__u32 s = 0; s < MAX_NODES && s < count; s++) {
      if (index >= count) return BENCH_BAD_INPUT;
      struct node *n = nodes + index;
      if ((__u8 *)(n + 1) > end) return BENCH_BAD_INPUT;
      switch (n->kind & 3) {
      case 0:
        acc += n->value;
        break;
      case 1:
        acc ^= (__u64)n->value << (n->weight & 31);
        break;
      case 2:
        acc = acc * 31 + n->weight;
        break;
      default:
        acc -= n->value >> 3;
        break;
      }
      acc += n->flags & 1;
      index = n->next;
    }
  }
  return acc;
}

BENCH_LICENSE
