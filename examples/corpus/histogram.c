// 16-bucket histogram (by high nibble) of 256 bytes, kept in scratch and emitted (16 u32);
// returns the number of non-empty buckets.
#include "nearbpf.h"
#define N 256
NEARBPF_STORAGE_PROGRAM(histogram) {
  __u32 *buckets = NB_SCRATCH(ctx);
  if (ctx->step == 0) {
    nb_read(ctx->param0, N);
    return 0;
  }
  const __u8 *b = NB_DATA(ctx);
  if ((void *)(b + N) > NB_DATA_END(ctx)) return -1;
  for (int i = 0; i < N; i++) buckets[b[i] >> 4]++;
  __u64 used = 0;
  for (int k = 0; k < 16; k++)
    if (buckets[k]) used++;
  nb_emit(buckets, 16 * sizeof(__u32));
  return used;
}
