// BPF-to-BPF calls: subprograms in .text (static and global, one calling another) shared by three
// programs, two of which live in the same section.
#include "nearbpf.h"

static __noinline __u64 square(__u64 x) { return x * x; }

// Global subprogram: its call is relocated against its own symbol rather than .text.
__noinline __u64 sum_of_squares(__u8 *mem, __u64 len) {
  __u64 total = 0;
  if (len > 1024) return 0;
  for (__u64 i = 0; i < len; i++) total += square(mem[i]);
  return total;
}

static __noinline __u64 weighted(__u64 a, __u64 b, __u64 c, __u64 d, __u64 e) {
  return a + 2 * b + 3 * c + 4 * d + 5 * e;
}

// r0 = sum of the squares of the bytes.
SEC("conformance/calls") __u64 squares(__u8 *mem, __u64 len) { return sum_of_squares(mem, len); }

// Two programs in one section. r0 = sum of squares + 1.
SEC("conformance") __u64 squares_plus_one(__u8 *mem, __u64 len) { return sum_of_squares(mem, len) + 1; }

// r0 = weighted(first five bytes) (five arguments: all of r1-r5), or 0 if mem is shorter.
SEC("conformance") __u64 five_args(__u8 *mem, __u64 len) {
  if (len < 5) return 0;
  return weighted(mem[0], mem[1], mem[2], mem[3], square(mem[4]));
}

char LICENSE[] SEC("license") = "Apache-2.0";
