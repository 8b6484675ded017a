// Global data: a .rodata lookup table, a .data counter with an initial value and .bss counters.
// r0 = (number of set bits in mem) * 1000 + runs (starting at 100, so the first run gives +101).
#include "nearbpf.h"

// Bits set in each nibble; static const with a variable index stays a table in .rodata.
static const __u8 nibble_bits[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

__u64 runs = 100;           // .data (global symbol)
static __u64 bytes_seen;    // .bss (section symbol + offset)
__u64 bits_seen;            // .bss (global symbol)

NEARBPF_CONFORMANCE_PROGRAM(popcount) {
  __u64 bits = 0;
  if (len > 4096) return 0;
  for (__u64 i = 0; i < len; i++) {
    __u8 b = mem[i];
    bits += nibble_bits[b & 15] + nibble_bits[b >> 4];
  }
  runs++;
  bytes_seen += len;
  bits_seen += bits;
  bpf_printk("popcount: %llu bits in %llu bytes", bits, len);
  return bits * 1000 + runs;
}

char LICENSE[] SEC("license") = "GPL";
