// sqlite_scan: a filtered scan of a SQLite table next to the data. Walks the table B-tree's leaves
// in rowid order; per row, a predicate (up to 8 comparisons of a column with a constant, AND-ed,
// in SQLite's sort order; NULL never matches), then a projection of columns and COUNT / SUM /
// MIN / MAX computed on the target. Values the target cannot fold (a REAL or TEXT in SUM, a TEXT or
// BLOB in MIN/MAX, an integer sum that would overflow) and rows whose payload spills to overflow
// pages are handed to the host, which finishes them (src/sqlite/scan.ts).
//
// The per-row work is a flat loop of micro-operations whose state lives in scratch (one cell, a few
// columns, or one 8-byte word per operation). Both kinds of operation are subprograms, which the
// verifier checks once (function summaries) rather than once per loop slot; the predicate's (and
// walking the columns of a matching row) and the output's (projection, SUM/MIN/MAX): a step runs
// SC_ROUNDS rounds of up to SC_FILTER_OPS of the first, each followed by at most one of the second,
// which covers a leaf of 4 KiB in one step. A leaf that needs more operations is read again (from
// the target's page cache) in the next step. After
// in->max_steps steps (960 by default) the execution stops at a row boundary and emits a cursor;
// the host resumes from it with another execution.
#include "compare.h"

#define SC_MAX_TERMS 8
#define SC_WINDOW 32 // leaves of the current parent remembered, so the parent is read once per 32
#ifndef SC_SKIP
#define SC_SKIP 4 // columns one operation skips on the way to a compared column
#endif
// 8 x (64 + 1) operation slots verify in about 91,000 processed instructions (without summaries
// every slot was walked again: 3,300 for a cheap operation, 12,000 for an output one).
#ifndef SC_FILTER_OPS
#define SC_FILTER_OPS 64
#endif
#ifndef SC_ROUNDS
#define SC_ROUNDS 8
#endif

// Output items: a 16-byte header, then bytes.
#define SC_ROW 1        // b = rowid: a matching row (when projecting); its values follow
#define SC_VALUE 2      // a = column | roles << 8, b = serial type; then the value's bytes (the
                        // rowid alias: its 8 bytes, little-endian)
#define SC_NEEDS_HOST 6 // b = rowid: a row whose payload spills; the host evaluates it
#define SC_END 7        // struct sc_result, then the cursor (head and levels) when it says so
// Roles of a value: projected, or an aggregate's input the target could not fold.
#define SC_ROLE_PROJ 1
#define SC_ROLE_SUM 2
#define SC_ROLE_MIN 4
#define SC_ROLE_MAX 8

struct sc_item {
  __u32 tag;
  __u32 a;
  __u64 b;
};

struct sc_term {
  __u64 col;
  __u64 op; // 0 <, 1 <=, 2 =, 3 !=, 4 >=, 5 >
  struct sq_key key;
};

// Where a scan resumes. On the wire: the 40-byte head, then `depth` levels (8 bytes each).
struct sc_level {
  __u32 page; // an interior page on the path from the root
  __u32 idx;  // its next child
};
struct sc_cursor {
  __u64 in_leaf;    // 1: resume inside leaf `leaf` at cell `cell`; 0: at the next child of the deepest level
  __u64 leaf, cell;
  __u64 depth;      // interior pages on the stack
  __u64 leaf_depth; // pages from the root to a leaf (0: not known yet)
  struct sc_level lv[SQ_MAX_DEPTH + 4];
};
#define SC_CURSOR_HEAD 40

// The arguments; the host sends `nterms` terms, their constants' bytes, then the cursor.
struct sc_args {
  __u64 nterms;
  __u64 proj_mask;  // bit c: project column c (c < 64)
  __u64 need_mask;  // bit c: column c is projected or aggregated
  __u64 sum_col;    // column + 1; 0: none
  __u64 min_col;
  __u64 max_col;
  __u64 rowid_col;  // the INTEGER PRIMARY KEY column + 1; 0: none
  __u64 cursor_off; // input offset of the cursor to resume from; 0: start at the root
  struct sc_term terms[SC_MAX_TERMS];
};

#define SC_HAVE_MORE 16 // result.flags: a cursor follows
struct sc_result {
  __u64 count;
  __s64 isum;    // integers added on the target
  __u64 nsum;    // how many
  __u64 flags;   // bit i: best[i] holds a value; SC_HAVE_MORE
  __u64 best[4]; // MIN of the integers, MIN of the reals (IEEE bits), MAX of the integers, MAX of the reals
};

#define SC_DESCEND 1 // a page whose type is not known yet (the root, or a child on the way down)
#define SC_INTERIOR 2
#define SC_LEAF 3

#define OP_CELL 1
#define OP_COL 2
#define OP_TEXT 3
#define OP_OUT 4  // walking the columns of a matching row
#define OP_WORK 5 // a column of a matching row to project or aggregate
#define OP_DONE 6

struct sc_state {
  __u64 err;
  __u64 phase;
  struct sc_cursor c;
  __u64 win_n, win_pos;
  __u32 win[SC_WINDOW];
  struct sc_result r;
  // The row being worked on.
  __u64 op, i;
  __u64 rowid, pay, dend;
  __u64 h0, d0, h, hend, d, col, term;
  __u64 vsize, wpos;
  __u64 leaf; // page number of the leaf in data
  __u64 resume_cell; // first cell of a leaf resumed from a cursor
  struct sq_tmp t;
  struct sq_page pg;
};

static __always_inline const struct sc_args *sc_args(struct nb_ctx *ctx) {
  const struct sq_input *in = NB_INPUT(ctx);
  return NB_INPUT(ctx) + (in->arg_off & 0x7f8);
}

// Inputs are read afresh at each use (SQ_VOL): values kept in registers across the loop would
// split the verifier's paths.
static __always_inline const struct sc_term *sc_term(struct nb_ctx *ctx, __u64 k) {
  const struct sq_input *in = NB_INPUT(ctx);
  __u64 off = (SQ_VOL(in->arg_off) & 0x7f8) + 64 + (k & (SC_MAX_TERMS - 1)) * sizeof(struct sc_term);
  SQ_BARRIER(off);
  if (off > NB_MAX_INPUT - sizeof(struct sc_term)) return NULL;
  SQ_BARRIER(off);
  return NB_INPUT(ctx) + off;
}

static __always_inline void sc_emit_item(__u32 tag, __u32 a, __u64 b) {
  struct sc_item it = {.tag = tag, .a = a, .b = b};
  nb_emit(&it, sizeof(it));
}

// A term's verdict on comparison result c (0 less, 1 equal, 2 greater).
static __always_inline int sc_pass(__u64 op, __u64 c) {
  switch (op) {
  case 0: return c == 0;
  case 1: return c <= 1;
  case 2: return c == 1;
  case 3: return c != 1;
  case 4: return c >= 1;
  default: return c == 2;
  }
}

// Record the verdict of the current term.
static __always_inline void sc_decide(volatile struct sc_state *st, __u64 op, __u64 c) {
  if (sc_pass(op, c))
    st->term = st->term + 1;
  else
    st->op = OP_CELL; // the row does not match
}

// Pass 2 of a matching row: walk the columns again for the outputs.
static __always_inline void sc_start_out(struct nb_ctx *ctx, volatile struct sc_state *st) {
  const struct sc_args *a = sc_args(ctx);
  st->h = st->h0;
  st->d = st->d0;
  st->col = 0;
  st->op = OP_OUT;
  if (SQ_VOL(a->proj_mask)) sc_emit_item(SC_ROW, 0, st->rowid);
}

// A number's key in unsigned order: integers by their sign-flipped bits, reals by sq_real_order.
static __always_inline __u64 sc_order(__u64 real, __u64 v) {
  return real ? sq_real_order(v) : v ^ (1ULL << 63);
}

// Fold a number of serial type s (1..9, word w) into MIN (want_max 0) or MAX: the target keeps
// the best integer and the best real apart (each compared with its own kind, no mixed-kind
// arithmetic), and the host picks between the two.
static __always_inline void sc_fold(volatile struct sc_state *st, __u64 s, __u64 w, __u64 want_max) {
  __u64 real = s == 7;
  __u64 v = real ? w : (__u64)sq_int_of(s, w);
  __u64 slot = (want_max << 1) | real;
  __u64 bit = 1ULL << slot;
  __u64 flags = st->r.flags;
  if (flags & bit) {
    __u64 ov = sc_order(real, v), ob = sc_order(real, st->r.best[slot & 3]);
    if (want_max ? ov <= ob : ov >= ob) return;
  }
  st->r.flags = flags | bit;
  st->r.best[slot & 3] = v;
}

// One cheap micro-operation on the leaf in data: a cell, a compared column (after skipping up to
// SC_SKIP columns before it), an 8-byte word of TEXT/BLOB, or a column of a matching row no output
// needs. Returns 0 or an SQ_ERROR.
static __noinline __u64 sc_filter_op(struct nb_ctx *ctx, volatile struct sc_state *st, __u8 *data, __u8 *end) {
  const struct sq_input *in = NB_INPUT(ctx);
  const struct sc_args *a = sc_args(ctx);
  volatile struct sq_tmp *t = &st->t;
  __u64 page = st->leaf;
  __u64 op = st->op;

  if (op == OP_CELL) {
    __u64 i = st->i;
    if (i >= st->pg.ncells) {
      st->op = OP_DONE;
      return 0;
    }
    __u64 cell;
    __u64 err = sq_cell(&st->pg, data, end, i, page, &cell);
    if (err) return err;
    st->i = i + 1;
    __u64 usable = SQ_VOL(in->usable);
    if (sq_varint(t, data, end, cell, usable)) return SQ_ERROR(SQ_ERR_CELL, page);
    __u64 size = t->v;
    cell += t->vlen;
    if (sq_varint(t, data, end, cell, usable)) return SQ_ERROR(SQ_ERR_CELL, page);
    st->rowid = t->v;
    cell += t->vlen;
    if (size > 0x7fffffff) return SQ_ERROR(SQ_ERR_CELL, page);
    __u64 local = sq_local(size, usable, 0);
    if (cell + local + (local < size ? 4 : 0) > usable) return SQ_ERROR(SQ_ERR_CELL, page);
    if (local < size) {
      sc_emit_item(SC_NEEDS_HOST, 0, st->rowid);
      return 0;
    }
    if (sq_varint(t, data, end, cell, cell + local)) return SQ_ERROR(SQ_ERR_RECORD, page);
    __u64 hs = t->v;
    if (hs > local || hs < t->vlen) return SQ_ERROR(SQ_ERR_RECORD, page);
    st->pay = cell;
    st->dend = cell + local;
    st->h0 = cell + t->vlen;
    st->d0 = cell + hs;
    st->h = cell + t->vlen;
    st->hend = cell + hs;
    st->d = cell + hs;
    st->col = 0;
    st->term = 0;
    st->op = OP_COL;
    op = OP_COL; // and on with the first column in the same operation
  }

  if (op == OP_COL) {
    __u64 term = st->term;
    if (term >= SQ_VOL(a->nterms)) {
      sc_start_out(ctx, st);
      return 0;
    }
    const struct sc_term *tm = sc_term(ctx, term);
    if (!tm) return SQ_ERROR(SQ_ERR_INPUT, page);
    for (__u64 j = 0; j < SC_SKIP; j++) {
      __u64 col = st->col;
      if (col >= SQ_VOL(tm->col)) break;
      // Skip a column (past the end of the header, columns are NULL: nothing to skip).
      __u64 h = st->h;
      __u64 hend = st->hend;
      if (h < hend) {
        if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
        st->h = h + t->vlen;
        st->d = st->d + sq_serial_size(t->v);
      }
      st->col = col + 1;
    }
    __u64 col = st->col;
    if (col < SQ_VOL(tm->col)) return 0;
    __u64 h = st->h;
    __u64 hend = st->hend;
    __u64 s = 0;
    if (h < hend) {
      if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
      s = t->v;
    }
    __u64 size = sq_serial_size(s);
    if (st->d + size > st->dend) return SQ_ERROR(SQ_ERR_RECORD, page);
    __u64 w = 0;
    if (col + 1 == SQ_VOL(a->rowid_col)) {
      s = 6; // the rowid alias: the record holds NULL, the value is the rowid
      w = st->rowid;
    } else if (s == 0) {
      st->op = OP_CELL; // NULL matches no comparison
      return 0;
    }
    __u64 kt = tm->key.tag;
    __u64 ec = sq_class_of_serial(s), kc = sq_class_of_key(kt);
    if (ec != kc) {
      sc_decide(st, tm->op, ec < kc ? 0 : 2);
      return 0;
    }
    if (ec == 1) {
      if (col + 1 != SQ_VOL(a->rowid_col) && size > 0 && sq_word_page(&w, data, end, st->d, size))
        return SQ_ERROR(SQ_ERR_SHORT, page);
      sc_decide(st, tm->op, sq_cmp_number(s, w, kt, tm->key.val));
      return 0;
    }
    st->vsize = size;
    st->wpos = 0;
    st->op = OP_TEXT;
    return 0;
  }

  if (op == OP_TEXT) {
    const struct sc_term *tm = sc_term(ctx, st->term);
    if (!tm) return SQ_ERROR(SQ_ERR_INPUT, page);
    __u64 klen = tm->key.len, koff = tm->key.val;
    __u64 size = st->vsize;
    __u64 n = size < klen ? size : klen;
    __u64 at = st->wpos;
    if (at >= n) {
      st->op = OP_COL;
      sc_decide(st, tm->op, size == klen ? 1 : size < klen ? 0 : 2);
      return 0;
    }
    __u64 m = n - at;
    if (m > 8) m = 8;
    __u64 wa, wb;
    if (sq_word_page(&wa, data, end, st->d + at, m)) return SQ_ERROR(SQ_ERR_SHORT, page);
    if (sq_word_input(ctx, &wb, koff + at, m)) return SQ_ERROR(SQ_ERR_INPUT, page);
    if (wa != wb) {
      st->op = OP_COL;
      sc_decide(st, tm->op, wa < wb ? 0 : 2);
      return 0;
    }
    st->wpos = at + 8;
    return 0;
  }

  if (op == OP_OUT) {
    __u64 col = st->col;
    if (col >= 64 || (SQ_VOL(a->need_mask) >> col) == 0) {
      st->r.count = st->r.count + 1;
      st->op = OP_CELL;
      return 0;
    }
    if ((SQ_VOL(a->need_mask) >> col) & 1) {
      st->op = OP_WORK;
      return 0;
    }
    __u64 h = st->h;
    __u64 hend = st->hend;
    if (h < hend) {
      if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
      st->h = h + t->vlen;
      st->d = st->d + sq_serial_size(t->v);
    }
    st->col = col + 1;
    return 0;
  }
  return 0;
}

// One column of a matching row that an output needs: projected (emitted), added to SUM, offered
// to MIN / MAX; what the target cannot fold goes to the host with the value, emitted once with
// its roles. Returns 0 or an SQ_ERROR.
static __noinline __u64 sc_out_op(struct nb_ctx *ctx, volatile struct sc_state *st, __u8 *data, __u8 *end) {
  const struct sc_args *a = sc_args(ctx);
  volatile struct sq_tmp *t = &st->t;
  __u64 page = st->leaf;
  __u64 col = st->col;
  __u64 h = st->h;
  __u64 hend = st->hend;
  __u64 s = 0, vlen = 0;
  if (h < hend) {
    if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
    s = t->v;
    vlen = t->vlen;
  }
  __u64 size = sq_serial_size(s);
  __u64 d = st->d;
  if (d + size > st->dend) return SQ_ERROR(SQ_ERR_RECORD, page);
  st->h = h + vlen;
  st->d = d + size;
  st->col = col + 1;
  st->op = OP_OUT;
  __u64 alias = col + 1 == SQ_VOL(a->rowid_col);
  __u64 w = 0;
  if (alias) {
    s = 6; // the record holds NULL; the value is the rowid
    w = st->rowid;
  } else if (s >= 1 && s <= 7 && sq_word_page(&w, data, end, d, size)) {
    return SQ_ERROR(SQ_ERR_SHORT, page);
  }
  __u64 number = s >= 1 && s <= 9;
  __u64 roles = (SQ_VOL(a->proj_mask) >> (col & 63)) & 1;
  if (col + 1 == SQ_VOL(a->sum_col) && s != 0) {
    __s64 v = sq_int_of(s, w);
    __s64 sum = st->r.isum;
    __s64 nsum = (__s64)((__u64)sum + (__u64)v);
    int overflow = (sum >= 0) == (v >= 0) && (nsum >= 0) != (sum >= 0);
    if (s == 7 || !number || overflow) {
      roles |= SC_ROLE_SUM;
    } else {
      st->r.isum = nsum;
      st->r.nsum = st->r.nsum + 1;
    }
  }
  if (col + 1 == SQ_VOL(a->min_col) && s != 0) {
    if (number)
      sc_fold(st, s, w, 0);
    else
      roles |= SC_ROLE_MIN;
  }
  if (col + 1 == SQ_VOL(a->max_col) && s != 0) {
    if (number)
      sc_fold(st, s, w, 1);
    else
      roles |= SC_ROLE_MAX;
  }
  if (!roles) return 0;
  sc_emit_item(SC_VALUE, col | (roles << 8), s);
  if (alias) {
    nb_emit((void *)&st->rowid, 8);
    return 0;
  }
  if (size && sq_emit(data, end, d, size)) return SQ_ERROR(SQ_ERR_SHORT, page);
  return 0;
}

// Start the leaf in data (page `leaf`): check its header.
static __always_inline __u64 sc_start_leaf(struct nb_ctx *ctx, volatile struct sc_state *st, __u64 leaf) {
  const struct sq_input *in = NB_INPUT(ctx);
  __u64 err = sq_page_header(&st->pg, NB_DATA(ctx), NB_DATA_END(ctx), leaf, in->usable);
  if (err) return err;
  if (st->pg.type != SQ_TABLE_LEAF) return SQ_ERROR(SQ_ERR_PAGE_TYPE, leaf);
  st->leaf = leaf;
  st->i = st->resume_cell;
  st->resume_cell = 0;
  st->op = OP_CELL;
  return 0;
}

// The end of the scan (or of this execution's share): the aggregates, and the cursor if more.
// Window leaves not yet visited are given back to the deepest level (its next child moves back),
// so the cursor carries the path only and the next execution reads that parent again.
static __always_inline __u64 sc_finish(volatile struct sc_state *st, __u64 more) {
  __u64 depth = st->c.depth;
  if (depth > SQ_MAX_DEPTH) return SQ_ERROR(SQ_ERR_CYCLE, st->leaf);
  if (more) {
    st->r.flags = st->r.flags | SC_HAVE_MORE;
    if (depth > 0) {
      __u64 top = (depth - 1) & 31;
      st->c.lv[top].idx = st->c.lv[top].idx - (st->win_n - st->win_pos);
    }
  }
  sc_emit_item(SC_END, 0, 0);
  nb_emit((void *)&st->r, sizeof(struct sc_result));
  if (!more) return SQ_DONE;
  nb_emit((void *)&st->c, SC_CURSOR_HEAD);
  if (depth > 0) nb_emit((void *)&st->c.lv, depth * sizeof(struct sc_level));
  return SQ_DONE;
}

// Push interior page `child` of `page` and read it (its type is learned when it arrives).
static __always_inline __u64 sc_descend(struct nb_ctx *ctx, volatile struct sc_state *st, __u64 page, __u64 child) {
  __u64 err = sq_check_child(ctx, &st->c.lv[0].page, 2, st->c.depth, page, child);
  if (err) return err;
  st->leaf = child;
  st->phase = SC_DESCEND;
  return SQ_READ_PAGE;
}

// The next leaf: from the window, else back to the parent (or the end).
static __always_inline __u64 sc_next_leaf(struct nb_ctx *ctx, volatile struct sc_state *st) {
  st->c.in_leaf = 0;
  __u64 pos = st->win_pos;
  if (pos < st->win_n) {
    if (SQ_OUT_OF_STEPS(ctx)) return sc_finish(st, 1);
    st->win_pos = pos + 1;
    st->leaf = st->win[pos & (SC_WINDOW - 1)];
    st->phase = SC_LEAF;
    st->op = 0; // the leaf's header is checked when it arrives
    return SQ_READ_PAGE;
  }
  __u64 depth = st->c.depth;
  if (depth == 0) return sc_finish(st, 0);
  if (SQ_OUT_OF_STEPS(ctx)) return sc_finish(st, 1);
  st->leaf = st->c.lv[(depth - 1) & 31].page;
  st->phase = SC_INTERIOR;
  return SQ_READ_PAGE;
}

static __always_inline __u64 sc_step(struct nb_ctx *ctx, volatile struct sc_state *st) {
  const struct sq_input *in = NB_INPUT(ctx);
  __u8 *data = NB_DATA(ctx);
  __u8 *end = NB_DATA_END(ctx);
  __u64 page = st->leaf;
  __u64 err;
  // Every page is at least 512 bytes: proving it once gives every path of the step the same known
  // data length, so the verifier's paths meet again instead of differing in what they checked.
  if ((void *)(data + 512) > (void *)end) return SQ_ERROR(SQ_ERR_SHORT, page);

  if (st->phase == SC_DESCEND) {
    err = sq_page_header(&st->pg, data, end, page, in->usable);
    if (err) return err;
    __u64 depth = st->c.depth;
    if (st->pg.type == SQ_TABLE_INTERIOR) {
      st->c.lv[depth & 31].page = page;
      st->c.lv[depth & 31].idx = 0;
      st->c.depth = depth + 1;
      st->phase = SC_INTERIOR;
    } else if (st->pg.type == SQ_TABLE_LEAF) {
      st->c.leaf_depth = depth + 1;
      st->win_n = 0;
      st->win_pos = 0;
      err = sc_start_leaf(ctx, st, page);
      if (err) return err;
      st->phase = SC_LEAF;
    } else {
      return SQ_ERROR(SQ_ERR_PAGE_TYPE, page);
    }
  }

  if (st->phase == SC_INTERIOR) {
    err = sq_page_header(&st->pg, data, end, page, in->usable);
    if (err) return err;
    if (st->pg.type != SQ_TABLE_INTERIOR) return SQ_ERROR(SQ_ERR_PAGE_TYPE, page);
    __u64 depth = st->c.depth;
    __u64 top = (depth - 1) & 31;
    __u64 i = st->c.lv[top].idx;
    __u64 n = st->pg.ncells;
    if (i > n) {
      // Every child done: up one level.
      st->c.depth = depth - 1;
      st->win_n = 0;
      st->win_pos = 0;
      return sc_next_leaf(ctx, st);
    }
    if (st->c.leaf_depth == 0 || depth + 1 < st->c.leaf_depth) {
      __u64 child;
      err = sq_child(&st->pg, data, end, i, page, &child);
      if (err) return err;
      st->c.lv[top].idx = i + 1;
      return sc_descend(ctx, st, page, child);
    }
    // The children are leaves: remember the next SC_WINDOW of them.
    __u64 count = 0;
    for (__u64 k = 0; k < SC_WINDOW; k++) {
      __u64 j = st->c.lv[top].idx;
      if (j > st->pg.ncells) break;
      __u64 child;
      err = sq_child(&st->pg, data, end, j, page, &child);
      if (err) return err;
      if (child == 0 || child > in->page_count) return SQ_ERROR(SQ_ERR_CHILD, page);
      if (child == page) return SQ_ERROR(SQ_ERR_CYCLE, page);
      st->win[k] = child;
      st->c.lv[top].idx = j + 1;
      count = k + 1;
    }
    st->win_n = count;
    st->win_pos = 0;
    return sc_next_leaf(ctx, st);
  }

  // SC_LEAF: the leaf in data, continued from where the last step stopped.
  if (st->op == OP_CELL && SQ_OUT_OF_STEPS(ctx)) {
    // Out of steps at a row boundary: the host resumes in this leaf.
    st->c.in_leaf = 1;
    st->c.leaf = page;
    st->c.cell = st->i;
    return sc_finish(st, 1);
  }
  if (st->op == 0) {
    err = sc_start_leaf(ctx, st, page);
    if (err) return err;
  } else {
    err = sq_page_header(&st->pg, data, end, page, in->usable);
    if (err) return err;
  }
  for (__u64 r = 0; r < SC_ROUNDS; r++) {
    for (__u64 k = 0; k < SC_FILTER_OPS; k++) {
      __u64 op = st->op;
      if (op == OP_DONE || op == OP_WORK) break;
      // Out of steps: stop at the next row boundary (the next step then ends the execution).
      if (op == OP_CELL && SQ_OUT_OF_STEPS(ctx)) break;
      err = sc_filter_op(ctx, st, data, end);
      if (err) return err;
    }
    __u64 op = st->op;
    if (op == OP_DONE) break;
    if (op == OP_WORK) {
      err = sc_out_op(ctx, st, data, end);
      if (err) return err;
    }
  }
  if (st->op != OP_DONE) return SQ_READ_PAGE; // the same leaf again
  return sc_next_leaf(ctx, st);
}

NEARBPF_STORAGE_PROGRAM(sqlite_scan) {
  volatile struct sc_state *st = NB_SCRATCH(ctx);
  const struct sq_input *in = NB_INPUT(ctx);
  __u64 r;
  if (st->err) return st->err;
  if (ctx->step == 0) {
    r = sq_check_input(ctx);
    if (r) return r;
    const struct sc_args *a = sc_args(ctx);
    __u64 nterms = a->nterms;
    if ((in->arg_off & 7) || nterms > SC_MAX_TERMS ||
        in->arg_off + __builtin_offsetof(struct sc_args, terms) + nterms * sizeof(struct sc_term) > ctx->input_len)
      return SQ_ERROR(SQ_ERR_INPUT, 0);
    __u64 coff = a->cursor_off;
    if (coff) {
      if ((coff & 7) || coff > NB_MAX_INPUT - sizeof(struct sc_cursor) || coff + SC_CURSOR_HEAD > ctx->input_len)
        return SQ_ERROR(SQ_ERR_INPUT, 0);
      SQ_BARRIER(coff);
      const struct sc_cursor *c = NB_INPUT(ctx) + coff;
      __u64 depth = c->depth;
      if (depth > SQ_MAX_DEPTH || coff + SC_CURSOR_HEAD + depth * sizeof(struct sc_level) > ctx->input_len)
        return SQ_ERROR(SQ_ERR_INPUT, 0);
      st->c.depth = depth;
      st->c.leaf_depth = c->leaf_depth;
      for (__u64 k = 0; k < SQ_MAX_DEPTH; k++) {
        st->c.lv[k].page = c->lv[k].page;
        st->c.lv[k].idx = c->lv[k].idx;
      }
      if (c->in_leaf) {
        st->resume_cell = c->cell;
        st->leaf = c->leaf;
        st->phase = SC_LEAF;
        st->op = 0;
        r = SQ_READ_PAGE;
      } else {
        r = sc_next_leaf(ctx, st);
      }
    } else {
      st->leaf = in->table_root;
      st->phase = SC_DESCEND;
      r = SQ_READ_PAGE;
    }
  } else {
    r = sc_step(ctx, st);
  }
  if (r == SQ_DONE) return st->r.count;
  if (r == SQ_READ_PAGE) r = sq_read_page(ctx, &st->t, st->leaf);
  if (r) st->err = r;
  return r;
}

char LICENSE[] SEC("license") = "Apache-2.0";
