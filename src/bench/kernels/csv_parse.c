// CSV parser: a small state machine over text records of unsigned decimal fields ("12,3456,7\n"):
// sums the fields of each column (up to 4), counts records, and counts bytes that are neither
// digits nor separators.
#include "bench-kernel.h"

BENCH_KERNEL(csv_parse) {
  struct bench_input in;
  if (!bench_open(mem, len, &in)) return BENCH_BAD_INPUT;
  __u32 rounds = in.rounds;
  __u8 *end = in.end;
  __u8 *text = in.payload;
  __u64 sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0, records = 0, junk = 0;
  for (__u32 r = 0; r < rounds; r++) {
    __u64 value = 0;
    __u32 column = 0, in_field = 0;
    for (__u32 i = 0; i < BENCH_MAX_PAYLOAD_BYTES; i++) {
      __u8 *p = text + i;
      if (p + 1 > end) break;
      __u8 c = *p;
      if (c >= '0' && c <= '9') {
        value = value * 10 + (c - '0');
        in_field = 1;
        continue;
      }
      if (c != ',' && c != '\n') {
        junk++;
        continue;
      }
      if (in_field) {
        switch (column) {
        case 0: sum0 += value; break;
        case 1: sum1 += value; break;
        case 2: sum2 += value; break;
        default: sum3 += value; break;
        }
      }
      value = 0;
      in_field = 0;
      column++;
      if (c == '\n') {
        records++;
        column = 0;
      }
    }
  }
  return sum0 ^ (sum1 << 8) ^ (sum2 << 16) ^ (sum3 << 24) ^ (records << 48) ^ (junk << 32);
}

BENCH_LICENSE
