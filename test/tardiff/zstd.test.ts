import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { parseZstdFrameHeader } from '../../src/tardiff/zstd.js';
import { isOdhError } from '../../src/util/errors.js';
import { vectorPath } from '../helpers/shared.js';

/** The ZstdDict frames of spec oci-delta §8.4 vectors B and C (the payloads after `05 21` / `05 20`). */
function vectorFrame(name: string): Buffer {
  const hex: Record<string, string> = {
    B: '28b52ffd2428a50000505472656472756e6361740310050b07bbe38a2ba6862dde',
    C: '28b52ffd04009d00004872656472756e6361740310050b07bbe33620a6862dde',
  };
  return Buffer.from(hex[name]!, 'hex');
}

describe('zstd frame header (RFC 8878 §3.1.1.1)', () => {
  it('§8.4 B: single segment, content size 40, checksum', () => {
    const h = parseZstdFrameHeader(vectorFrame('B'));
    expect(h).toMatchObject({
      singleSegment: true,
      contentSize: 40n,
      windowSize: 40n,
      checksum: true,
      dictId: 0,
      headerSize: 6,
    });
  });

  it('§8.4 C: window descriptor (1 KiB), no content size, checksum', () => {
    const h = parseZstdFrameHeader(vectorFrame('C'));
    expect(h).toMatchObject({
      singleSegment: false,
      windowSize: 1024n,
      checksum: true,
      dictId: 0,
      headerSize: 6,
    });
    expect(h.contentSize).toBeUndefined();
  });

  it('window log 29 and 30 vectors declare 2^29 and 2^30', () => {
    for (const [name, log] of [
      ['v2-zstddict-windowlog-29', 29n],
      ['window-too-large', 30n],
    ] as const) {
      const file = readFileSync(vectorPath('tardiff', name, 'delta.tardiff'));
      // the outer frame stores its block raw, so the inner frame header appears verbatim in the file
      const inner = Buffer.from(
        name === 'window-too-large' ? '28b52ffd04a0cd0000' : '28b52ffd0498cd0000',
        'hex',
      );
      expect(file.includes(inner)).toBe(true);
      expect(parseZstdFrameHeader(inner).windowSize).toBe(1n << log);
    }
  });

  it('2-byte content size field adds 256; 4-byte dictionary id is read little-endian', () => {
    const h = parseZstdFrameHeader(
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x63, 0x01, 0x02, 0x03, 0x04, 0x00, 0x01]),
    );
    expect(h).toMatchObject({
      singleSegment: true,
      dictId: 0x04030201,
      contentSize: 256n + 256n,
      headerSize: 11,
    });
  });

  const bad: [string, number[], string][] = [
    ['bad magic', [0x28, 0xb5, 0x2f, 0xfe, 0], 'FORMAT'],
    ['reserved bit', [0x28, 0xb5, 0x2f, 0xfd, 0x08, 0x00], 'FORMAT'],
    ['cut header', [0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x00], 'TRUNCATED'],
    ['magic prefix only', [0x28, 0xb5], 'TRUNCATED'],
  ];
  for (const [name, bytes, code] of bad) {
    it(`${name} → ${code}`, () => {
      let err: unknown;
      try {
        parseZstdFrameHeader(Buffer.from(bytes), { op: 3 });
      } catch (e) {
        err = e;
      }
      expect(isOdhError(err)).toBe(true);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(/op #3/);
    });
  }
});
