/* 32-bit xxHash (XXH32), for the EROFS xattr name filter (spec composefs-v2 §4.3, §8.5); the C form
 * of xxh32.ts, from the published algorithm. All arithmetic is mod 2^32. */
#include "v1-internal.h"

#define P1 0x9e3779b1u
#define P2 0x85ebca77u
#define P3 0xc2b2ae3du
#define P4 0x27d4eb2fu
#define P5 0x165667b1u

static inline uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static inline uint32_t round32(uint32_t acc, uint32_t lane) { return rotl(acc + lane * P2, 13) * P1; }
static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t v1_xxh32(const uint8_t *data, size_t len, uint32_t seed) {
  size_t p = 0;
  uint32_t h;
  if (len >= 16) {
    uint32_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    for (; p + 16 <= len; p += 16) {
      v1 = round32(v1, le32(data + p));
      v2 = round32(v2, le32(data + p + 4));
      v3 = round32(v3, le32(data + p + 8));
      v4 = round32(v4, le32(data + p + 12));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
  } else {
    h = seed + P5;
  }
  h += (uint32_t)len;
  for (; p + 4 <= len; p += 4) h = rotl(h + le32(data + p) * P3, 17) * P4;
  for (; p < len; p++) h = rotl(h + data[p] * P5, 11) * P1;
  h ^= h >> 15;
  h *= P2;
  h ^= h >> 13;
  h *= P3;
  h ^= h >> 16;
  return h;
}
