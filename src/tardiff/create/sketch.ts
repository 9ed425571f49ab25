/**
 * Content sketches for the similarity fallback of matching (an addition to spec oci-delta §5.3: a new
 * file no name pass matched may still be an old file renamed, e.g. `README` → `CHANGES`). A sketch is
 * the `SKETCH_SIZE` smallest distinct gear hashes over all 32-byte windows of a file (a bottom-k
 * sample), so memory per file is fixed and two files sharing most of their content share most of
 * their sketch values wherever the shared bytes lie.
 */

/** Hash values kept per file. */
export const SKETCH_SIZE = 32;
/** Files smaller than this are not sketched: an Open plus a patch would save little. */
export const SKETCH_MIN_FILE = 1024;

/** 256 fixed pseudo-random words (splitmix32 from a constant seed): the same sketches everywhere. */
const GEAR = (() => {
  const t = new Int32Array(256);
  let s = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    t[i] = z ^ (z >>> 16);
  }
  return t;
})();

/** Collects the bottom-k gear hashes of a content stream, chunk by chunk. */
export class Sketcher {
  private h = 0;
  private seen = 0;
  /** Values below `limit` waiting to be merged into the kept set. */
  private pending: number[] = [];
  private kept: number[] = [];
  /** Values are signed 32-bit (small integers stay unboxed in V8); the order is signed too. */
  private limit = 0x7fffffff;

  push(chunk: Uint8Array): void {
    let h = this.h;
    let limit = this.limit;
    const gear = GEAR;
    let i = 0;
    // the first 31 bytes of the file have no full window yet
    const warm = Math.min(chunk.length, Math.max(0, 31 - this.seen));
    for (; i < warm; i++) h = ((h << 1) + gear[chunk[i]!]!) | 0;
    for (; i < chunk.length; i++) {
      // shifting left by one per byte: the top bits depend on the last 32 bytes only
      h = ((h << 1) + gear[chunk[i]!]!) | 0;
      if (h < limit) {
        this.pending.push(h);
        if (this.pending.length >= 4 * SKETCH_SIZE) limit = this.compact();
      }
    }
    this.h = h;
    this.seen += chunk.length;
  }

  /** Merges pending values into the kept set; returns the new admission limit. */
  private compact(): number {
    const all = Int32Array.from([...this.kept, ...this.pending]).sort();
    const kept: number[] = [];
    for (const v of all) {
      if (kept.length === SKETCH_SIZE) break;
      if (kept.length === 0 || kept[kept.length - 1] !== v) kept.push(v);
    }
    this.kept = kept;
    this.pending = [];
    // once full, only values below the largest kept one can enter
    this.limit = kept.length === SKETCH_SIZE ? kept[SKETCH_SIZE - 1]! : 0x7fffffff;
    return this.limit;
  }

  /** The sketch: ascending distinct values, at most `SKETCH_SIZE`. */
  finish(): Int32Array {
    this.compact();
    return Int32Array.from(this.kept);
  }
}

/** The sketch of one buffer. */
export function sketchOf(content: Uint8Array): Int32Array {
  const s = new Sketcher();
  s.push(content);
  return s.finish();
}

/** How many values two sketches share (both ascending). */
export function sketchOverlap(a: Int32Array, b: Int32Array): number {
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length && j < b.length) {
    if (a[i]! < b[j]!) i++;
    else if (a[i]! > b[j]!) j++;
    else {
      n++;
      i++;
      j++;
    }
  }
  return n;
}
