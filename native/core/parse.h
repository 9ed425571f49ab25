/*
 * Dumpfile text → flat tree (flat.h) with the rules of C `mkcomposefs --from-file` 1.0.8
 * (spec composefs-v1 §4), strict (CFS_PARSE_STRICT) or lenient. Ported from the TypeScript parser it
 * replaced, with the same accepted inputs, tree and rejections (code, message, line); the tests
 * hold it to C mkcomposefs.
 *
 * Input is fed in chunks of any size; only the unfinished last line is kept between calls.
 * Every rejection is a core failure (core_fail): FORMAT or LIMIT, with the dumpfile line when the
 * TypeScript names one. The file name is the host's to add.
 */
#ifndef ODH_PARSE_H
#define ODH_PARSE_H

#include "flat.h"

typedef struct dump_parser dump_parser;

/* strict: CFS_PARSE_STRICT rules; digest_bytes: 32 or 64; expected_lines: capacity hint (0 ok). */
dump_parser *dump_parser_new(int strict, int digest_bytes, int32_t expected_lines);
/* Feeds the next bytes of the dumpfile; lines may span calls; any chunk size, including 1 byte. */
void dump_parser_feed(dump_parser *p, const uint8_t *data, size_t n);
/* End of input (the last line may lack its newline, as lines.ts handles). Returns the finished tree,
 * directories indexed, exactly as parseDumpfileFlat returns it. The parser itself is freed. */
flat_tree *dump_parser_finish(dump_parser *p);

#endif
