// Local calls: per u32 word, a call to score(), which calls clamp() and mix(): three BPF-to-BPF
// calls per word (noinline, so clang emits real calls and the native build keeps them too).
#include "bench-kernel.h"

static __noinline __u64 mix(__u64 a, __u64 b) {
  a ^= b;
  a *= 0xff51afd7ed558ccdULL;
  return a ^ (a >> 33);
}

static __noinline __u32 clamp(__u32 v, __u32 lo, __u32 hi) {
  if (v < lo) return lo;
  if (v > hi) return hi;
  return v;
}

static __noinline __u64 score(__u32 word, __u64 index, __u64 acc) {
  return mix(acc, (__u64)clamp(word, 0x1000, 0xfffff000) + index);
}

BENCH_KERNEL(local_calls) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u32 *words = (__u32 *)in.payload;
  __u64 acc = in.seed;
  for (__u32 r = 0; r < rounds; r++) {
    for (__u32 i = 0; i < BENCH_MAX_PAYLOAD_BYTES / 4; i++) {
      __u32 *p = words + i;
      if ((__u8 *)(p + 1) > end) break;
      acc = score(*p, i, acc);
    }
  }
  return acc;
}

BENCH_LICENSE
