// Byte scan: lines, longest line and bytes with the high bit set, one byte at a time, as a log or
// text filter reads its input. The scanner state carries across rounds.
#include "bench-kernel.h"

BENCH_KERNEL(byte_scan) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u8 *data = in.payload;
  __u64 lines = 0, longest = 0, current = 0, high = 0;
  for (__u32 r = 0; r < rounds; r++) {
    for (__u32 i = 0; i < BENCH_MAX_PAYLOAD_BYTES; i++) {
      __u8 *p = data + i;
      if (p + 1 > end) break;
      __u8 c = *p;
      if (c == '\n') {
        lines++;
        if (current > longest) longest = current;
        current = 0;
      } else {
        current++;
      }
      high += c >> 7;
    }
  }
  return (lines << 40) ^ (longest << 20) ^ high;
}

BENCH_LICENSE
