// Table scan with a filter, a projection and aggregates, run in scan mode next to the data.
// The table is a run of 64-byte rows (src/showcase/table.ts). param0 = quantity threshold: rows with
// quantity < param0 match. param1 bit 0: project (emit id and price of every matching row).
// At the end emits { u64 count; s64 sum; s64 min; s64 max } of the matching rows' price and returns
// count.
#include "nearbpf.h"

struct row {
  __u64 id;
  __u32 category;
  __u32 quantity;
  __s64 price;
  __u64 timestamp;
  __u8 pad[32];
};

#define ROWS_PER_CHUNK (NB_MAX_DATA_PER_STEP / sizeof(struct row))
#define PROJECT_BATCH 128

struct projected {
  __u64 id;
  __s64 price;
};

struct scan_state {
  __u64 count;
  __s64 sum;
  __s64 min;
  __s64 max;
  __u64 buffered;
  struct projected out[PROJECT_BATCH];
};

NEARBPF_STORAGE_PROGRAM(table_scan) {
  struct scan_state *st = NB_SCRATCH(ctx);
  if (ctx->flags & NB_FLAG_SCAN_END) {
    __u64 n = st->buffered;
    if (n > PROJECT_BATCH) n = PROJECT_BATCH;
    if (n) nb_emit(st->out, n * sizeof(struct projected));
    nb_emit(st, 4 * sizeof(__u64));
    return st->count;
  }
  __u64 threshold = ctx->param0;
  int project = ctx->param1 & 1;
  void *data = NB_DATA(ctx);
  void *end = NB_DATA_END(ctx);
  for (__u32 i = 0; i < ROWS_PER_CHUNK; i++) {
    struct row *r = data + i * sizeof(struct row);
    if ((void *)(r + 1) > end) break;
    if (r->quantity >= threshold) continue;
    __s64 price = r->price;
    if (st->count == 0 || price < st->min) st->min = price;
    if (st->count == 0 || price > st->max) st->max = price;
    st->count++;
    st->sum += price;
    if (!project) continue;
    __u64 b = st->buffered;
    if (b >= PROJECT_BATCH) {
      nb_emit(st->out, sizeof(st->out));
      b = 0;
    }
    st->out[b].id = r->id;
    st->out[b].price = price;
    st->buffered = b + 1;
  }
  return 0;
}

char LICENSE[] SEC("license") = "Apache-2.0";
