/*
 * The xattr side of the V1 plan (v1-xattrs.c), for v1-plan.c: interned keys, one inode's xattrs
 * while C's lcfs_node_set_xattr runs on them, every inode's final lists, and the distinct pairs
 * with their shared table (spec composefs-v1 §5.1, §6.2, §7). Also the growable int32 column both use.
 */
#ifndef ODH_V1_XATTRS_H
#define ODH_V1_XATTRS_H

#include "v1-internal.h"

/* The longest list any growable column may hold (int32 indices, doubling stays in range). */
#define LIST_MAX 0x40000000

/* A growable int32 column (IntList). */
typedef struct {
  int32_t *a;
  int32_t n, cap;
} ilist;

static inline void il_push(ilist *l, int32_t v) {
  if (l->n == l->cap) {
    if (l->cap >= LIST_MAX) core_failf(CORE_LIMIT, "composefs tree of more than 2^30 xattrs");
    int32_t cap = l->cap ? l->cap * 2 : 1024;
    CORE_GROW(l->a, l->cap, cap);
    l->cap = cap;
  }
  l->a[l->n++] = v;
}

static inline void il_free(ilist *l) {
  core_free(l->a);
  l->a = NULL;
  l->n = l->cap = 0;
}

static inline void *alloc_n(size_t n, size_t size) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX / size) core_failf(CORE_LIMIT, "out of memory");
  return core_alloc(n * size);
}

/* The list while C's lcfs_node_set_xattr runs on it, with its size budget (spec composefs-v1 §4.6):
 * the copy's counter starts at 0, so replacing a long input value can wrap it and fail (§5.1 step 4). */
typedef struct {
  ilist key, off, len;
  int64_t budget;
} xscratch;

/* Every inode's final xattrs (unsorted): inode i has list entries first[i] … first[i]+count[i]−1. */
typedef struct {
  int32_t *first, *count;
  ilist key, off, len;
} xlists;

/* The id of the key b[0, n), added on first sight; of a NUL-terminated key. */
int32_t v1_key_id(v1_plan *p, const uint8_t *b, size_t n);
int32_t v1_key_id_str(v1_plan *p, const char *s);
/* The id of the key after trusted.overlay. escaping (spec composefs-v1 §5.1 step 2). */
int32_t v1_key_escaped(v1_plan *p, int32_t id);
/* Ranks keys by bytes (xattrs are sorted by key, spec composefs-v1 §6.2). */
void v1_key_rank(v1_plan *p);

void v1_xs_reset(xscratch *s);
void v1_xs_push(xscratch *s, int32_t key, int32_t off, int32_t len);
/* Sets key to the value (off, len) as lcfs_node_set_xattr does, within the size budget; node names
 * the inode in a LIMIT failure. */
void v1_xs_set(xscratch *s, const v1_plan *p, int32_t key, int32_t off, int32_t len, const flat_tree *t, int32_t node);
void v1_flush_xattrs(xlists *l, int32_t i, const int32_t *key, const int32_t *off, const int32_t *len, int32_t n);

/* Sorts each inode's xattrs by key, interns pairs, counts them over inodes, builds the shared table. */
void v1_pair_tables(v1_plan *p, const flat_tree *t, xlists *l);

#endif
