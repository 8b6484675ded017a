/*
 * compare.h: SQLite values against constants from the input blob, in SQLite's sort order with
 * BINARY collation: NULL < numbers (integers and reals compared exactly, without floating point)
 * < TEXT < BLOB; TEXT and BLOB compare bytes, then lengths.
 */
#ifndef NEARBPF_SQLITE_COMPARE_H
#define NEARBPF_SQLITE_COMPARE_H
#include "sqlite.h"

#define KEY_NULL 0
#define KEY_INT 1
#define KEY_REAL 2
#define KEY_TEXT 3
#define KEY_BLOB 4

/* A constant (64-bit fields: clang then spills them as 64-bit values, which the verifier tracks). */
struct sq_key {
  __u64 tag; /* KEY_* */
  __u64 len; /* bytes of a TEXT or BLOB value */
  __u64 val; /* the integer, the real's IEEE bits, or the input offset of the bytes */
};

/* Class in SQLite's order of a serial type: 0 NULL, 1 number, 2 TEXT, 3 BLOB. */
static __always_inline __u64 sq_class_of_serial(__u64 s) {
  if (s == 0) return 0;
  if (s < 12) return 1;
  return (s & 1) ? 2 : 3;
}

static __always_inline __u64 sq_class_of_key(__u64 tag) {
  return tag == KEY_NULL ? 0 : tag <= KEY_REAL ? 1 : tag == KEY_TEXT ? 2 : 3;
}

/* Bytes of a value of serial type s. */
static __always_inline __u64 sq_serial_size(__u64 s) {
  if (s >= 12) return (s - 12) >> 1;
  if (s == 5) return 6;
  if (s == 6 || s == 7) return 8;
  if (s >= 8) return 0;
  return s; /* 0..4 */
}

static __always_inline __u64 sq_be64(const __u8 *p) {
  return ((__u64)p[0] << 56) | ((__u64)p[1] << 48) | ((__u64)p[2] << 40) | ((__u64)p[3] << 32) |
         ((__u64)p[4] << 24) | ((__u64)p[5] << 16) | ((__u64)p[6] << 8) | (__u64)p[7];
}

/*
 * The m (1..8) bytes of the page at off as a left-aligned big-endian word, the rest zero. Near the
 * end of the data it loads the 8 bytes that end with the value instead (values never start in the
 * first 8 bytes of a page). Straight-line: no branch per byte. Returns 0 or -1.
 */
static __always_inline int sq_word_page(__u64 *out, __u8 *data, __u8 *end, __u64 off, __u64 m) {
  __u64 keep = ~0ULL << ((64 - 8 * m) & 63);
  __u8 *p = data + (off & SQ_DATA_MASK);
  if ((void *)(p + 8) <= (void *)end) {
    *out = sq_be64(p) & keep;
    return 0;
  }
  if (off < 8) return -1;
  __u8 *q = data + ((off + m - 8) & SQ_DATA_MASK);
  if ((void *)(q + 8) > (void *)end) return -1;
  *out = (sq_be64(q) << ((64 - 8 * m) & 63)) & keep;
  return 0;
}

/* Same from the input blob (the host leaves 8 bytes of slack after constant bytes). */
static __always_inline int sq_word_input(struct nb_ctx *ctx, __u64 *out, __u64 off, __u64 m) {
  if (off > NB_MAX_INPUT - 8) return -1;
  SQ_BARRIER(off);
  const __u8 *p = NB_INPUT(ctx) + off;
  *out = sq_be64(p) & (~0ULL << ((64 - 8 * m) & 63));
  return 0;
}

/* IEEE-754 bits to an unsigned order (-0 as +0): a < b as doubles iff order(a) < order(b). */
static __always_inline __u64 sq_real_order(__u64 bits) {
  if (bits == (1ULL << 63)) bits = 0;
  return (bits >> 63) ? ~bits : bits | (1ULL << 63);
}

/* Compare integer i with the double of bits r exactly: 0 less, 1 equal, 2 greater. */
static __always_inline __u64 sq_int_real(__s64 i, __u64 r) {
  __u64 e = (r >> 52) & 0x7ff;
  __u64 neg = r >> 63;
  if (e == 0x7ff) return neg ? 2 : 0;        /* infinities (SQLite stores no NaN) */
  if (e >= 1023 + 63) return neg ? 2 : 0;    /* |r| >= 2^63: beyond every integer */
  __u64 t = 0, frac = 0;
  if (e < 1023) {
    frac = (r << 1) != 0;
  } else {
    __u64 mant = (r & 0xfffffffffffffULL) | (1ULL << 52);
    __u64 sh = e - 1023; /* 0..62 */
    if (sh >= 52) {
      t = mant << ((sh - 52) & 63);
    } else {
      t = mant >> ((52 - sh) & 63);
      frac = (mant << ((12 + sh) & 63)) != 0;
    }
  }
  __s64 ti = neg ? -(__s64)t : (__s64)t;
  if (i < ti) return 0;
  if (i > ti) return 2;
  if (!frac) return 1;
  return neg ? 2 : 0;
}

/* The number of serial type s (1..9) held in word w (left-aligned), against key k: 0/1/2. */
static __always_inline __u64 sq_cmp_number(__u64 s, __u64 w, __u64 ktag, __u64 kval) {
  if (s == 7) {
    if (ktag == KEY_REAL) {
      __u64 a = sq_real_order(w), b = sq_real_order(kval);
      return a < b ? 0 : a == b ? 1 : 2;
    }
    return 2 - sq_int_real((__s64)kval, w);
  }
  __u64 size = sq_serial_size(s);
  __s64 iv = s == 8 ? 0 : s == 9 ? 1 : (__s64)w >> ((64 - 8 * size) & 63);
  if (ktag == KEY_REAL) return sq_int_real(iv, kval);
  return iv < (__s64)kval ? 0 : iv == (__s64)kval ? 1 : 2;
}

/* The integer of serial type s (1..6, 8, 9) in word w. */
static __always_inline __s64 sq_int_of(__u64 s, __u64 w) {
  __u64 size = sq_serial_size(s);
  return s == 8 ? 0 : s == 9 ? 1 : (__s64)w >> ((64 - 8 * size) & 63);
}

#endif /* NEARBPF_SQLITE_COMPARE_H */
