// ALU mix: per u64 word, a dependent chain of 64- and 32-bit multiplies, shifts, rotates, xors and
// adds (a hash-like mixer), carried across rounds.
#include "bench-kernel.h"

BENCH_KERNEL(alu_mix) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u64 *words = (__u64 *)in.payload;
  __u64 acc = in.seed;
  for (__u32 r = 0; r < rounds; r++) {
    for (__u32 i = 0; i < BENCH_MAX_PAYLOAD_BYTES / 8; i++) {
      __u64 *p = words + i;
      if ((__u8 *)(p + 1) > end) break;
      __u64 x = *p ^ acc;
      x *= 0x9e3779b97f4a7c15ULL;
      x ^= x >> 29;
      __u32 lo = (__u32)x;
      __u32 hi = (__u32)(x >> 32);
      lo = lo * 2654435761u + hi;
      hi = ((hi << 7) | (hi >> 25)) ^ lo;
      acc = (((__u64)hi << 32) | lo) + ((acc << 3) | (acc >> 61)) - i;
    }
  }
  return acc;
}

BENCH_LICENSE
