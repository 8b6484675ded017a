// 64 records { key; value } at param0: emits the values of the first 8 records whose key lies in
// [param1, hi), hi being the first u64 of the input; returns how many it emitted.
#include "nearbpf.h"
struct record {
  __u64 key;
  __u64 value;
};
#define RECORDS 64
#define MAX_MATCHES 8
NEARBPF_STORAGE_PROGRAM(kv_filter) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, RECORDS * sizeof(struct record));
    return 0;
  }
  if (ctx->input_len < sizeof(__u64)) return -1;
  __u64 hi = *(const __u64 *)NB_INPUT(ctx);
  struct record *r = NB_DATA(ctx);
  __u64 matches = 0;
  for (int i = 0; i < RECORDS; i++) {
    if ((void *)(r + i + 1) > NB_DATA_END(ctx)) break;
    if (r[i].key < ctx->param1 || r[i].key >= hi) continue;
    nb_emit(&r[i].value, sizeof(__u64));
    if (++matches == MAX_MATCHES) break;
  }
  return matches;
}
