// Byte sum: r0 = the sum of the len bytes at mem.
#include "nearbpf.h"

NEARBPF_CONFORMANCE_PROGRAM(sum) {
  __u64 total = 0;
  // The verifier must see the loop end: without this bound it would explore up to the 1 MiB buffer.
  if (len > 4096) return 0;
  for (__u64 i = 0; i < len; i++) total += mem[i];
  return total;
}

char LICENSE[] SEC("license") = "Apache-2.0";
