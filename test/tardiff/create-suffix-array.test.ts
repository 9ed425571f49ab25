import { describe, expect, it } from 'vitest';
import { suffixArray } from '../../src/tardiff/create/suffix-array.js';

/** The reference: every suffix start (the empty one included) sorted with Buffer.compare. */
function bruteForce(b: Buffer): number[] {
  const idx = Array.from({ length: b.length + 1 }, (_, i) => i);
  return idx.sort((x, y) => Buffer.compare(b.subarray(x), b.subarray(y)));
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16;
}

describe('suffixArray (SA-IS, spec oci-delta §5.5)', () => {
  it('matches a brute-force sort on thousands of small texts over small alphabets', () => {
    const rnd = lcg(7);
    for (let iter = 0; iter < 3000; iter++) {
      const n = rnd() % 70;
      const k = 1 + (rnd() % (iter % 3 === 0 ? 2 : 6));
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (rnd() % k) * 37;
      expect(Array.from(suffixArray(b)), `text ${b.toString('hex')}`).toEqual(bruteForce(b));
    }
  });

  it('handles the edge cases: empty, one byte, runs, periodic text', () => {
    for (const s of ['', 'a', 'aaaaaaaaaaaa', 'abababababab', 'mississippi', 'abcabcabcabx', 'zyxwvu']) {
      const b = Buffer.from(s);
      expect(Array.from(suffixArray(b)), s).toEqual(bruteForce(b));
    }
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    expect(Array.from(suffixArray(bytes))).toEqual(bruteForce(bytes));
  });

  it('sorts a 1 MiB periodic text with deep recursion correctly (checked pairwise)', () => {
    const b = Buffer.from('abcdefghijklmnop'.repeat(1 << 16));
    b[12345] = 0x41;
    const sa = suffixArray(b);
    expect(sa[0]).toBe(b.length);
    const seen = new Uint8Array(b.length + 1);
    for (const p of sa) seen[p] = 1;
    expect(seen.every((x) => x === 1)).toBe(true);
    for (let i = 2; i < sa.length; i += 97) {
      expect(Buffer.compare(b.subarray(sa[i - 1]!), b.subarray(sa[i]!))).toBe(-1);
    }
  });
});
