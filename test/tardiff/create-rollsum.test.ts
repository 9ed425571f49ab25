import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchRollsum, RollsumSplitter, rollsumBlobs } from '../../src/tardiff/create/rollsum.js';
import { seededBytes } from '../helpers/images.js';

// spec oci-delta §5.6: bup-style rollsum (window 128, char offset 31), split at (s2 & 0x1fff) == 0x1fff
// or 32768 bytes, state reset after each split.

describe('rollsum blobs', () => {
  it('zeros never hit the split pattern: s2 stays 128·127·31 = 503936 (& 0x1fff = 4224), so 32 KiB blobs', async () => {
    const b = await rollsumBlobs([Buffer.alloc(100_000)]);
    expect([...b.sizes]).toEqual([32768, 32768, 32768, 1696]);
    expect([...b.offsets]).toEqual([0, 32768, 65536, 98304]);
    expect(b.crcs[0]).toBe(crc32(Buffer.alloc(32768)));
    expect(b.crcs[3]).toBe(crc32(Buffer.alloc(1696)));
  });

  it('blobs tile the content, each at most 32 KiB, with the CRC-32 of its bytes', async () => {
    const data = seededBytes('rollsum', 300_000);
    const b = await rollsumBlobs([data]);
    expect(b.count).toBeGreaterThan(20); // ~8 KiB average on random data
    let at = 0;
    for (let i = 0; i < b.count; i++) {
      expect(b.offsets[i]).toBe(at);
      expect(b.sizes[i]).toBeLessThanOrEqual(32768);
      expect(b.crcs[i]).toBe(crc32(data.subarray(at, at + b.sizes[i]!)));
      at += b.sizes[i]!;
    }
    expect(at).toBe(data.length);
  });

  it('does not depend on how the content is chunked', () => {
    const data = seededBytes('chunks', 70_000);
    const whole = new RollsumSplitter();
    whole.push(data);
    const ref = whole.finish();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 30 }), (cuts) => {
        const s = new RollsumSplitter();
        let p = 0;
        for (const c of cuts) {
          s.push(data.subarray(p, Math.min(data.length, p + c)));
          p = Math.min(data.length, p + c);
        }
        s.push(data.subarray(p));
        const got = s.finish();
        expect([...got.sizes]).toEqual([...ref.sizes]);
        expect([...got.crcs]).toEqual([...ref.crcs]);
      }),
      { numRuns: 40 },
    );
  });

  it('content-defined: an insertion shifts offsets but later blobs still match', async () => {
    const old = seededBytes('shift', 200_000);
    const neu = Buffer.concat([old.subarray(0, 50_000), Buffer.from('inserted bytes'), old.subarray(50_000)]);
    const { matches, ratio } = matchRollsum(await rollsumBlobs([neu]), await rollsumBlobs([old]));
    expect(ratio).toBeGreaterThan(80);
    for (const m of matches) {
      expect(
        neu
          .subarray(m.targetOffset, m.targetOffset + m.size)
          .equals(old.subarray(m.sourceOffset, m.sourceOffset + m.size)),
      ).toBe(true);
    }
    const late = matches.filter((m) => m.targetOffset > 60_000);
    expect(late.every((m) => m.targetOffset === m.sourceOffset + 14)).toBe(true);
  });

  it('unrelated content: ratio 0', async () => {
    const r = matchRollsum(
      await rollsumBlobs([seededBytes('x', 100_000)]),
      await rollsumBlobs([seededBytes('y', 100_000)]),
    );
    expect(r).toEqual({ matches: [], ratio: 0 });
  });
});
