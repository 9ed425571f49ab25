import { afterAll, describe, expect, it } from 'vitest';
import { opCounts } from './create-checker.js';
import { cleanupTempDirs, oldImage, roundTrip } from './create-roundtrip.js';
import { encodeZstdDictPatch, patchWindowLog } from '../../src/tardiff/create/zstd-patch.js';
import { decompress as zstdDecompress } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';

// Cases mirrored from upstream tar-diff's Go tests (spec oci-delta §8.3).

afterAll(cleanupTempDirs);

/** Decodes a patch against `dict` the way an applier does (raw-content dictionary). */
function applyPatch(patch: Buffer, dict: Buffer): Buffer {
  const d = new binding.DCtx();
  d.setParameter(binding.DParameter.windowLogMax, 29);
  d.loadDictionary(dict);
  const out = Buffer.alloc(1 << 22);
  const [, produced] = d.decompressStream(out, patch);
  return out.subarray(0, produced);
}

describe('ZstdDict patches (spec oci-delta §8.3 zstd)', () => {
  it('round-trips fox → cat', () => {
    const old = Buffer.from('The quick brown fox jumps over the lazy dog');
    const neu = Buffer.from('The quick red fox runs over the lazy cat');
    const patch = encodeZstdDictPatch(old, neu);
    expect(applyPatch(patch, old).toString()).toBe(neu.toString());
  });

  it('uses the dictionary: 204800 bytes with two flipped bytes → a patch of at most 200 bytes', () => {
    const old = Buffer.from('abcdefghijklmnop'.repeat(12800));
    const neu = Buffer.from(old);
    neu[100] = neu[100]! ^ 0xff;
    neu[101] = neu[101]! ^ 0xff;
    const patch = encodeZstdDictPatch(old, neu);
    expect(patch.length).toBeLessThanOrEqual(200);
    expect(applyPatch(patch, old).equals(neu)).toBe(true);
    // the frame is useless without the dictionary
    expect(() => zstdDecompress(patch)).toThrow();
  });

  it('window log is ceil(log2(size)) clamped to [10, 29]', () => {
    expect(patchWindowLog(100)).toBe(10);
    expect(patchWindowLog(1024)).toBe(10);
    expect(patchWindowLog(1025)).toBe(11);
    expect(patchWindowLog(1 << 20)).toBe(20);
    expect(patchWindowLog(2 ** 30)).toBe(29);
  });

  it('refuses a source that starts with the zstd dictionary magic', () => {
    const old = Buffer.concat([Buffer.from([0x37, 0xa4, 0x30, 0xec]), Buffer.alloc(1000, 1)]);
    expect(() => encodeZstdDictPatch(old, Buffer.alloc(1000, 2))).toThrow(/dictionary magic/);
  });
});

describe('creator round trips (spec oci-delta §8.3 mode behaviour)', () => {
  it('ZstdDict then Copy of the same source', async () => {
    const shared = Buffer.from('The quick brown fox jumps over the lazy dog\n'.repeat(40));
    const changed = Buffer.from(shared);
    changed[10] = changed[10]! ^ 0xff;
    const old = await oldImage([{ entries: [{ type: 'file', path: 'shared.txt', content: shared }] }]);
    const rt = await roundTrip(
      old,
      [
        { type: 'file', path: 'shared.txt', content: changed },
        { type: 'file', path: 'copy.txt', content: shared },
      ],
      'zstd',
    );
    const ops = opCounts(rt.report);
    expect(ops).toMatchObject({ Open: 1, ZstdDict: 1, Seek: 1, Copy: 1, AddData: 0 });
    // the Seek rewinds from the end of the source (where ZstdDict leaves it) to 0
    const seek = rt.report.ops.find((o) => o.op === 4)!;
    expect(seek.operand).toBe(0);
    expect(rt.result.sourcesUsed).toEqual(['shared.txt']);
  });

  it('zstd mode writes tardf2 even when no ZstdDict op is used; copy mode writes tardf1', async () => {
    const old = await oldImage([{ entries: [{ type: 'file', path: 'a.txt', content: 'x'.repeat(5000) }] }]);
    const entries = [{ type: 'file' as const, path: 'b.txt', content: 'brand new content' }];
    const z = await roundTrip(old, entries, 'zstd');
    expect(z.delta.subarray(0, 8).toString('latin1')).toBe('tardf2\n\0');
    expect(opCounts(z.report).ZstdDict).toBe(0);
    const c = await roundTrip(old, entries, 'copy');
    expect(c.delta.subarray(0, 8).toString('latin1')).toBe('tardf1\n\0');
  });
});
