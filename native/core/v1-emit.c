/*
 * The C mkcomposefs 1.0.8 image of a planned tree (v1-plan.c), emitted front to back: composefs header, superblock, inode table (BFS order, compact inodes
 * when possible, C tail padding), shared xattr table, data blocks (spec composefs-v1 §6–§11). The
 * emitter runs twice over the same code: a measuring pass finds every offset (nids, block
 * addresses, the shared table, the image size), then the writing pass emits the bytes with those
 * values. Each on-disk struct is written by one function here.
 */
#include "v1-internal.h"

/* ---------------------------------------------------------------- the sink */

#define SINK_CHUNK ((size_t)1 << 20)

static void sink_flush(v1_sink *s) {
  if (s->at == 0) return;
  core_output(s->buf, s->at);
  s->at = 0;
}

/* The low `n` bytes of v, little-endian (every field is written whole into one chunk). */
static inline void put_le(v1_sink *s, uint64_t v, size_t n) {
  s->pos += n;
  if (s->measuring) return;
  if (s->at + n > s->cap) sink_flush(s);
  uint8_t *b = s->buf + s->at;
  for (size_t j = 0; j < n; j++) b[j] = (uint8_t)(v >> (8 * j));
  s->at += n;
}

static inline void s_u8(v1_sink *s, uint64_t v) { put_le(s, v, 1); }
static inline void s_u16(v1_sink *s, uint64_t v) { put_le(s, v, 2); }
static inline void s_u32(v1_sink *s, uint64_t v) { put_le(s, v, 4); }
static inline void s_u64(v1_sink *s, uint64_t v) { put_le(s, v, 8); }

static void s_bytes(v1_sink *s, const uint8_t *src, size_t n) {
  s->pos += n;
  if (s->measuring) return;
  while (n > 0) {
    if (s->at == s->cap) sink_flush(s);
    size_t k = n < s->cap - s->at ? n : s->cap - s->at;
    memcpy(s->buf + s->at, src, k);
    s->at += k;
    src += k;
    n -= k;
  }
}

/* n bytes of the value b. */
static void s_fill(v1_sink *s, uint8_t b, uint64_t n) {
  s->pos += n;
  if (s->measuring) return;
  while (n > 0) {
    if (s->at == s->cap) sink_flush(s);
    size_t k = n < s->cap - s->at ? (size_t)n : s->cap - s->at;
    memset(s->buf + s->at, b, k);
    s->at += k;
    n -= k;
  }
}

static void s_zeros(v1_sink *s, uint64_t n) { s_fill(s, 0, n); }

/* ---------------------------------------------------------------- helpers */

static inline uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

uint8_t v1_dirent_file_type(uint32_t mode) {
  switch (mode & V1_S_IFMT) {
  case V1_S_IFREG: return 1;
  case V1_S_IFDIR: return V1_FT_DIR;
  case V1_S_IFCHR: return 3;
  case V1_S_IFBLK: return 4;
  case V1_S_IFIFO: return 5;
  case V1_S_IFSOCK: return 6;
  case V1_S_IFLNK: return 7;
  default: {
    char oct[12];
    size_t n = 0;
    uint32_t v = mode;
    do {
      oct[sizeof oct - 1 - n++] = (char)('0' + (v & 7));
      v >>= 3;
    } while (v != 0);
    err_begin(CORE_FORMAT);
    err_str("invalid file type in mode 0");
    err_bytes((const uint8_t *)oct + sizeof oct - n, n);
    core_fail();
  }
  }
}

/* Dirent name markers for . and .. (entry ids are >= 0). */
#define NAME_DOT (-1)
#define NAME_DOTDOT (-2)

/* The arena byte at off, 0 past the end (the TS reads name[0] of every name; names are never empty). */
static inline uint8_t name_byte(const flat_tree *t, int64_t off) {
  return off >= 0 && off < (int64_t)t->bytes.len ? t->bytes.buf[off] : 0;
}

/* The name [off, off+len) sorts after "." (byte order). */
static int after_dot(const flat_tree *t, int32_t off, int32_t len) {
  uint8_t c = name_byte(t, off);
  return c > 0x2e || (c == 0x2e && len > 1);
}

/* The name [off, off+len) sorts after ".." (byte order). */
static int after_dotdot(const flat_tree *t, int32_t off, int32_t len) {
  uint8_t c = name_byte(t, off);
  if (c != 0x2e) return c > 0x2e;
  if (len < 2) return 0;
  uint8_t d = name_byte(t, (int64_t)off + 1);
  return d > 0x2e || (d == 0x2e && len > 2);
}

/* ---------------------------------------------------------------- the emitter */

/* An inode's shape before placement: its size class, inline tail and blocks. */
typedef struct {
  int compact;
  int64_t blocks, tail, xsize;
  uint32_t shared, filter;
} shape;

typedef struct {
  const v1_plan *p;
  const flat_tree *t;
  int32_t n;
  /* the current directory's dirents, . and .. merged in (name: entry id or NAME_DOT/NAME_DOTDOT) */
  int32_t *d_name, *d_target;
  int32_t d_count;
  size_t d_cap;
  /* chunk c of the current directory is dirents chunk_start[c] … chunk_start[c+1]−1 */
  int32_t *chunk_start;
  size_t chunk_cap;
  int32_t chunks;
  int64_t last_chunk_size;
  shape sh;
  /* blocks and tail after padding decisions, per BFS index */
  int64_t *blocks, *tails;
  const v1_placement *known; /* the measuring pass's placement; all zeros during that pass */
  v1_placement *placed;
} emitter;

static inline uint64_t nid(const emitter *em, int32_t k) { return em->known->offset[k] / V1_INODE_SLOT_SIZE; }

/* spec composefs-v1 §11.1: the composefs header, then zeros up to the superblock. */
static void header(emitter *em, v1_sink *s) {
  s_u32(s, V1_COMPOSEFS_MAGIC);
  s_u32(s, V1_COMPOSEFS_HEADER_VERSION);
  s_u32(s, em->p->has_acl ? V1_COMPOSEFS_FLAG_HAS_ACL : 0);
  s_u32(s, (uint32_t)em->p->version);
  s_zeros(s, V1_COMPOSEFS_HEADER_SIZE - 16 + (V1_SUPERBLOCK_OFFSET - V1_COMPOSEFS_HEADER_SIZE));
}

/* spec composefs-v1 §11.2: the EROFS superblock (128 bytes). */
static void superblock(emitter *em, v1_sink *s) {
  const v1_placement *k = em->known;
  s_u32(s, V1_EROFS_MAGIC);
  s_u32(s, 0); /* checksum: unused */
  s_u32(s, V1_FEATURE_COMPAT);
  s_u8(s, V1_BLOCK_BITS);
  s_u8(s, 0); /* extslots */
  s_u16(s, nid(em, 0) & 0xffff);
  s_u64(s, (uint64_t)em->n);
  s_u64(s, (uint64_t)em->p->min_sec);
  s_u32(s, em->p->min_nsec);
  s_u32(s, k->image_size / V1_BLOCK_SIZE);
  s_u32(s, 0); /* meta_blkaddr */
  s_u32(s, k->inodes_end / V1_BLOCK_SIZE);
  s_zeros(s, V1_SUPERBLOCK_SIZE - 48); /* uuid, volume name, incompat features, reserved */
}

/* ---------------------------------------------------------------- directories */

static void grow_i32(int32_t **a, size_t *cap, size_t need) {
  if (*cap >= need) return;
  size_t n = 2 * need;
  core_free(*a);
  *a = core_alloc(n * sizeof **a);
  *cap = n;
}

static inline int64_t name_length(const emitter *em, int32_t d) {
  int32_t name = em->d_name[d];
  return name == NAME_DOT ? 1 : name == NAME_DOTDOT ? 2 : em->t->entry_name_len[name];
}

/* Greedy <= 4096-byte chunks (spec composefs-v1 §9.1). */
static void split_chunks(emitter *em) {
  grow_i32(&em->chunk_start, &em->chunk_cap, (size_t)em->d_count + 2);
  int32_t chunks = 0;
  int64_t size = 0;
  em->chunk_start[0] = 0;
  for (int32_t d = 0; d < em->d_count; d++) {
    int64_t cost = V1_DIRENT_SIZE + name_length(em, d);
    if (size + cost > V1_BLOCK_SIZE) {
      em->chunk_start[++chunks] = d;
      size = 0;
    }
    size += cost;
  }
  em->chunk_start[chunks + 1] = em->d_count;
  em->chunks = chunks + 1;
  em->last_chunk_size = size;
}

/* Collects directory i's dirents (BFS index k), . and .. merged where they sort. */
static void collect_dirents(emitter *em, int32_t i, int32_t k) {
  const flat_tree *t = em->t;
  int32_t first = t->child_first[i], count = t->child_count[i];
  size_t cap = em->d_cap;
  grow_i32(&em->d_name, &em->d_cap, (size_t)count + 2);
  grow_i32(&em->d_target, &cap, (size_t)count + 2);
  int32_t n = 0;
  int dot = 0, dotdot = 0;
  int32_t parent = em->p->parent_index[k];
  for (int32_t c = first; c < first + count; c++) {
    int32_t e = t->child_ids[c];
    int32_t off = t->entry_name_off[e], len = t->entry_name_len[e];
    if (!dot && after_dot(t, off, len)) {
      em->d_name[n] = NAME_DOT;
      em->d_target[n++] = k;
      dot = 1;
    }
    if (!dotdot && after_dotdot(t, off, len)) {
      em->d_name[n] = NAME_DOTDOT;
      em->d_target[n++] = parent;
      dotdot = 1;
    }
    em->d_name[n] = e;
    em->d_target[n++] = em->p->ino[t->entry_inode[e]];
  }
  if (!dot) {
    em->d_name[n] = NAME_DOT;
    em->d_target[n++] = k;
  }
  if (!dotdot) {
    em->d_name[n] = NAME_DOTDOT;
    em->d_target[n++] = parent;
  }
  em->d_count = n;
  split_chunks(em);
}

/* One chunk of dirents: headers (nid, name offset, type), then the names (spec composefs-v2 §4.9). */
static void dirents(emitter *em, v1_sink *s, int32_t chunk) {
  const flat_tree *t = em->t;
  int32_t from = em->chunk_start[chunk], to = em->chunk_start[chunk + 1];
  int64_t nameoff = (int64_t)V1_DIRENT_SIZE * (to - from);
  for (int32_t d = from; d < to; d++) {
    int32_t target = em->d_target[d];
    int32_t name = em->d_name[d];
    s_u64(s, nid(em, target));
    s_u16(s, (uint64_t)nameoff);
    s_u8(s, name < 0 ? V1_FT_DIR : v1_dirent_file_type(t->mode[em->p->order[target]]));
    s_u8(s, 0);
    nameoff += name_length(em, d);
  }
  for (int32_t d = from; d < to; d++) {
    int32_t name = em->d_name[d];
    if (name == NAME_DOT) s_bytes(s, (const uint8_t *)".", 1);
    else if (name == NAME_DOTDOT) s_bytes(s, (const uint8_t *)"..", 2);
    else s_bytes(s, flat_at(t, t->entry_name_off[name]), (size_t)t->entry_name_len[name]);
  }
}

/* ---------------------------------------------------------------- inodes */

/* Size class, blocks, tail and xattr body of inode i (spec composefs-v1 §7.3–§9). */
static void compute_shape(emitter *em, int32_t i) {
  const flat_tree *t = em->t;
  const v1_plan *p = em->p;
  shape *sh = &em->sh;
  uint32_t filter = 0, shared = 0;
  int64_t local = 0;
  int32_t x_first = p->x_first[i], x_count = p->x_count[i];
  for (int32_t x = x_first; x < x_first + x_count; x++) {
    int32_t pair = p->pair_ids[x];
    const v1_key *key = &p->keys[p->pair_key[pair]];
    filter |= (uint32_t)1 << key->bit;
    if (p->pair_shared[pair] >= 0 && shared < (uint32_t)p->max_shared_refs) shared++;
    else local += (4 + (int64_t)(key->len - key->plen) + p->pair_value_len[pair] + 3) & ~(int64_t)3;
  }
  sh->filter = filter;
  sh->shared = shared;
  sh->xsize = x_count == 0 ? 0 : V1_XATTR_IBODY_HEADER_SIZE + 4 * (int64_t)shared + local;
  sh->blocks = 0;
  sh->tail = 0;
  /* SIZE when it is not the input's (directories and symlinks), else −1 */
  int64_t dir_size = -1;
  uint32_t type = t->mode[i] & V1_S_IFMT;
  uint8_t flags = p->flags[i];
  if (flat_is_dir(t, i)) {
    int64_t last = em->last_chunk_size;
    sh->blocks = em->chunks - (last > V1_BLOCK_SIZE / 2 ? 0 : 1);
    sh->tail = last > V1_BLOCK_SIZE / 2 ? 0 : last;
    dir_size = V1_BLOCK_SIZE * sh->blocks + sh->tail;
  } else if (type == V1_S_IFLNK) {
    sh->tail = t->payload_len[i];
    dir_size = sh->tail;
  } else if (type == V1_S_IFREG && t->content_len[i] > 0) {
    int64_t n = t->content_len[i];
    sh->blocks = n / V1_BLOCK_SIZE;
    sh->tail = n % V1_BLOCK_SIZE;
    if (sh->tail > V1_BLOCK_SIZE / 2) {
      sh->blocks++;
      sh->tail = 0;
    }
  } else if (flags & V1_FLAG_EXTERNAL) {
    sh->tail = 4 * (int64_t)p->chunks[i];
  }
  sh->compact = (flags & V1_FLAG_MIN_MTIME) != 0 && t->nlink[i] <= 0xffff && t->uid[i] <= 0xffff &&
                t->gid[i] <= 0xffff && (dir_size >= 0 ? dir_size <= 0xffffffffLL : (flags & V1_FLAG_SIZE_U32) != 0);
}

/* Zero bytes before the inode at pos (spec composefs-v1 §10.2); may move the tail to a block. */
static uint64_t tail_padding(shape *sh, int symlink, uint64_t pos, uint64_t isz) {
  if (symlink) {
    uint64_t t = isz + (uint64_t)sh->xsize + (uint64_t)sh->tail;
    if (t >= V1_BLOCK_SIZE) {
      sh->blocks = 1;
      sh->tail = 0;
    }
    int crosses = pos / V1_BLOCK_SIZE != (pos + t - 1) / V1_BLOCK_SIZE;
    return crosses ? round_up(pos, V1_BLOCK_SIZE) - pos : 0;
  }
  if (sh->tail == 0) return 0;
  uint64_t r = V1_BLOCK_SIZE - ((pos + isz + (uint64_t)sh->xsize) % V1_BLOCK_SIZE);
  if (r >= (uint64_t)sh->tail) return 0;
  uint64_t pad = round_up(r, V1_INODE_SLOT_SIZE);
  uint64_t r2 = V1_BLOCK_SIZE - ((pos + isz + (uint64_t)sh->xsize + pad) % V1_BLOCK_SIZE);
  if ((uint64_t)sh->tail <= r2) return pad;
  sh->blocks++;
  sh->tail = 0;
  return round_up(pos, V1_BLOCK_SIZE) - pos;
}

/* spec composefs-v1 §11.3: compact (32 bytes) or extended (64 bytes) inode. */
static void inode_header(emitter *em, v1_sink *s, int32_t k, int32_t i) {
  const flat_tree *t = em->t;
  const v1_plan *p = em->p;
  const shape *sh = &em->sh;
  uint32_t mode = t->mode[i];
  uint32_t type = mode & V1_S_IFMT;
  uint32_t layout = sh->tail > 0 ? V1_LAYOUT_FLAT_INLINE : V1_LAYOUT_FLAT_PLAIN;
  uint64_t size = 0;
  uint32_t iu = sh->blocks > 0 ? (uint32_t)em->known->first_block[k] : 0;
  if (flat_is_dir(t, i)) size = (uint64_t)(V1_BLOCK_SIZE * sh->blocks + sh->tail);
  else if (type == V1_S_IFLNK) size = (uint64_t)(int64_t)t->payload_len[i];
  else if (type == V1_S_IFREG && t->content_len[i] > 0) size = (uint64_t)t->content_len[i];
  else if (p->flags[i] & V1_FLAG_EXTERNAL) {
    layout = V1_LAYOUT_CHUNK_BASED;
    size = t->size[i];
    /* the u16 at i_u offset 0 is the chunk format; the high half keeps the block address */
    iu = (iu & 0xffff0000u) | (uint32_t)(p->chunk_bits[i] - 12);
  } else if (type == V1_S_IFCHR || type == V1_S_IFBLK) iu = (uint32_t)t->rdev[i];
  em->placed->iu[k] = iu;
  uint32_t nlink = t->nlink[i], uid = t->uid[i], gid = t->gid[i];
  s_u16(s, layout << 1 | (sh->compact ? 0 : 1));
  s_u16(s, sh->xsize == 0 ? 0 : (uint64_t)((sh->xsize - V1_XATTR_IBODY_HEADER_SIZE) / 4 + 1));
  s_u16(s, mode & 0xffff);
  if (sh->compact) {
    s_u16(s, nlink);
    s_u32(s, size);
    s_u32(s, 0); /* reserved */
    s_u32(s, iu);
    s_u32(s, (uint32_t)k); /* ino */
    s_u16(s, uid);
    s_u16(s, gid);
    s_u32(s, 0); /* reserved */
  } else {
    s_u16(s, 0); /* reserved */
    s_u64(s, size);
    s_u32(s, iu);
    s_u32(s, (uint32_t)k); /* ino */
    s_u32(s, uid);
    s_u32(s, gid);
    s_u64(s, (uint64_t)t->mtime_sec[i]);
    s_u32(s, t->mtime_nsec[i]);
    s_u32(s, nlink);
    s_zeros(s, 16); /* reserved */
  }
}

/* spec composefs-v2 §4.8: name length, prefix index, value size, suffix, value, padding to 4. */
static void xattr_entry(emitter *em, v1_sink *s, int32_t pair) {
  const v1_plan *p = em->p;
  const v1_key *key = &p->keys[p->pair_key[pair]];
  uint64_t suffix_len = key->len - key->plen;
  int32_t off = p->pair_value_off[pair];
  uint64_t len = (uint64_t)p->pair_value_len[pair];
  s_u8(s, suffix_len);
  s_u8(s, key->index);
  s_u16(s, len);
  s_bytes(s, p->key_bytes + key->off + key->plen, (size_t)suffix_len);
  s_bytes(s, flat_at(em->t, off), (size_t)len);
  s_zeros(s, ((4 + suffix_len + len + 3) & ~(uint64_t)3) - (4 + suffix_len + len));
}

/* spec composefs-v1 §7.3: filter, shared ids (<= 128), then local entries. */
static void xattr_body(emitter *em, v1_sink *s, int32_t i) {
  const v1_plan *p = em->p;
  const shape *sh = &em->sh;
  uint64_t base = em->known->inodes_end % V1_BLOCK_SIZE;
  s_u32(s, ~sh->filter);
  s_u8(s, sh->shared);
  s_zeros(s, V1_XATTR_IBODY_HEADER_SIZE - 5);
  int32_t first = p->x_first[i], end = first + p->x_count[i];
  uint32_t shared = 0;
  for (int32_t x = first; x < end && shared < sh->shared; x++) {
    int64_t at = p->pair_shared[p->pair_ids[x]];
    if (at < 0) continue;
    s_u32(s, (base + (uint64_t)at) / 4);
    shared++;
  }
  shared = 0;
  for (int32_t x = first; x < end; x++) {
    int32_t pair = p->pair_ids[x];
    if (p->pair_shared[pair] >= 0 && shared < sh->shared) {
      shared++;
      continue;
    }
    xattr_entry(em, s, pair);
  }
}

/* A symlink's target. */
static void payload(emitter *em, v1_sink *s, int32_t i) {
  const flat_tree *t = em->t;
  s_bytes(s, flat_at(t, t->payload_off[i]), (size_t)t->payload_len[i]);
}

/* The inline part after the xattrs: dirent tail, symlink target, content tail or chunk table. */
static void inline_data(emitter *em, v1_sink *s, int32_t i) {
  const flat_tree *t = em->t;
  const shape *sh = &em->sh;
  if (sh->tail == 0) return;
  if (flat_is_dir(t, i)) dirents(em, s, em->chunks - 1);
  else if ((t->mode[i] & V1_S_IFMT) == V1_S_IFLNK) payload(em, s, i);
  else if (t->content_len[i] > 0) {
    int64_t end = (int64_t)t->content_off[i] + t->content_len[i];
    s_bytes(s, flat_at(t, (int32_t)(end - sh->tail)), (size_t)sh->tail);
  } else s_fill(s, 0xff, (uint64_t)sh->tail); /* null chunk addresses */
}

/* One inode: slot alignment, tail padding, header, xattr body, inline data (spec §10–§11). */
static void inode(emitter *em, v1_sink *s, int32_t k) {
  const flat_tree *t = em->t;
  int32_t i = em->p->order[k];
  if (flat_is_dir(t, i)) collect_dirents(em, i, k);
  compute_shape(em, i);
  shape *sh = &em->sh;
  uint64_t isz = sh->compact ? V1_COMPACT_INODE_SIZE : V1_EXTENDED_INODE_SIZE;
  s_zeros(s, round_up(s->pos, V1_INODE_SLOT_SIZE) - s->pos);
  uint32_t type = t->mode[i] & V1_S_IFMT;
  s_zeros(s, tail_padding(sh, type == V1_S_IFLNK, s->pos, isz));
  em->placed->offset[k] = s->pos;
  em->placed->xattr_size[k] = (uint64_t)sh->xsize;
  em->blocks[k] = sh->blocks;
  em->tails[k] = sh->tail;
  inode_header(em, s, k, i);
  if (sh->xsize > 0) xattr_body(em, s, i);
  inline_data(em, s, i);
}

/* ---------------------------------------------------------------- shared table and data */

static void shared_table(emitter *em, v1_sink *s) {
  for (int32_t j = 0; j < em->p->shared_count; j++) xattr_entry(em, s, em->p->shared_order[j]);
}

static void pad_block(v1_sink *s) { s_zeros(s, round_up(s->pos, V1_BLOCK_SIZE) - s->pos); }

/* The inode's data blocks, each zero-padded to 4096 (spec composefs-v1 §11.5–§11.6). */
static void data_blocks(emitter *em, v1_sink *s, int32_t k) {
  const flat_tree *t = em->t;
  int32_t i = em->p->order[k];
  int64_t blocks = em->blocks[k];
  em->placed->first_block[k] = s->pos / V1_BLOCK_SIZE;
  if (flat_is_dir(t, i)) {
    collect_dirents(em, i, k);
    int32_t full = em->tails[k] > 0 || em->last_chunk_size <= V1_BLOCK_SIZE / 2 ? em->chunks - 1 : em->chunks;
    for (int32_t c = 0; c < full; c++) {
      dirents(em, s, c);
      pad_block(s);
    }
    /* a promoted tail chunk (never reached: after padding a <= 2048-byte tail always fits) */
    if (full < blocks) s_zeros(s, (uint64_t)(V1_BLOCK_SIZE * (blocks - full)));
  } else if ((t->mode[i] & V1_S_IFMT) == V1_S_IFLNK) {
    payload(em, s, i);
    pad_block(s);
  } else if (t->content_len[i] > 0) {
    int64_t off = t->content_off[i], len = t->content_len[i];
    for (int64_t b = 0; b < blocks; b++) {
      int64_t from = off + b * V1_BLOCK_SIZE;
      int64_t to = off + (len < (b + 1) * V1_BLOCK_SIZE ? len : (b + 1) * V1_BLOCK_SIZE);
      if (from < to) s_bytes(s, flat_at(t, (int32_t)from), (size_t)(to - from));
      pad_block(s);
    }
  } else {
    /* spec composefs-v1 §11.5: a promoted chunk table fills its whole block with null addresses */
    s_fill(s, 0xff, V1_BLOCK_SIZE);
  }
}

void v1_emit(const v1_plan *p, const v1_placement *known, v1_placement *placed, v1_sink *s) {
  emitter em;
  memset(&em, 0, sizeof em);
  em.p = p;
  em.t = p->t;
  em.n = p->n;
  em.known = known;
  em.placed = placed;
  em.blocks = core_alloc((size_t)(p->n > 0 ? p->n : 1) * sizeof *em.blocks);
  em.tails = core_alloc((size_t)(p->n > 0 ? p->n : 1) * sizeof *em.tails);
  header(&em, s);
  superblock(&em, s);
  for (int32_t k = 0; k < em.n; k++) inode(&em, s, k);
  s_zeros(s, round_up(s->pos, V1_INODE_SLOT_SIZE) - s->pos);
  placed->inodes_end = s->pos;
  shared_table(&em, s);
  pad_block(s);
  for (int32_t k = 0; k < em.n; k++)
    if (em.blocks[k] > 0) data_blocks(&em, s, k);
  placed->image_size = s->pos;
  core_free(em.blocks);
  core_free(em.tails);
  core_free(em.d_name);
  core_free(em.d_target);
  core_free(em.chunk_start);
}

/* ---------------------------------------------------------------- the writer (write-v1.ts) */

static void placement_alloc(v1_placement *pl, int32_t n) {
  size_t m = (size_t)(n > 0 ? n : 1);
  memset(pl, 0, sizeof *pl);
  pl->offset = core_alloc(m * sizeof *pl->offset);
  pl->first_block = core_alloc(m * sizeof *pl->first_block);
  pl->xattr_size = core_alloc(m * sizeof *pl->xattr_size);
  pl->iu = core_alloc(m * sizeof *pl->iu);
}

static void placement_free(v1_placement *pl) {
  core_free(pl->offset);
  core_free(pl->first_block);
  core_free(pl->xattr_size);
  core_free(pl->iu);
}

/* The measuring pass: every offset, from a placement of zeros, into `measured` (allocated here). */
static void measure(const v1_plan *plan, v1_placement *measured) {
  v1_placement zero;
  placement_alloc(&zero, plan->n);
  placement_alloc(measured, plan->n);
  v1_sink counter = {0, 1, NULL, 0, 0};
  v1_emit(plan, &zero, measured, &counter);
  placement_free(&zero);
}

int32_t v1_layout(flat_tree *t, const v1_options *o, v1_placement *measured) {
  v1_plan plan;
  v1_plan_build(&plan, t, o);
  measure(&plan, measured);
  int32_t n = plan.n;
  v1_plan_free(&plan);
  return n;
}

uint64_t v1_write(flat_tree *t, const v1_options *o) {
  v1_plan plan;
  v1_plan_build(&plan, t, o);
  v1_placement measured, written;
  measure(&plan, &measured);
  /* writing pass with the offsets it found */
  placement_alloc(&written, plan.n);
  v1_sink sink = {0, 0, core_alloc(SINK_CHUNK), 0, SINK_CHUNK};
  v1_emit(&plan, &measured, &written, &sink);
  sink_flush(&sink);
  if (sink.pos != measured.image_size || written.inodes_end != measured.inodes_end)
    core_failf(CORE_FORMAT, "internal: EROFS V1 emitter: the writing pass did not follow the measuring pass");
  core_free(sink.buf);
  placement_free(&written);
  placement_free(&measured);
  v1_plan_free(&plan);
  return sink.pos;
}
