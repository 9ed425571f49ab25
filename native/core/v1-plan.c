/*
 * What C mkcomposefs 1.0.8 does to its tree before layout, over a flat tree (the C form of
 * v1-plan.ts): version choice, trusted.overlay. escaping, metacopy and redirect xattrs, whiteout
 * escaping, the root opaque marker, the 256 whiteout stubs (spec composefs-v1 §3.1, §5), then BFS
 * numbering (§6.1), directory nlink, minimum mtime and ACL flag (§6.2–§6.3) and the xattr pairs
 * with their shared table (§7). The flat tree is rewritten in place.
 *
 * Xattr keys are ids into an interned key table; values are (offset, length) in the tree's arena;
 * a distinct (key, value) pair is an id in the pair table.
 */
#include "v1-internal.h"

#define MAX_CHUNKS 1024
#define XATTR_BUDGET 32767
#define MAX_SHARED_REFS 128

/* The longest list any growable column may hold (int32 indices, doubling stays in range). */
#define LIST_MAX 0x40000000

static _Noreturn void internal(const char *what) {
  err_begin(CORE_FORMAT);
  err_str("internal: ");
  err_str(what);
  core_fail();
}

/* ---------------------------------------------------------------- small helpers */

/* A growable int32 column (IntList). */
typedef struct {
  int32_t *a;
  int32_t n, cap;
} ilist;

static void il_push(ilist *l, int32_t v) {
  if (l->n == l->cap) {
    if (l->cap >= LIST_MAX) core_failf(CORE_LIMIT, "composefs tree of more than 2^30 xattrs");
    int32_t cap = l->cap ? l->cap * 2 : 1024;
    CORE_GROW(l->a, l->cap, cap);
    l->cap = cap;
  }
  l->a[l->n++] = v;
}

static void il_free(ilist *l) {
  core_free(l->a);
  l->a = NULL;
  l->n = l->cap = 0;
}

static void *alloc_n(size_t n, size_t size) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX / size) core_failf(CORE_LIMIT, "out of memory");
  return core_alloc(n * size);
}

/* Appends s as JSON.stringify writes a latin1 string (quotes, \" \\ \b \f \n \r \t, \u00xx). */
static void err_json(const uint8_t *p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  err_str("\"");
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    char esc[7];
    if (c == '"') err_str("\\\"");
    else if (c == '\\') err_str("\\\\");
    else if (c == '\b') err_str("\\b");
    else if (c == '\f') err_str("\\f");
    else if (c == '\n') err_str("\\n");
    else if (c == '\r') err_str("\\r");
    else if (c == '\t') err_str("\\t");
    else if (c < 0x20) {
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      esc[6] = 0;
      err_str(esc);
    } else err_bytes(&c, 1);
  }
  err_str("\"");
}

static inline int is_type(const flat_tree *t, int32_t i, uint32_t type) { return (t->mode[i] & V1_S_IFMT) == type; }

/* A character device 0:0 (rdev's low 32 bits). */
static inline int is_whiteout(const flat_tree *t, int32_t i) {
  return is_type(t, i, V1_S_IFCHR) && (uint32_t)t->rdev[i] == 0;
}

/* Regular, non-empty, no inline content: data in an external object (spec composefs-v1 §9.3). */
static inline int is_external(const flat_tree *t, int32_t i) {
  return is_type(t, i, V1_S_IFREG) && t->size[i] > 0 && t->content_len[i] <= 0;
}

/* Chunk bits clamp(bitlength(size−1), 12, 43) and chunk count (spec composefs-v1 §9.3). */
static int chunk_bits_of(uint64_t size) {
  int bits = size <= 1 ? 0 : 64 - __builtin_clzll(size - 1);
  return bits < 12 ? 12 : bits > 43 ? 43 : bits;
}

static uint64_t chunk_count_of(uint64_t size) {
  return size == 0 ? 0 : ((size - 1) >> chunk_bits_of(size)) + 1;
}

/* ---------------------------------------------------------------- version (spec §3.1 steps 1–4) */

static void version_range(const v1_options *o, int32_t *version, int32_t *max) {
  int64_t v = 0, m = 1;
  if (o->min_version != -1 || o->max_version != -1) {
    v = o->min_version == -1 ? 0 : o->min_version;
    m = o->max_version == -1 ? 0 : o->max_version;
  }
  if (v < 0 || v > 1 || m < 0 || m > 1) {
    err_begin(CORE_USAGE);
    err_str("composefs V1 version must be 0 or 1 (min ");
    err_i64(v);
    err_str(", max ");
    err_i64(m);
    err_str(")");
    core_fail();
  }
  *version = (int32_t)v;
  *max = (int32_t)(m > v ? m : v);
}

/* ---------------------------------------------------------------- interned keys (KeyTable) */

typedef struct {
  const char *bytes;
  uint8_t index;
} prefix;

/* spec composefs-v1 §7.1: the C writer has no lustre. (index 5); at most one prefix matches. */
static const prefix V1_PREFIXES[] = {
    {"user.", 1}, {"system.posix_acl_access", 2}, {"system.posix_acl_default", 3}, {"trusted.", 4}, {"security.", 6},
};

static const char OVERLAY[] = "trusted.overlay.";
static const char OVERLAY_ESCAPED[] = "trusted.overlay.overlay.";

static inline const uint8_t *key_ptr(const v1_plan *p, int32_t id) { return p->key_bytes + p->keys[id].off; }

static int key_equals(const v1_plan *p, int32_t id, const uint8_t *b, size_t n) {
  return p->keys[id].len == n && (n == 0 || memcmp(key_ptr(p, id), b, n) == 0);
}

static void key_place(v1_plan *p, int32_t id) {
  uint32_t mask = p->key_slot_count - 1;
  uint32_t s = p->keys[id].hash & mask;
  while (p->key_slots[s] != 0) s = (s + 1) & mask;
  p->key_slots[s] = id + 1;
}

static int bytes_equal_str(const uint8_t *b, size_t n, const char *s) {
  size_t m = strlen(s);
  return n == m && memcmp(b, s, m) == 0;
}

/* The id of the key b[0, n), added on first sight. */
static int32_t key_id(v1_plan *p, const uint8_t *b, size_t n) {
  if (n > 0xffffffffu) core_failf(CORE_LIMIT, "xattr key too long");
  uint32_t h = v1_xxh32(b, n, 0);
  if (p->key_slot_count == 0) {
    p->key_slot_count = 1024;
    p->key_slots = alloc_n(p->key_slot_count, sizeof *p->key_slots);
  }
  uint32_t mask = p->key_slot_count - 1;
  for (uint32_t s = h & mask;; s = (s + 1) & mask) {
    int32_t v = p->key_slots[s];
    if (v == 0) break;
    if (p->keys[v - 1].hash == h && key_equals(p, v - 1, b, n)) return v - 1;
  }
  if (p->key_count == p->key_cap) {
    if (p->key_cap >= LIST_MAX) core_failf(CORE_LIMIT, "composefs tree of more than 2^30 xattr keys");
    int32_t cap = p->key_cap ? p->key_cap * 2 : 256;
    CORE_GROW(p->keys, p->key_cap, cap);
    p->key_cap = cap;
  }
  if (n > SIZE_MAX - p->key_bytes_len) core_failf(CORE_LIMIT, "out of memory");
  if (p->key_bytes_len + n > p->key_bytes_cap) {
    size_t cap = p->key_bytes_cap ? p->key_bytes_cap : 1 << 12;
    while (cap < p->key_bytes_len + n) {
      if (cap > SIZE_MAX / 2) core_failf(CORE_LIMIT, "out of memory");
      cap *= 2;
    }
    p->key_bytes = core_grow(p->key_bytes, p->key_bytes_len, cap);
    p->key_bytes_cap = cap;
  }
  int32_t id = p->key_count++;
  v1_key *k = &p->keys[id];
  k->off = p->key_bytes_len;
  k->len = (uint32_t)n;
  k->hash = h;
  k->escaped = -1;
  if (n) memcpy(p->key_bytes + k->off, b, n);
  p->key_bytes_len += n;
  /* splitXattrKey, V1 dialect */
  k->index = 0;
  k->plen = 0;
  for (size_t j = 0; j < sizeof V1_PREFIXES / sizeof V1_PREFIXES[0]; j++) {
    size_t m = strlen(V1_PREFIXES[j].bytes);
    if (n >= m && memcmp(b, V1_PREFIXES[j].bytes, m) == 0) {
      k->index = V1_PREFIXES[j].index;
      k->plen = (uint8_t)m;
      break;
    }
  }
  k->bit = (uint8_t)(v1_xxh32(b + k->plen, n - k->plen, V1_XATTR_FILTER_SEED + k->index) % 32);
  k->acl = bytes_equal_str(b, n, "system.posix_acl_access") || bytes_equal_str(b, n, "system.posix_acl_default");
  k->rank = 0;
  /* Keep the table at most half full. */
  if ((uint32_t)p->key_count * 2 > p->key_slot_count) {
    core_free(p->key_slots);
    p->key_slot_count *= 2;
    p->key_slots = alloc_n(p->key_slot_count, sizeof *p->key_slots);
    for (int32_t q = 0; q < p->key_count; q++) key_place(p, q);
  } else {
    key_place(p, id);
  }
  return id;
}

static int32_t key_id_str(v1_plan *p, const char *s) { return key_id(p, (const uint8_t *)s, strlen(s)); }

/* The id of the key after trusted.overlay. escaping (spec composefs-v1 §5.1 step 2). */
static int32_t key_escaped(v1_plan *p, int32_t id) {
  if (p->keys[id].escaped < 0) {
    size_t n = p->keys[id].len, m = sizeof OVERLAY - 1, e = sizeof OVERLAY_ESCAPED - 1;
    if (n >= m && memcmp(key_ptr(p, id), OVERLAY, m) == 0) {
      uint8_t *b = alloc_n(n - m + e, 1);
      memcpy(b, OVERLAY_ESCAPED, e);
      memcpy(b + e, key_ptr(p, id) + m, n - m);
      int32_t esc = key_id(p, b, n - m + e);
      core_free(b);
      p->keys[id].escaped = esc;
    } else {
      p->keys[id].escaped = id;
    }
  }
  return p->keys[id].escaped;
}

static int compare_keys(const void *ctx, int32_t a, int32_t b) {
  const v1_plan *p = ctx;
  return core_compare_bytes(key_ptr(p, a), p->keys[a].len, key_ptr(p, b), p->keys[b].len);
}

/* Ranks keys by bytes (xattrs are sorted by key, spec composefs-v1 §6.2). */
static void key_rank(v1_plan *p) {
  int32_t *ids = alloc_n((size_t)p->key_count, sizeof *ids);
  for (int32_t q = 0; q < p->key_count; q++) ids[q] = q;
  core_sort_i32(ids, (size_t)p->key_count, compare_keys, p);
  for (int32_t r = 0; r < p->key_count; r++) p->keys[ids[r]].rank = r;
  core_free(ids);
}

/* ---------------------------------------------------------------- one inode's xattrs (XattrScratch) */

/* The list while C's lcfs_node_set_xattr runs on it, with its size budget (spec composefs-v1 §4.6):
 * the copy's counter starts at 0, so replacing a long input value can wrap it and fail (§5.1 step 4). */
typedef struct {
  ilist key, off, len;
  int64_t budget;
} xscratch;

static void xs_reset(xscratch *s) {
  s->key.n = s->off.n = s->len.n = 0;
  s->budget = 0;
}

static void xs_push(xscratch *s, int32_t key, int32_t off, int32_t len) {
  il_push(&s->key, key);
  il_push(&s->off, off);
  il_push(&s->len, len);
}

static void xs_remove(ilist *l, int32_t i) {
  memmove(l->a + i, l->a + i + 1, (size_t)(l->n - i - 1) * sizeof *l->a);
  l->n--;
}

static void xs_set(xscratch *s, const v1_plan *p, int32_t key, int32_t off, int32_t len, const flat_tree *t, int32_t node) {
  int64_t klen = p->keys[key].len;
  int32_t i = -1;
  for (int32_t j = 0; j < s->key.n; j++) {
    if (s->key.a[j] == key) {
      i = j;
      break;
    }
  }
  if (i >= 0) {
    int64_t old = s->len.a[i];
    xs_remove(&s->key, i);
    xs_remove(&s->off, i);
    xs_remove(&s->len, i);
    s->budget = s->key.n > 0 ? s->budget - (7 + klen + old) : 0;
  }
  int64_t next = s->budget + 7 + klen + len + (s->key.n == 0 ? 12 : 0);
  /* A negative counter is a wrapped u64, i.e. far above the budget. */
  if (next < 0 || next > XATTR_BUDGET) {
    err_begin(CORE_LIMIT);
    err_str("cannot set xattr ");
    err_bytes(key_ptr(p, key), p->keys[key].len);
    err_str(": xattr size budget exceeded");
    err_flat_path(t, node);
    core_fail();
  }
  s->budget = next;
  xs_push(s, key, off, len);
}

/* Every inode's final xattrs (unsorted): inode i has list entries first[i] … first[i]+count[i]−1. */
typedef struct {
  int32_t *first, *count;
  ilist key, off, len;
} xlists;

static void flush_xattrs(xlists *l, int32_t i, const int32_t *key, const int32_t *off, const int32_t *len, int32_t n) {
  l->first[i] = l->key.n;
  l->count[i] = n;
  for (int32_t j = 0; j < n; j++) il_push(&l->key, key[j]);
  for (int32_t j = 0; j < n; j++) il_push(&l->off, off[j]);
  for (int32_t j = 0; j < n; j++) il_push(&l->len, len[j]);
}

/* ---------------------------------------------------------------- traversal */

/* Inode ids in pre-order over canonical entries, each with its parent (the root's is itself). */
static void preorder(const flat_tree *t, ilist *nodes, ilist *parents) {
  uint8_t *seen = alloc_n((size_t)t->inode_count, 1);
  ilist stack = {0};
  il_push(nodes, 0);
  il_push(parents, 0);
  seen[0] = 1;
  int32_t node = 0;
  for (;;) {
    /* push node's canonical children, the first on top */
    int32_t first = t->child_first[node];
    for (int32_t k = first + t->child_count[node] - 1; k >= first; k--) {
      int32_t e = t->child_ids[k];
      if (t->entry_hardlink[e] == 0) il_push(&stack, e);
    }
    if (stack.n == 0) break;
    int32_t e = stack.a[--stack.n];
    node = t->entry_inode[e];
    if (node < 0 || node >= t->inode_count || seen[node]) internal("inode reached twice through canonical entries");
    seen[node] = 1;
    il_push(nodes, node);
    il_push(parents, t->entry_parent[e]);
  }
  il_free(&stack);
  core_free(seen);
}

/* ---------------------------------------------------------------- per-node rewrites (spec §5.1) */

/* Raises the failure being built with inode i's path as its context. */
static _Noreturn void fail_at(const flat_tree *t, int32_t i) {
  err_flat_path(t, i);
  core_fail();
}

/* Checks and rewrites that are not xattrs. Returns whether the node is an external file. */
static int rewrite_node(flat_tree *t, int32_t i) {
  uint32_t mode = t->mode[i];
  uint32_t type = mode & V1_S_IFMT;
  if (type != V1_S_IFREG && type != V1_S_IFDIR) (void)v1_dirent_file_type(mode); /* validates the type */
  if (type == V1_S_IFLNK) {
    int32_t len = t->payload_len[i];
    if (len <= 0 || len > 4095) {
      err_begin(CORE_LIMIT);
      /* The TS message has an en dash (U+2013), here in UTF-8. */
      err_str("symlink target must be 1\xe2\x80\x93" "4095 bytes, got ");
      err_i64(len < 0 ? 0 : len);
      fail_at(t, i);
    }
  }
  int32_t content_len = t->content_len[i];
  if (content_len == 0) {
    content_len = -1; /* an empty content is no content */
    t->content_len[i] = content_len;
  }
  if (type != V1_S_IFREG || content_len > 0) return 0;
  uint64_t size = t->size[i];
  if (size == 0) return 0;
  if (chunk_count_of(size) > MAX_CHUNKS) {
    err_begin(CORE_LIMIT);
    err_str("file too large: ");
    err_u64(size);
    err_str(" bytes needs more than 1024 chunks");
    fail_at(t, i);
  }
  return 1;
}

/* The overlayfs metacopy value (ovl_metacopy: version 0, length, flags 0, algorithm, digest) in the
 * arena; its offset (an empty value without a digest). */
static int32_t metacopy(flat_tree *t, int32_t i, int32_t hash) {
  int32_t dlen = t->digest_len[i];
  if (dlen < 0) return 0;
  int32_t implied = dlen == 32 ? 1 : dlen == 64 ? 2 : 0;
  if (implied == 0 || (hash != 0 && hash != implied)) {
    err_begin(CORE_FORMAT);
    err_str("fs-verity digest of ");
    err_i64(dlen);
    err_str(" bytes does not match ");
    err_str(hash == 1 ? "sha256" : hash == 2 ? "sha512" : "sha256 or sha512");
    fail_at(t, i);
  }
  int32_t off = arena_alloc(&t->bytes, 4 + (size_t)dlen);
  uint8_t *b = t->bytes.buf + off;
  b[0] = 0;
  b[1] = (uint8_t)(4 + dlen);
  b[2] = 0;
  b[3] = (uint8_t)implied;
  memcpy(b + 4, t->bytes.buf + t->digest_off[i], (size_t)dlen);
  return off;
}

/* '/' + the backing path in the arena; its offset. */
static int32_t redirect(flat_tree *t, int32_t i) {
  int32_t len = t->payload_len[i];
  int32_t off = arena_alloc(&t->bytes, 1 + (size_t)len);
  t->bytes.buf[off] = 0x2f;
  memcpy(t->bytes.buf + off + 1, t->bytes.buf + t->payload_off[i], (size_t)len);
  return off;
}

/* Adds the 00…ff chr 0:0 stubs the root lacks (spec composefs-v1 §5.5), after the rewrite. */
static void add_stubs(v1_plan *p, flat_tree *t, xlists *l) {
  static const char hex[] = "0123456789abcdef";
  uint8_t have[256] = {0};
  int32_t first = t->child_first[0];
  for (int32_t k = first; k < first + t->child_count[0]; k++) {
    int32_t e = t->child_ids[k];
    if (t->entry_name_len[e] != 2) continue;
    const uint8_t *name = flat_at(t, t->entry_name_off[e]);
    int hi = -1, lo = -1;
    for (int d = 0; d < 16; d++) {
      if (name[0] == (uint8_t)hex[d]) hi = d;
      if (name[1] == (uint8_t)hex[d]) lo = d;
    }
    if (hi >= 0 && lo >= 0) have[hi * 16 + lo] = 1;
  }
  int32_t selinux = key_id_str(p, "security.selinux");
  int32_t at = -1;
  for (int32_t j = l->first[0]; j < l->first[0] + l->count[0]; j++)
    if (l->key.a[j] == selinux) at = j;
  for (int n = 0; n < 256; n++) {
    if (have[n]) continue;
    int32_t i = flat_add_inode(t, V1_S_IFCHR | 0644);
    t->uid[i] = t->uid[0];
    t->gid[i] = t->gid[0];
    t->mtime_sec[i] = t->mtime_sec[0];
    t->mtime_nsec[i] = t->mtime_nsec[0];
    uint8_t name[2] = {(uint8_t)hex[n >> 4], (uint8_t)hex[n & 15]};
    int32_t e = flat_add_entry(t, 0, i, 0);
    flat_set_entry_name(t, e, name, 2);
    if (at < 0) {
      flush_xattrs(l, i, NULL, NULL, NULL, 0);
    } else {
      int32_t off = l->off.a[at], len = l->len.a[at];
      flush_xattrs(l, i, &selinux, &off, &len, 1);
    }
  }
  flat_index_directories(t);
}

/* BFS numbering (spec composefs-v1 §6.1), directory nlink, minimum mtime. */
static void number_and_count(v1_plan *p, flat_tree *t) {
  size_t count = (size_t)t->inode_count;
  p->order = alloc_n(count, sizeof *p->order);
  p->parent_index = alloc_n(count, sizeof *p->parent_index);
  p->ino = alloc_n(count, sizeof *p->ino);
  for (size_t i = 0; i < count; i++) p->ino[i] = -1;
  int32_t n = 1;
  p->ino[0] = 0;
  int64_t min_sec = t->mtime_sec[0];
  uint32_t min_nsec = t->mtime_nsec[0];
  for (int32_t k = 0; k < n; k++) {
    int32_t i = p->order[k];
    int32_t first = t->child_first[i];
    uint32_t dirs = 0;
    for (int32_t c = first; c < first + t->child_count[i]; c++) {
      int32_t e = t->child_ids[c];
      if (t->entry_hardlink[e] == 1) continue;
      int32_t child = t->entry_inode[e];
      if (child < 0 || child >= t->inode_count || p->ino[child] >= 0 || n >= t->inode_count)
        internal("inode reached twice through canonical entries");
      if (flat_is_dir(t, child)) dirs++;
      p->ino[child] = n;
      p->parent_index[n] = k;
      p->order[n++] = child;
    }
    if (flat_is_dir(t, i)) t->nlink[i] = 2 + dirs;
    int64_t sec = t->mtime_sec[i];
    uint32_t nsec = t->mtime_nsec[i];
    if (sec < min_sec || (sec == min_sec && nsec < min_nsec)) {
      min_sec = sec;
      min_nsec = nsec;
    }
  }
  for (int32_t e = 0; e < t->entry_count; e++) {
    int32_t target = t->entry_inode[e];
    if (target == FLAT_NONE || target < 0 || target >= t->inode_count || p->ino[target] < 0) {
      err_begin(CORE_FORMAT);
      err_str("hardlink target is not in the tree");
      err_flat_path(t, t->entry_parent[e]);
      err_path_bytes((const uint8_t *)"/", 1);
      err_path_bytes(flat_at(t, t->entry_name_off[e]), (size_t)t->entry_name_len[e]);
      /* the TS replaces a leading "//" (the root's "/" + "/name") with "/" */
      if (core_err.path_len >= 2 && core_err.path[0] == '/' && core_err.path[1] == '/') {
        memmove(core_err.path, core_err.path + 1, core_err.path_len - 1);
        core_err.path_len--;
      }
      core_fail();
    }
  }
  p->n = n;
  p->min_sec = min_sec;
  p->min_nsec = min_nsec;
}

/* ---------------------------------------------------------------- xattr pairs (spec §6.2, §7.3) */

/* Distinct (key, value) pairs, interned through an open-addressing hash, counted over inodes. */
typedef struct {
  ilist key, off, len, count;
  uint32_t *hash;
  int32_t hash_cap;
  int32_t *slots;
  uint32_t slot_count;
} pair_table;

static uint32_t hash_pair(int32_t key, const uint8_t *b, int32_t len) {
  return v1_xxh32(b, (size_t)len, (uint32_t)key * 0x9e3779b1u) ^ (uint32_t)len;
}

static void pair_place(pair_table *pt, int32_t q) {
  uint32_t mask = pt->slot_count - 1;
  uint32_t s = pt->hash[q] & mask;
  while (pt->slots[s] != 0) s = (s + 1) & mask;
  pt->slots[s] = q + 1;
}

/* The pair's id, added on first sight; LIMIT when the entry header's u8 name / u16 value length
 * cannot hold it. */
static int32_t pair_intern(pair_table *pt, const v1_plan *p, const flat_tree *t, int32_t node, int32_t key, int32_t off, int32_t len) {
  const uint8_t *v = t->bytes.buf + off;
  uint32_t h = hash_pair(key, v, len);
  uint32_t mask = pt->slot_count - 1;
  for (uint32_t s = h & mask;; s = (s + 1) & mask) {
    int32_t q = pt->slots[s];
    if (q == 0) break;
    q--;
    if (pt->key.a[q] == key && pt->len.a[q] == len && (len == 0 || memcmp(t->bytes.buf + pt->off.a[q], v, (size_t)len) == 0))
      return q;
  }
  const v1_key *k = &p->keys[key];
  uint32_t suffix_len = k->len - k->plen;
  if (suffix_len > 255 || len > 65535) {
    err_begin(CORE_LIMIT);
    err_str("xattr ");
    err_json(key_ptr(p, key) + k->plen, suffix_len);
    err_str(" too large (name ");
    err_u64(suffix_len);
    err_str(" > 255 or value ");
    err_i64(len);
    err_str(" > 65535 bytes)");
    err_flat_path(t, node);
    core_fail();
  }
  int32_t q = pt->key.n;
  il_push(&pt->key, key);
  il_push(&pt->off, off);
  il_push(&pt->len, len);
  il_push(&pt->count, 0);
  if (q == pt->hash_cap) {
    int32_t cap = pt->hash_cap ? pt->hash_cap * 2 : 1024;
    CORE_GROW(pt->hash, pt->hash_cap, cap);
    pt->hash_cap = cap;
  }
  pt->hash[q] = h;
  if ((uint64_t)pt->key.n * 2 > pt->slot_count) {
    core_free(pt->slots);
    pt->slot_count *= 2;
    pt->slots = alloc_n(pt->slot_count, sizeof *pt->slots);
    for (int32_t r = 0; r < pt->key.n; r++) pair_place(pt, r);
  } else {
    pair_place(pt, q);
  }
  return q;
}

typedef struct {
  const v1_plan *p;
  const xlists *l;
  const pair_table *pt;
  const flat_tree *t;
} sort_ctx;

/* List entries by key rank (stable: input order for equal keys, spec composefs-v1 §6.2). */
static int compare_list_rank(const void *ctx, int32_t a, int32_t b) {
  const sort_ctx *c = ctx;
  int32_t ra = c->p->keys[c->l->key.a[a]].rank, rb = c->p->keys[c->l->key.a[b]].rank;
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

/* Shared-table order: by key, value length and value, all descending (spec composefs-v1 §7.3). */
static int compare_shared(const void *ctx, int32_t a, int32_t b) {
  const sort_ctx *c = ctx;
  const pair_table *pt = c->pt;
  int32_t ra = c->p->keys[pt->key.a[a]].rank, rb = c->p->keys[pt->key.a[b]].rank;
  if (ra != rb) return rb < ra ? -1 : 1;
  int32_t la = pt->len.a[a], lb = pt->len.a[b];
  if (la != lb) return lb < la ? -1 : 1;
  const uint8_t *buf = c->t->bytes.buf;
  return core_compare_bytes(buf + pt->off.a[b], (size_t)lb, buf + pt->off.a[a], (size_t)la);
}

static void shared_pairs(v1_plan *p, const flat_tree *t, pair_table *pt) {
  p->pair_shared = alloc_n((size_t)pt->key.n, sizeof *p->pair_shared);
  int32_t m = 0;
  for (int32_t q = 0; q < pt->key.n; q++) {
    p->pair_shared[q] = -1;
    if (pt->count.a[q] > 1) m++;
  }
  p->shared_order = alloc_n((size_t)m, sizeof *p->shared_order);
  p->shared_count = m;
  m = 0;
  for (int32_t q = 0; q < pt->key.n; q++)
    if (pt->count.a[q] > 1) p->shared_order[m++] = q;
  sort_ctx c = {p, NULL, pt, t};
  core_sort_i32(p->shared_order, (size_t)m, compare_shared, &c);
  uint64_t size = 0;
  for (int32_t j = 0; j < m; j++) {
    int32_t q = p->shared_order[j];
    const v1_key *k = &p->keys[pt->key.a[q]];
    p->pair_shared[q] = (int64_t)size;
    size += (4 + (uint64_t)(k->len - k->plen) + (uint64_t)pt->len.a[q] + 3) & ~(uint64_t)3;
  }
  p->shared_size = size;
}

/* Sorts each inode's xattrs by key, interns pairs, counts them over inodes, builds the shared table. */
static void pair_tables(v1_plan *p, const flat_tree *t, xlists *l) {
  size_t count = (size_t)t->inode_count;
  p->x_first = alloc_n(count, sizeof *p->x_first);
  p->x_count = alloc_n(count, sizeof *p->x_count);
  ilist ids = {0};
  pair_table pt = {0};
  pt.slot_count = 1 << 12;
  pt.slots = alloc_n(pt.slot_count, sizeof *pt.slots);
  ilist order = {0};
  sort_ctx c = {p, l, &pt, t};
  p->has_acl = 0;
  for (int32_t i = 0; i < t->inode_count; i++) {
    p->x_first[i] = ids.n;
    int32_t n = l->count[i];
    if (n == 0) continue;
    order.n = 0;
    for (int32_t j = l->first[i]; j < l->first[i] + n; j++) il_push(&order, j);
    core_sort_i32(order.a, (size_t)n, compare_list_rank, &c);
    for (int32_t q = 0; q < n; q++) {
      int32_t j = order.a[q];
      int32_t pair = pair_intern(&pt, p, t, i, l->key.a[j], l->off.a[j], l->len.a[j]);
      pt.count.a[pair]++;
      il_push(&ids, pair);
      if (p->keys[l->key.a[j]].acl) p->has_acl = 1;
    }
    p->x_count[i] = n;
  }
  il_free(&order);
  p->pair_ids = ids.a;
  p->pair_count = pt.key.n;
  p->pair_key = pt.key.a;
  p->pair_value_off = pt.off.a;
  p->pair_value_len = pt.len.a;
  shared_pairs(p, t, &pt);
  p->max_shared_refs = MAX_SHARED_REFS;
  il_free(&pt.count);
  core_free(pt.hash);
  core_free(pt.slots);
}

/* The per-inode facts the emitter tests on every pass, computed once. */
static void inode_facts(v1_plan *p, const flat_tree *t) {
  size_t count = (size_t)t->inode_count;
  p->flags = alloc_n(count, 1);
  p->chunks = alloc_n(count, sizeof *p->chunks);
  p->chunk_bits = alloc_n(count, 1);
  for (int32_t i = 0; i < t->inode_count; i++) {
    uint64_t size = t->size[i];
    uint8_t f = size <= 0xffffffffu ? V1_FLAG_SIZE_U32 : 0;
    if (t->mtime_nsec[i] == p->min_nsec && t->mtime_sec[i] == p->min_sec) f |= V1_FLAG_MIN_MTIME;
    if (is_external(t, i)) {
      f |= V1_FLAG_EXTERNAL;
      uint64_t chunks = chunk_count_of(size);
      /* only reachable inodes are emitted, and rewrite_node capped theirs at 1024 */
      p->chunks[i] = chunks > 0x7fffffff ? 0x7fffffff : (int32_t)chunks;
      p->chunk_bits[i] = (uint8_t)chunk_bits_of(size);
    }
    p->flags[i] = f;
  }
}

/* ---------------------------------------------------------------- planV1 */

void v1_plan_build(v1_plan *p, flat_tree *t, const v1_options *o) {
  int32_t minimum, max;
  version_range(o, &minimum, &max);
  memset(p, 0, sizeof *p);
  p->t = t;
  if (t->inode_count < 1 || !flat_is_dir(t, 0)) {
    err_begin(CORE_FORMAT);
    err_str("the root must be a directory");
    err_path_bytes((const uint8_t *)"/", 1);
    core_fail();
  }
  ilist nodes = {0}, parents = {0};
  preorder(t, &nodes, &parents);
  /* Directories with a whiteout child get the whiteouts (and opaque) markers (spec §5.1 step 5). */
  size_t slots = (size_t)t->inode_count + 256;
  uint8_t *has_whiteout_child = alloc_n(slots, 1);
  int whiteouts = 0;
  for (int32_t k = 1; k < nodes.n; k++) {
    int32_t i = nodes.a[k];
    if (!is_whiteout(t, i)) continue;
    has_whiteout_child[parents.a[k]] = 1;
    if (i != 0) whiteouts = 1;
  }
  int32_t version = minimum;
  /* spec composefs-v1 §3.1 step 5: the auto-upgrade looks at non-hardlink nodes of the input only */
  if (version < 1 && max >= 1 && whiteouts) version = 1;
  p->version = version;

  int32_t none_off = arena_put(&t->bytes, (const uint8_t *)"", 0);
  int32_t x_off = arena_put(&t->bytes, (const uint8_t *)"x", 1);
  int32_t y_off = arena_put(&t->bytes, (const uint8_t *)"y", 1);
  int32_t k_metacopy = key_id_str(p, "trusted.overlay.metacopy");
  int32_t k_redirect = key_id_str(p, "trusted.overlay.redirect");
  int32_t k_opaque = key_id_str(p, "trusted.overlay.opaque");
  int32_t k_whiteout[2] = {key_id_str(p, "trusted.overlay.overlay.whiteout"), key_id_str(p, "user.overlay.whiteout")};
  int32_t k_whiteouts[2] = {key_id_str(p, "trusted.overlay.overlay.whiteouts"), key_id_str(p, "user.overlay.whiteouts")};
  int32_t k_opaque_x[2] = {key_id_str(p, "trusted.overlay.overlay.opaque"), key_id_str(p, "user.overlay.opaque")};

  xlists l = {0};
  l.first = alloc_n(slots, sizeof *l.first);
  l.count = alloc_n(slots, sizeof *l.count);
  xscratch s = {0};
  for (int32_t k = 0; k < nodes.n; k++) {
    int32_t i = nodes.a[k];
    int external = rewrite_node(t, i);
    xs_reset(&s);
    int32_t first = t->xattr_first[i];
    for (int32_t j = first; j < first + t->xattr_count[i]; j++) {
      int32_t key = key_id(p, flat_at(t, t->xattr_key_off[j]), (size_t)t->xattr_key_len[j]);
      xs_push(&s, key_escaped(p, key), t->xattr_value_off[j], t->xattr_value_len[j]);
    }
    if (external) {
      int32_t dlen = t->digest_len[i];
      int32_t mc = metacopy(t, i, o->hash);
      xs_set(&s, p, k_metacopy, mc, dlen < 0 ? 0 : 4 + dlen, t, i);
      int32_t plen = t->payload_len[i];
      if (plen > 0) {
        int32_t rd = redirect(t, i);
        xs_set(&s, p, k_redirect, rd, 1 + plen, t, i);
      }
    }
    if (i != 0 && is_whiteout(t, i)) {
      t->size[i] = 0;
      t->mode[i] = V1_S_IFREG | (t->mode[i] & ~V1_S_IFMT);
      t->content_len[i] = -1;
      for (int w = 0; w < 2; w++) xs_set(&s, p, k_whiteout[w], none_off, 0, t, i);
    }
    if (has_whiteout_child[i]) {
      for (int w = 0; w < 2; w++) xs_set(&s, p, k_whiteouts[w], none_off, 0, t, i);
      if (version >= 1)
        for (int w = 0; w < 2; w++) xs_set(&s, p, k_opaque_x[w], x_off, 1, t, i);
    }
    /* spec composefs-v1 §5.4: the root's opaque marker, not escaped, set last */
    if (i == 0) xs_set(&s, p, k_opaque, y_off, 1, t, i);
    flush_xattrs(&l, i, s.key.a, s.off.a, s.len.a, s.key.n);
  }
  il_free(&s.key);
  il_free(&s.off);
  il_free(&s.len);
  il_free(&nodes);
  il_free(&parents);
  core_free(has_whiteout_child);
  add_stubs(p, t, &l);
  key_rank(p);
  number_and_count(p, t);
  pair_tables(p, t, &l);
  inode_facts(p, t);
  core_free(l.first);
  core_free(l.count);
  il_free(&l.key);
  il_free(&l.off);
  il_free(&l.len);
}

void v1_plan_free(v1_plan *p) {
  core_free(p->order);
  core_free(p->ino);
  core_free(p->parent_index);
  core_free(p->keys);
  core_free(p->key_bytes);
  core_free(p->key_slots);
  core_free(p->x_first);
  core_free(p->x_count);
  core_free(p->pair_ids);
  core_free(p->pair_key);
  core_free(p->pair_value_off);
  core_free(p->pair_value_len);
  core_free(p->pair_shared);
  core_free(p->shared_order);
  core_free(p->flags);
  core_free(p->chunks);
  core_free(p->chunk_bits);
  memset(p, 0, sizeof *p);
}
