/*
 * What the WebAssembly core exports to odh (src/composefs/core.ts), beyond core-wasm.c's memory and
 * failure exports: the C-rules dumpfile parser, the flat tree's columns (to copy a TS FlatTree in or
 * a parsed tree out) and the V1 writer.
 */
#include "flat.h"
#include "parse.h"
#include "v1-internal.h"

#define EXPORT(name) __attribute__((export_name(name)))

EXPORT("odh_err_code") int32_t odh_err_code(void) { return core_err.code; }
EXPORT("odh_err_line") double odh_err_line(void) { return (double)core_err.line; }
EXPORT("odh_err_message") const char *odh_err_message(void) { return core_err.message; }
EXPORT("odh_err_message_len") uint32_t odh_err_message_len(void) { return core_err.message_len; }
EXPORT("odh_err_path") const char *odh_err_path(void) { return core_err.has_path ? core_err.path : 0; }
EXPORT("odh_err_path_len") uint32_t odh_err_path_len(void) { return core_err.path_len; }

EXPORT("odh_parser_new") dump_parser *odh_parser_new(int32_t strict, int32_t digest_bytes, int32_t expected) {
  return dump_parser_new(strict, digest_bytes, expected);
}
EXPORT("odh_parser_feed") void odh_parser_feed(dump_parser *p, const uint8_t *data, size_t n) {
  dump_parser_feed(p, data, n);
}
EXPORT("odh_parser_finish") flat_tree *odh_parser_finish(dump_parser *p) { return dump_parser_finish(p); }

/* A tree of these counts for the host to fill (flat_sized). */
EXPORT("odh_flat_new") flat_tree *odh_flat_new(int32_t inodes, int32_t entries, int32_t xattrs, uint32_t bytes) {
  return flat_sized(inodes, entries, xattrs, bytes);
}

EXPORT("odh_flat_counts") int32_t odh_flat_count(const flat_tree *t, int32_t which) {
  switch (which) {
    case 0: return t->inode_count;
    case 1: return t->entry_count;
    case 2: return t->xattr_total;
    default: return (int32_t)t->bytes.len;
  }
}

/* Column k, in the order of flat.h's column lists (src/composefs/format/core.ts COLUMNS). */
EXPORT("odh_flat_column") void *odh_flat_column(const flat_tree *t, int32_t k) {
#define COLUMN(column) t->column,
  void *const columns[] = {FLAT_INODE_COLUMNS(COLUMN) t->child_ids,
                           FLAT_ENTRY_COLUMNS(COLUMN) FLAT_XATTR_COLUMNS(COLUMN) t->bytes.buf};
#undef COLUMN
  return k >= 0 && k < (int32_t)(sizeof columns / sizeof columns[0]) ? columns[k] : 0;
}

EXPORT("odh_v1_write") double odh_v1_write(flat_tree *t, int32_t min_version, int32_t max_version, int32_t hash) {
  v1_options o = {min_version, max_version, hash};
  return (double)v1_write(t, &o);
}

/* The measuring pass alone (layoutErofsV1): returns the inode count; the placement stays until the
 * next call, read through odh_v1_layout_column / odh_v1_layout_value. */
static v1_placement layout;
static int32_t layout_n;

EXPORT("odh_v1_layout") int32_t odh_v1_layout(flat_tree *t, int32_t min_version, int32_t max_version, int32_t hash) {
  v1_options o = {min_version, max_version, hash};
  layout_n = v1_layout(t, &o, &layout);
  return layout_n;
}

EXPORT("odh_v1_layout_column") void *odh_v1_layout_column(int32_t k) {
  return k == 0 ? (void *)layout.offset : k == 1 ? (void *)layout.xattr_size : (void *)layout.iu;
}

EXPORT("odh_v1_layout_value") double odh_v1_layout_value(int32_t k) {
  return (double)(k == 0 ? layout.inodes_end : layout.image_size);
}
