/*
 * What C mkcomposefs 1.0.8 does to its tree before layout, over a flat tree: version choice, trusted.overlay. escaping, metacopy and redirect xattrs, whiteout
 * escaping, the root opaque marker, the 256 whiteout stubs (spec composefs-v1 §3.1, §5), then BFS
 * numbering (§6.1), directory nlink, minimum mtime and ACL flag (§6.2–§6.3) and the xattr pairs
 * with their shared table (§7, in v1-xattrs.c). The flat tree is rewritten in place.
 */
#include "v1-xattrs.h"

#define MAX_CHUNKS 1024

static _Noreturn void internal(const char *what) {
  err_begin(CORE_FORMAT);
  err_str("internal: ");
  err_str(what);
  core_fail();
}

/* ---------------------------------------------------------------- small helpers */

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
  int32_t selinux = v1_key_id_str(p, "security.selinux");
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
      v1_flush_xattrs(l, i, NULL, NULL, NULL, 0);
    } else {
      int32_t off = l->off.a[at], len = l->len.a[at];
      v1_flush_xattrs(l, i, &selinux, &off, &len, 1);
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
  int32_t k_metacopy = v1_key_id_str(p, "trusted.overlay.metacopy");
  int32_t k_redirect = v1_key_id_str(p, "trusted.overlay.redirect");
  int32_t k_opaque = v1_key_id_str(p, "trusted.overlay.opaque");
  int32_t k_whiteout[2] = {v1_key_id_str(p, "trusted.overlay.overlay.whiteout"), v1_key_id_str(p, "user.overlay.whiteout")};
  int32_t k_whiteouts[2] = {v1_key_id_str(p, "trusted.overlay.overlay.whiteouts"), v1_key_id_str(p, "user.overlay.whiteouts")};
  int32_t k_opaque_x[2] = {v1_key_id_str(p, "trusted.overlay.overlay.opaque"), v1_key_id_str(p, "user.overlay.opaque")};

  xlists l = {0};
  l.first = alloc_n(slots, sizeof *l.first);
  l.count = alloc_n(slots, sizeof *l.count);
  xscratch s = {0};
  for (int32_t k = 0; k < nodes.n; k++) {
    int32_t i = nodes.a[k];
    int external = rewrite_node(t, i);
    v1_xs_reset(&s);
    int32_t first = t->xattr_first[i];
    for (int32_t j = first; j < first + t->xattr_count[i]; j++) {
      int32_t key = v1_key_id(p, flat_at(t, t->xattr_key_off[j]), (size_t)t->xattr_key_len[j]);
      v1_xs_push(&s, v1_key_escaped(p, key), t->xattr_value_off[j], t->xattr_value_len[j]);
    }
    if (external) {
      int32_t dlen = t->digest_len[i];
      int32_t mc = metacopy(t, i, o->hash);
      v1_xs_set(&s, p, k_metacopy, mc, dlen < 0 ? 0 : 4 + dlen, t, i);
      int32_t plen = t->payload_len[i];
      if (plen > 0) {
        int32_t rd = redirect(t, i);
        v1_xs_set(&s, p, k_redirect, rd, 1 + plen, t, i);
      }
    }
    if (i != 0 && is_whiteout(t, i)) {
      t->size[i] = 0;
      t->mode[i] = V1_S_IFREG | (t->mode[i] & ~V1_S_IFMT);
      t->content_len[i] = -1;
      for (int w = 0; w < 2; w++) v1_xs_set(&s, p, k_whiteout[w], none_off, 0, t, i);
    }
    if (has_whiteout_child[i]) {
      for (int w = 0; w < 2; w++) v1_xs_set(&s, p, k_whiteouts[w], none_off, 0, t, i);
      if (version >= 1)
        for (int w = 0; w < 2; w++) v1_xs_set(&s, p, k_opaque_x[w], x_off, 1, t, i);
    }
    /* spec composefs-v1 §5.4: the root's opaque marker, not escaped, set last */
    if (i == 0) v1_xs_set(&s, p, k_opaque, y_off, 1, t, i);
    v1_flush_xattrs(&l, i, s.key.a, s.off.a, s.len.a, s.key.n);
  }
  il_free(&s.key);
  il_free(&s.off);
  il_free(&s.len);
  il_free(&nodes);
  il_free(&parents);
  core_free(has_whiteout_child);
  add_stubs(p, t, &l);
  v1_key_rank(p);
  number_and_count(p, t);
  v1_pair_tables(p, t, &l);
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
