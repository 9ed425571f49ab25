/* The flat tree (flat.h): columns grown together, the byte arena, directory indexing. */
#include "flat.h"

#define ARENA_MAX 0x7fffffffu

static void arena_reserve(byte_arena *a, size_t n) {
  if (n > ARENA_MAX - a->len) core_failf(CORE_LIMIT, "composefs tree of more than 2 GiB of names, payloads and xattrs");
  if (a->len + n <= a->cap) return;
  size_t cap = a->cap ? a->cap : 1 << 16;
  while (cap < a->len + n) cap *= 2;
  if (cap > ARENA_MAX) cap = ARENA_MAX;
  a->buf = core_grow(a->buf, a->len, cap);
  a->cap = (uint32_t)cap;
}

int32_t arena_alloc(byte_arena *a, size_t n) {
  arena_reserve(a, n);
  int32_t off = (int32_t)a->len;
  a->len += (uint32_t)n;
  return off;
}

int32_t arena_put(byte_arena *a, const uint8_t *src, size_t n) {
  int32_t off = arena_alloc(a, n);
  if (n) memcpy(a->buf + off, src, n);
  return off;
}

#define GROW(column) CORE_GROW(t->column, old, n);

static void grow_inodes(flat_tree *t, int32_t n) {
  int32_t old = t->inode_cap;
  FLAT_INODE_COLUMNS(GROW)
  t->inode_cap = n;
}

static void grow_entries(flat_tree *t, int32_t n) {
  int32_t old = t->entry_cap;
  FLAT_ENTRY_COLUMNS(GROW)
  t->entry_cap = n;
}

static void grow_xattrs(flat_tree *t, int32_t n) {
  int32_t old = t->xattr_cap;
  FLAT_XATTR_COLUMNS(GROW)
  t->xattr_cap = n;
}

#undef GROW

static int32_t doubled(int32_t cap) {
  if (cap >= 0x40000000) core_failf(CORE_LIMIT, "composefs tree of more than 2^30 inodes, entries or xattrs");
  return cap < 64 ? 64 : cap * 2;
}

flat_tree *flat_new(int32_t expected) {
  flat_tree *t = core_alloc(sizeof *t);
  if (expected > 0) {
    grow_inodes(t, expected);
    grow_entries(t, expected);
    grow_xattrs(t, expected);
    arena_reserve(&t->bytes, (size_t)expected * 64);
  }
  return t;
}

int32_t flat_add_inode(flat_tree *t, uint32_t mode) {
  if (t->inode_count == t->inode_cap) grow_inodes(t, doubled(t->inode_cap));
  int32_t i = t->inode_count++;
  t->mode[i] = mode;
  t->nlink[i] = 1;
  t->payload_len[i] = FLAT_NONE;
  t->content_len[i] = FLAT_NONE;
  t->digest_len[i] = FLAT_NONE;
  t->xattr_first[i] = t->xattr_total;
  t->canonical[i] = FLAT_NONE;
  return i;
}

int32_t flat_add_entry(flat_tree *t, int32_t parent, int32_t inode, int hardlink) {
  if (t->entry_count == t->entry_cap) grow_entries(t, doubled(t->entry_cap));
  int32_t e = t->entry_count++;
  t->entry_parent[e] = parent;
  t->entry_inode[e] = inode;
  t->entry_hardlink[e] = hardlink ? 1 : 0;
  if (!hardlink && inode != FLAT_NONE) t->canonical[inode] = e;
  return e;
}

void flat_set_entry_name(flat_tree *t, int32_t e, const uint8_t *name, size_t n) {
  t->entry_name_off[e] = arena_put(&t->bytes, name, n);
  t->entry_name_len[e] = (int32_t)n;
}

void flat_add_xattr(flat_tree *t, const uint8_t *key, size_t klen, const uint8_t *value, size_t vlen) {
  if (t->xattr_total == t->xattr_cap) grow_xattrs(t, doubled(t->xattr_cap));
  int32_t x = t->xattr_total++;
  t->xattr_key_off[x] = arena_put(&t->bytes, key, klen);
  t->xattr_key_len[x] = (int32_t)klen;
  t->xattr_value_off[x] = arena_put(&t->bytes, value, vlen);
  t->xattr_value_len[x] = (int32_t)vlen;
  t->xattr_count[t->inode_count - 1]++;
}

void flat_set_payload(flat_tree *t, int32_t i, const uint8_t *p, size_t n) {
  t->payload_off[i] = arena_put(&t->bytes, p, n);
  t->payload_len[i] = (int32_t)n;
}

void flat_set_content(flat_tree *t, int32_t i, const uint8_t *p, size_t n) {
  t->content_off[i] = arena_put(&t->bytes, p, n);
  t->content_len[i] = (int32_t)n;
}

void flat_set_digest(flat_tree *t, int32_t i, const uint8_t *p, size_t n) {
  t->digest_off[i] = arena_put(&t->bytes, p, n);
  t->digest_len[i] = (int32_t)n;
}

int flat_compare_names(const flat_tree *t, int32_t a, int32_t b) {
  return core_compare_bytes(flat_at(t, t->entry_name_off[a]), (size_t)t->entry_name_len[a],
                            flat_at(t, t->entry_name_off[b]), (size_t)t->entry_name_len[b]);
}

static int compare_entries(const void *ctx, int32_t a, int32_t b) { return flat_compare_names(ctx, a, b); }

void flat_index_directories(flat_tree *t) {
  int32_t n = t->inode_count;
  int32_t *count = core_alloc((size_t)(n > 0 ? n : 1) * sizeof *count);
  for (int32_t e = 0; e < t->entry_count; e++) count[t->entry_parent[e]]++;
  int32_t at = 0;
  for (int32_t i = 0; i < n; i++) {
    t->child_first[i] = at;
    t->child_count[i] = 0;
    at += count[i];
  }
  core_free(count);
  core_free(t->child_ids);
  t->child_ids = core_alloc((size_t)(t->entry_count > 0 ? t->entry_count : 1) * sizeof *t->child_ids);
  for (int32_t e = 0; e < t->entry_count; e++) {
    int32_t p = t->entry_parent[e];
    t->child_ids[t->child_first[p] + t->child_count[p]++] = e;
  }
  for (int32_t i = 0; i < n; i++)
    core_sort_i32(t->child_ids + t->child_first[i], (size_t)t->child_count[i], compare_entries, t);
}

void err_flat_path(const flat_tree *t, int32_t i) {
  /* Names from i up to the root, written backwards into a scratch path, then appended root first.
   * A path longer than CORE_PATH_MAX keeps its deepest part. Bounded by the entry count: a malformed
   * tree with a canonical-entry cycle cannot loop. */
  static uint8_t scratch[CORE_PATH_MAX];
  size_t at = sizeof scratch;
  int32_t steps = 0;
  for (int32_t e = t->canonical[i]; e != FLAT_NONE && steps++ <= t->entry_count;) {
    size_t n = (size_t)t->entry_name_len[e];
    if (n + 1 > at) break;
    at -= n;
    memcpy(scratch + at, flat_at(t, t->entry_name_off[e]), n);
    scratch[--at] = '/';
    int32_t parent = t->entry_parent[e];
    if (parent == 0) break;
    e = t->canonical[parent];
  }
  if (at == sizeof scratch) scratch[--at] = '/';
  err_path_bytes(scratch + at, sizeof scratch - at);
}

/* Room for what the V1 plan adds to a tree (v1-plan.c): the 256 whiteout stubs, and per inode a
 * metacopy and a redirect xattr with their key and value bytes. Growing a column or the arena moves it
 * (a copy, and the old block stays behind in the WebAssembly heap); capacity never used costs nothing
 * there, as its pages are never touched. */
#define PLAN_INODES 257
#define PLAN_XATTRS_PER_INODE 2
#define PLAN_BYTES_PER_INODE 256

static int32_t with_room(int64_t n) { return (int32_t)(n < 0x40000000 ? n : 0x40000000); }

flat_tree *flat_sized(int32_t inodes, int32_t entries, int32_t xattrs, uint32_t bytes) {
  if (inodes < 0 || entries < 0 || xattrs < 0 || inodes > 0x40000000 || entries > 0x40000000 || xattrs > 0x40000000)
    core_failf(CORE_LIMIT, "composefs tree of more than 2^30 inodes, entries or xattrs");
  flat_tree *t = core_alloc(sizeof *t);
  grow_inodes(t, with_room((int64_t)inodes + PLAN_INODES));
  grow_entries(t, with_room((int64_t)entries + PLAN_INODES));
  grow_xattrs(t, with_room((int64_t)xattrs + (int64_t)PLAN_XATTRS_PER_INODE * inodes + 1));
  t->child_ids = core_alloc((size_t)(entries > 0 ? entries : 1) * sizeof *t->child_ids);
  t->inode_count = inodes;
  t->entry_count = entries;
  t->xattr_total = xattrs;
  uint64_t room = (uint64_t)bytes + (uint64_t)PLAN_BYTES_PER_INODE * (uint64_t)inodes;
  arena_reserve(&t->bytes, room < ARENA_MAX ? (size_t)room : ARENA_MAX);
  arena_alloc(&t->bytes, bytes);
  return t;
}
