// Walks a linked list of { value; next } from param0, one node per step, at most 64 nodes.
// Returns nodes * 1000000 + sum of the values; -1 on a short read or a longer chain.
#include "nearbpf.h"
struct lnode {
  __u64 value;
  __u64 next;
};
struct walk {
  __u64 nodes;
  __u64 sum;
};
NEARBPF_STORAGE_PROGRAM(list_count) {
  struct walk *w = NB_SCRATCH(ctx);
  if (ctx->step == 0) {
    nb_read(ctx->param0, sizeof(struct lnode));
    return 0;
  }
  struct lnode *n = NB_DATA(ctx);
  if ((void *)(n + 1) > NB_DATA_END(ctx)) return -1;
  w->nodes++;
  w->sum += n->value;
  if (n->next == 0) return w->nodes * 1000000 + w->sum;
  if (w->nodes >= 64) return -1;
  nb_read(n->next, sizeof(struct lnode));
  return 0;
}
