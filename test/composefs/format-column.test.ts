import { describe, it, expect } from 'vitest';
import { byte, checkRange, i32, i64, item, u32, u64, u8 } from '../../src/composefs/format/column.js';

// The checked reads the V1 writer uses instead of bare `a[i]`: in range they return the element
// (0 included), out of range they throw instead of handing `undefined` on as a number.
describe('format column accessors', () => {
  it('return the element in range, zero included', () => {
    expect(i32(Int32Array.of(-7, 0), 0)).toBe(-7);
    expect(i32(Int32Array.of(-7, 0), 1)).toBe(0);
    expect(u32(Uint32Array.of(0xffffffff), 0)).toBe(0xffffffff);
    expect(u8(Uint8Array.of(0, 255), 1)).toBe(255);
    expect(byte(Buffer.from('./'), 1)).toBe(0x2f);
    expect(u64(BigUint64Array.of(2n ** 64n - 1n), 0)).toBe(2n ** 64n - 1n);
    expect(i64(BigInt64Array.of(-(2n ** 63n)), 0)).toBe(-(2n ** 63n));
    expect(item(['a', 'b'], 1)).toBe('b');
  });

  it('throw on an index outside the column', () => {
    const a = new Int32Array(4);
    for (const i of [-1, 4, 1.5, Number.NaN]) expect(() => i32(a, i)).toThrow(/internal: .*out of range/);
    expect(() => u32(new Uint32Array(0), 0)).toThrow(/out of range \(length 0\)/);
    expect(() => u8(new Uint8Array(2), 2)).toThrow(/out of range/);
    expect(() => byte(Buffer.alloc(3), 3)).toThrow(/out of range/);
    expect(() => u64(new BigUint64Array(1), 1)).toThrow(/out of range/);
    expect(() => i64(new BigInt64Array(1), -1)).toThrow(/out of range/);
    expect(() => item([], 0)).toThrow(/out of range/);
  });

  it('checkRange accepts [start, end) inside the array and rejects anything else', () => {
    const b = new Uint8Array(4);
    const inside: [number, number][] = [
      [0, 0],
      [0, 4],
      [4, 4],
      [1, 3],
    ];
    const outside: [number, number][] = [
      [-1, 2],
      [0, 5],
      [3, 2],
      [5, 5],
    ];
    for (const [s, e] of inside) expect(() => checkRange(b, s, e)).not.toThrow();
    for (const [s, e] of outside)
      expect(() => checkRange(b, s, e)).toThrow(/internal: byte range .* out of range \(length 4\)/);
  });
});
