import { describe, it, expect } from 'vitest';
import { xxh32 } from '../../src/composefs/format/erofs/xxh32.js';
import { XATTR_FILTER_SEED } from '../../src/composefs/format/erofs/format.js';

// spec composefs-v2 §8.5 (checked upstream against the reference xxHash C library) and composefs-v1 §7.2.
const VECTORS: [string, number, number, number][] = [
  ['selinux', 6, 0x9490146b, 11],
  ['capability', 6, 0x8c47ac5d, 29],
  ['', 2, 0x0857597e, 30],
  ['foo', 1, 0x6b6ab58c, 12],
  ['overlay.metacopy', 4, 0xdbe5e05f, 31],
  ['overlay.redirect', 4, 0x887ec271, 17],
  ['overlay.overlay.opaque', 4, 0x207b5265, 5],
  ['overlay.opaque', 4, 0x4ce0a7f4, 20],
  ['overlay.overlay.whiteout', 4, 0x54a3e364, 4],
  ['overlay.overlay.whiteouts', 4, 0x46dd3e0c, 12],
  ['overlay.whiteout', 1, 0xed142e09, 9],
  ['overlay.whiteouts', 1, 0xd11b80b4, 20],
  ['overlay.opaque', 1, 0xf8dc99ea, 10],
  ['lustre.q', 0, 0x9b09e6ac, 12],
];

describe('xxh32 name-filter hash', () => {
  it.each(VECTORS)('suffix %j with prefix index %d', (suffix, index, hash, bit) => {
    const h = xxh32(Buffer.from(suffix, 'latin1'), XATTR_FILTER_SEED + index);
    expect(h).toBe(hash);
    expect(h % 32).toBe(bit);
  });

  it('hashes inputs of 16 bytes and more (the 4-lane path) like the reference', () => {
    // Reference xxh32 test values: XXH32("", 0) = 0x02cc5d05; the spec's 22/24/25-byte suffixes above
    // already exercise the 16-byte stripe loop.
    expect(xxh32(Buffer.alloc(0), 0)).toBe(0x02cc5d05);
  });
});
