/*
 * bench-kernel.h: lets one kernel source build both for eBPF (clang -target bpf, against
 * include/nearbpf.h) and natively (cc -O2, linked into harness.c), so the benchmark compares the
 * same C.
 *
 * Every kernel follows the bpf_conformance convention: r1 = mem, r2 = len, returns a u64. The
 * buffer starts with a header (struct bench_header) and the kernel repeats its work `rounds`
 * times over the payload after it, so one call runs for milliseconds and the harness can scale the
 * work without recompiling.
 */
#ifndef BENCH_KERNEL_H
#define BENCH_KERNEL_H

#ifdef __bpf__
#include "nearbpf.h"
#define BENCH_KERNEL(name) NEARBPF_CONFORMANCE_PROGRAM(name)
#define BENCH_LICENSE char LICENSE[] SEC("license") = "Apache-2.0";
#else
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
#define __noinline __attribute__((noinline))
#define __always_inline inline __attribute__((always_inline))
/* Natively every kernel is linked alone with harness.c, which calls it by this one name. */
#define BENCH_KERNEL(name) __u64 bench_kernel(__u8 *mem, __u64 len)
#define BENCH_LICENSE
#endif

struct bench_header {
  __u32 rounds; /* how many times to repeat the work over the payload */
  __u32 seed;   /* kernel-specific parameter (0 unless a kernel says otherwise) */
};

#define BENCH_HEADER_BYTES 8
/* Longest payload a kernel accepts: the bound a verifier needs to see every loop end. */
#define BENCH_MAX_PAYLOAD_BYTES 65536
#define BENCH_MAX_ROUNDS 100000
/* What a kernel returns for a buffer it refuses (too short, too long, too many rounds). */
#define BENCH_BAD_INPUT (~0ULL)

/* A checked buffer: the header's fields, and the payload as [payload, end). */
struct bench_input {
  __u32 rounds;
  __u32 seed;
  __u8 *payload;
  __u8 *end;
};

/* Checks the buffer's length and header; 0 if the kernel must refuse it (return BENCH_BAD_INPUT). */
static __always_inline int bench_open(__u8 *mem, __u64 len, struct bench_input *in) {
  if (len < BENCH_HEADER_BYTES || len - BENCH_HEADER_BYTES > BENCH_MAX_PAYLOAD_BYTES) return 0;
  struct bench_header *h = (struct bench_header *)mem;
  if (h->rounds > BENCH_MAX_ROUNDS) return 0;
  in->rounds = h->rounds;
  in->seed = h->seed;
  in->payload = mem + BENCH_HEADER_BYTES;
  in->end = mem + len;
  return 1;
}

#endif
