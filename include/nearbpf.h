/*
 * nearbpf.h: everything a nearbpf program needs, in one self-contained header.
 *
 * It includes nothing, not even the C library's headers: programs are compiled with
 *   clang -O2 -g -target bpf -mcpu=v3 -I include -c prog.c -o prog.o
 * and a storage server must be able to build them without kernel or libc headers installed.
 * Names follow libbpf (bpf_helpers.h) so that existing eBPF C reads the same here.
 */
#ifndef NEARBPF_H
#define NEARBPF_H

/* ---- Fixed-width types (the BPF target is LP64, little-endian for -target bpf / bpfel) ---- */
typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __s8 s8;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u64 size_t;
typedef _Bool bool;
#define true 1
#define false 0
#ifndef NULL
#define NULL ((void *)0)
#endif

/* ---- Attributes ---- */
/* Puts a program (or map definition) into a named ELF section; the loader picks programs by it. */
#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
/* A real subprogram (a BPF-to-BPF call) instead of an inlined body. */
#define __noinline __attribute__((noinline))

/*
 * ---- Map definitions (BTF-defined, libbpf style) ----
 * struct {
 *   __uint(type, BPF_MAP_TYPE_HASH);
 *   __uint(max_entries, 64);
 *   __type(key, __u32);
 *   __type(value, __u64);
 * } counts SEC(".maps");
 * The numbers are encoded in the *types* of the members (array lengths), which clang records in
 * .BTF; the loader reads them from there, never from the (empty) section contents.
 */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name
#define __array(name, val) __typeof__(val) *name[]

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2

/* Flags of bpf_map_update_elem. */
#define BPF_ANY 0     /* create or update */
#define BPF_NOEXIST 1 /* create only */
#define BPF_EXIST 2   /* update only */

/* Error returns of map helpers (negated errno values, as in Linux). */
#define NEARBPF_ENOENT 2
#define NEARBPF_E2BIG 7
#define NEARBPF_EEXIST 17
#define NEARBPF_EINVAL 22

/*
 * ---- Helpers ----
 * A helper is called through a pointer whose value is its id: clang turns the call into `call <id>`.
 * The ids are nearbpf's (src/abi/helpers.ts); 1-3 and 6 match Linux.
 */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
/* The bpf_conformance suite's helper: returns its argument; an argument of 0 ends the program with 0. */
static __u64 (*nearbpf_unwind)(__u64 value) = (void *)5;
/*
 * Debug print into the run's log: fmt must be a NUL-terminated string of fmt_size bytes; up to
 * three arguments; %d %i %u %x %ld %lu %lx %lld %llu %llx %c %p %s %% are understood.
 */
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;

/* bpf_printk("x=%d", x): the format string goes to .rodata, so this also shows global data at work. */
#define bpf_printk(fmt, ...)                                                                         \
  ({                                                                                                 \
    static const char ____fmt[] = fmt;                                                               \
    bpf_trace_printk(____fmt, sizeof(____fmt), ##__VA_ARGS__);                                       \
  })

/* ---- Return codes ---- */
#define NEARBPF_OK 0

/*
 * ---- Program types and their contexts ----
 *
 * "conformance" (SEC("conformance") or SEC("conformance/NAME")): the bpf_conformance convention.
 * r1 points to a readable and writable memory buffer, r2 holds its length in bytes; r0 is the
 * result. There is no context struct: the entry function takes the two arguments directly:
 *
 *   SEC("conformance/sum") __u64 sum(__u8 *mem, __u64 len) { ... }
 *
 * The verifier requires every access through mem to be proven below mem + len.
 */
#define NEARBPF_CONFORMANCE_PROGRAM(name) SEC("conformance/" #name) __u64 name(__u8 *mem, __u64 len)

/*
 * ---- Storage functions: SEC("storage") or SEC("storage/NAME") ----
 * Mirrors src/abi/storage.ts. An execution is a series of steps; each step runs the program once,
 * to completion, with r1 = struct nb_ctx *. In a step the program may:
 *   - read its parameters (param0/param1, and the input blob: input[0..input_len));
 *   - read the data of the reads it asked for in the previous step: data..data_end, the reads
 *     concatenated in request order (check every access against data_end, as for XDP packets);
 *   - keep state in scratch (NB_SCRATCH_SIZE bytes, zeroed when the execution starts);
 *   - ask for up to NB_MAX_READS_PER_STEP reads for the next step with nb_read();
 *   - append bytes to the output with nb_emit();
 *   - return. The execution continues while the step asked for reads; otherwise the value the step
 *     returned is the execution's result (the 64-bit value in the NVMe completion).
 * Scan mode streams a byte range through the program: each step sees the next chunk in data (its
 * namespace offset in data_offset, NB_FLAG_SCAN in flags); after the last chunk (or nb_scan_stop())
 * one more step runs with NB_FLAG_SCAN_END set and no data; its return value is the result.
 */
#define NB_MAX_READS_PER_STEP 32
#define NB_MAX_DATA_PER_STEP (256 * 1024)
#define NB_SCRATCH_SIZE 4096
#define NB_MAX_INPUT 4096
#define NB_FLAG_SCAN 1
#define NB_FLAG_SCAN_END 2

struct nb_ctx {
  __u64 data;           /* (void *) start of the data read for this step */
  __u64 data_end;       /* (void *) one past its end */
  __u64 scratch;        /* (void *) NB_SCRATCH_SIZE bytes kept across steps */
  __u64 input;          /* (const void *) the client's parameter blob (NB_MAX_INPUT bytes, zero-padded) */
  __u64 input_len;      /* its length */
  __u64 param0;         /* the two 64-bit parameters of Execute Program */
  __u64 param1;
  __u64 step;           /* 0 for the first step */
  __u64 nr_reads;       /* reads whose data is in data..data_end */
  __u64 data_offset;    /* namespace byte offset of the first of them (of the chunk, in scan mode) */
  __u64 flags;          /* NB_FLAG_* */
  __u64 namespace_size; /* bytes in the namespace */
};

/* Queue a read of length bytes at byte offset of the namespace for the next step. Returns 0. */
static long (*const nb_read)(__u64 offset, __u64 length) = (void *)100;
/* Append length bytes at buf to the execution's output. Returns 0. */
static long (*const nb_emit)(const void *buf, __u64 length) = (void *)101;
/* Scan mode: skip the remaining chunks; the NB_FLAG_SCAN_END step still runs. Returns 0. */
static long (*const nb_scan_stop)(void) = (void *)102;

/* Typed views of the context's pointer fields. */
#define NB_DATA(ctx) ((void *)(long)(ctx)->data)
#define NB_DATA_END(ctx) ((void *)(long)(ctx)->data_end)
#define NB_SCRATCH(ctx) ((void *)(long)(ctx)->scratch)
#define NB_INPUT(ctx) ((const void *)(long)(ctx)->input)

#define NEARBPF_STORAGE_PROGRAM(name) SEC("storage/" #name) __u64 name(struct nb_ctx *ctx)

#endif /* NEARBPF_H */
