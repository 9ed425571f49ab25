/*
 * Path resolution while a dumpfile fills the flat tree:
 * parents must exist, names are new and valid, hardlink lines are resolved in reverse file order
 * once every line is read (spec composefs-v1 §4.5 item 1, §4.7). Children are found through one
 * open-addressing table keyed by (directory, name bytes).
 */
#include "parse-internal.h"

#define MAX_NAME 255
/* lookup() result for the root path (empty, or only slashes). */
#define ROOT_ENTRY (-2)

/* FNV-1a over the name, mixed with the directory. */
static uint32_t hash_name(int32_t parent, const uint8_t *s, size_t n) {
  uint32_t h = 0x811c9dc5u ^ ((uint32_t)parent * 0x9e3779b1u);
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x01000193u;
  return h;
}

void dp_paths_init(dp_paths *t, int32_t expected) {
  t->flat = flat_new(expected);
  uint32_t slots = 1u << 12;
  while (slots < 2u * (uint32_t)expected) slots *= 2;
  t->slot_count = slots;
  t->slots = core_alloc(dp_mul(slots, sizeof *t->slots));
  t->hashes_cap = expected > 1024 ? expected : 1024;
  t->hashes = core_alloc(dp_mul((size_t)t->hashes_cap, sizeof *t->hashes));
}

int32_t dp_paths_set_root(dp_paths *t, uint32_t mode, int64_t line) {
  if (t->has_root) dp_syntax("Root appears twice", line);
  t->has_root = 1;
  return flat_add_inode(t->flat, mode);
}

/* The entry named s[0, n) in directory `dir`, or -1; sets t->hash. */
static int32_t find(dp_paths *t, int32_t dir, const uint8_t *s, size_t n) {
  const flat_tree *f = t->flat;
  uint32_t h = hash_name(dir, s, n);
  t->hash = h;
  uint32_t mask = t->slot_count - 1;
  for (uint32_t k = h & mask;; k = (k + 1) & mask) {
    int32_t v = t->slots[k];
    if (v == 0) return -1;
    int32_t e = v - 1;
    if (t->hashes[e] == h && f->entry_parent[e] == dir && (size_t)f->entry_name_len[e] == n &&
        memcmp(flat_at(f, f->entry_name_off[e]), s, n) == 0)
      return e;
  }
}

static void place(dp_paths *t, int32_t e, uint32_t h) {
  uint32_t mask = t->slot_count - 1;
  uint32_t k = h & mask;
  while (t->slots[k] != 0) k = (k + 1) & mask;
  t->slots[k] = e + 1;
}

static void rehash(dp_paths *t) {
  if (t->slot_count >= 1u << 31) core_failf(CORE_LIMIT, "out of memory");
  core_free(t->slots);
  t->slot_count *= 2;
  t->slots = core_alloc(dp_mul(t->slot_count, sizeof *t->slots));
  for (int32_t e = 0; e < t->flat->entry_count; e++) place(t, e, t->hashes[e]);
}

static void remember(dp_paths *t, int32_t e, uint32_t h) {
  if (e >= t->hashes_cap) {
    /* e < 2^30 (flat.c's limit), so the doubled capacity fits an int32. */
    int32_t cap = t->hashes_cap * 2;
    CORE_GROW(t->hashes, t->hashes_cap, cap);
    t->hashes_cap = cap;
  }
  t->hashes[e] = h;
  if (++t->used > t->slot_count / 2) rehash(t);
  else place(t, e, h);
}

/* The directory inode entry e names; -1 when e is -1 (not found), a hardlink or no directory. */
static int32_t dir_of(const dp_paths *t, int32_t e) {
  const flat_tree *f = t->flat;
  if (e < 0 || f->entry_hardlink[e] == 1) return -1;
  int32_t i = f->entry_inode[e];
  return i == FLAT_NONE || !flat_is_dir(f, i) ? -1 : i;
}

static int32_t add_child(dp_paths *t, int32_t dir, const uint8_t *name, size_t n, int64_t line) {
  if (n == 0) dp_syntax("Can't add child: empty name", line);
  if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
    dp_syntax("Invalid . or .. in path", line);
  if (n > MAX_NAME) dp_syntax("Can't add child: name longer than 255 bytes", line);
  if (find(t, dir, name, n) >= 0) dp_syntax("Can't add child: duplicate name", line);
  uint32_t h = t->hash;
  int32_t e = flat_add_entry(t->flat, dir, FLAT_NONE, 0);
  flat_set_entry_name(t->flat, e, name, n);
  remember(t, e, h);
  return e;
}

/* src[0, end) is `/name/name…` with no empty component. */
static int is_canonical(const uint8_t *src, size_t end) {
  for (size_t i = 1; i < end; i++)
    if (src[i] == '/' && src[i - 1] == '/') return 0;
  return src[end - 1] != '/';
}

/* The last slash of src[0, n): its index + 1, 0 when there is none. */
static size_t after_last_slash(const uint8_t *src, size_t n) {
  while (n > 0 && src[n - 1] != '/') n--;
  return n;
}

/* The directory holding the last component of src[0, n): every earlier component must be a
 * directory (leading and repeated slashes are skipped, §4.5 item 1). Sets name_start and caches a
 * canonical parent path for the next line. */
static int32_t walk_parents(dp_paths *t, const uint8_t *src, size_t n, int64_t line) {
  size_t pos = 0;
  while (pos < n && src[pos] == '/') pos++;
  int32_t dir = 0;
  size_t parts = 1;
  for (;;) {
    size_t next = pos;
    while (next < n && src[next] != '/') next++;
    if (next >= n) break;
    dir = dir_of(t, find(t, dir, src + pos, next - pos));
    if (dir < 0) {
      err_begin(CORE_FORMAT);
      err_str("Parent directory ");
      err_json(src + pos, next - pos);
      err_str(" not found");
      dp_fail(line);
    }
    parts++;
    pos = next + 1;
    while (pos < n && src[pos] == '/') pos++;
  }
  if (!flat_is_dir(t->flat, dir)) dp_syntax("Parent is not a directory", line);
  size_t after = after_last_slash(src, n);
  /* Cache only a canonical parent path ("/a/b": one leading slash, no empty component). */
  if (after > 1 && src[0] == '/' && parts >= 2 && is_canonical(src, after - 1)) {
    size_t len = after - 1;
    if (len > t->last_parent_cap) {
      size_t cap = t->last_parent_cap ? t->last_parent_cap : 256;
      while (cap < len) cap = cap > SIZE_MAX / 2 ? len : cap * 2;
      t->last_parent_path = core_grow(t->last_parent_path, 0, cap);
      t->last_parent_cap = cap;
    }
    memcpy(t->last_parent_path, src, len);
    t->last_parent_len = len;
    t->has_last_parent = 1;
    t->last_parent = dir;
  }
  t->name_start = pos;
  return dir;
}

int32_t dp_paths_insert(dp_paths *t, const uint8_t *src, size_t n, int64_t line) {
  if (!t->has_root) dp_syntax("Root must be the first entry", line);
  size_t after = after_last_slash(src, n);
  if (t->has_last_parent && after > 0 && after - 1 == t->last_parent_len && after < n &&
      memcmp(src, t->last_parent_path, t->last_parent_len) == 0)
    return add_child(t, t->last_parent, src + after, n - after, line);
  int32_t dir = walk_parents(t, src, n, line);
  return add_child(t, dir, src + t->name_start, n - t->name_start, line);
}

int32_t dp_paths_set_inode(dp_paths *t, int32_t entry, uint32_t mode) {
  int32_t i = flat_add_inode(t->flat, mode);
  t->flat->entry_inode[entry] = i;
  t->flat->canonical[i] = entry;
  return i;
}

void dp_paths_mark_hardlink(dp_paths *t, int32_t entry, int64_t line, const uint8_t *target, size_t n) {
  t->flat->entry_hardlink[entry] = 1;
  if (t->hl_count == t->hl_cap) {
    if (t->hl_cap >= 0x40000000) core_failf(CORE_LIMIT, "out of memory");
    int32_t cap = t->hl_cap < 64 ? 64 : t->hl_cap * 2;
    CORE_GROW(t->hl_entry, t->hl_cap, cap);
    CORE_GROW(t->hl_line, t->hl_cap, cap);
    CORE_GROW(t->hl_off, t->hl_cap, cap);
    CORE_GROW(t->hl_len, t->hl_cap, cap);
    CORE_GROW(t->hl_has_path, t->hl_cap, cap);
    t->hl_cap = cap;
  }
  int32_t k = t->hl_count++;
  t->hl_entry[k] = entry;
  t->hl_line[k] = line;
  t->hl_has_path[k] = target != NULL;
  t->hl_off[k] = t->hl_bytes.len;
  t->hl_len[k] = (uint32_t)n; /* n < a line's length, at most 1 GiB */
  if (target == NULL || n == 0) return;
  core_bytes_append(&t->hl_bytes, target, n);
}

/* Looks a hardlink target up from the root: an entry id, ROOT_ENTRY, or -1. */
static int32_t lookup(dp_paths *t, const uint8_t *path, size_t n) {
  int32_t node = ROOT_ENTRY;
  size_t pos = 0;
  while (pos <= n) {
    size_t next = pos;
    while (next < n && path[next] != '/') next++;
    if (next > pos) {
      int32_t dir = node == ROOT_ENTRY ? 0 : t->flat->entry_inode[node];
      if (dir == FLAT_NONE) return -1;
      node = find(t, dir, path + pos, next - pos);
      if (node < 0) return -1;
    }
    pos = next + 1;
  }
  return node;
}

static _Noreturn void line_error(const char *message, int64_t line) { dp_syntax(message, line); }

/* Resolution states of hardlink entries while following their chains. */
#define RES_UNKNOWN (-3)
#define RES_WALKING (-4)

/*
 * Resolves hardlink lines in reverse file order (§4.7), rejects cycles (mkcomposefs fails with
 * ELOOP at write time) and sorts every directory. Every entry of a chain is resolved once, so
 * long chains stay linear; the first failing line is the first hardlink line in file order whose
 * chain runs into a cycle (what following each chain from scratch would find).
 */
flat_tree *dp_paths_finish(dp_paths *t) {
  flat_tree *f = t->flat;
  if (!t->has_root) dp_syntax("No root directory", DP_NO_LINE);
  size_t n = (size_t)(f->entry_count > 0 ? f->entry_count : 1);
  int32_t *link_to = t->link_to = core_alloc(dp_mul(n, sizeof *link_to));
  for (int32_t k = t->hl_count - 1; k >= 0; k--) {
    if (!t->hl_has_path[k]) line_error("Missing hardlink target", t->hl_line[k]);
    int32_t target = lookup(t, t->hl_bytes.buf + t->hl_off[k], t->hl_len[k]);
    if (target == -1) line_error("Hardlink target not found", t->hl_line[k]);
    if (target == t->hl_entry[k]) line_error("Self-referential hardlink", t->hl_line[k]);
    link_to[t->hl_entry[k]] = target;
  }
  int32_t *res = t->res = core_alloc(dp_mul(n, sizeof *res));
  for (size_t e = 0; e < n; e++) res[e] = RES_UNKNOWN;
  int32_t *walk = t->walk = core_alloc(dp_mul((size_t)t->hl_count + 1, sizeof *walk));
  for (int32_t k = 0; k < t->hl_count; k++) {
    /* Follow hardlink lines to a line that has an inode. */
    int32_t e = t->hl_entry[k];
    int32_t depth = 0;
    while (e != ROOT_ENTRY && f->entry_hardlink[e] == 1 && res[e] == RES_UNKNOWN) {
      res[e] = RES_WALKING;
      walk[depth++] = e;
      e = link_to[e];
    }
    int32_t inode;
    if (e == ROOT_ENTRY) inode = 0;
    else if (f->entry_hardlink[e] != 1) inode = f->entry_inode[e];
    else if (res[e] == RES_WALKING) line_error("Too many levels of symbolic links (hardlink cycle)", t->hl_line[k]);
    else inode = res[e];
    while (depth > 0) res[walk[--depth]] = inode;
    f->entry_inode[t->hl_entry[k]] = inode;
  }
  core_free(walk);
  core_free(res);
  core_free(link_to);
  core_free(t->slots);
  core_free(t->hashes);
  core_free(t->last_parent_path);
  core_free(t->hl_entry);
  core_free(t->hl_line);
  core_free(t->hl_off);
  core_free(t->hl_len);
  core_free(t->hl_has_path);
  core_free(t->hl_bytes.buf);
  flat_index_directories(f);
  return f;
}
