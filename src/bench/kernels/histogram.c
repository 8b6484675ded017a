// Histogram: per byte, a counter in a 64-bucket table on the stack (byte >> 2) is incremented (a
// load and a store per byte); each round folds the table into the result and clears it.
#include "bench-kernel.h"

#define BUCKETS 64

BENCH_KERNEL(histogram) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u8 *data = in.payload;
  __u32 counts[BUCKETS];
  __u64 acc = in.seed;
  for (__u32 r = 0; r < rounds; r++) {
    for (__u32 b = 0; b < BUCKETS; b++) counts[b] = 0;
    for (__u32 i = 0; i < BENCH_MAX_PAYLOAD_BYTES; i++) {
      __u8 *p = data + i;
      if (p + 1 > end) break;
      counts[*p >> 2]++;
    }
    for (__u32 b = 0; b < BUCKETS; b++) acc = acc * 31 + counts[b];
  }
  return acc;
}

BENCH_LICENSE
