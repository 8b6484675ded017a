/*
 * rows.h: fetch rows of a table B-tree by rowid, one after another in one execution — descend
 * from the root (interior pages: binary search on the rowid keys), find the cell on the leaf,
 * emit its record, then follow its overflow chain. Used by sqlite_get (rowids from the input) and
 * sqlite_index (rowids found in an index).
 *
 * Output per row: struct sq_row_out, then `size` payload bytes (the record) when found.
 */
#ifndef NEARBPF_SQLITE_ROWS_H
#define NEARBPF_SQLITE_ROWS_H
#include "sqlite.h"

#define SQ_ROWS_DESCEND 1
#define SQ_ROWS_OVERFLOW 2

struct sq_row_out {
  __s64 rowid;
  __u32 size;  /* payload bytes that follow */
  __u32 found; /* 1: present; 0: no such rowid (nothing follows) */
};

struct sq_rows {
  __u64 phase;
  __u64 row;   /* index of the rowid being fetched */
  __u64 nrows; /* rowids in `rowids` */
  __u64 found;
  __u64 page;  /* page whose data the next step sees */
  __u64 depth; /* pages on the path from the root, `page` included */
  __u64 left;  /* payload bytes still to emit from overflow pages */
  __u64 out;   /* bytes emitted so far */
  __s64 rowids[SQ_MAX_ROWS];
  __u32 path[SQ_MAX_DEPTH + 4];
};

/* Start fetching row st->row (SQ_READ_PAGE), or report that all are done (SQ_DONE). */
static __always_inline __u64 sq_rows_next(struct nb_ctx *ctx, volatile struct sq_rows *st, volatile struct sq_tmp *t) {
  const struct sq_input *in = NB_INPUT(ctx);
  if (st->row >= st->nrows) return SQ_DONE;
  __u64 root = in->table_root;
  st->phase = SQ_ROWS_DESCEND;
  st->page = root;
  st->depth = 1;
  st->path[0] = root;
  return SQ_READ_PAGE;
}

/* The current row is done: go on with the next one. */
static __always_inline __u64 sq_rows_advance(struct nb_ctx *ctx, volatile struct sq_rows *st, volatile struct sq_tmp *t) {
  st->row = st->row + 1;
  return sq_rows_next(ctx, st, t);
}

/*
 * Whether `need` more bytes fit the output the host offered: a program never sends more than the
 * host's buffer holds (it stops with SQ_ERR_ROOM and the host asks again with more room).
 */
static __always_inline int sq_rows_room(struct nb_ctx *ctx, volatile struct sq_rows *st, __u64 need) {
  __u64 max = SQ_VOL(((const struct sq_input *)NB_INPUT(ctx))->max_output);
  __u64 out = st->out + need;
  if (max != 0 && out > max) return 0;
  st->out = out;
  return 1;
}

static __always_inline __u64 sq_rows_absent(struct nb_ctx *ctx, volatile struct sq_rows *st, volatile struct sq_tmp *t,
                                            __s64 rowid) {
  if (!sq_rows_room(ctx, st, sizeof(struct sq_row_out))) return SQ_ERROR(SQ_ERR_ROOM, st->page);
  struct sq_row_out o = {.rowid = rowid, .size = 0, .found = 0};
  nb_emit(&o, sizeof(o));
  return sq_rows_advance(ctx, st, t);
}

/*
 * Binary search of a table page for the first cell whose rowid is >= want; its index goes to
 * t->lo. Interior cells are (u32 child, varint rowid); leaf cells (varint size, varint rowid, ...).
 */
static __always_inline __u64 sq_table_search(volatile struct sq_page *pg, volatile struct sq_tmp *t, __u8 *data,
                                             __u8 *end, __u64 page, __s64 want, int leaf) {
  t->lo = 0;
  t->hi = pg->ncells;
  for (__u64 k = 0; k < 16; k++) {
    __u64 lo = t->lo, hi = t->hi;
    if (lo >= hi) return 0;
    __u64 mid = (lo + hi) >> 1;
    __u64 cell;
    __u64 err = sq_cell(pg, data, end, mid, page, &cell);
    if (err) return err;
    __u64 usable = pg->usable;
    if (leaf) {
      if (sq_varint(t, data, end, cell, usable)) return SQ_ERROR(SQ_ERR_CELL, page);
      cell += t->vlen;
    } else {
      cell += 4;
    }
    if (sq_varint(t, data, end, cell, usable)) return SQ_ERROR(SQ_ERR_CELL, page);
    if ((__s64)t->v < want)
      t->lo = mid + 1;
    else
      t->hi = mid;
  }
  return t->lo >= t->hi ? 0 : SQ_ERROR(SQ_ERR_CELL, page);
}

/* Queue the read of a child page after checking it is in the file and not on the path already. */
static __always_inline __u64 sq_rows_descend(struct nb_ctx *ctx, volatile struct sq_rows *st, volatile struct sq_tmp *t,
                                             __u64 page, __u64 child) {
  __u64 depth = st->depth;
  __u64 err = sq_check_child(ctx, st->path, 1, depth, page, child);
  if (err) return err;
  st->path[depth & 31] = child;
  st->depth = depth + 1;
  st->page = child;
  return SQ_READ_PAGE;
}

/*
 * One step of row fetching with the page st->page in data. Returns SQ_READ_PAGE when page st->page
 * is to be read next, SQ_DONE when every row is done, or an SQ_ERROR.
 */
static __noinline __u64 sq_rows_step(struct nb_ctx *ctx, volatile struct sq_rows *st, volatile struct sq_tmp *t,
                                          volatile struct sq_page *pg) {
  const struct sq_input *in = NB_INPUT(ctx);
  __u8 *data = NB_DATA(ctx);
  __u8 *end = NB_DATA_END(ctx);
  __u64 page = st->page;
  __u64 usable = in->usable;
  __s64 want = st->rowids[st->row & (SQ_MAX_ROWS - 1)];

  if (st->phase == SQ_ROWS_OVERFLOW) {
    __u32 next;
    SQ_BE32(next, data, end, 0, return SQ_ERROR(SQ_ERR_SHORT, page));
    __u64 take = usable - 4;
    __u64 left = st->left;
    if (take > left) take = left;
    if (sq_emit(data, end, 4, take)) return SQ_ERROR(SQ_ERR_SHORT, page);
    left -= take;
    st->left = left;
    /*
     * The last page of a chain ends it with 0. A chain that repeats a page is periodic from there
     * on, so its last page (inside the cycle) never holds 0: this finds every cycle.
     */
    if (left == 0) return next == 0 ? sq_rows_advance(ctx, st, t) : SQ_ERROR(SQ_ERR_OVERFLOW, page);
    if (next == 0 || next > in->page_count) return SQ_ERROR(SQ_ERR_OVERFLOW, page);
    st->page = next;
    return SQ_READ_PAGE;
  }

  __u64 err = sq_page_header(pg, data, end, page, usable);
  if (err) return err;
  __u64 type = pg->type;
  if (type == SQ_TABLE_INTERIOR) {
    err = sq_table_search(pg, t, data, end, page, want, 0);
    if (err) return err;
    __u64 i = t->lo;
    __u32 child;
    if (i >= pg->ncells) {
      child = pg->rightmost;
    } else {
      __u64 cell;
      err = sq_cell(pg, data, end, i, page, &cell);
      if (err) return err;
      SQ_BE32(child, data, end, cell, return SQ_ERROR(SQ_ERR_SHORT, page));
    }
    return sq_rows_descend(ctx, st, t, page, child);
  }
  if (type != SQ_TABLE_LEAF) return SQ_ERROR(SQ_ERR_PAGE_TYPE, page);
  err = sq_table_search(pg, t, data, end, page, want, 1);
  if (err) return err;
  __u64 i = t->lo;
  if (i >= pg->ncells) return sq_rows_absent(ctx, st, t, want);
  __u64 cell;
  err = sq_cell(pg, data, end, i, page, &cell);
  if (err) return err;
  if (sq_varint(t, data, end, cell, usable)) return SQ_ERROR(SQ_ERR_CELL, page);
  __u64 size = t->v;
  cell += t->vlen;
  if (sq_varint(t, data, end, cell, usable)) return SQ_ERROR(SQ_ERR_CELL, page);
  if ((__s64)t->v != want) return sq_rows_absent(ctx, st, t, want);
  cell += t->vlen;
  if (size > 0x7fffffff) return SQ_ERROR(SQ_ERR_CELL, page);
  __u64 local = sq_local(size, usable, 0);
  __u64 spill = local < size;
  if (cell + local + (spill ? 4 : 0) > usable) return SQ_ERROR(SQ_ERR_CELL, page);
  if (!sq_rows_room(ctx, st, sizeof(struct sq_row_out) + size)) return SQ_ERROR(SQ_ERR_ROOM, page);
  struct sq_row_out o = {.rowid = want, .size = size, .found = 1};
  nb_emit(&o, sizeof(o));
  if (sq_emit(data, end, cell, local)) return SQ_ERROR(SQ_ERR_SHORT, page);
  st->found = st->found + 1;
  if (!spill) return sq_rows_advance(ctx, st, t);
  __u32 first;
  SQ_BE32(first, data, end, cell + local, return SQ_ERROR(SQ_ERR_SHORT, page));
  if (first == 0 || first > in->page_count) return SQ_ERROR(SQ_ERR_OVERFLOW, page);
  st->left = size - local;
  st->phase = SQ_ROWS_OVERFLOW;
  st->page = first;
  return SQ_READ_PAGE;
}

#endif /* NEARBPF_SQLITE_ROWS_H */
