// Byte sum: r0 = the sum of the len bytes at mem.
#include "nearbpf.h"

NEARBPF_CONFORMANCE_PROGRAM(sum) {
  __u64 total = 0;
  for (__u64 i = 0; i < len; i++) total += mem[i];
  return total;
}

char LICENSE[] SEC("license") = "Apache-2.0";
