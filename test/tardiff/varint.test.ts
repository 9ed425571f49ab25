import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { decodeUvarint, encodeUvarint, UvarintDecoder } from '../../src/tardiff/varint.js';
import { isOdhError } from '../../src/util/errors.js';

const b = (...bytes: number[]) => Buffer.from(bytes);

describe('uvarint (spec oci-delta §8.1, Rust tests.rs vectors)', () => {
  const table: [Buffer, bigint][] = [
    [b(0x00), 0n],
    [b(0x01), 1n],
    [b(0x7f), 127n],
    [b(0x80, 0x01), 128n],
    [b(0xac, 0x02), 300n],
    [b(0xff, 0x7f), 16383n],
    [b(0x80, 0x80, 0x01), 16384n],
    [Buffer.concat([Buffer.alloc(9, 0xff), b(0x01)]), (1n << 64n) - 1n],
  ];
  for (const [bytes, value] of table) {
    it(`${bytes.toString('hex')} → ${value}`, () => {
      expect(decodeUvarint(bytes)).toEqual({ value, length: bytes.length });
      expect(encodeUvarint(value).equals(bytes)).toBe(true);
    });
  }

  it('rejects 10 and 11 continuation bytes and a 10th byte > 1', () => {
    for (const bad of [
      Buffer.alloc(10, 0x80),
      Buffer.alloc(11, 0x80),
      Buffer.concat([Buffer.alloc(9, 0xff), b(2)]),
    ]) {
      let err: unknown;
      try {
        decodeUvarint(bad);
      } catch (e) {
        err = e;
      }
      expect(isOdhError(err) && err.code === 'FORMAT').toBe(true);
      expect((err as Error).message).toMatch(/varint/);
    }
  });

  it('reports incomplete input ([80] and []) as needing more bytes', () => {
    expect(decodeUvarint(b(0x80))).toBeNull();
    expect(decodeUvarint(b())).toBeNull();
  });

  it('decodes at an offset and stops at the first final byte', () => {
    expect(decodeUvarint(b(0xaa, 0xac, 0x02, 0x05), 1)).toEqual({ value: 300n, length: 2 });
  });

  it('incremental decoder matches one-shot decoding and resets between values', () => {
    const dec = new UvarintDecoder();
    const values: bigint[] = [];
    for (const byte of b(0xac, 0x02, 0x00, 0xff, 0x7f)) {
      const v = dec.push(byte);
      if (v !== undefined) values.push(v);
    }
    expect(values).toEqual([300n, 0n, 16383n]);
    expect(dec.pending).toBe(0);
  });

  it('encode/decode round-trips every u64 (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => {
        const enc = encodeUvarint(v);
        expect(enc.length).toBeLessThanOrEqual(10);
        expect(decodeUvarint(enc)).toEqual({ value: v, length: enc.length });
      }),
    );
  });

  it('refuses to encode values outside u64', () => {
    expect(() => encodeUvarint(-1n)).toThrow(RangeError);
    expect(() => encodeUvarint(1n << 64n)).toThrow(RangeError);
  });
});
