/*
 * Dumpfile → flat tree with the rules of C `mkcomposefs --from-file` 1.0.8 (spec composefs-v1 §4),
 * strict (CFS_PARSE_STRICT) or lenient, with its line splitting (ported in 2026-12 from the
 * TypeScript parser it replaced). Accept/reject decisions follow C mkcomposefs,
 * including its quirks (strtoull numbers, the GID/RDEV error-reporting bug, the xattr budget).
 */
#include "parse.h"
#include "parse-internal.h"

#define S_IFMT_ 0170000u
#define S_IFSOCK_ 0140000u
#define S_IFLNK_ 0120000u
#define S_IFREG_ 0100000u
#define S_IFBLK_ 0060000u
#define S_IFDIR_ 0040000u
#define S_IFCHR_ 0020000u
#define S_IFIFO_ 0010000u

#define U32_MASK 0xffffffffu
/* Symlink targets and payloads must be shorter (§4.5). */
#define MAX_PATH 4096
#define MAX_CONTENT 5000
#define MAX_XATTR_AREA 65535
#define MAX_XATTR_VALUE 65535
#define MAX_XATTR_KEY 255
#define XATTR_BUDGET 32767
/* §9.3: more than 1024 chunks of 2^43 bytes cannot be written. */
#define MAX_EXTERNAL_SIZE ((uint64_t)1 << 53)
/* From here C's chunk count (size + 2^43 − 1) >> 43 wraps in 64 bits and C 1.0.8 writes a corrupt
 * image; refused like every size above MAX_EXTERNAL_SIZE (docs/composefs-decisions.md §1). */
#define C_CHUNK_OVERFLOW ((uint64_t)0 - ((uint64_t)1 << 43) + 1)
/* Our memory ceiling per line, not a format limit (lines.ts MAX_LINE_BYTES). Overridable only so
 * tests can reach it with small inputs. */
#ifdef DP_TEST_MAX_LINE_BYTES
#define MAX_LINE_BYTES ((size_t)DP_TEST_MAX_LINE_BYTES)
#else
#define MAX_LINE_BYTES ((size_t)1024 * 1024 * 1024)
#endif

/* A key-value pair of the current line; dead once a later pair of the line has the same key. */
typedef struct {
  const uint8_t *key, *value;
  uint32_t key_len, value_len;
  int32_t live;
} line_xattr;

/* The xattr-key table of one line: at most (32767 − 12) / 8 + 1 keys are live at once (each costs
 * at least 8 budget bytes), so 8192 slots stay under half full. Slots of older lines are told
 * apart by their generation. */
#define KEY_SLOTS 8192

struct dump_parser {
  int strict;
  int digest_bytes;
  dp_paths tree;
  flat_tree *flat;
  int saw_line;
  int64_t line_no;
  /* The unfinished line carried between feeds. */
  core_bytes carry;

  /* The current line and its field bounds. */
  const uint8_t *cur;
  size_t len;
  int has_backslash;
  size_t b[2 * F_COUNT];
  /* Room for the current line's unescaped fields (never more bytes than the line). */
  uint8_t *scratch;
  size_t scratch_cap, scratch_used;

  line_xattr *xs;
  int32_t xs_cap;
  uint32_t key_gen;
  uint32_t *key_slot_gen;
  int32_t *key_slot_index;

  uint8_t digest[64];
};

dump_parser *dump_parser_new(int strict, int digest_bytes, int32_t expected_lines) {
  if (digest_bytes != 32 && digest_bytes != 64) core_failf(CORE_USAGE, "digest bytes must be 32 or 64");
  /* Only a hint: keep it sane. */
  if (expected_lines < 0) expected_lines = 0;
  if (expected_lines > 1 << 24) expected_lines = 1 << 24;
  dump_parser *p = core_alloc(sizeof *p);
  p->strict = strict != 0;
  p->digest_bytes = digest_bytes;
  dp_paths_init(&p->tree, expected_lines);
  p->flat = p->tree.flat;
  return p;
}

/* ---- the current line's fields */

static size_t fstart(const dump_parser *p, int f) { return p->b[2 * f]; }
static size_t fend(const dump_parser *p, int f) { return p->b[2 * f + 1]; }
static const uint8_t *fptr(const dump_parser *p, int f) { return p->cur + p->b[2 * f]; }
static size_t flen(const dump_parser *p, int f) { return p->b[2 * f + 1] - p->b[2 * f]; }

/* The field is exactly `-` (an absent optional field, §4.3). */
static int is_dash(const dump_parser *p, int f) {
  return flen(p, f) == 1 && p->cur[fstart(p, f)] == '-';
}

static int has_escape(const dump_parser *p, int f) {
  return p->has_backslash && dp_has_escape(fptr(p, f), flen(p, f));
}

/* n bytes of scratch for this line. All takes of a line add up to at most the line length. */
static uint8_t *scratch_take(dump_parser *p, size_t n) {
  if (p->scratch_cap < p->len) {
    /* Only before the line's first take: earlier pointers stay valid. Doubling keeps the total
     * allocated linear in the longest line (WebAssembly's allocator reuses little). */
    size_t cap = p->scratch_cap ? p->scratch_cap : 4096;
    while (cap < p->len) cap = cap > SIZE_MAX / 2 ? p->len : cap * 2;
    core_free(p->scratch);
    p->scratch = core_alloc(cap);
    p->scratch_cap = cap;
  }
  uint8_t *out = p->scratch + p->scratch_used;
  p->scratch_used += n;
  return out;
}

/* Unescapes src[0, n) into scratch; *out_len gets the decoded length. */
static const uint8_t *unescaped(dump_parser *p, const uint8_t *src, size_t n, const char *what, size_t *out_len) {
  uint8_t *out = scratch_take(p, n);
  size_t m = dp_unescape(src, n, out, what, p->line_no);
  p->scratch_used -= n - m;
  *out_len = m;
  return out;
}

/* A field's bytes after unescaping (in place when it has no backslash). */
static const uint8_t *field_bytes(dump_parser *p, int f, const char *what, size_t *out_len) {
  if (!has_escape(p, f)) {
    *out_len = flen(p, f);
    return fptr(p, f);
  }
  return unescaped(p, fptr(p, f), flen(p, f), what, out_len);
}

static _Noreturn void syntax(const dump_parser *p, const char *message) { dp_syntax(message, p->line_no); }

/* `Invalid <what> <JSON of the field>`. */
static _Noreturn void invalid_field(const dump_parser *p, const char *what, int f) {
  err_begin(CORE_FORMAT);
  err_str("Invalid ");
  err_str(what);
  err_str(" ");
  err_json(fptr(p, f), flen(p, f));
  dp_fail(p->line_no);
}

/* A decimal field as strtoull reads it (§4.4). */
static uint64_t number(const dump_parser *p, int f, const char *what) {
  const uint8_t *s = fptr(p, f);
  size_t n = flen(p, f);
  /* Plain digits, the usual field: no overflow possible below 20 digits. */
  if (n > 0 && n < 20) {
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n; i++) {
      unsigned d = (unsigned)s[i] - '0';
      if (d > 9) break;
      v = v * 10 + d;
    }
    if (i == n) return v;
  }
  uint64_t v;
  if (!dp_strtoull(s, n, 10, &v)) invalid_field(p, what, f);
  return v;
}

/* GID and RDEV: C reports a bad one only when UID parsed as 0 (as u64: a UID of 2^32 is not 0
 * even though its u32 value is), §4.4; otherwise the value is 0. */
static uint64_t quirk_number(const dump_parser *p, int f, const char *what, int uid_is_zero) {
  uint64_t v;
  if (dp_strtoull(fptr(p, f), flen(p, f), 10, &v)) return v;
  if (uid_is_zero) invalid_field(p, what, f);
  return 0;
}

/* MODE in octal (strtoull base 8, truncated to u32) from cur[start, end). */
static uint32_t parse_mode(const dump_parser *p, size_t start, size_t end) {
  uint64_t v;
  if (!dp_strtoull(p->cur + start, end - start, 8, &v)) {
    err_begin(CORE_FORMAT);
    err_str("Invalid mode ");
    err_bytes(p->cur + start, end - start);
    dp_fail(p->line_no);
  }
  return (uint32_t)(v & U32_MASK);
}

static void err_octal(uint32_t v) {
  uint8_t digits[11];
  size_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = (uint8_t)('0' + (v & 7));
    v >>= 3;
  } while (v != 0);
  err_bytes(digits + sizeof digits - n, n);
}

static int is_valid_file_type(uint32_t mode) {
  switch (mode & S_IFMT_) {
  case S_IFREG_:
  case S_IFDIR_:
  case S_IFLNK_:
  case S_IFBLK_:
  case S_IFCHR_:
  case S_IFIFO_:
  case S_IFSOCK_:
    return 1;
  default:
    return 0;
  }
}

/* u64 as C's i64 (two's complement). */
static int64_t as_i64(uint64_t v) {
  return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(UINT64_MAX - v) - 1;
}

/* §4.4: `SEC.NSEC`, split at the first `.`, both parts required; seconds as i64, nanoseconds
 * truncated to u32 (both as C stores them). */
static void mtime(dump_parser *p, int32_t i) {
  const uint8_t *s = fptr(p, F_MTIME);
  size_t n = flen(p, F_MTIME);
  size_t dot = 0;
  while (dot < n && s[dot] != '.') dot++;
  uint64_t sec, nsec;
  if (dot == n || !dp_strtoull(s, dot, 10, &sec) || !dp_strtoull(s + dot + 1, n - dot - 1, 10, &nsec))
    invalid_field(p, "mtime", F_MTIME);
  p->flat->mtime_sec[i] = as_i64(sec);
  p->flat->mtime_nsec[i] = (uint32_t)(nsec & U32_MASK);
}

/* §4.5 item 11: pairs of hex digits, stopping at the first invalid one; the rest stays zero (only
 * 64 hex digits are well defined in C; extra digits are ignored). A SHA-512 digest (64 bytes, which
 * C cannot read) must be complete: zero-filling half of one would name an object that is not there. */
static const uint8_t *decode_digest(dump_parser *p, const uint8_t *text, size_t n) {
  size_t bytes = (size_t)p->digest_bytes;
  uint8_t *out = p->digest;
  memset(out, 0, bytes);
  size_t i = 0;
  for (; i < bytes && 2 * i + 1 < n; i++) {
    int hi = dp_hex(text[2 * i]);
    int lo = dp_hex(text[2 * i + 1]);
    if (hi < 0 || lo < 0) break;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  if (bytes == 64 && i < 64) {
    err_begin(CORE_FORMAT);
    err_str("Invalid digest: ");
    err_u64(2 * (uint64_t)i);
    err_str(" hex digits, a SHA-512 fs-verity digest has 128");
    dp_fail(p->line_no);
  }
  return out;
}

/* ---- xattrs */

static uint32_t hash_key(const uint8_t *k, size_t n) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 0x01000193u;
  return h;
}

/* The slot of key k: the one holding it, or the empty one where it goes. */
static uint32_t key_slot(const dump_parser *p, const uint8_t *k, size_t n) {
  uint32_t mask = KEY_SLOTS - 1;
  for (uint32_t s = hash_key(k, n) & mask;; s = (s + 1) & mask) {
    if (p->key_slot_gen[s] != p->key_gen) return s;
    const line_xattr *x = &p->xs[p->key_slot_index[s]];
    if (x->key_len == n && memcmp(x->key, k, n) == 0) return s;
  }
}

/* Unescaped bytes of area[start, end): in place when there is no backslash. */
static const uint8_t *xattr_text(dump_parser *p, const uint8_t *s, size_t n, const char *what, size_t *out_len) {
  if (!p->has_backslash || !dp_has_escape(s, n)) {
    *out_len = n;
    return s;
  }
  return unescaped(p, s, n, what, out_len);
}

/* §4.6: tokens `KEY=VALUE` at single spaces, with C's 32767-byte budget; a repeated key replaces
 * the earlier one (which leaves the list; the new one goes last). */
static void xattrs(dump_parser *p, const uint8_t *area, size_t n) {
  if (n > MAX_XATTR_AREA) syntax(p, "Too many xattrs");
  if (p->key_slot_gen == NULL) {
    p->key_slot_gen = core_alloc(KEY_SLOTS * sizeof *p->key_slot_gen);
    p->key_slot_index = core_alloc(KEY_SLOTS * sizeof *p->key_slot_index);
  }
  if (++p->key_gen == 0) {
    memset(p->key_slot_gen, 0, KEY_SLOTS * sizeof *p->key_slot_gen);
    p->key_gen = 1;
  }
  /* C's u64 counter; steps are < 2^17 and it never goes below 0 here. */
  int64_t budget = 0;
  int32_t count = 0, live = 0;
  size_t pos = 0;
  while (pos <= n) {
    size_t sp = pos;
    while (sp < n && area[sp] != ' ') sp++;
    size_t eq = pos;
    while (eq < sp && area[eq] != '=') eq++;
    if (eq == sp) syntax(p, "Missing = in xattr");
    size_t klen, vlen;
    const uint8_t *key = xattr_text(p, area + pos, eq - pos, "xattr key", &klen);
    klen = dp_nul_len(key, klen);
    const uint8_t *value = xattr_text(p, area + eq + 1, sp - eq - 1, "xattr value", &vlen);
    pos = sp + 1;
    if (klen == 0 || klen > MAX_XATTR_KEY) syntax(p, "Can't set xattr: invalid key length");
    if (vlen > MAX_XATTR_VALUE) syntax(p, "Can't set xattr: value too long");
    uint32_t s = key_slot(p, key, klen);
    if (p->key_slot_gen[s] == p->key_gen) {
      line_xattr *old = &p->xs[p->key_slot_index[s]];
      old->live = 0;
      live--;
      budget = live > 0 ? budget - (7 + (int64_t)old->key_len + (int64_t)old->value_len) : 0;
    }
    int64_t next = budget + 7 + (int64_t)klen + (int64_t)vlen + (live == 0 ? 12 : 0);
    if (next < 0 || next > XATTR_BUDGET) syntax(p, "Can't set xattr: too much xattr data");
    budget = next;
    if (count == p->xs_cap) {
      /* count ≤ tokens ≤ 65536 / 2 + 1 */
      int32_t cap = p->xs_cap < 16 ? 16 : p->xs_cap * 2;
      CORE_GROW(p->xs, p->xs_cap, cap);
      p->xs_cap = cap;
    }
    line_xattr *x = &p->xs[count];
    x->key = key;
    x->key_len = (uint32_t)klen;
    x->value = value;
    x->value_len = (uint32_t)vlen;
    x->live = 1;
    p->key_slot_gen[s] = p->key_gen;
    p->key_slot_index[s] = count++;
    live++;
  }
  for (int32_t k = 0; k < count; k++) {
    const line_xattr *x = &p->xs[k];
    if (x->live) flat_add_xattr(p->flat, x->key, x->key_len, x->value, x->value_len);
  }
}

/* ---- lines */

/* Fills inode i from the current (non-hardlink) line. */
static void inode(dump_parser *p, int32_t i, uint32_t type, int64_t xattr_start) {
  flat_tree *f = p->flat;
  uint64_t size = number(p, F_SIZE, "size");
  f->nlink[i] = (uint32_t)(number(p, F_NLINK, "nlink") & U32_MASK);
  uint64_t uid = number(p, F_UID, "uid");
  f->uid[i] = (uint32_t)(uid & U32_MASK);
  int uid_is_zero = uid == 0;
  f->gid[i] = (uint32_t)(quirk_number(p, F_GID, "gid", uid_is_zero) & U32_MASK);
  uint64_t rdev = quirk_number(p, F_RDEV, "rdev", uid_is_zero);
  mtime(p, i);

  /* PAYLOAD after unescaping and NUL truncation; -1 when it is `-`. */
  int64_t payload_len = -1;
  const uint8_t *payload = NULL;
  if (!is_dash(p, F_PAYLOAD)) {
    size_t n;
    payload = field_bytes(p, F_PAYLOAD, "PAYLOAD", &n);
    n = dp_nul_len(payload, n);
    payload_len = (int64_t)n;
  }
  const uint8_t *content = NULL;
  size_t content_len = 0;
  int has_content = !is_dash(p, F_CONTENT);
  if (has_content) content = field_bytes(p, F_CONTENT, "CONTENT", &content_len);
  int has_digest = !is_dash(p, F_DIGEST);
  int is_inline = 0;

  /* §4.5 item 6: rdev is kept (as u32) for devices only. */
  if (type == S_IFCHR_ || type == S_IFBLK_) f->rdev[i] = rdev & U32_MASK;
  else if (p->strict && rdev != 0) syntax(p, "Invalid rdev for a file that is not a device");

  /* §4.5 item 8: the content length must equal SIZE, for every type. */
  if (has_content && (uint64_t)content_len != size) syntax(p, "Invalid content size");

  if (type == S_IFLNK_) {
    if (payload_len <= 0 || payload_len >= MAX_PATH) syntax(p, "Invalid symlink");
    if (p->strict && (size != (uint64_t)payload_len || (has_content && content_len > 0)))
      syntax(p, "Invalid symlink size or content");
    flat_set_payload(f, i, payload, (size_t)payload_len);
    size = (uint64_t)payload_len;
  } else {
    if (payload_len >= 0) {
      if (payload_len >= MAX_PATH) syntax(p, "Invalid payload length");
      flat_set_payload(f, i, payload, (size_t)payload_len);
    }
    if (has_content) {
      if (content_len > MAX_CONTENT) {
        err_begin(CORE_FORMAT);
        err_str("Inline content size ");
        err_u64(content_len);
        err_str(" exceeds maximum 5000");
        dp_fail(p->line_no);
      }
      if (content_len > 0) {
        flat_set_content(f, i, content, content_len);
        is_inline = 1;
        size = content_len;
      }
    }
  }
  f->size[i] = size;

  if (has_digest) {
    size_t n;
    const uint8_t *text = field_bytes(p, F_DIGEST, "DIGEST", &n);
    if (text != fptr(p, F_DIGEST)) n = dp_nul_len(text, n);
    flat_set_digest(f, i, decode_digest(p, text, n), (size_t)p->digest_bytes);
  }

  /* mkcomposefs fails at write time (EFBIG) for these; refused here, where the line is known. */
  if (type == S_IFREG_ && !is_inline && size > MAX_EXTERNAL_SIZE) {
    err_begin(CORE_FORMAT);
    if (size >= C_CHUNK_OVERFLOW) {
      err_str("File too large: SIZE ");
      err_u64(size);
      err_str(" (2^64 \xe2\x88\x92 "); /* U+2212 MINUS SIGN as UTF-8, as in the TS message */
      err_u64((uint64_t)0 - size);
      err_str(") overflows the chunk count; C mkcomposefs 1.0.8 writes a corrupt image for it, "
              "refused (see docs/composefs-decisions.md)");
    } else {
      err_str("File too large: ");
      err_u64(size);
      err_str(" bytes needs more than 1024 chunks");
    }
    dp_fail(p->line_no);
  }

  if (xattr_start >= 0 && (size_t)xattr_start < p->len)
    xattrs(p, p->cur + xattr_start, p->len - (size_t)xattr_start);
}

/* One line buf[0, len) without its LF. */
static void parse_line(dump_parser *p, const uint8_t *buf, size_t len, int terminated) {
  p->saw_line = 1;
  /* §4.1 */
  if (!terminated && p->strict) syntax(p, "Missing trailing newline");
  if (len == 0) syntax(p, "Invalid empty path");
  int backslash = 0;
  for (size_t k = 0; k < len; k++) {
    uint8_t c = buf[k];
    if (c == 0) syntax(p, "NUL byte in line");
    backslash |= c == '\\';
  }
  p->cur = buf;
  p->len = len;
  p->has_backslash = backslash;
  p->scratch_used = 0;
  int64_t xattr_start = dp_split(buf, len, p->b);

  /* The path, unescaped and cut at a NUL (the tree copies the name it keeps). */
  size_t path_len;
  const uint8_t *path = field_bytes(p, F_PATH, "PATH", &path_len);
  if (path != fptr(p, F_PATH)) path_len = dp_nul_len(path, path_len);
  if (path_len == 0) syntax(p, "Invalid empty path");
  int is_root = path_len == 1 && path[0] == '/';
  int32_t entry = is_root ? -1 : dp_paths_insert(&p->tree, path, path_len, p->line_no);

  /* MODE, with `@` marking a hardlink line (§4.5 item 2). */
  size_t mode_start = fstart(p, F_MODE), mode_end = fend(p, F_MODE);
  int is_hardlink = mode_end > mode_start && buf[mode_start] == '@';
  uint32_t mode = parse_mode(p, is_hardlink ? mode_start + 1 : mode_start, mode_end);
  if (!is_valid_file_type(mode)) {
    err_begin(CORE_FORMAT);
    err_str("Invalid mode ");
    err_octal(mode);
    dp_fail(p->line_no);
  }
  uint32_t type = mode & S_IFMT_;
  if (is_root && (is_hardlink || type != S_IFDIR_)) syntax(p, "Root must be a directory");

  if (is_hardlink) {
    if (type == S_IFDIR_) syntax(p, "Directories can't be hardlinked");
    /* Only PAYLOAD is used; everything else is ignored (§4.5 item 3). */
    if (is_dash(p, F_PAYLOAD)) {
      dp_paths_mark_hardlink(&p->tree, entry, p->line_no, NULL, 0);
    } else {
      size_t n;
      const uint8_t *target = field_bytes(p, F_PAYLOAD, "PAYLOAD", &n);
      dp_paths_mark_hardlink(&p->tree, entry, p->line_no, target, dp_nul_len(target, n));
    }
    return;
  }
  int32_t i = is_root ? dp_paths_set_root(&p->tree, mode, p->line_no) : dp_paths_set_inode(&p->tree, entry, mode);
  inode(p, i, type, xattr_start);
}

static _Noreturn void too_long(int64_t line) {
  err_begin(CORE_LIMIT);
  err_str("dumpfile line longer than ");
  err_u64(MAX_LINE_BYTES);
  err_str(" bytes: odh's memory ceiling per line (not a format limit)");
  dp_fail(line);
}

/* The first LF in d[i, n), or n. Eight bytes at a time while none of them is an LF. */
static size_t find_newline(const uint8_t *d, size_t i, size_t n) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  while (n - i >= 8) {
    uint64_t w;
    memcpy(&w, d + i, 8);
    w ^= 0x0a0a0a0a0a0a0a0au; /* an LF byte becomes 0 */
    if (((w - ones) & ~w & highs) != 0) break;
    i += 8;
  }
  while (i < n && d[i] != '\n') i++;
  return i;
}

/* Lines end at LF (§4.1); a line split across feeds is joined in the carry buffer. */
void dump_parser_feed(dump_parser *p, const uint8_t *data, size_t n) {
  size_t start = 0;
  for (;;) {
    size_t nl = find_newline(data, start, n);
    if (nl == n) break;
    p->line_no++;
    if (p->carry.len > 0) {
      /* start is 0 here: the carry only ever precedes a feed's first line. */
      if (nl > MAX_LINE_BYTES - p->carry.len) too_long(p->line_no); /* carry.len ≤ MAX_LINE_BYTES */
      core_bytes_append(&p->carry, data, nl);
      parse_line(p, p->carry.buf, p->carry.len, 1);
      p->carry.len = 0;
    } else {
      if (nl - start > MAX_LINE_BYTES) too_long(p->line_no);
      parse_line(p, data + start, nl - start, 1);
    }
    start = nl + 1;
  }
  if (start < n) {
    if (n - start > MAX_LINE_BYTES - p->carry.len) too_long(p->line_no + 1);
    core_bytes_append(&p->carry, data + start, n - start);
  }
}

flat_tree *dump_parser_finish(dump_parser *p) {
  if (p->carry.len > 0) {
    p->line_no++;
    parse_line(p, p->carry.buf, p->carry.len, 0);
  }
  if (!p->saw_line) dp_syntax("No files in dump file", DP_NO_LINE);
  flat_tree *t = dp_paths_finish(&p->tree);
  core_free(p->carry.buf);
  core_free(p->scratch);
  core_free(p->xs);
  core_free(p->key_slot_gen);
  core_free(p->key_slot_index);
  core_free(p);
  return t;
}
