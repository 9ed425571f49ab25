/* The parts of core.h that do not depend on the build: failures, sorting, byte comparison. */
#include "core.h"

core_error core_err;

/* Whether the message / the path was cut (reset by err_begin). */
static int message_full, path_full;

void err_begin(int code) {
  core_err.code = code;
  core_err.line = -1;
  core_err.message_len = 0;
  core_err.has_path = 0;
  core_err.path_len = 0;
  message_full = path_full = 0;
}

/* Appends n bytes to buf (at *len, capacity cap) as they are, or as latin1 characters (each byte
 * >= 0x80 as its two-byte UTF-8 form); truncated at the capacity, never inside a character. */
static void append(char *buf, uint32_t *len, size_t cap, int *full, const uint8_t *p, size_t n, int latin1) {
  for (size_t i = 0; i < n && !*full; i++) {
    uint8_t c = p[i];
    size_t width = latin1 && c >= 0x80 ? 2 : 1;
    if (*len + width > cap) {
      *full = 1; /* nothing after a cut, not even a shorter character */
    } else if (width == 2) {
      buf[(*len)++] = (char)(0xc0 | (c >> 6));
      buf[(*len)++] = (char)(0x80 | (c & 0x3f));
    } else {
      buf[(*len)++] = (char)c;
    }
  }
}

void err_bytes(const uint8_t *p, size_t n) {
  append(core_err.message, &core_err.message_len, CORE_MESSAGE_MAX, &message_full, p, n, 1);
}

void err_str(const char *s) {
  append(core_err.message, &core_err.message_len, CORE_MESSAGE_MAX, &message_full, (const uint8_t *)s, strlen(s), 0);
}

void err_u64(uint64_t v) {
  uint8_t digits[20];
  size_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = (uint8_t)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  err_bytes(digits + sizeof digits - n, n);
}

void err_i64(int64_t v) {
  if (v < 0) {
    err_str("-");
    err_u64((uint64_t)0 - (uint64_t)v);
  } else {
    err_u64((uint64_t)v);
  }
}

void err_json(const uint8_t *p, size_t n) {
  static const char HEX[] = "0123456789abcdef";
  err_str("\"");
  size_t run = 0; /* start of the bytes not yet appended */
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    const char *esc = NULL;
    char u[7];
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\b') esc = "\\b";
    else if (c == '\f') esc = "\\f";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else if (c < 0x20) {
      memcpy(u, "\\u00", 4);
      u[4] = HEX[c >> 4];
      u[5] = HEX[c & 15];
      u[6] = 0;
      esc = u;
    }
    if (esc == NULL) continue;
    err_bytes(p + run, i - run);
    err_str(esc);
    run = i + 1;
  }
  err_bytes(p + run, n - run);
  err_str("\"");
}

void err_line(int64_t line) { core_err.line = line; }

void err_path_bytes(const uint8_t *p, size_t n) {
  append(core_err.path, &core_err.path_len, CORE_PATH_MAX, &path_full, p, n, 1);
  core_err.has_path = 1;
}

_Noreturn void core_failf(int code, const char *message) {
  err_begin(code);
  err_str(message);
  core_fail();
}

int core_compare_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n == 0 ? 0 : memcmp(a, b, n);
  if (c != 0) return c < 0 ? -1 : 1;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Bottom-up merge sort through one scratch array: stable, O(n log n), no recursion. */
void core_sort_i32(int32_t *a, size_t n, core_cmp_i32 cmp, const void *ctx) {
  if (n < 2) return;
  /* Already sorted (the usual case for directory entries): nothing to do. */
  size_t k = 1;
  while (k < n && cmp(ctx, a[k - 1], a[k]) <= 0) k++;
  if (k == n) return;
  int32_t *tmp = core_alloc(n * sizeof *tmp);
  int32_t *src = a, *dst = tmp;
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n;
      size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, o = lo;
      while (i < mid && j < hi) dst[o++] = cmp(ctx, src[j], src[i]) < 0 ? src[j++] : src[i++];
      while (i < mid) dst[o++] = src[i++];
      while (j < hi) dst[o++] = src[j++];
    }
    int32_t *swap = src;
    src = dst;
    dst = swap;
  }
  if (src != a) memcpy(a, src, n * sizeof *a);
  core_free(tmp);
}

void core_bytes_append(core_bytes *b, const uint8_t *p, size_t n) {
  if (n > SIZE_MAX - b->len) core_failf(CORE_LIMIT, "out of memory");
  size_t need = b->len + n;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->buf = core_grow(b->buf, b->len, cap);
    b->cap = cap;
  }
  if (n) memcpy(b->buf + b->len, p, n);
  b->len = need;
}
