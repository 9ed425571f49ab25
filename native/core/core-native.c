/* core.h for a native build (core-cli.c): libc memory, failures printed, output to a FILE. */
#include <stdio.h>
#include <stdlib.h>
#include "core.h"

FILE *core_native_out;

void *core_alloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) core_failf(CORE_LIMIT, "out of memory");
  return p;
}

void *core_grow(void *p, size_t old_n, size_t new_n) {
  void *q = realloc(p, new_n ? new_n : 1);
  if (!q) core_failf(CORE_LIMIT, "out of memory");
  if (new_n > old_n) memset((char *)q + old_n, 0, new_n - old_n);
  return q;
}

void core_free(void *p) { free(p); }

void core_output(const uint8_t *p, size_t n) {
  if (core_native_out && fwrite(p, 1, n, core_native_out) != n) {
    fprintf(stderr, "core: write failed\n");
    exit(1);
  }
}

static const char *const CODE_NAMES[] = {"?", "FORMAT", "LIMIT", "USAGE"};

_Noreturn void core_fail(void) {
  fprintf(stderr, "%s: %.*s", CODE_NAMES[core_err.code < 4 ? core_err.code : 0], (int)core_err.message_len, core_err.message);
  if (core_err.has_path) fprintf(stderr, " (path %.*s)", (int)core_err.path_len, core_err.path);
  if (core_err.line >= 0) fprintf(stderr, " (line %lld)", (long long)core_err.line);
  fputc('\n', stderr);
  exit(1);
}
