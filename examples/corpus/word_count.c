// Words (runs of non-space bytes) in 256 bytes of text; a zero byte ends the text.
#include "nearbpf.h"
#define N 256
NEARBPF_STORAGE_PROGRAM(word_count) {
  if (ctx->step == 0) {
    nb_read(ctx->param0, N);
    return 0;
  }
  const char *t = NB_DATA(ctx);
  if ((void *)(t + N) > NB_DATA_END(ctx)) return -1;
  __u64 words = 0;
  int in_word = 0;
  for (int i = 0; i < N; i++) {
    char c = t[i];
    if (c == 0) break;
    int space = c == ' ' || c == '\n' || c == '\t';
    if (!space && !in_word) words++;
    in_word = !space;
  }
  return words;
}
