// sqlite_get: rows of a SQLite table by rowid, fetched next to the data (src/sqlite drives it).
// Input: struct sq_input (table_root, nargs rowids as s64 at arg_off). Output per rowid, in input
// order: struct sq_row_out, then the record when found. Returns the number of rows found, or an
// SQ_ERROR naming the page.
#include "rows.h"

struct get_state {
  __u64 err;
  struct sq_tmp t;
  struct sq_page pg;
  struct sq_rows rows;
};

NEARBPF_STORAGE_PROGRAM(sqlite_get) {
  volatile struct get_state *st = NB_SCRATCH(ctx);
  const struct sq_input *in = NB_INPUT(ctx);
  __u64 r;
  // An error found after reads were queued ends the execution at the next step.
  if (st->err) return st->err;
  if (ctx->step == 0) {
    r = sq_check_input(ctx);
    if (r) return r;
    __u64 n = in->nargs;
    __u64 arg_off = in->arg_off;
    if (n == 0 || n > SQ_MAX_ROWS || arg_off > NB_MAX_INPUT || arg_off + n * 8 > ctx->input_len)
      return SQ_ERROR(SQ_ERR_INPUT, 0);
    for (__u64 i = 0; i < SQ_MAX_ROWS; i++) {
      if (i >= n) break;
      st->rows.rowids[i] = *(const __s64 *)(NB_INPUT(ctx) + ((arg_off + i * 8) & 0xff8));
    }
    st->rows.nrows = n;
    r = sq_rows_next(ctx, &st->rows, &st->t);
  } else {
    r = sq_rows_step(ctx, &st->rows, &st->t, &st->pg);
  }
  if (r == SQ_DONE) return st->rows.found;
  // One place queues page reads, so the verifier walks the extent lookup once.
  if (r == SQ_READ_PAGE) r = sq_read_page(ctx, &st->t, st->rows.page);
  if (r) st->err = r;
  return r;
}

char LICENSE[] SEC("license") = "Apache-2.0";
