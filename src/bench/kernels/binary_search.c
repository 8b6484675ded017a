// Binary search: the payload is a sorted array of u32 keys; each round looks up 1024 keys from a
// linear congruential sequence (lower bound, at most 32 halvings) and sums the positions found.
#include "bench-kernel.h"

#define LOOKUPS_PER_ROUND 1024

BENCH_KERNEL(binary_search) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u32 *keys = (__u32 *)in.payload;
  __u32 count = (__u32)((len - BENCH_HEADER_BYTES) / 4);
  __u64 state = in.seed;
  __u64 total = 0;
  for (__u32 r = 0; r < rounds; r++) {
    for (__u32 k = 0; k < LOOKUPS_PER_ROUND; k++) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      __u32 want = (__u32)(state >> 32);
      __u32 lo = 0, hi = count;
      for (__u32 step = 0; step < 32 && lo < hi; step++) {
        __u32 mid = lo + (hi - lo) / 2;
        __u32 *p = keys + mid;
        if ((__u8 *)(p + 1) > end) return BENCH_BAD_INPUT;
        if (*p < want)
          lo = mid + 1;
        else
          hi = mid;
      }
      total += lo;
    }
  }
  return total;
}

BENCH_LICENSE
