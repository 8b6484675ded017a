// The row of an 8 x 8 matrix of u32 with the largest sum (the first one on ties), * 1000000 +
// that sum.
#include "nearbpf.h"
#define DIM 8
NEARBPF_STORAGE_PROGRAM(row_argmax) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, DIM * DIM * sizeof(__u32));
    return 0;
  }
  const __u32 *m = NB_DATA(ctx);
  if ((void *)(m + DIM * DIM) > NB_DATA_END(ctx)) return -1;
  __u64 best = 0, best_row = 0;
  for (int r = 0; r < DIM; r++) {
    __u64 sum = 0;
    for (int c = 0; c < DIM; c++) sum += m[r * DIM + c];
    if (r == 0 || sum > best) {
      best = sum;
      best_row = r;
    }
  }
  return best_row * 1000000 + best;
}
