/* Shared by the dumpfile parser's files (parse.c, parse-fields.c, parse-paths.c); not an API. */
#ifndef ODH_PARSE_INTERNAL_H
#define ODH_PARSE_INTERNAL_H

#include "flat.h"

/* No dumpfile line to name (a failure after the last line). */
#define DP_NO_LINE ((int64_t)-1)

/* Raises the failure being built, naming dumpfile line `line` (DP_NO_LINE: none). */
_Noreturn void dp_fail(int64_t line);
/* A FORMAT failure with a fixed message (fields.ts syntax()) at `line`. */
_Noreturn void dp_syntax(const char *message, int64_t line);

/* n * size, failing (LIMIT, out of memory) when it does not fit in size_t. */
size_t dp_mul(size_t n, size_t size);

/* ---- fields (fields.ts, escape.ts) */

/* The 11 fixed fields of a line (spec composefs-v1 §4.2). */
enum { F_PATH, F_SIZE, F_MODE, F_NLINK, F_UID, F_GID, F_RDEV, F_MTIME, F_PAYLOAD, F_CONTENT, F_DIGEST, F_COUNT };

/* splitBoundsAt: [start, end) of the 11 fields into b[2f], b[2f+1] (missing trailing fields are
 * empty at the line end). Returns the start of the xattr area, or -1 when DIGEST ended the line. */
int64_t dp_split(const uint8_t *line, size_t len, size_t b[2 * F_COUNT]);

/* C strtoull(p, &end, base) as mkcomposefs checks it: optional C whitespace and sign, at least one
 * digit, nothing after the digits; `-` negates modulo 2^64; overflow saturates to 2^64−1 (even
 * when negative). Returns 0 when the text does not parse. */
int dp_strtoull(const uint8_t *p, size_t n, unsigned base, uint64_t *out);

/* Decodes `\\ \n \r \t \xHH` of src[0, n) into out (room for n bytes); returns the decoded
 * length. Any other escape, a trailing `\` or bad hex fails (spec composefs-v1 §4.3), naming
 * field `what` and `line`. */
size_t dp_unescape(const uint8_t *src, size_t n, uint8_t *out, const char *what, int64_t line);

/* C string length: bytes before the first NUL (spec composefs-v1 §4.3), at most n. */
size_t dp_nul_len(const uint8_t *p, size_t n);

/* p[0, n) holds a backslash. */
int dp_has_escape(const uint8_t *p, size_t n);

/* A hex digit's value, -1 for any other byte. */
int dp_hex(uint8_t c);


/* ---- paths (parse-paths.c) */

typedef struct {
  flat_tree *flat;
  /* Open addressing over (directory, name): entry + 1, 0 = empty; slot_count a power of two. */
  int32_t *slots;
  uint32_t slot_count;
  uint32_t used;
  /* Each entry's name hash. */
  uint32_t *hashes;
  int32_t hashes_cap;
  /* The hash of the last name looked up (add_child files the new entry under it). */
  uint32_t hash;
  int has_root;
  /* Cached canonical parent path ("/a/b") of the last walked line and its directory inode. */
  uint8_t *last_parent_path;
  size_t last_parent_len, last_parent_cap;
  int has_last_parent;
  int32_t last_parent;
  /* Start of the last component, set by walk_parents. */
  size_t name_start;
  /* Hardlink lines in file order: entry, line, target (PAYLOAD as written) in hl_bytes. */
  int32_t hl_count, hl_cap;
  int32_t *hl_entry;
  int64_t *hl_line;
  size_t *hl_off;
  uint32_t *hl_len;
  uint8_t *hl_has_path;
  core_bytes hl_bytes;
  /* finish()'s work arrays (held here so a failure leaves them reachable, not leaked). */
  int32_t *link_to, *res, *walk;
} dp_paths;

void dp_paths_init(dp_paths *t, int32_t expected);
/* The root line: inode 0. */
int32_t dp_paths_set_root(dp_paths *t, uint32_t mode, int64_t line);
/* Adds the entry of a non-root path src[0, n) (its inode is set later); returns the entry id. */
int32_t dp_paths_insert(dp_paths *t, const uint8_t *src, size_t n, int64_t line);
/* The inode of a non-hardlink line's entry. */
int32_t dp_paths_set_inode(dp_paths *t, int32_t entry, uint32_t mode);
/* A hardlink line; target NULL when PAYLOAD is `-`. */
void dp_paths_mark_hardlink(dp_paths *t, int32_t entry, int64_t line, const uint8_t *target, size_t n);
/* Resolves hardlinks, indexes directories, frees the path state; returns the tree. */
flat_tree *dp_paths_finish(dp_paths *t);

#endif
