// First index of param1 among 512 u64, + 1; 0 when absent.
#include "nearbpf.h"
#define N 512
NEARBPF_STORAGE_PROGRAM(find_first) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, N * sizeof(__u64));
    return 0;
  }
  const __u64 *v = NB_DATA(ctx);
  if ((void *)(v + N) > NB_DATA_END(ctx)) return -1;
  for (int i = 0; i < N; i++)
    if (v[i] == ctx->param1) return i + 1;
  return 0;
}
