// How many of 1,024 u32 values are above param1.
#include "nearbpf.h"
#define N 1024
NEARBPF_STORAGE_PROGRAM(count_above) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, N * sizeof(__u32));
    return 0;
  }
  const __u32 *v = NB_DATA(ctx);
  if ((void *)(v + N) > NB_DATA_END(ctx)) return -1;
  __u32 threshold = ctx->param1;
  __u64 count = 0;
  for (int i = 0; i < N; i++)
    if (v[i] > threshold) count++;
  return count;
}
