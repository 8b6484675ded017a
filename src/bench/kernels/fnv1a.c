// FNV-1a (64-bit) of the payload, each round seeded with the previous round's hash.
#include "bench-kernel.h"

#define FNV_OFFSET_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

BENCH_KERNEL(fnv1a) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u8 *data = in.payload;
  __u64 total = in.seed;
  for (__u32 r = 0; r < rounds; r++) {
    __u64 hash = FNV_OFFSET_BASIS ^ total;
    for (__u32 i = 0; i < BENCH_MAX_PAYLOAD_BYTES; i++) {
      __u8 *p = data + i;
      if (p + 1 > end) break;
      hash ^= *p;
      hash *= FNV_PRIME;
    }
    total = hash;
  }
  return total;
}

BENCH_LICENSE
