/*
 * The whole core natively: dumpfile → V1 image, as `odh composefs mkfs --format v1` runs it in
 * WebAssembly. For sanitizer runs and for comparing the two builds (test/composefs/core-native.test.ts).
 *
 *   core-cli [--strict] [--digest-bytes 32|64] [--min-version N] [--max-version N]
 *            [--hash sha256|sha512] DUMPFILE OUT
 *
 * The dumpfile is fed in 64 KiB chunks. A failure prints `CODE: message (path P) (line N)` to stderr
 * and exits 1 (core-native.c); usage errors exit 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../parse.h"
#include "../v1.h"

extern FILE *core_native_out;

static int usage(void) {
  fprintf(stderr, "usage: core-cli [--strict] [--digest-bytes 32|64] [--min-version N] [--max-version N] "
                  "[--hash sha256|sha512] DUMPFILE OUT\n");
  return 2;
}

int main(int argc, char **argv) {
  int strict = 0, digest_bytes = 32;
  v1_options o = {-1, -1, 0};
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--strict") == 0) strict = 1;
    else if (i + 1 >= argc) return usage();
    else if (strcmp(a, "--digest-bytes") == 0) digest_bytes = atoi(argv[++i]);
    else if (strcmp(a, "--min-version") == 0) o.min_version = atoi(argv[++i]);
    else if (strcmp(a, "--max-version") == 0) o.max_version = atoi(argv[++i]);
    else if (strcmp(a, "--hash") == 0) {
      const char *h = argv[++i];
      o.hash = strcmp(h, "sha256") == 0 ? 1 : strcmp(h, "sha512") == 0 ? 2 : -1;
      if (o.hash < 0) return usage();
    } else return usage();
  }
  if (argc - i != 2 || (digest_bytes != 32 && digest_bytes != 64)) return usage();
  FILE *in = fopen(argv[i], "rb");
  if (!in) {
    perror(argv[i]);
    return 1;
  }
  dump_parser *p = dump_parser_new(strict, digest_bytes, 0);
  static uint8_t buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) dump_parser_feed(p, buf, n);
  fclose(in);
  flat_tree *t = dump_parser_finish(p);
  core_native_out = fopen(argv[i + 1], "wb");
  if (!core_native_out) {
    perror(argv[i + 1]);
    return 1;
  }
  v1_write(t, &o);
  if (fclose(core_native_out) != 0) {
    perror(argv[i + 1]);
    return 1;
  }
  return 0;
}
