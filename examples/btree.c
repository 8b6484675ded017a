// Storage functions over the on-disk B+-tree of the BPF-KV benchmark (XRP, OSDI'22): 512-byte
// nodes of up to 31 sorted u64 keys, 64-byte values stored apart. See src/showcase/btree.ts for the
// layout and the builder. Each function walks the tree next to the data: one round trip per
// operation instead of one per level.
#include "nearbpf.h"

#define BT_FANOUT 31
#define BT_VALUE_SIZE 64
#define BT_FLAG_LEAF 1
#define BT_MAX_RANGE 32
#define BT_MAX_BATCH 32

struct bt_node {
  __u64 num_keys;
  __u64 flags;
  __u64 keys[BT_FANOUT];
  __u64 ptrs[BT_FANOUT]; // internal: child node offset; leaf: value offset
};

// Index of the last key <= want among keys[0..num), or -1 when want is below them all.
// A function of its own (not inlined): it bounds its index itself, so the verifier checks it once
// for any num and want (a function summary) instead of once per caller state; btree_batch's loop
// calls it with up to 32 x 32 different (r, still) pairs (376K -> 95K processed instructions).
static __noinline int bt_floor(const struct bt_node *n, __u64 num, __u64 want) {
  int lo = 0, hi = (int)num; // invariant: keys[0..lo) <= want < keys[hi..num)
  for (int i = 0; i < 6 && lo < hi; i++) {
    int mid = (lo + hi) >> 1;
    if (mid < 0 || mid >= BT_FANOUT) break;
    if (n->keys[mid] <= want)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo - 1;
}

// The node read in the previous step, or NULL if the data is too short.
static __always_inline struct bt_node *bt_node_in(struct nb_ctx *ctx) {
  struct bt_node *n = NB_DATA(ctx);
  if ((void *)(n + 1) > NB_DATA_END(ctx)) return NULL;
  return n;
}

#define BT_ERROR ((__u64)-1)

// Point lookup. param0 = key, param1 = root offset. Returns 1 and emits the 64-byte value when the
// key is present, 0 when it is absent.
struct lookup_state {
  __u64 reading_value;
};

NEARBPF_STORAGE_PROGRAM(btree_lookup) {
  struct lookup_state *st = NB_SCRATCH(ctx);
  if (ctx->step == 0) {
    nb_read(ctx->param1, sizeof(struct bt_node));
    return 0;
  }
  if (st->reading_value) {
    void *value = NB_DATA(ctx);
    if (value + BT_VALUE_SIZE > NB_DATA_END(ctx)) return BT_ERROR;
    nb_emit(value, BT_VALUE_SIZE);
    return 1;
  }
  struct bt_node *n = bt_node_in(ctx);
  if (!n) return BT_ERROR;
  __u64 num = n->num_keys;
  if (num == 0 || num > BT_FANOUT) return BT_ERROR;
  int i = bt_floor(n, num, ctx->param0);
  if (i < 0 || i >= BT_FANOUT) return 0;
  if (n->flags & BT_FLAG_LEAF) {
    if (n->keys[i] != ctx->param0) return 0;
    st->reading_value = 1;
    nb_read(n->ptrs[i], BT_VALUE_SIZE);
    return 0;
  }
  nb_read(n->ptrs[i], sizeof(struct bt_node));
  return 0;
}

// Range query: pairs with lo <= key < hi, at most BT_MAX_RANGE. param0 = lo, param1 = root offset;
// input = { u64 hi; u64 leaves_end } (leaves are contiguous in key order, ending at leaves_end).
// Emits { u64 key; u8 value[64] } per pair, in key order; returns the number of pairs.
struct range_input {
  __u64 hi;
  __u64 leaves_end;
};

struct range_state {
  __u64 phase; // 0: descending, 1: collecting from leaves, 2: values arrived
  __u64 count;
  __u64 first_value; // value offset of the first key collected
  __u64 keys[BT_MAX_RANGE];
};

NEARBPF_STORAGE_PROGRAM(btree_range) {
  struct range_state *st = NB_SCRATCH(ctx);
  const struct range_input *in = NB_INPUT(ctx);
  __u64 lo = ctx->param0;
  __u64 hi = in->hi;
  if (ctx->step == 0) {
    if (ctx->input_len < sizeof(struct range_input)) return BT_ERROR;
    nb_read(ctx->param1, sizeof(struct bt_node));
    return 0;
  }
  if (st->phase == 2) {
    __u64 count = st->count;
    void *values = NB_DATA(ctx);
    for (__u64 k = 0; k < BT_MAX_RANGE && k < count; k++) {
      void *value = values + k * BT_VALUE_SIZE;
      if (value + BT_VALUE_SIZE > NB_DATA_END(ctx)) return BT_ERROR;
      nb_emit(&st->keys[k], sizeof(__u64));
      nb_emit(value, BT_VALUE_SIZE);
    }
    return count;
  }
  struct bt_node *n = bt_node_in(ctx);
  if (!n) return BT_ERROR;
  __u64 num = n->num_keys;
  if (num == 0 || num > BT_FANOUT) return BT_ERROR;
  if (!(n->flags & BT_FLAG_LEAF)) {
    int i = bt_floor(n, num, lo);
    if (i < 0) i = 0;
    if (i >= BT_FANOUT) return BT_ERROR;
    nb_read(n->ptrs[i], sizeof(struct bt_node));
    return 0;
  }
  // A leaf: collect keys in [lo, hi), then fetch the next leaf or the values.
  st->phase = 1;
  __u64 done = 0;
  for (__u64 i = 0; i < BT_FANOUT && i < num; i++) {
    __u64 key = n->keys[i];
    if (key < lo) continue;
    if (key >= hi || st->count >= BT_MAX_RANGE) {
      done = 1;
      break;
    }
    __u64 c = st->count;
    if (c >= BT_MAX_RANGE) break;
    if (c == 0) st->first_value = n->ptrs[i];
    st->keys[c] = key;
    st->count = c + 1;
  }
  __u64 next_leaf = ctx->data_offset + sizeof(struct bt_node);
  if (!done && st->count < BT_MAX_RANGE && next_leaf < in->leaves_end) {
    nb_read(next_leaf, sizeof(struct bt_node));
    return 0;
  }
  // The builder stores values in key order, so the values of a key range are one contiguous read.
  if (st->count == 0) return 0;
  st->phase = 2;
  nb_read(st->first_value, st->count * BT_VALUE_SIZE);
  return 0;
}

// Batch of point lookups with fan-out: input = up to 32 u64 keys, param1 = root offset. Every step
// advances all unfinished lookups by one level (one read each), so the batch costs the depth of the
// tree in steps, not depth x keys. Emits, per key in input order, { u64 key; u64 found; u8 value[64] };
// returns the number of keys found.
struct batch_state {
  __u64 phase; // 0: descending, 1: values arrived
  __u64 active; // lookups with a read in flight, in request order
  __u32 slot_of[BT_MAX_BATCH]; // request order -> key index
  __u64 value_off[BT_MAX_BATCH]; // 0 when not found (yet)
  __u64 found;
};

NEARBPF_STORAGE_PROGRAM(btree_batch) {
  struct batch_state *st = NB_SCRATCH(ctx);
  const __u64 *keys = NB_INPUT(ctx);
  __u64 nkeys = ctx->input_len / sizeof(__u64);
  if (nkeys > BT_MAX_BATCH) return BT_ERROR;
  if (ctx->step == 0) {
    for (__u64 k = 0; k < BT_MAX_BATCH && k < nkeys; k++) {
      st->slot_of[k] = k;
      nb_read(ctx->param1, sizeof(struct bt_node));
    }
    st->active = nkeys;
    return 0;
  }
  void *data = NB_DATA(ctx);
  if (st->phase == 1) {
    __u64 v = 0;
    for (__u64 k = 0; k < BT_MAX_BATCH && k < nkeys; k++) {
      __u64 found = st->value_off[k] != 0;
      nb_emit(&keys[k], sizeof(__u64));
      nb_emit(&found, sizeof(__u64));
      if (found) {
        void *value = data + v * BT_VALUE_SIZE;
        if (value + BT_VALUE_SIZE > NB_DATA_END(ctx)) return BT_ERROR;
        nb_emit(value, BT_VALUE_SIZE);
        v++;
      } else {
        __u8 zero[BT_VALUE_SIZE] = {};
        nb_emit(zero, BT_VALUE_SIZE);
      }
    }
    return st->found;
  }
  __u64 active = st->active;
  __u64 still = 0;
  __u64 leaves_done = 1;
  for (__u64 r = 0; r < BT_MAX_BATCH && r < active; r++) {
    struct bt_node *n = data + r * sizeof(struct bt_node);
    if ((void *)(n + 1) > NB_DATA_END(ctx)) return BT_ERROR;
    __u32 k = st->slot_of[r];
    if (k >= BT_MAX_BATCH) return BT_ERROR;
    __u64 want = keys[k];
    __u64 num = n->num_keys;
    if (num == 0 || num > BT_FANOUT) return BT_ERROR;
    int i = bt_floor(n, num, want);
    if (i < 0 || i >= BT_FANOUT) continue;
    if (n->flags & BT_FLAG_LEAF) {
      if (n->keys[i] == want) {
        st->value_off[k] = n->ptrs[i];
        st->found++;
      }
      continue;
    }
    leaves_done = 0;
    st->slot_of[still] = k;
    still++;
    nb_read(n->ptrs[i], sizeof(struct bt_node));
  }
  st->active = still;
  if (still > 0 && !leaves_done) return 0;
  // Every lookup reached its leaf: fetch the values of the keys found, in input order.
  st->phase = 1;
  for (__u64 k = 0; k < BT_MAX_BATCH && k < nkeys; k++) {
    if (st->value_off[k]) nb_read(st->value_off[k], BT_VALUE_SIZE);
  }
  if (st->found == 0) {
    // Nothing to read: the emit step must still run, so ask for one harmless byte.
    nb_read(0, 1);
  }
  return 0;
}

char LICENSE[] SEC("license") = "Apache-2.0";
