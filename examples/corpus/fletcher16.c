// Fletcher-16 checksum of 1,024 bytes.
#include "nearbpf.h"
#define N 1024
NEARBPF_STORAGE_PROGRAM(fletcher16) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, N);
    return 0;
  }
  const __u8 *b = NB_DATA(ctx);
  if ((void *)(b + N) > NB_DATA_END(ctx)) return -1;
  __u32 sum1 = 0, sum2 = 0;
  for (int i = 0; i < N; i++) {
    sum1 = (sum1 + b[i]) % 255;
    sum2 = (sum2 + sum1) % 255;
  }
  return (sum2 << 8) | sum1;
}
