import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzzyPrefixOf, isDeltaCandidate } from '../../src/tardiff/create/basenames.js';
import { nearestSimilar, sizeSimilar } from '../../src/tardiff/create/match.js';
import type { OldFile } from '../../src/tardiff/create/index.js';
import { indexOldImage, layerFile } from '../../src/tardiff/create/index.js';
import { Readable } from 'node:stream';
import { buildLayerTar, seededBytes } from '../helpers/images.js';
import { opCounts } from './create-checker.js';
import { cleanupTempDirs, oldImage, roundTrip, tempDir } from './create-roundtrip.js';

// spec oci-delta §5.3 and the analysis cases of §8.3.

afterAll(cleanupTempDirs);

describe('matching rules', () => {
  it('size-similar: 1000 vs 50 KiB yes, 100 KiB vs 1100 KiB no', () => {
    expect(sizeSimilar(1000, 50 * 1024)).toBe(true);
    expect(sizeSimilar(100 * 1024, 1100 * 1024)).toBe(false);
    expect(sizeSimilar(100 * 1024, 999 * 1024)).toBe(true);
    expect(sizeSimilar(65535, 1)).toBe(true);
    expect(sizeSimilar(65536, 1)).toBe(false);
  });

  it('.xz and .bz2 are not delta candidates', () => {
    expect(isDeltaCandidate([Buffer.from('data.xz')])).toBe(false);
    expect(isDeltaCandidate([Buffer.from('a.txt'), Buffer.from('b.bz2')])).toBe(false);
    expect(isDeltaCandidate([Buffer.from('a.xz.txt')])).toBe(true);
  });

  it('fuzzy prefix runs up to and including the first dot', () => {
    expect(fuzzyPrefixOf(Buffer.from('libcurl.so.4.7.0'))?.toString()).toBe('libcurl.');
    expect(fuzzyPrefixOf(Buffer.from('file1.txt'))?.toString()).toBe('file1.');
    expect(fuzzyPrefixOf(Buffer.from('Makefile'))).toBeNull();
  });
});

describe('fuzzy choice by size (spec oci-delta §5.3)', () => {
  it('the indexed nearest-size lookup equals the all-pairs rule: smallest |Δsize| among similar sizes, ties → later source', () => {
    const sizeArb = fc.oneof(fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 1, max: 5_000_000 }));
    fc.assert(
      fc.property(fc.array(sizeArb, { maxLength: 40 }), sizeArb, (sizes, target) => {
        const files = sizes.map((size, order) => ({ size, order }) as unknown as OldFile);
        let want: OldFile | undefined;
        for (const f of files) {
          if (!sizeSimilar(f.size, target)) continue;
          const d = Math.abs(f.size - target);
          if (
            !want ||
            d < Math.abs(want.size - target) ||
            (d === Math.abs(want.size - target) && f.order > want.order)
          ) {
            want = f;
          }
        }
        const bucket = [...files].sort((a, b) => a.size - b.size || a.order - b.order);
        expect(nearestSimilar(bucket, target)).toBe(want);
      }),
      { numRuns: 500 },
    );
  });
});

describe('analysis (spec oci-delta §8.3)', () => {
  const OBJ = seededBytes('abc123', 30_000);

  it('hardlink names in tar order; Open name is the regular entry path; mode 0600 files unusable', async () => {
    const old = await oldImage([
      {
        entries: [
          { type: 'file', path: 'blobs/sha256/abc123', content: OBJ },
          { type: 'hardlink', path: 'real/file.txt', target: 'blobs/sha256/abc123' },
          { type: 'hardlink', path: 'other/link.txt', target: 'blobs/sha256/abc123' },
          { type: 'file', path: 'etc/private', content: seededBytes('private', 5000), mode: 0o600 },
        ],
      },
    ]);
    const oldIndex = await indexOldImage(old.blobPaths.map(layerFile), { tempDir: await tempDir() });
    try {
      expect(oldIndex.files).toHaveLength(1);
      const f = oldIndex.files[0]!;
      expect(f.entry.paths.map(String)).toEqual(['blobs/sha256/abc123', 'real/file.txt', 'other/link.txt']);
      expect(f.basenames.map(String)).toEqual(['abc123', 'file.txt', 'link.txt']);
      expect(f.openName.toString()).toBe('blobs/sha256/abc123');
      expect(oldIndex.atPath(Buffer.from('other/link.txt'))).toBe(f);
      expect(oldIndex.atPath(Buffer.from('etc/private'))).toBeUndefined();
    } finally {
      await oldIndex.dispose();
    }
  });

  it('a new object hardlinked as real/file.txt matches the old file through that name', async () => {
    const old = await oldImage([
      {
        entries: [
          { type: 'file', path: 'blobs/sha256/abc123', content: OBJ },
          { type: 'hardlink', path: 'real/file.txt', target: 'blobs/sha256/abc123' },
        ],
      },
    ]);
    const changed = Buffer.from(OBJ);
    changed.fill(0, 100, 200);
    const rt = await roundTrip(
      old,
      [
        { type: 'file', path: 'blobs/sha256/def456', content: changed },
        { type: 'hardlink', path: 'real/file.txt', target: 'blobs/sha256/def456' },
      ],
      'zstd',
    );
    expect(opCounts(rt.report).ZstdDict).toBe(1);
    expect(rt.report.opened).toEqual(['blobs/sha256/abc123']);
  });
});

describe('Open name limit (spec oci-delta §5.7)', () => {
  it('a file whose only name exceeds 4096 bytes is not a source', async () => {
    const long = `${'d'.repeat(200)}/`.repeat(21) + 'f'; // 4222 bytes
    const short = seededBytes('short name', 3000);
    const tar = await buildLayerTar([
      { type: 'file', path: long, content: seededBytes('long name', 3000) },
      { type: 'file', path: 'ok', content: short },
    ]);
    const d = await tempDir();
    const oldIndex = await indexOldImage([() => Readable.from([tar])], { tempDir: d });
    try {
      expect(oldIndex.files.map((f) => f.openName.toString())).toEqual(['ok']);
    } finally {
      await oldIndex.dispose();
    }
  });
});
