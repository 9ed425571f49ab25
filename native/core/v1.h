/*
 * The composefs V1 image writer: a byte-exact clone of C mkcomposefs 1.0.8's EROFS output
 * (the C form of src/composefs/format/erofs/write-v1.ts streamErofsV1).
 */
#ifndef ODH_V1_H
#define ODH_V1_H

#include "flat.h"

typedef struct {
  int32_t min_version, max_version; /* -1 = not given (V1PlanOptions minVersion/maxVersion undefined) */
  int32_t hash;                     /* 0 = not given, 1 = sha256, 2 = sha512 */
} v1_options;

/* Plans (rewriting t in place, as planV1 does), measures, then emits the whole image through
 * core_output in order. Returns the image size in bytes. t must be indexed (flat_index_directories). */
uint64_t v1_write(flat_tree *t, const v1_options *o);

#endif
