/*
 * The xattr side of the V1 plan (see v1-xattrs.h). Xattr keys are ids into an interned key table; values are (offset, length) in the
 * tree's arena; a distinct (key, value) pair is an id in the pair table.
 */
#include "v1-xattrs.h"

#define XATTR_BUDGET 32767
#define MAX_SHARED_REFS 128

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

int32_t v1_key_id(v1_plan *p, const uint8_t *b, size_t n) {
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

int32_t v1_key_id_str(v1_plan *p, const char *s) { return v1_key_id(p, (const uint8_t *)s, strlen(s)); }

int32_t v1_key_escaped(v1_plan *p, int32_t id) {
  if (p->keys[id].escaped < 0) {
    size_t n = p->keys[id].len, m = sizeof OVERLAY - 1, e = sizeof OVERLAY_ESCAPED - 1;
    if (n >= m && memcmp(key_ptr(p, id), OVERLAY, m) == 0) {
      uint8_t *b = alloc_n(n - m + e, 1);
      memcpy(b, OVERLAY_ESCAPED, e);
      memcpy(b + e, key_ptr(p, id) + m, n - m);
      int32_t esc = v1_key_id(p, b, n - m + e);
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

void v1_key_rank(v1_plan *p) {
  int32_t *ids = alloc_n((size_t)p->key_count, sizeof *ids);
  for (int32_t q = 0; q < p->key_count; q++) ids[q] = q;
  core_sort_i32(ids, (size_t)p->key_count, compare_keys, p);
  for (int32_t r = 0; r < p->key_count; r++) p->keys[ids[r]].rank = r;
  core_free(ids);
}

/* ---------------------------------------------------------------- one inode's xattrs (XattrScratch) */

void v1_xs_reset(xscratch *s) {
  s->key.n = s->off.n = s->len.n = 0;
  s->budget = 0;
}

void v1_xs_push(xscratch *s, int32_t key, int32_t off, int32_t len) {
  il_push(&s->key, key);
  il_push(&s->off, off);
  il_push(&s->len, len);
}

static void xs_remove(ilist *l, int32_t i) {
  memmove(l->a + i, l->a + i + 1, (size_t)(l->n - i - 1) * sizeof *l->a);
  l->n--;
}

void v1_xs_set(xscratch *s, const v1_plan *p, int32_t key, int32_t off, int32_t len, const flat_tree *t, int32_t node) {
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
  v1_xs_push(s, key, off, len);
}

void v1_flush_xattrs(xlists *l, int32_t i, const int32_t *key, const int32_t *off, const int32_t *len, int32_t n) {
  l->first[i] = l->key.n;
  l->count[i] = n;
  for (int32_t j = 0; j < n; j++) il_push(&l->key, key[j]);
  for (int32_t j = 0; j < n; j++) il_push(&l->off, off[j]);
  for (int32_t j = 0; j < n; j++) il_push(&l->len, len[j]);
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

void v1_pair_tables(v1_plan *p, const flat_tree *t, xlists *l) {
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

