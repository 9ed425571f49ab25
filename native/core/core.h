/*
 * The compiled core of odh's composefs V1 path: what every core file includes.
 *
 * The core is built two ways from the same sources: to WebAssembly (what odh loads; no libc, the host
 * supplies memory and output) and natively with a C compiler (core-cli.c, for differential runs
 * against C mkcomposefs and for sanitizers). Nothing here may depend on which.
 *
 * Failing works like a throw: fill core_err with err_begin / err_* and call core_fail(), which never
 * returns (WebAssembly: the host import throws a JS exception through the wasm frames and the
 * instance is discarded; native: the message is printed and the process exits 1). So core code
 * never checks return codes for errors and never cleans up after one.
 */
#ifndef ODH_CORE_H
#define ODH_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memcpy, memmove, memset, memcmp: libc natively, core-wasm.c in WebAssembly */

/* OdhError codes the core raises (src/util/errors.ts). */
enum { CORE_FORMAT = 1, CORE_LIMIT = 2, CORE_USAGE = 3 };

#define CORE_MESSAGE_MAX 2048
#define CORE_PATH_MAX 16384

/* The failure being raised. Message and path are UTF-8: err_str appends UTF-8 text as it is;
 * err_bytes and err_path_bytes append input bytes as latin1 characters (what the TS code's
 * `toString('latin1')` showed of them). */
typedef struct {
  int32_t code;
  /* Dumpfile line number (1-based), or -1. */
  int64_t line;
  uint32_t message_len;
  char message[CORE_MESSAGE_MAX];
  /* The tree path the failure is about (ErrorContext.path), when has_path. */
  int32_t has_path;
  uint32_t path_len;
  char path[CORE_PATH_MAX];
} core_error;

extern core_error core_err;

/* Starts a failure of `code`: message empty, no line, no path. */
void err_begin(int code);
/* Appends to the message (truncated at CORE_MESSAGE_MAX). */
void err_str(const char *s);
void err_bytes(const uint8_t *p, size_t n);
void err_u64(uint64_t v);
void err_i64(int64_t v);
/* Appends JSON.stringify of the latin1 text p[0, n), quotes included (bytes ≥ 0x7f stay raw). */
void err_json(const uint8_t *p, size_t n);
/* Sets the context line / appends to the context path. */
void err_line(int64_t line);
void err_path_bytes(const uint8_t *p, size_t n);
/* Raises the failure. */
_Noreturn void core_fail(void);
/* err_begin + err_str + core_fail. */
_Noreturn void core_failf(int code, const char *message);

/* Memory. core_alloc zeroes; core_grow keeps the first old_n bytes and zeroes the rest. Both fail
 * with LIMIT "out of memory" instead of returning NULL. */
void *core_alloc(size_t n);
void *core_grow(void *p, size_t old_n, size_t new_n);
void core_free(void *p);

/* Grows a typed column `a` (element type of *a) from old_n to new_n elements. */
#define CORE_GROW(a, old_n, new_n) ((a) = core_grow((a), (size_t)(old_n) * sizeof *(a), (size_t)(new_n) * sizeof *(a)))

/* Sorts a[0..n) stably by cmp(ctx, x, y) (< 0: x first). */
typedef int (*core_cmp_i32)(const void *ctx, int32_t x, int32_t y);
void core_sort_i32(int32_t *a, size_t n, core_cmp_i32 cmp, const void *ctx);

/* A growable run of bytes (a partial line, hardlink targets): len bytes at buf, room for cap. */
typedef struct {
  uint8_t *buf;
  size_t len, cap;
} core_bytes;

/* Appends p[0, n) (fails with LIMIT "out of memory" past SIZE_MAX). */
void core_bytes_append(core_bytes *b, const uint8_t *p, size_t n);

/* Output: finished image bytes, in order (the host writes them to the file and the hasher). */
void core_output(const uint8_t *p, size_t n);

/* Byte-wise comparison as Buffer.compare: by bytes, then by length. */
int core_compare_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
