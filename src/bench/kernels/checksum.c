// Checksum of u32 words, Fletcher-64 style: two running sums (a += word, b += a) folded modulo
// 2^32 - 1 after each round.
#include "bench-kernel.h"

static inline __u64 fold32(__u64 x) {
  x = (x & 0xffffffffULL) + (x >> 32);
  x = (x & 0xffffffffULL) + (x >> 32);
  return x == 0xffffffffULL ? 0 : x;
}

BENCH_KERNEL(checksum) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u32 *words = (__u32 *)in.payload;
  __u64 a = in.seed, b = 0;
  for (__u32 r = 0; r < rounds; r++) {
    // 16384 words of at most 2^32 - 1 keep b below 2^64 between folds.
    for (__u32 i = 0; i < BENCH_MAX_PAYLOAD_BYTES / 4; i++) {
      __u32 *p = words + i;
      if ((__u8 *)(p + 1) > end) break;
      a += *p;
      b += a;
    }
    a = fold32(a);
    b = fold32(b);
  }
  return (b << 32) | a;
}

BENCH_LICENSE
