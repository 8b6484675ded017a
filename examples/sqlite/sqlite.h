/*
 * sqlite.h: what the SQLite storage functions share — the input blob the host sends
 * (src/sqlite/input.ts writes it), page addressing (raw image or extent map), bounds-checked
 * big-endian reads, varints, page headers, the payload-spill rule and a byte emitter.
 *
 * File format: https://www.sqlite.org/fileformat2.html. Pages are numbered from 1; page P starts
 * at file offset (P - 1) * page_size; the last `page_size - usable` bytes of each page are
 * reserved. Page 1 starts with the 100-byte file header, so its B-tree header is at offset 100.
 *
 * Verifier discipline (today's verifier follows every path and unrolls loops with exact
 * counters): loop-carried values live in the volatile scratch state, not in registers, so that
 * every path through one loop iteration reaches the next iteration in the same abstract state and
 * is pruned there; offsets are masked before they touch a pointer and every access is checked
 * against data_end; the only exact values are the loop counters.
 */
#ifndef NEARBPF_SQLITE_H
#define NEARBPF_SQLITE_H
#include "nearbpf.h"

/* ---- The input blob (little-endian, all programs) ---- */
#define SQ_INPUT_HEADER 64
#define SQ_MAX_EXTENTS 128
#define SQ_MAX_PIECES 17    /* pieces of one page across extents (a 64 KiB page over 4 KiB extents) */
#define SQ_MAX_DEPTH 20     /* SQLite's own limit on B-tree depth (BTCURSOR_MAX_DEPTH) */
#define SQ_MAX_ROWS 64      /* rows one execution returns */

struct sq_input {
  __u64 base;       /* namespace byte offset of page 1 when n_extents == 0 */
  __u32 page_size;  /* 512..65536, a power of two */
  __u32 usable;     /* page_size - reserved bytes per page, >= 480 */
  __u32 page_count; /* pages in the database */
  __u32 n_extents;  /* 0: a raw image at `base`; else an extent table at ext_off */
  __u32 ext_off;    /* byte offset of the extent table in the input, 8-aligned */
  __u32 table_root; /* root page of the table B-tree */
  __u32 index_root; /* root page of the index B-tree (index programs) */
  __u32 nargs;      /* count of the query arguments at arg_off */
  __u32 arg_off;    /* byte offset of the query arguments */
  __u32 max_output; /* output bytes the host accepts (0: no limit but the target's); rows.h stops before */
  __u64 limit;      /* rows to return at most */
  __u64 max_steps;  /* steps a program may take before it stops and returns a cursor (0: SQ_DEFAULT_STEPS) */
};

/* Fits the default budget of 1,024 steps per execution, with room to finish the current row. */
#define SQ_DEFAULT_STEPS 960

/* Whether the execution has used its share of steps (the program then stops at the next boundary). */
#define SQ_OUT_OF_STEPS(ctx)                                                                        \
  ({                                                                                                \
    __u64 m_ = SQ_VOL(((const struct sq_input *)NB_INPUT(ctx))->max_steps);                          \
    (ctx)->step >= (m_ ? m_ : SQ_DEFAULT_STEPS);                                                    \
  })

/* Where a run of the file lies on the namespace (`filefrag -e`): sorted by file_off, disjoint. */
struct sq_extent {
  __u64 file_off;
  __u64 ns_off;
  __u64 len;
};

/* ---- Results ---- */
/* An error ends the execution with bit 63 set, the code in bits 32..47 and the page in 0..31. */
#define SQ_ERR_INPUT 1          /* the input blob is malformed */
#define SQ_ERR_PAGE_TYPE 2      /* a page of an unexpected type */
#define SQ_ERR_CELL 3           /* a cell pointer or a cell outside the page */
#define SQ_ERR_CHILD 4          /* a child or overflow page number 0 or past the end of the file */
#define SQ_ERR_CYCLE 5          /* a page met twice on one path, or a tree deeper than 20 */
#define SQ_ERR_OVERFLOW 6       /* an overflow chain that ends early, or does not end (a cycle) */
#define SQ_ERR_UNMAPPED 7       /* a page the extent map does not cover */
#define SQ_ERR_RECORD 8         /* a record whose header is malformed */
#define SQ_ERR_SHORT 9          /* the data of a step is shorter than a page */
#define SQ_ERR_SPILLED_KEY 10   /* not corruption: an index entry's compared bytes or rowid are on overflow pages */
#define SQ_ERR_ROOM 11          /* not corruption: the rows exceed max_output (the host retries with more room) */
/* Step outcomes of the walkers below the programs (never confused with an SQ_ERROR). */
#define SQ_DONE 1
#define SQ_READ_PAGE 2
#define SQ_ERROR(code, page) ((1ULL << 63) | ((__u64)(code) << 32) | ((__u64)(page) & 0xffffffffULL))

/* B-tree page types. */
#define SQ_INDEX_INTERIOR 2
#define SQ_TABLE_INTERIOR 5
#define SQ_INDEX_LEAF 10
#define SQ_TABLE_LEAF 13

/* Masks that keep offsets bounded for the verifier: data holds at most 256 KiB. */
#define SQ_DATA_MASK 0x3ffff
#define SQ_PAGE_MASK 0x1ffff

/* Bounds-checked reads at data + off; `fail` is a statement (usually a return). */
#define SQ_U8(dst, data, end, off, fail)                                                            \
  do {                                                                                              \
    __u8 *p_ = (__u8 *)(data) + ((off) & SQ_DATA_MASK);                                              \
    if ((void *)(p_ + 1) > (void *)(end)) fail;                                                       \
    (dst) = p_[0];                                                                                  \
  } while (0)
#define SQ_BE16(dst, data, end, off, fail)                                                          \
  do {                                                                                              \
    __u8 *p_ = (__u8 *)(data) + ((off) & SQ_DATA_MASK);                                              \
    if ((void *)(p_ + 2) > (void *)(end)) fail;                                                       \
    (dst) = ((__u32)p_[0] << 8) | p_[1];                                                            \
  } while (0)
#define SQ_BE32(dst, data, end, off, fail)                                                          \
  do {                                                                                              \
    __u8 *p_ = (__u8 *)(data) + ((off) & SQ_DATA_MASK);                                              \
    if ((void *)(p_ + 4) > (void *)(end)) fail;                                                       \
    (dst) = ((__u32)p_[0] << 24) | ((__u32)p_[1] << 16) | ((__u32)p_[2] << 8) | p_[3];              \
  } while (0)

/*
 * A fresh load of a field the program only reads: clang would otherwise keep it in a register
 * across a loop, where each test of it splits the verifier's paths for the rest of the loop.
 */
#define SQ_VOL(x) (*(volatile __typeof__(x) *)&(x))

/* Keeps clang from re-deriving a checked value from its unchecked parts (libbpf's barrier_var). */
#define SQ_BARRIER(x) asm volatile("" : "+r"(x))

/* Values a loop carries, kept in scratch (see the verifier discipline above). */
struct sq_tmp {
  __u64 v;    /* last varint */
  __u64 vlen; /* its length in bytes */
  __u64 lo, hi;
  __u64 a, b, c, d;
};

/*
 * The varint at page offset t->a (its bytes must lie below t->b): 1-9 bytes, big-endian, 7 bits
 * per byte with the high bit meaning "more", all 8 bits in the ninth. Value and length go to
 * t->v and t->vlen; returns 0, or -1 when it runs past the limit or the data.
 * A subprogram taking its numbers from scratch: the nine ways out of it meet at the return in the
 * same state, so the verifier walks it once per call site instead of once per path.
 */
static __noinline int sq_varint_at(volatile struct sq_tmp *t, __u8 *data, __u8 *end) {
  __u64 off = t->a, lim = t->b;
  __u64 v = 0;
  for (__u64 i = 0; i < 9; i++) {
    __u64 o = off + i;
    if (o >= lim) return -1;
    __u8 *p = data + (o & SQ_DATA_MASK);
    if ((void *)(p + 1) > (void *)end) return -1;
    __u8 b = *p;
    if (i == 8) {
      t->v = (v << 8) | b;
      t->vlen = 9;
      return 0;
    }
    v = (v << 7) | (b & 0x7f);
    if (!(b & 0x80)) {
      t->v = v;
      t->vlen = i + 1;
      return 0;
    }
  }
  return -1;
}

static __always_inline int sq_varint(volatile struct sq_tmp *t, __u8 *data, __u8 *end, __u64 off, __u64 lim) {
  t->a = off;
  t->b = lim;
  return sq_varint_at(t, data, end);
}

/* Header of the B-tree page at `data` (page number pg): where it starts and what it holds. */
struct sq_page {
  __u64 hoff;      /* 100 on page 1, else 0 */
  __u64 type;
  __u64 ncells;
  __u64 cells;     /* offset of the cell pointer array */
  __u64 rightmost; /* interior pages */
  __u64 usable;
};

/* Parse and check a page header; returns 0 or an SQ_ERROR. */
static __always_inline __u64 sq_page_header(volatile struct sq_page *pg, __u8 *data, __u8 *end, __u64 page,
                                            __u64 usable) {
  __u64 hoff = page == 1 ? 100 : 0;
  __u32 type, ncells, right = 0;
  SQ_U8(type, data, end, hoff, return SQ_ERROR(SQ_ERR_SHORT, page));
  SQ_BE16(ncells, data, end, hoff + 3, return SQ_ERROR(SQ_ERR_SHORT, page));
  __u64 hlen = 8;
  if (type == SQ_TABLE_INTERIOR || type == SQ_INDEX_INTERIOR) {
    hlen = 12;
    SQ_BE32(right, data, end, hoff + 8, return SQ_ERROR(SQ_ERR_SHORT, page));
  } else if (type != SQ_TABLE_LEAF && type != SQ_INDEX_LEAF) {
    return SQ_ERROR(SQ_ERR_PAGE_TYPE, page);
  }
  if (hoff + hlen + 2 * (__u64)ncells > usable) return SQ_ERROR(SQ_ERR_CELL, page);
  /* The last byte of the usable area must be in the data: every later access is below it. */
  __u8 *last = data + ((usable - 1) & SQ_PAGE_MASK);
  if ((void *)(last + 1) > (void *)end) return SQ_ERROR(SQ_ERR_SHORT, page);
  pg->hoff = hoff;
  pg->type = type;
  pg->ncells = ncells;
  pg->cells = hoff + hlen;
  pg->rightmost = right;
  pg->usable = usable;
  return 0;
}

/* Offset of cell i; it must lie after the pointer array and inside the usable area. */
static __always_inline __u64 sq_cell(volatile struct sq_page *pg, __u8 *data, __u8 *end, __u64 i, __u64 page,
                                     __u64 *out) {
  __u64 cells = pg->cells;
  __u64 n = pg->ncells;
  if (i >= n) return SQ_ERROR(SQ_ERR_CELL, page);
  __u32 ptr;
  SQ_BE16(ptr, data, end, cells + 2 * i, return SQ_ERROR(SQ_ERR_SHORT, page));
  if (ptr < cells + 2 * n || ptr >= pg->usable) return SQ_ERROR(SQ_ERR_CELL, page);
  *out = ptr;
  return 0;
}

/* Child i of the interior page in data (i == ncells: the right-most pointer). */
static __always_inline __u64 sq_child(volatile struct sq_page *pg, __u8 *data, __u8 *end, __u64 i, __u64 page,
                                      __u64 *child) {
  if (i >= pg->ncells) {
    *child = pg->rightmost;
    return 0;
  }
  __u64 cell;
  __u64 err = sq_cell(pg, data, end, i, page, &cell);
  if (err) return err;
  __u32 c;
  SQ_BE32(c, data, end, cell, return SQ_ERROR(SQ_ERR_SHORT, page));
  *child = c;
  return 0;
}

/*
 * Whether `child` of page `page` may be visited from a path of `depth` pages listed in `path`
 * (`stride` __u32 apart): inside the file, no deeper than SQLite's limit, and not on the path
 * already (a cycle among child pages). Returns 0 or an SQ_ERROR naming `page`.
 */
static __always_inline __u64 sq_check_child(struct nb_ctx *ctx, volatile __u32 *path, __u64 stride, __u64 depth,
                                            __u64 page, __u64 child) {
  const struct sq_input *in = NB_INPUT(ctx);
  if (child == 0 || child > SQ_VOL(in->page_count)) return SQ_ERROR(SQ_ERR_CHILD, page);
  if (depth >= SQ_MAX_DEPTH) return SQ_ERROR(SQ_ERR_CYCLE, page);
  for (__u64 i = 0; i < SQ_MAX_DEPTH; i++) {
    if (i >= depth) break;
    if (path[i * stride] == child) return SQ_ERROR(SQ_ERR_CYCLE, page);
  }
  return 0;
}

/*
 * Bytes of a payload of `size` bytes kept on a page (the rest spills to overflow pages).
 * Table leaves keep up to usable - 35; index pages up to ((usable - 12) * 64 / 255) - 23.
 */
static __always_inline __u64 sq_local(__u64 size, __u64 usable, int index) {
  __u64 x = index ? ((usable - 12) * 64 / 255) - 23 : usable - 35;
  if (size <= x) return size;
  __u64 m = ((usable - 12) * 32 / 255) - 23;
  __u64 k = m + ((size - m) % (usable - 4));
  return k <= x ? k : m;
}

/*
 * Queue the read of page `page` (1-based). A raw image is one read; through an extent map a page
 * may span several extents, read in pieces that arrive concatenated. Returns 0 or an SQ_ERROR.
 */
static __always_inline __u64 sq_read_page(struct nb_ctx *ctx, volatile struct sq_tmp *t, __u64 page) {
  const struct sq_input *in = NB_INPUT(ctx);
  __u64 ps = in->page_size;
  if (page == 0 || page > in->page_count) return SQ_ERROR(SQ_ERR_CHILD, page);
  __u64 fo = (page - 1) * ps;
  __u64 n = in->n_extents;
  if (n == 0) {
    nb_read(in->base + fo, ps);
    return 0;
  }
  if (n > SQ_MAX_EXTENTS) return SQ_ERROR(SQ_ERR_INPUT, page);
  __u64 ext_off = in->ext_off;
  if (ext_off > NB_MAX_INPUT || ext_off + n * sizeof(struct sq_extent) > ctx->input_len)
    return SQ_ERROR(SQ_ERR_INPUT, page);
  t->a = fo;
  t->b = ps; /* bytes of the page still to place */
  for (__u64 k = 0; k < SQ_MAX_PIECES; k++) {
    /* Binary search for the last extent starting at or before the file offset. */
    t->lo = 0;
    t->hi = n;
    for (__u64 s = 0; s < 8; s++) {
      __u64 lo = t->lo, hi = t->hi;
      if (hi - lo <= 1) break;
      __u64 mid = (lo + hi) >> 1;
      __u64 eo = ext_off + mid * sizeof(struct sq_extent);
      if (eo > NB_MAX_INPUT - sizeof(struct sq_extent)) return SQ_ERROR(SQ_ERR_INPUT, page);
      const struct sq_extent *e = NB_INPUT(ctx) + eo;
      if (e->file_off <= t->a)
        t->lo = mid;
      else
        t->hi = mid;
    }
    __u64 eo = ext_off + t->lo * sizeof(struct sq_extent);
    if (eo > NB_MAX_INPUT - sizeof(struct sq_extent)) return SQ_ERROR(SQ_ERR_INPUT, page);
    const struct sq_extent *e = NB_INPUT(ctx) + eo;
    __u64 at = t->a;
    if (at < e->file_off || at - e->file_off >= e->len) return SQ_ERROR(SQ_ERR_UNMAPPED, page);
    __u64 take = e->len - (at - e->file_off);
    if (take > t->b) take = t->b;
    nb_read(e->ns_off + (at - e->file_off), take);
    t->a = at + take;
    t->b = t->b - take;
    if (t->b == 0) return 0;
  }
  return SQ_ERROR(SQ_ERR_UNMAPPED, page);
}

/*
 * Emit n bytes (n < 128 KiB) at data + off: one nb_emit per set bit of n, so every size is a
 * constant the verifier checks against data_end, without a loop.
 */
#define SQ_EMIT_PIECE(bit)                                                                         \
  if (n & (bit)) {                                                                                 \
    __u8 *p = data + (off & SQ_DATA_MASK) + (n & ~(2ULL * (bit) - 1) & SQ_PAGE_MASK);               \
    if ((void *)(p + (bit)) > (void *)end) return -1;                                               \
    nb_emit(p, (bit));                                                                             \
  }
static __always_inline int sq_emit(__u8 *data, __u8 *end, __u64 off, __u64 n) {
  if (n > SQ_PAGE_MASK) return -1;
  SQ_EMIT_PIECE(65536)
  SQ_EMIT_PIECE(32768)
  SQ_EMIT_PIECE(16384)
  SQ_EMIT_PIECE(8192)
  SQ_EMIT_PIECE(4096)
  SQ_EMIT_PIECE(2048)
  SQ_EMIT_PIECE(1024)
  SQ_EMIT_PIECE(512)
  SQ_EMIT_PIECE(256)
  SQ_EMIT_PIECE(128)
  SQ_EMIT_PIECE(64)
  SQ_EMIT_PIECE(32)
  SQ_EMIT_PIECE(16)
  SQ_EMIT_PIECE(8)
  SQ_EMIT_PIECE(4)
  SQ_EMIT_PIECE(2)
  SQ_EMIT_PIECE(1)
  return 0;
}

/* Check the input header of every program; returns 0 or an SQ_ERROR. */
static __always_inline __u64 sq_check_input(struct nb_ctx *ctx) {
  const struct sq_input *in = NB_INPUT(ctx);
  if (ctx->input_len < SQ_INPUT_HEADER) return SQ_ERROR(SQ_ERR_INPUT, 0);
  __u64 ps = in->page_size;
  if (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0) return SQ_ERROR(SQ_ERR_INPUT, 0);
  if (in->usable < 480 || in->usable > ps) return SQ_ERROR(SQ_ERR_INPUT, 0);
  if (in->page_count == 0) return SQ_ERROR(SQ_ERR_INPUT, 0);
  return 0;
}

#endif /* NEARBPF_SQLITE_H */
