/*
 * Private to the V1 writer: the plan (v1-plan.c, v1-xattrs.c) that the emitter (v1-emit.c) reads,
 * the image sink and the on-disk constants (as src/composefs/format/erofs/format.ts has them).
 */
#ifndef ODH_V1_INTERNAL_H
#define ODH_V1_INTERNAL_H

#include "v1.h"

/* ---- on-disk constants (format.ts; spec composefs-v1 §11, composefs-v2 §4.6–§4.9) */
#define V1_BLOCK_SIZE 4096
#define V1_BLOCK_BITS 12
#define V1_COMPOSEFS_MAGIC 0xd078629au
#define V1_COMPOSEFS_HEADER_VERSION 1
#define V1_COMPOSEFS_FLAG_HAS_ACL 1
#define V1_COMPOSEFS_HEADER_SIZE 32
#define V1_SUPERBLOCK_OFFSET 1024
#define V1_SUPERBLOCK_SIZE 128
#define V1_EROFS_MAGIC 0xe0f5e1e2u
#define V1_FEATURE_COMPAT 6 /* MTIME | XATTR_FILTER */
#define V1_INODE_SLOT_SIZE 32
#define V1_COMPACT_INODE_SIZE 32
#define V1_EXTENDED_INODE_SIZE 64
#define V1_LAYOUT_FLAT_PLAIN 0
#define V1_LAYOUT_FLAT_INLINE 2
#define V1_LAYOUT_CHUNK_BASED 4
#define V1_XATTR_IBODY_HEADER_SIZE 12
#define V1_XATTR_FILTER_SEED 0x25bbe08fu
#define V1_DIRENT_SIZE 12
#define V1_FT_DIR 2

#define V1_S_IFMT 0170000u
#define V1_S_IFSOCK 0140000u
#define V1_S_IFLNK 0120000u
#define V1_S_IFREG 0100000u
#define V1_S_IFBLK 0060000u
#define V1_S_IFDIR 0040000u
#define V1_S_IFCHR 0020000u
#define V1_S_IFIFO 0010000u

/* Per-inode flags computed once by the plan. */
#define V1_FLAG_EXTERNAL 1 /* regular, non-empty, no inline content: data in an external object */
#define V1_FLAG_SIZE_U32 2 /* SIZE fits in 32 bits */
#define V1_FLAG_MIN_MTIME 4 /* mtime equals the image's minimum mtime */

uint32_t v1_xxh32(const uint8_t *p, size_t len, uint32_t seed);
/* The dirent file type of a mode; FORMAT "invalid file type in mode 0…" for an unknown type. */
uint8_t v1_dirent_file_type(uint32_t mode);

/* One interned xattr key (V1Key). Its bytes are key_bytes[off, off+len). */
typedef struct {
  size_t off;
  uint32_t len;
  uint32_t hash;
  int32_t escaped; /* id after trusted.overlay. escaping; -1 until asked */
  uint8_t index;   /* prefix index (spec composefs-v1 §7.1) */
  uint8_t plen;    /* prefix length: the suffix is key_bytes[off+plen, off+len) */
  uint8_t bit;     /* name-filter bit (spec composefs-v2 §4.3) */
  uint8_t acl;     /* a POSIX ACL key */
  int32_t rank;    /* rank in byte order among all keys */
} v1_key;

/* The rewritten, numbered tree with its xattr tables (V1Plan). */
typedef struct {
  flat_tree *t;
  int32_t version;
  int32_t has_acl;
  int64_t min_sec;
  uint32_t min_nsec;
  /* inode ids in BFS order (n of them); ino[inode] the inverse; parent_index by BFS index */
  int32_t n;
  int32_t *order, *ino, *parent_index;
  /* keys */
  v1_key *keys;
  int32_t key_count, key_cap;
  uint8_t *key_bytes;
  size_t key_bytes_len, key_bytes_cap;
  int32_t *key_slots;
  uint32_t key_slot_count;
  /* per inode: its xattrs sorted by key are pair_ids[x_first … x_first+x_count−1] */
  int32_t *x_first, *x_count;
  int32_t *pair_ids;
  /* per pair: key id, value in t->bytes, shared-table offset or −1 */
  int32_t pair_count;
  int32_t *pair_key, *pair_value_off, *pair_value_len;
  int64_t *pair_shared;
  /* shared pairs in table order and the table's size */
  int32_t *shared_order;
  int32_t shared_count;
  uint64_t shared_size;
  int32_t max_shared_refs;
  /* per inode */
  uint8_t *flags;
  int32_t *chunks;
  uint8_t *chunk_bits;
} v1_plan;

void v1_plan_build(v1_plan *p, flat_tree *t, const v1_options *o);
void v1_plan_free(v1_plan *p);

/* ---- the image sink: a measuring sink counts bytes only; a writing sink stages them
 * in a 1 MiB buffer flushed through core_output. */
typedef struct {
  uint64_t pos;
  int measuring;
  uint8_t *buf;
  size_t at, cap;
} v1_sink;

/* Where the measuring pass put things (V1Placement), by BFS index. */
typedef struct {
  uint64_t *offset;
  uint64_t *first_block;
  uint64_t *xattr_size;
  uint32_t *iu;
  uint64_t inodes_end;
  uint64_t image_size;
} v1_placement;

/* Runs the emitter over sink s with the offsets `known` (all zero in the measuring pass), filling
 * `placed`. */
void v1_emit(const v1_plan *p, const v1_placement *known, v1_placement *placed, v1_sink *s);

/* Plans t (rewritten in place) and runs the measuring pass only: `measured` gets every inode's
 * place (layoutErofsV1). Returns the inode count. */
int32_t v1_layout(flat_tree *t, const v1_options *o, v1_placement *measured);

#endif
