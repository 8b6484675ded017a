// One level of a breadth-first walk: 10 nodes { id; edges[3] } at param0 (at most 30 reads, under
// NB_MAX_READS_PER_STEP); queues a read of every non-zero edge, counting the reads queued, and
// returns, in the next step, queued * 1000 + the number of reads whose data arrived.
#include "nearbpf.h"
struct gnode {
  __u64 id;
  __u64 edges[3];
};
struct bfs_state {
  __u64 queued;
};
#define NODES 10
NEARBPF_STORAGE_PROGRAM(bfs_queue) {
  struct bfs_state *st = NB_SCRATCH(ctx);
  if (ctx->step == 0) {
    nb_read(ctx->param0, NODES * sizeof(struct gnode));
    return 0;
  }
  if (ctx->step > 1) return st->queued * 1000 + ctx->nr_reads;
  struct gnode *nodes = NB_DATA(ctx);
  __u64 queued = 0;
  for (int i = 0; i < NODES; i++) {
    struct gnode *n = nodes + i;
    if ((void *)(n + 1) > NB_DATA_END(ctx)) break;
    if (n->edges[0] && nb_read(n->edges[0], sizeof(struct gnode)) == 0) queued++;
    if (n->edges[1] && nb_read(n->edges[1], sizeof(struct gnode)) == 0) queued++;
    if (n->edges[2] && nb_read(n->edges[2], sizeof(struct gnode)) == 0) queued++;
  }
  st->queued = queued;
  return 0;
}
