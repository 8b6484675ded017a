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
 * ---- Storage functions (NOT YET DEFINED) ----
 * The storage-function program type (context with data/data_end pointers to the block just read, a
 * scratch area, helpers to request the next read and to emit output) will be declared here once
 * src/abi/program-types.ts defines it. Do not rely on anything in this section yet.
 */

#endif /* NEARBPF_H */
