/*
 * The composefs tree held flat (the C form of src/composefs/format/flat-tree.ts, column for column,
 * with the same element types, so the host can copy TS columns in with TypedArray.set):
 * one column per inode field; byte fields (names, payloads, inline content, digests, xattrs) as
 * (offset, length) into one byte arena. Inode 0 is the root. An entry links a directory inode to a
 * named child inode; exactly one entry of each non-root inode is canonical (hardlink 0).
 */
#ifndef ODH_FLAT_H
#define ODH_FLAT_H

#include "core.h"

#define FLAT_NONE (-1)

typedef struct {
  uint8_t *buf;
  uint32_t len;
  uint32_t cap;
} byte_arena;

typedef struct {
  byte_arena bytes;

  /* inodes */
  int32_t inode_count, inode_cap;
  uint32_t *mode, *uid, *gid, *nlink;
  uint64_t *rdev, *size;
  int64_t *mtime_sec;
  uint32_t *mtime_nsec;
  /* byte fields: offset into bytes, length; length -1 = absent */
  int32_t *payload_off, *payload_len;
  int32_t *content_off, *content_len;
  int32_t *digest_off, *digest_len;
  /* each inode's xattrs are xattr_first … xattr_first+xattr_count−1, in input order */
  int32_t *xattr_first, *xattr_count;
  /* the inode's canonical entry (FLAT_NONE for the root) */
  int32_t *canonical;
  /* directories: entries child_ids[child_first … child_first+child_count−1], sorted by name bytes */
  int32_t *child_first, *child_count;
  int32_t *child_ids; /* entry_count elements once flat_index_directories ran */

  /* entries */
  int32_t entry_count, entry_cap;
  int32_t *entry_parent, *entry_inode, *entry_name_off, *entry_name_len;
  uint8_t *entry_hardlink;

  /* xattrs */
  int32_t xattr_total, xattr_cap;
  int32_t *xattr_key_off, *xattr_key_len, *xattr_value_off, *xattr_value_len;
} flat_tree;

/* Each table's columns in one order: what grows together (flat.c) and how the host copies a tree in
 * and out (core-exports.c, src/composefs/format/core.ts: child_ids comes after the inode columns). */
#define FLAT_INODE_COLUMNS(X)                                                                          \
  X(mode) X(uid) X(gid) X(nlink) X(rdev) X(size) X(mtime_sec) X(mtime_nsec) X(payload_off)          \
      X(payload_len) X(content_off) X(content_len) X(digest_off) X(digest_len) X(xattr_first)      \
          X(xattr_count) X(canonical) X(child_first) X(child_count)
#define FLAT_ENTRY_COLUMNS(X) X(entry_parent) X(entry_inode) X(entry_name_off) X(entry_name_len) X(entry_hardlink)
#define FLAT_XATTR_COLUMNS(X) X(xattr_key_off) X(xattr_key_len) X(xattr_value_off) X(xattr_value_len)

/* A new empty tree with room for `expected` inodes, entries and xattrs (0: grow from small). */
flat_tree *flat_new(int32_t expected);

/* A tree with exactly these counts and every column zero (child_ids `entries` long), for a host to
 * fill column by column. */
flat_tree *flat_sized(int32_t inodes, int32_t entries, int32_t xattrs, uint32_t bytes);

/* Appends src[0, n) to the arena; returns its offset. Fails (LIMIT) past 2 GiB. */
int32_t arena_put(byte_arena *a, const uint8_t *src, size_t n);
/* Reserves n bytes; returns the offset (fill a->buf + off; the pointer is valid until the next put). */
int32_t arena_alloc(byte_arena *a, size_t n);

/* A new inode with st_mode `mode`, nlink 1, every other field zero or absent. */
int32_t flat_add_inode(flat_tree *t, uint32_t mode);
/* An entry in directory `parent` for `inode` (FLAT_NONE: set later); sets canonical when !hardlink. */
int32_t flat_add_entry(flat_tree *t, int32_t parent, int32_t inode, int hardlink);
void flat_set_entry_name(flat_tree *t, int32_t e, const uint8_t *name, size_t n);
/* Appends an xattr to the most recently added inode. */
void flat_add_xattr(flat_tree *t, const uint8_t *key, size_t klen, const uint8_t *value, size_t vlen);
void flat_set_payload(flat_tree *t, int32_t i, const uint8_t *p, size_t n);
void flat_set_content(flat_tree *t, int32_t i, const uint8_t *p, size_t n);
void flat_set_digest(flat_tree *t, int32_t i, const uint8_t *p, size_t n);

static inline int flat_is_dir(const flat_tree *t, int32_t i) { return (t->mode[i] & 0170000) == 0040000; }
static inline const uint8_t *flat_at(const flat_tree *t, int32_t off) { return t->bytes.buf + off; }

/* Compares entry names a and b as bytes (Buffer.compare). */
int flat_compare_names(const flat_tree *t, int32_t a, int32_t b);

/* Groups entries by directory into child_first/child_count/child_ids, each group sorted stably by
 * name bytes (flat-tree.ts indexDirectories). */
void flat_index_directories(flat_tree *t);

/* Appends the path of inode i through canonical entries ("/a/b", "/" for the root) to the failure
 * being built (core_err.path) and sets has_path (flat-tree.ts path()). */
void err_flat_path(const flat_tree *t, int32_t i);

#endif
