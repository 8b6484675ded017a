// Sum of 512 little-endian u64 read in one step. Returns the sum, or -1 if the data is short.
#include "nearbpf.h"
#define N 512
NEARBPF_STORAGE_PROGRAM(sum_u64) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, N * sizeof(__u64));
    return 0;
  }
  const __u64 *v = NB_DATA(ctx);
  __u64 sum = 0;
  for (int i = 0; i < N; i++) {
    if ((void *)(v + i + 1) > NB_DATA_END(ctx)) return -1;
    sum += v[i];
  }
  return sum;
}
