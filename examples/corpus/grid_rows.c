// Rows of a 16 x 8 grid of bytes with at least 4 cells above param1; emits the first 16 cells when
// more than 8 rows are hot.
#include "nearbpf.h"
#define ROWS 16
#define COLS 8
NEARBPF_STORAGE_PROGRAM(grid_rows) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, ROWS * COLS);
    return 0;
  }
  const __u8 *cells = NB_DATA(ctx);
  if ((void *)(cells + ROWS * COLS) > NB_DATA_END(ctx)) return -1;
  __u64 rows = 0;
  for (int r = 0; r < ROWS; r++) {
    __u64 hot = 0;
    for (int c = 0; c < COLS; c++)
      if (cells[r * COLS + c] > ctx->param1) hot++;
    if (hot >= 4) rows++;
  }
  if (rows > 8) nb_emit(cells, 16);
  return rows;
}
