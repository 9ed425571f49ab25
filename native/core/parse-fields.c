/* Field-level helpers of the dumpfile parser: line splitting, strtoull, unescaping, message
 * quoting (the rules of src/composefs/dumpfile/fields.ts and escape.ts, which the composefs-rs
 * parser in TypeScript still uses). */
#include "parse-internal.h"

_Noreturn void dp_fail(int64_t line) {
  if (line >= 0) err_line(line);
  core_fail();
}

_Noreturn void dp_syntax(const char *message, int64_t line) {
  err_begin(CORE_FORMAT);
  err_str(message);
  dp_fail(line);
}

size_t dp_mul(size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) core_failf(CORE_LIMIT, "out of memory");
  return n * size;
}

/* Fields end at single spaces; after the 11th the rest of the line is the xattr area (§4.2). */
int64_t dp_split(const uint8_t *line, size_t len, size_t b[2 * F_COUNT]) {
  size_t pos = 0;
  for (int f = 0; f < F_COUNT; f++) {
    if (pos > len) {
      b[2 * f] = len;
      b[2 * f + 1] = len;
      continue;
    }
    size_t sp = pos;
    while (sp < len && line[sp] != ' ') sp++;
    b[2 * f] = pos;
    b[2 * f + 1] = sp;
    pos = sp + 1;
  }
  return pos <= len ? (int64_t)pos : -1;
}

/* C isspace() in the C locale. */
static int is_c_space(uint8_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0d); }

int dp_strtoull(const uint8_t *p, size_t n, unsigned base, uint64_t *out) {
  size_t i = 0;
  while (i < n && is_c_space(p[i])) i++;
  int negative = 0;
  if (i < n && (p[i] == '+' || p[i] == '-')) {
    negative = p[i] == '-';
    i++;
  }
  size_t first = i;
  uint64_t v = 0;
  int overflow = 0;
  for (; i < n; i++) {
    unsigned d = (unsigned)p[i] - '0';
    if (d >= base) break; /* also bytes below '0' (unsigned wrap) */
    if (v > (UINT64_MAX - d) / base) overflow = 1;
    else v = v * base + d;
  }
  if (i == first || i != n) return 0;
  if (overflow) v = UINT64_MAX;
  else if (negative) v = (uint64_t)0 - v;
  *out = v;
  return 1;
}

int dp_hex(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t dp_unescape(const uint8_t *src, size_t n, uint8_t *out, const char *what, int64_t line) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = src[i];
    if (c != '\\') {
      out[o++] = c;
      continue;
    }
    if (++i >= n) {
      err_begin(CORE_FORMAT);
      err_str("trailing backslash in ");
      err_str(what);
      dp_fail(line);
    }
    uint8_t e = src[i];
    switch (e) {
    case '\\': out[o++] = '\\'; break;
    case 'n': out[o++] = '\n'; break;
    case 'r': out[o++] = '\r'; break;
    case 't': out[o++] = '\t'; break;
    case 'x': {
      int hi = i + 1 < n ? dp_hex(src[i + 1]) : -1;
      int lo = i + 2 < n ? dp_hex(src[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        err_begin(CORE_FORMAT);
        err_str("invalid \\x escape in ");
        err_str(what);
        dp_fail(line);
      }
      out[o++] = (uint8_t)(hi << 4 | lo);
      i += 2;
      break;
    }
    default:
      err_begin(CORE_FORMAT);
      err_str("invalid escape \\");
      err_bytes(&e, 1);
      err_str(" in ");
      err_str(what);
      dp_fail(line);
    }
  }
  return o;
}

size_t dp_nul_len(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n && p[i] != 0) i++;
  return i;
}

int dp_has_escape(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] == '\\') return 1;
  return 0;
}

