/*
 * Native side of `npm run bench:vm`: links one kernel (bench_kernel, built from the same C source
 * as its eBPF object) and times it on the buffer in FILE.
 *
 *   harness FILE CALLS    ->  "RESULT NS NS ..." (r0 in hex, then ns of each timed call)
 *
 * One untimed call first (page faults, caches), then CALLS timed calls; every call must return
 * the same value. The kernel lives in another translation unit, so the compiler cannot fold or
 * hoist the calls. Exit status: 0 success, 1 error (message on stderr), 2 bad usage.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef unsigned char u8;
typedef unsigned long long u64;

u64 bench_kernel(u8 *mem, u64 len);

#define MAX_FILE_BYTES (1 << 20)
#define MAX_CALLS 1000

/* CPU time of this thread, not wall time: on a shared machine the kernel's own cost is what
 * compares with the JIT's (measured the same way, from process.cpuUsage). */
static u64 now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (u64)ts.tv_sec * 1000000000ULL + (u64)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: harness FILE CALLS\n");
    return 2;
  }
  char *rest;
  long calls = strtol(argv[2], &rest, 10);
  if (*rest != '\0' || calls < 1 || calls > MAX_CALLS) {
    fprintf(stderr, "harness: CALLS must be 1..%d, got '%s'\n", MAX_CALLS, argv[2]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) {
    perror(argv[1]);
    return 1;
  }
  u8 *mem = malloc(MAX_FILE_BYTES + 1);
  if (mem == NULL) {
    fprintf(stderr, "harness: out of memory\n");
    return 1;
  }
  size_t len = fread(mem, 1, MAX_FILE_BYTES + 1, f);
  fclose(f);
  if (len > MAX_FILE_BYTES) {
    fprintf(stderr, "harness: %s is larger than %d bytes\n", argv[1], MAX_FILE_BYTES);
    return 1;
  }
  u64 result = bench_kernel(mem, len);
  printf("%llx", result);
  for (long i = 0; i < calls; i++) {
    u64 t0 = now_ns();
    u64 r = bench_kernel(mem, len);
    u64 t1 = now_ns();
    if (r != result) {
      fprintf(stderr, "harness: call %ld returned %llx, the first %llx\n", i + 1, r, result);
      return 1;
    }
    printf(" %llu", t1 - t0);
  }
  printf("\n");
  free(mem);
  return 0;
}
