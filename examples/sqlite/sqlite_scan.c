// sqlite_scan: a filtered scan of a SQLite table next to the data. Walks the table B-tree's leaves
// in rowid order; per row, a predicate (up to 8 comparisons of a column with a constant, AND-ed,
// in SQLite's sort order; NULL never matches), then a projection of columns and COUNT / SUM /
// MIN / MAX computed on the target. Values the target cannot fold (a REAL or TEXT in SUM, a TEXT or
// BLOB in MIN/MAX, an integer sum that would overflow) and rows whose payload spills to overflow
// pages are handed to the host, which finishes them (src/sqlite/scan.ts).
//
// The per-row work is a flat loop of micro-operations whose state lives in scratch (one cell, one
// column, or one 8-byte word per operation): the verifier then walks SC_OPS_PER_STEP iterations
// of one small body. A leaf that needs more operations is read again (from the target's page
// cache) in the next step. After in->max_steps steps (960 by default) the execution stops at a row boundary and
// emits a cursor; the host resumes from it with another execution.
#include "compare.h"

#define SC_MAX_TERMS 8
#define SC_WINDOW 32       // leaves of the current parent remembered, so the parent is read once per 32
// Today's verifier walks every iteration of this loop, and paths through one operation do not all
// meet again at the next: 4 operations verify in about 200,000 processed instructions (64 exceed
// the 1,000,000 limit). Raise it when the verifier tracks precision (issue 13).
#ifndef SC_OPS_PER_STEP
#define SC_OPS_PER_STEP 4
#endif

// Output items: a 16-byte header, then bytes.
#define SC_ROW 1        // b = rowid: a matching row (when projecting); its COLVALs follow
#define SC_COLVAL 2     // a = column, b = serial type; the value's bytes follow
#define SC_FOLD_SUM 3   // a = serial type, b = rowid; a value the host adds to SUM
#define SC_FOLD_MIN 4   // ... a candidate for MIN
#define SC_FOLD_MAX 5   // ... a candidate for MAX
#define SC_NEEDS_HOST 6 // b = rowid: a row whose payload spills; the host evaluates it
#define SC_END 7        // struct sc_result follows, then the cursor when result.more

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

struct sc_cursor {
  __u64 in_leaf;    // 1: resume inside leaf `leaf` at cell `cell`; 0: at the next leaf of the window
  __u64 leaf, cell;
  __u64 depth;      // interior pages on the stack
  __u64 leaf_depth; // pages from the root to a leaf (0: not known yet)
  __u64 win_n, win_pos;
  __u32 pages[SQ_MAX_DEPTH + 4];
  __u32 idx[SQ_MAX_DEPTH + 4]; // next child of each interior page
  __u32 win[SC_WINDOW];
};

struct sc_args {
  __u64 nterms;
  __u64 proj_mask; // bit c: project column c (c < 64)
  __u64 sum_col;   // column + 1; 0: none
  __u64 min_col;
  __u64 max_col;
  __u64 rowid_col; // the INTEGER PRIMARY KEY column + 1; 0: none
  __u64 last_col;  // columns pass 2 walks (1 + the highest one it needs)
  __u64 resume;    // 1: start from `cursor`
  struct sc_term terms[SC_MAX_TERMS];
  struct sc_cursor cursor;
};

struct sc_result {
  __u64 count;
  __s64 isum;      // integers added on the target
  __u64 nsum;      // how many
  __u64 min_kind;  // 0 none, 1 integer, 2 real (bits)
  __u64 min_bits;
  __u64 max_kind;
  __u64 max_bits;
  __u64 more;      // 1: a cursor follows; resume from it
};

#define SC_DESCEND 1 // a page whose type is not known yet (the root, or a child on the way down)
#define SC_INTERIOR 2
#define SC_LEAF 3

#define OP_CELL 1
#define OP_COL 2
#define OP_TEXT 3
#define OP_OUT 4
#define OP_DONE 5

struct sc_state {
  __u64 err;
  __u64 phase;
  struct sc_cursor c;
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

// Fold a number of serial type s (word w) into MIN (want_max 0) or MAX on the target.
static __always_inline void sc_fold_minmax(volatile __u64 *kind, volatile __u64 *bits, __u64 s, __u64 w, int want_max) {
  __u64 k = s == 7 ? 2 : 1;
  __u64 v = s == 7 ? w : (__u64)sq_int_of(s, w);
  __u64 cur = *kind;
  int better = 0;
  if (cur == 0) {
    better = 1;
  } else {
    // c: the new value against the current best (0 less, 1 equal, 2 greater).
    __u64 c = sq_cmp_number(k == 2 ? 7 : 6, v, cur == 2 ? KEY_REAL : KEY_INT, *bits);
    better = want_max ? c == 2 : c == 0;
  }
  if (better) {
    *kind = k;
    *bits = v;
  }
}

// One micro-operation on the leaf in data. Returns 0 or an SQ_ERROR.
static __always_inline __u64 sc_op(struct nb_ctx *ctx, volatile struct sc_state *st, __u8 *data, __u8 *end) {
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
    return 0;
  }

  if (op == OP_COL) {
    __u64 term = st->term;
    if (term >= SQ_VOL(a->nterms)) {
      sc_start_out(ctx, st);
      return 0;
    }
    const struct sc_term *tm = sc_term(ctx, term);
    if (!tm) return SQ_ERROR(SQ_ERR_INPUT, page);
    __u64 tcol = tm->col;
    __u64 col = st->col;
    __u64 h = st->h;
    __u64 hend = st->hend;
    if (col < tcol) {
      // Skip a column (past the end of the header, columns are NULL: nothing to skip).
      if (h < hend) {
        if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
        st->h = h + t->vlen;
        st->d = st->d + sq_serial_size(t->v);
      }
      st->col = col + 1;
      return 0;
    }
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
    __u64 h = st->h;
    __u64 hend = st->hend;
    if (col >= SQ_VOL(a->last_col) || col >= 64) {
      st->r.count = st->r.count + 1;
      st->op = OP_CELL;
      return 0;
    }
    __u64 s = 0, vlen = 0;
    if (h < hend) {
      if (sq_varint(t, data, end, h, hend)) return SQ_ERROR(SQ_ERR_RECORD, page);
      s = t->v;
      vlen = t->vlen;
    }
    __u64 size = sq_serial_size(s);
    __u64 d = st->d;
    if (d + size > st->dend) return SQ_ERROR(SQ_ERR_RECORD, page);
    __u64 w = 0;
    if (s >= 1 && s <= 7 && sq_word_page(&w, data, end, d, size)) return SQ_ERROR(SQ_ERR_SHORT, page);
    if (col + 1 == SQ_VOL(a->rowid_col)) {
      s = 6;
      w = st->rowid;
    }
    if ((SQ_VOL(a->proj_mask) >> col) & 1) {
      sc_emit_item(SC_COLVAL, col, s);
      if (size && col + 1 != SQ_VOL(a->rowid_col) && sq_emit(data, end, d, size)) return SQ_ERROR(SQ_ERR_SHORT, page);
    }
    __u64 cls = sq_class_of_serial(s);
    if (col + 1 == SQ_VOL(a->sum_col) && cls != 0) {
      __s64 v = sq_int_of(s, w);
      __s64 sum = st->r.isum;
      __s64 nsum = (__s64)((__u64)sum + (__u64)v);
      int overflow = (sum >= 0) == (v >= 0) && (nsum >= 0) != (sum >= 0);
      if (s == 7 || cls != 1 || overflow) {
        sc_emit_item(SC_FOLD_SUM, s, st->rowid);
        if (s == 6 && col + 1 == SQ_VOL(a->rowid_col)) {
          nb_emit((void *)&st->rowid, 8);
        } else if (size && sq_emit(data, end, d, size)) {
          return SQ_ERROR(SQ_ERR_SHORT, page);
        }
      } else {
        st->r.isum = nsum;
        st->r.nsum = st->r.nsum + 1;
      }
    }
    if (col + 1 == SQ_VOL(a->min_col) && cls != 0) {
      if (cls == 1) {
        sc_fold_minmax(&st->r.min_kind, &st->r.min_bits, s, w, 0);
      } else {
        sc_emit_item(SC_FOLD_MIN, s, st->rowid);
        if (size && sq_emit(data, end, d, size)) return SQ_ERROR(SQ_ERR_SHORT, page);
      }
    }
    if (col + 1 == SQ_VOL(a->max_col) && cls != 0) {
      if (cls == 1) {
        sc_fold_minmax(&st->r.max_kind, &st->r.max_bits, s, w, 1);
      } else {
        sc_emit_item(SC_FOLD_MAX, s, st->rowid);
        if (size && sq_emit(data, end, d, size)) return SQ_ERROR(SQ_ERR_SHORT, page);
      }
    }
    st->h = h + vlen;
    st->d = d + size;
    st->col = col + 1;
    return 0;
  }
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
static __always_inline __u64 sc_finish(volatile struct sc_state *st, __u64 more) {
  st->r.more = more;
  sc_emit_item(SC_END, 0, 0);
  nb_emit((void *)&st->r, sizeof(struct sc_result));
  if (more) nb_emit((void *)&st->c, sizeof(struct sc_cursor));
  return SQ_DONE;
}

// Push interior page `child` of `page` and read it (its type is learned when it arrives).
static __always_inline __u64 sc_descend(struct nb_ctx *ctx, volatile struct sc_state *st, __u64 page, __u64 child) {
  const struct sq_input *in = NB_INPUT(ctx);
  if (child == 0 || child > in->page_count) return SQ_ERROR(SQ_ERR_CHILD, page);
  __u64 depth = st->c.depth;
  if (depth >= SQ_MAX_DEPTH) return SQ_ERROR(SQ_ERR_CYCLE, page);
  for (__u64 k = 0; k < SQ_MAX_DEPTH; k++) {
    if (k >= depth) break;
    if (st->c.pages[k] == child) return SQ_ERROR(SQ_ERR_CYCLE, page);
  }
  st->leaf = child;
  st->phase = SC_DESCEND;
  return SQ_READ_PAGE;
}

// The next leaf: from the window, else back to the parent (or the end).
static __always_inline __u64 sc_next_leaf(struct nb_ctx *ctx, volatile struct sc_state *st) {
  st->c.in_leaf = 0;
  __u64 pos = st->c.win_pos;
  if (pos < st->c.win_n) {
    if (SQ_OUT_OF_STEPS(ctx)) return sc_finish(st, 1);
    st->c.win_pos = pos + 1;
    st->leaf = st->c.win[pos & (SC_WINDOW - 1)];
    st->phase = SC_LEAF;
    st->op = 0; // the leaf's header is checked when it arrives
    return SQ_READ_PAGE;
  }
  __u64 depth = st->c.depth;
  if (depth == 0) return sc_finish(st, 0);
  if (SQ_OUT_OF_STEPS(ctx)) return sc_finish(st, 1);
  st->leaf = st->c.pages[(depth - 1) & 31];
  st->phase = SC_INTERIOR;
  return SQ_READ_PAGE;
}

// Child i of the interior page in data (i == ncells: the right-most pointer).
static __always_inline __u64 sc_child(volatile struct sc_state *st, __u8 *data, __u8 *end, __u64 i, __u64 page, __u64 *child) {
  if (i >= st->pg.ncells) {
    *child = st->pg.rightmost;
    return 0;
  }
  __u64 cell;
  __u64 err = sq_cell(&st->pg, data, end, i, page, &cell);
  if (err) return err;
  __u32 c;
  SQ_BE32(c, data, end, cell, return SQ_ERROR(SQ_ERR_SHORT, page));
  *child = c;
  return 0;
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
      st->c.pages[depth & 31] = page;
      st->c.idx[depth & 31] = 0;
      st->c.depth = depth + 1;
      st->phase = SC_INTERIOR;
    } else if (st->pg.type == SQ_TABLE_LEAF) {
      st->c.leaf_depth = depth + 1;
      st->c.win_n = 0;
      st->c.win_pos = 0;
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
    __u64 i = st->c.idx[top];
    __u64 n = st->pg.ncells;
    if (i > n) {
      // Every child done: up one level.
      st->c.depth = depth - 1;
      st->c.win_n = 0;
      st->c.win_pos = 0;
      return sc_next_leaf(ctx, st);
    }
    if (st->c.leaf_depth == 0 || depth + 1 < st->c.leaf_depth) {
      __u64 child;
      err = sc_child(st, data, end, i, page, &child);
      if (err) return err;
      st->c.idx[top] = i + 1;
      return sc_descend(ctx, st, page, child);
    }
    // The children are leaves: remember the next SC_WINDOW of them.
    __u64 count = 0;
    for (__u64 k = 0; k < SC_WINDOW; k++) {
      __u64 j = st->c.idx[top];
      if (j > st->pg.ncells) break;
      __u64 child;
      err = sc_child(st, data, end, j, page, &child);
      if (err) return err;
      if (child == 0 || child > in->page_count) return SQ_ERROR(SQ_ERR_CHILD, page);
      if (child == page) return SQ_ERROR(SQ_ERR_CYCLE, page);
      st->c.win[k] = child;
      st->c.idx[top] = j + 1;
      count = k + 1;
    }
    st->c.win_n = count;
    st->c.win_pos = 0;
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
  for (__u64 k = 0; k < SC_OPS_PER_STEP; k++) {
    if (st->op == OP_DONE) break;
    // Out of steps: stop at the next row boundary (the next step then ends the execution).
    if (st->op == OP_CELL && SQ_OUT_OF_STEPS(ctx)) break;
    err = sc_op(ctx, st, data, end);
    if (err) return err;
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
    if ((in->arg_off & 7) || in->arg_off + sizeof(struct sc_args) > ctx->input_len || a->nterms > SC_MAX_TERMS)
      return SQ_ERROR(SQ_ERR_INPUT, 0);
    if (a->resume) {
      const struct sc_cursor *c = &a->cursor;
      __u64 depth = c->depth;
      if (depth > SQ_MAX_DEPTH || c->win_n > SC_WINDOW || c->win_pos > c->win_n) return SQ_ERROR(SQ_ERR_INPUT, 0);
      st->c.depth = depth;
      st->c.leaf_depth = c->leaf_depth;
      st->c.win_n = c->win_n;
      st->c.win_pos = c->win_pos;
      for (__u64 k = 0; k < SQ_MAX_DEPTH; k++) {
        st->c.pages[k] = c->pages[k];
        st->c.idx[k] = c->idx[k];
      }
      for (__u64 k = 0; k < SC_WINDOW; k++) st->c.win[k] = c->win[k];
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
