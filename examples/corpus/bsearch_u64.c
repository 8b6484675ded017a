// Binary search for param1 among 512 sorted u64: its index + 1, or 0 when absent.
#include "nearbpf.h"
#define N 512
NEARBPF_STORAGE_PROGRAM(bsearch_u64) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, N * sizeof(__u64));
    return 0;
  }
  const __u64 *keys = NB_DATA(ctx);
  if ((void *)(keys + N) > NB_DATA_END(ctx)) return -1;
  __u64 want = ctx->param1;
  __u32 lo = 0, hi = N;
  for (int probe = 0; probe < 10 && lo < hi; probe++) {
    __u32 mid = (lo + hi) / 2;
    if (mid >= N) break;
    __u64 k = keys[mid];
    if (k == want) return mid + 1;
    if (k < want)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}
