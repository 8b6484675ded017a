// sqlite_index: rows of a SQLite table found through one of its indexes, in one execution — two
// trees, one round trip. Descends the index B-tree to the first entry at or after the lower bound
// (binary search on every page, comparing a key prefix in SQLite's order), walks the entries in
// index order (interior cells are entries too) while they are below the upper bound, collects
// their rowids (at most in->limit, <= 64), then fetches those rows from the table B-tree (rows.h).
//
// Input: struct sq_input (index_root, table_root, limit) and struct ix_args at arg_off, the keys in
// use and the bytes of their TEXT/BLOB constants after it. Output: the rows as sqlite_get writes
// them, in index order.
// Returns the number of index entries collected, or an SQ_ERROR naming the page. An index entry
// whose compared bytes or rowid lie on overflow pages ends the execution with SQ_ERR_SPILLED_KEY:
// the host then walks that index itself.
//
// Shape for the verifier: the walk is a flat loop of micro-operations (one cell, one key column,
// one 8-byte word of text, or one column skipped on the way to the rowid), each a subprogram
// whose state lives in scratch, so all paths through an operation meet again at its return and
// the verifier walks each operation once per step slot, not once per path. A page that needs more
// operations than IX_OPS_PER_STEP is read again (from the target's page cache) in the next step.
// A slot runs an operation and then the comparison it started (a key column, 8 bytes of text), so
// a probe of a TEXT key takes one slot. The operations are subprograms the verifier checks once
// (function summaries): 32 slots verify in about 44,000 processed instructions, and an equality
// lookup in a 3-level index and its row take 7 steps, one per page.
#include "compare.h"
#include "rows.h"

#define IX_MAX_KEY 16 // key columns of a bound (index columns, then the rowid when resuming)
#ifndef IX_OPS_PER_STEP
#define IX_OPS_PER_STEP 32
#endif

#define IX_LO_EXCLUSIVE 1 // entries strictly after lo (the host resumes after the last entry)
#define IX_HI_INCLUSIVE 2

// The keys follow: nlo of the lower bound, then nhi of the upper one (struct sq_key each), then
// the bytes of their TEXT/BLOB constants. Only the columns in use travel.
struct ix_args {
  __u64 nlo;   // key columns of the lower bound (0: from the first entry)
  __u64 nhi;   // key columns of the upper bound (0: to the last entry)
  __u64 flags; // IX_*
  __u64 ncols; // columns of the index (the rowid follows them in each entry)
};

#define IX_SEEK 1 // descending to the first entry >= lo
#define IX_WALK 2 // entries in order
#define IX_ROWS 3 // rows from the table

#define OP_ARRIVE 1  // a page was read: check it and start on it
#define OP_PROBE 2   // binary search: the next probe, or the search is over
#define OP_KEYCOL 3  // compare one key column
#define OP_KEYTEXT 4 // compare 8 bytes of a TEXT/BLOB key column
#define OP_ENTRY 5   // walk: the entry at the current position
#define OP_ROWID 6   // walk: skip one column on the way to the rowid, or read it
#define OP_POP 7     // walk: the page is done, back to its parent
#define OP_READ 8    // a page is to be read (ends the step)
#define OP_DONE 9    // the walk is over (ends the step)

struct ix_state {
  __u64 err;
  __u64 phase;
  __u64 op;
  __u64 page;    // the page whose data the step sees
  __u64 descend; // OP_ARRIVE in the walk: 1 going down to the leftmost leaf, 0 back to a parent
  __u64 depth;   // pages on the stack, the current one included
  __u64 lo, hi;  // binary search of the current page
  __u64 mid;
  // The entry being looked at.
  __u64 h0, d0; // its record's header and data start
  __u64 h, hend, d, dend; // dend: end of its bytes on this page
  __u64 spill;            // its payload continues on overflow pages
  __u64 bound;            // 0: comparing with lo, 1: with hi
  __u64 nkey, kcol;
  __u64 vsize, vpos, wpos; // TEXT/BLOB column: size, start, bytes compared
  __u64 col;               // OP_ROWID: columns skipped
  __u64 count;             // entries collected
  __u32 pages[SQ_MAX_DEPTH + 4];
  __u32 idx[SQ_MAX_DEPTH + 4]; // leaf: next cell; interior: the child being walked
  struct sq_tmp t;
  struct sq_page pg;
  struct sq_rows rows;
};

#define IX_ARGS(ctx) ((const struct ix_args *)(NB_INPUT(ctx) + (SQ_VOL(((const struct sq_input *)NB_INPUT(ctx))->arg_off) & 0x7f8)))

// Key column k of bound b, read afresh (inputs kept in registers would split the verifier's paths).
static __always_inline const struct sq_key *ix_key(struct nb_ctx *ctx, __u64 b, __u64 k) {
  const struct sq_input *in = NB_INPUT(ctx);
  __u64 slot = (b & 1) ? SQ_VOL(IX_ARGS(ctx)->nlo) + k : k;
  __u64 off = (SQ_VOL(in->arg_off) & 0x7f8) + sizeof(struct ix_args) + (slot & (2 * IX_MAX_KEY - 1)) * sizeof(struct sq_key);
  SQ_BARRIER(off);
  if (off > NB_MAX_INPUT - sizeof(struct sq_key)) return NULL;
  SQ_BARRIER(off);
  return NB_INPUT(ctx) + off;
}

// Queue the read of child `child` of the current page and push it.
static __always_inline __u64 ix_push(struct nb_ctx *ctx, volatile struct ix_state *st, __u64 child) {
  __u64 depth = st->depth;
  __u64 err = sq_check_child(ctx, st->pages, 1, depth, st->page, child);
  if (err) return err;
  st->pages[depth & 31] = child;
  st->idx[depth & 31] = 0;
  st->depth = depth + 1;
  st->page = child;
  st->op = OP_READ;
  return 0;
}

// Set up the entry in cell i of the page in data: its record header and data.
static __noinline __u64 ix_open_entry(volatile struct ix_state *st, __u8 *data, __u8 *end, __u64 i) {
  volatile struct sq_tmp *t = &st->t;
  __u64 page = st->page;
  __u64 cell;
  __u64 err = sq_cell(&st->pg, data, end, i, page, &cell);
  if (err) return err;
  if (st->pg.type == SQ_INDEX_INTERIOR) cell += 4;
  __u64 usable = st->pg.usable;
  if (sq_varint(t, data, end, cell, usable)) return SQ_ERROR(SQ_ERR_CELL, page);
  __u64 size = t->v;
  cell += t->vlen;
  if (size > 0x7fffffff) return SQ_ERROR(SQ_ERR_CELL, page);
  __u64 local = sq_local(size, usable, 1);
  __u64 spill = local < size;
  if (cell + local + (spill ? 4 : 0) > usable) return SQ_ERROR(SQ_ERR_CELL, page);
  if (sq_varint(t, data, end, cell, cell + local)) return spill ? SQ_ERROR(SQ_ERR_SPILLED_KEY, page) : SQ_ERROR(SQ_ERR_RECORD, page);
  __u64 hs = t->v;
  if (hs < t->vlen || hs > size) return SQ_ERROR(SQ_ERR_RECORD, page);
  if (hs > local) return SQ_ERROR(SQ_ERR_SPILLED_KEY, page);
  st->h0 = cell + t->vlen;
  st->d0 = cell + hs;
  st->h = cell + t->vlen;
  st->hend = cell + hs;
  st->d = cell + hs;
  st->dend = cell + local;
  st->spill = spill;
  return 0;
}

// Start comparing the open entry with bound b (its nkey columns).
static __always_inline void ix_start_compare(volatile struct ix_state *st, __u64 b, __u64 nkey) {
  st->bound = b;
  st->nkey = nkey;
  st->kcol = 0;
  st->op = OP_KEYCOL;
}

// Start collecting the rowid of the open entry: the last column of its record.
static __always_inline void ix_start_rowid(volatile struct ix_state *st) {
  st->h = st->h0;
  st->d = st->d0;
  st->col = 0;
  st->op = OP_ROWID;
}

// Start walking the entries of the page in data from its current position.
static __always_inline void ix_start_walk(volatile struct ix_state *st) {
  st->phase = IX_WALK;
  st->op = OP_ENTRY;
}

// The walk is over: fetch the rows of the entries collected.
static __always_inline void ix_end_walk(volatile struct ix_state *st) {
  st->op = OP_DONE;
}

// The verdict of a comparison of the open entry with its bound: c is 0 (entry before the bound),
// 1 (equal on the bound's columns) or 2 (after).
static __always_inline void ix_verdict(struct nb_ctx *ctx, volatile struct ix_state *st, __u64 c) {
  __u64 flags = SQ_VOL(IX_ARGS(ctx)->flags);
  if (st->phase == IX_SEEK) {
    if (c == 0 || (c == 1 && (flags & IX_LO_EXCLUSIVE)))
      st->lo = st->mid + 1;
    else
      st->hi = st->mid;
    st->op = OP_PROBE;
    return;
  }
  if (c == 2 || (c == 1 && !(flags & IX_HI_INCLUSIVE))) {
    ix_end_walk(st);
    return;
  }
  ix_start_rowid(st);
}

// One key column decided equal or not.
static __always_inline void ix_decide(struct nb_ctx *ctx, volatile struct ix_state *st, __u64 c) {
  if (c != 1) {
    ix_verdict(ctx, st, c);
    return;
  }
  __u64 k = st->kcol + 1;
  st->kcol = k;
  st->op = OP_KEYCOL;
  if (k >= st->nkey) ix_verdict(ctx, st, 1);
}

// OP_KEYCOL: the next column of the open entry against the same column of the bound.
static __noinline __u64 ix_keycol(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  volatile struct sq_tmp *t = &st->t;
  __u64 page = st->page;
  const struct sq_key *k = ix_key(ctx, st->bound, st->kcol);
  if (!k) return SQ_ERROR(SQ_ERR_INPUT, page);
  __u64 h = st->h, hend = st->hend;
  __u64 s = 0;
  if (h < hend) {
    if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
    s = t->v;
    st->h = h + t->vlen;
  }
  __u64 size = sq_serial_size(s);
  __u64 d = st->d;
  st->d = d + size;
  __u64 kt = k->tag;
  __u64 ec = sq_class_of_serial(s), kc = sq_class_of_key(kt);
  if (ec != kc) {
    ix_decide(ctx, st, ec < kc ? 0 : 2);
    return 0;
  }
  if (ec == 0) {
    ix_decide(ctx, st, 1);
    return 0;
  }
  if (ec == 1) {
    __u64 w = 0;
    if (d + size > st->dend) return st->spill ? SQ_ERROR(SQ_ERR_SPILLED_KEY, page) : SQ_ERROR(SQ_ERR_RECORD, page);
    if (size > 0 && sq_word_page(&w, data, end, d, size)) return SQ_ERROR(SQ_ERR_SHORT, page);
    ix_decide(ctx, st, sq_cmp_number(s, w, kt, k->val));
    return 0;
  }
  st->vsize = size;
  st->vpos = d;
  st->wpos = 0;
  st->op = OP_KEYTEXT;
  return 0;
}

// OP_KEYTEXT: 8 bytes of a TEXT/BLOB column against the bound's bytes (then the lengths).
static __noinline __u64 ix_keytext(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  __u64 page = st->page;
  const struct sq_key *k = ix_key(ctx, st->bound, st->kcol);
  if (!k) return SQ_ERROR(SQ_ERR_INPUT, page);
  __u64 klen = k->len, koff = k->val;
  __u64 size = st->vsize;
  __u64 n = size < klen ? size : klen;
  __u64 at = st->wpos;
  if (at >= n) {
    ix_decide(ctx, st, size == klen ? 1 : size < klen ? 0 : 2);
    return 0;
  }
  __u64 m = n - at;
  if (m > 8) m = 8;
  __u64 pos = st->vpos + at;
  // Bytes past this page's share of a spilled entry: only the host can compare them.
  if (pos + m > st->dend) return st->spill ? SQ_ERROR(SQ_ERR_SPILLED_KEY, page) : SQ_ERROR(SQ_ERR_RECORD, page);
  __u64 wa, wb;
  if (sq_word_page(&wa, data, end, pos, m)) return SQ_ERROR(SQ_ERR_SHORT, page);
  if (sq_word_input(ctx, &wb, koff + at, m)) return SQ_ERROR(SQ_ERR_INPUT, page);
  if (wa != wb) {
    ix_decide(ctx, st, wa < wb ? 0 : 2);
    return 0;
  }
  st->wpos = at + 8;
  return 0;
}

// OP_ROWID: skip a column of the open entry, or read its last one (the rowid) and collect it.
static __noinline __u64 ix_rowid(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  volatile struct sq_tmp *t = &st->t;
  __u64 page = st->page;
  __u64 h = st->h, hend = st->hend;
  if (h >= hend) return SQ_ERROR(SQ_ERR_RECORD, page); // an index entry without its rowid
  if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
  __u64 s = t->v;
  __u64 size = sq_serial_size(s);
  __u64 d = st->d;
  st->h = h + t->vlen;
  st->d = d + size;
  if (st->h < hend) {
    st->col = st->col + 1;
    if (st->col > 2000) return SQ_ERROR(SQ_ERR_RECORD, page);
    return 0;
  }
  // The rowid: an integer (serial types 1-6, 8, 9).
  if (s == 0 || s == 7 || s >= 10) return SQ_ERROR(SQ_ERR_RECORD, page);
  if (d + size > st->dend) return st->spill ? SQ_ERROR(SQ_ERR_SPILLED_KEY, page) : SQ_ERROR(SQ_ERR_RECORD, page);
  __u64 w = 0;
  if (size > 0 && sq_word_page(&w, data, end, d, size)) return SQ_ERROR(SQ_ERR_SHORT, page);
  __u64 n = st->count;
  st->rows.rowids[n & (SQ_MAX_ROWS - 1)] = sq_int_of(s, w);
  n = n + 1;
  st->count = n;
  // Next position: the leaf's next cell, or (on an interior page) the next child's leftmost leaf.
  __u64 top = (st->depth - 1) & 31;
  __u64 i = st->idx[top];
  if (n >= SQ_VOL(((const struct sq_input *)NB_INPUT(ctx))->limit)) {
    ix_end_walk(st);
    return 0;
  }
  if (st->pg.type == SQ_INDEX_LEAF) {
    st->idx[top] = i + 1;
    st->op = OP_ENTRY;
    return 0;
  }
  st->idx[top] = i + 1;
  __u64 child;
  __u64 err = sq_child(&st->pg, data, end, i + 1, st->page, &child);
  if (err) return err;
  st->descend = 1;
  return ix_push(ctx, st, child);
}

// OP_ENTRY: the entry at the current position (a leaf cell, or the cell of an interior page
// after its child was walked), or up when the page is done.
static __noinline __u64 ix_entry(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  __u64 top = (st->depth - 1) & 31;
  __u64 i = st->idx[top];
  if (i >= st->pg.ncells) {
    st->op = OP_POP;
    return 0;
  }
  __u64 err = ix_open_entry(st, data, end, i);
  if (err) return err;
  __u64 nhi = SQ_VOL(IX_ARGS(ctx)->nhi);
  if (nhi)
    ix_start_compare(st, 1, nhi);
  else
    ix_start_rowid(st);
  return 0;
}

// OP_POP: back to the parent (read again in the next step), or the end of the index.
static __always_inline __u64 ix_pop(volatile struct ix_state *st) {
  __u64 depth = st->depth;
  if (depth <= 1) {
    ix_end_walk(st);
    return 0;
  }
  depth = depth - 1;
  st->depth = depth;
  st->page = st->pages[(depth - 1) & 31];
  st->descend = 0;
  st->op = OP_READ;
  return 0;
}

// OP_PROBE: the next probe of the binary search, or its outcome (a child to descend into, or the
// first cell of the walk).
static __noinline __u64 ix_probe(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  __u64 lo = st->lo, hi = st->hi;
  if (lo < hi) {
    __u64 mid = (lo + hi) >> 1;
    st->mid = mid;
    __u64 err = ix_open_entry(st, data, end, mid);
    if (err) return err;
    ix_start_compare(st, 0, SQ_VOL(IX_ARGS(ctx)->nlo));
    return 0;
  }
  __u64 top = (st->depth - 1) & 31;
  st->idx[top] = lo;
  if (st->pg.type == SQ_INDEX_LEAF) {
    ix_start_walk(st);
    return 0;
  }
  __u64 child;
  __u64 err = sq_child(&st->pg, data, end, lo, st->page, &child);
  if (err) return err;
  return ix_push(ctx, st, child);
}

// OP_ARRIVE: the page just read. Seek: search it. Walk: going down, take its first child (or
// cell); coming back up, its entry after the child just walked.
static __noinline __u64 ix_arrive(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  __u64 type = st->pg.type;
  if (type != SQ_INDEX_INTERIOR && type != SQ_INDEX_LEAF) return SQ_ERROR(SQ_ERR_PAGE_TYPE, st->page);
  if (st->phase == IX_SEEK) {
    st->lo = 0;
    st->hi = SQ_VOL(IX_ARGS(ctx)->nlo) ? st->pg.ncells : 0;
    st->op = OP_PROBE;
    return 0;
  }
  if (!st->descend || type == SQ_INDEX_LEAF) {
    st->op = OP_ENTRY;
    return 0;
  }
  __u64 child;
  __u64 err = sq_child(&st->pg, data, end, 0, st->page, &child);
  if (err) return err;
  return ix_push(ctx, st, child);
}

static __always_inline __u64 ix_op1(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  __u64 op = st->op;
  if (op == OP_PROBE) return ix_probe(ctx, st, data, end);
  if (op == OP_KEYCOL) return ix_keycol(ctx, st, data, end);
  if (op == OP_KEYTEXT) return ix_keytext(ctx, st, data, end);
  if (op == OP_ENTRY) return ix_entry(ctx, st, data, end);
  if (op == OP_ROWID) return ix_rowid(ctx, st, data, end);
  if (op == OP_POP) return ix_pop(st);
  if (op == OP_ARRIVE) return ix_arrive(ctx, st, data, end);
  return 0;
}

// One operation slot: an operation, then the comparison it started (a key column and 8 bytes of
// it), so that a probe of a TEXT key takes one slot instead of three.
static __always_inline __u64 ix_op(struct nb_ctx *ctx, volatile struct ix_state *st, __u8 *data, __u8 *end) {
  __u64 err = ix_op1(ctx, st, data, end);
  if (err) return err;
  if (st->op == OP_KEYCOL) {
    err = ix_keycol(ctx, st, data, end);
    if (err) return err;
  }
  if (st->op == OP_KEYTEXT) return ix_keytext(ctx, st, data, end);
  return 0;
}

// A step of the index walk with page st->page in data.
static __always_inline __u64 ix_step(struct nb_ctx *ctx, volatile struct ix_state *st) {
  const struct sq_input *in = NB_INPUT(ctx);
  __u8 *data = NB_DATA(ctx);
  __u8 *end = NB_DATA_END(ctx);
  // Every page is at least 512 bytes: proving it once gives every path the same known data length.
  if ((void *)(data + 512) > (void *)end) return SQ_ERROR(SQ_ERR_SHORT, st->page);
  __u64 err = sq_page_header(&st->pg, data, end, st->page, SQ_VOL(in->usable));
  if (err) return err;
  for (__u64 k = 0; k < IX_OPS_PER_STEP; k++) {
    __u64 op = st->op;
    if (op == OP_READ || op == OP_DONE) break;
    err = ix_op(ctx, st, data, end);
    if (err) return err;
  }
  if (st->op == OP_DONE) return SQ_DONE;
  if (st->op == OP_READ) st->op = OP_ARRIVE;
  return SQ_READ_PAGE; // the page in st->page: a new one, or this one again for more operations
}

NEARBPF_STORAGE_PROGRAM(sqlite_index) {
  volatile struct ix_state *st = NB_SCRATCH(ctx);
  const struct sq_input *in = NB_INPUT(ctx);
  __u64 r;
  if (st->err) return st->err;
  if (ctx->step == 0) {
    r = sq_check_input(ctx);
    if (r) return r;
    const struct ix_args *a = IX_ARGS(ctx);
    __u64 arg_off = in->arg_off;
    if ((arg_off & 7) || arg_off + sizeof(struct ix_args) > ctx->input_len || a->nlo > IX_MAX_KEY || a->nhi > IX_MAX_KEY ||
        arg_off + sizeof(struct ix_args) + (a->nlo + a->nhi) * sizeof(struct sq_key) > ctx->input_len || in->limit == 0 ||
        in->limit > SQ_MAX_ROWS || in->index_root == 0)
      return SQ_ERROR(SQ_ERR_INPUT, 0);
    st->phase = IX_SEEK;
    st->page = in->index_root;
    st->pages[0] = in->index_root;
    st->depth = 1;
    st->op = OP_ARRIVE;
    r = SQ_READ_PAGE;
  } else if (st->phase != IX_ROWS) {
    r = ix_step(ctx, st);
    if (r == SQ_DONE) {
      // The walk is over: the rows of the entries collected, from the table.
      st->phase = IX_ROWS;
      st->rows.nrows = st->count;
      r = sq_rows_next(ctx, &st->rows, &st->t);
    }
  } else {
    r = sq_rows_step(ctx, &st->rows, &st->t, &st->pg);
  }
  if (r == SQ_DONE) return st->count;
  if (r == SQ_READ_PAGE) r = sq_read_page(ctx, &st->t, st->phase == IX_ROWS ? st->rows.page : st->page);
  if (r) st->err = r;
  return r;
}

char LICENSE[] SEC("license") = "Apache-2.0";
