import { suffixArray } from './suffix-array.js';

/**
 * bsdiff matching (Colin Percival's bsdiff 4 algorithm, spec oci-delta §5.5) over a suffix array of
 * the old file. The new file is cut into control triples: `lenf` bytes stored as the bytewise
 * difference against the old file at the current position (AddData), `extra` bytes stored verbatim
 * (Data), then a relative move of the old-file position (Seek). The triples are the same as
 * upstream tar-diff's for the same pair of files (same search, same scoring), so the op stream is
 * too; only the outer zstd bytes differ.
 */

/** Where the triples go; upstream tar-diff's encoding of them is `BsdiffOpEmitter` in create.ts. */
export interface BsdiffSink {
  /** AddData: `length` bytes, new[newAt + i] − old[oldAt + i] (emitted even when `length` is 0). */
  add(newAt: number, oldAt: number, length: number): Promise<void>;
  /** Data: new[from..to) verbatim. */
  extra(from: number, to: number): Promise<void>;
  /** Seek by `delta` (may be negative) from the position the AddData left. */
  seekBy(delta: number): Promise<void>;
}

/** bsdiff's "a match this much better than the current alignment starts a new triple". */
const MIN_GAIN = 8;

/** The longest prefix of new[from..] found in `old`, by binary search over its suffix array. */
export function longestMatch(
  old: Buffer,
  sa: Int32Array,
  neu: Buffer,
  from: number,
): { pos: number; len: number } {
  const n = old.length;
  const rest = neu.length - from;
  let lo = 0;
  let hi = n; // sa has n + 1 entries
  while (hi - lo >= 2) {
    const mid = lo + ((hi - lo) >>> 1);
    const p = sa[mid]!;
    const len = Math.min(n - p, rest);
    // compare only the common length: equal prefixes go left, like upstream
    if (old.compare(neu, from, from + len, p, p + len) < 0) lo = mid;
    else hi = mid;
  }
  const a = matchLength(old, sa[lo]!, neu, from);
  const b = matchLength(old, sa[hi]!, neu, from);
  return a > b ? { pos: sa[lo]!, len: a } : { pos: sa[hi]!, len: b };
}

function matchLength(old: Buffer, oldAt: number, neu: Buffer, newAt: number): number {
  const max = Math.min(old.length - oldAt, neu.length - newAt);
  let i = 0;
  while (i < max && old[oldAt + i] === neu[newAt + i]) i++;
  return i;
}

/** Bytes of new[newAt..newAt+len) equal to old at the same offsets from `oldAt` (bounded by old). */
function sameAt(old: Buffer, neu: Buffer, oldAt: number, newAt: number): boolean {
  return oldAt >= 0 && oldAt < old.length && old[oldAt] === neu[newAt];
}

/**
 * Runs bsdiff of `neu` against `old`, giving each triple to `sink`. `sa` is `suffixArray(old)`
 * (computed here when omitted).
 */
export async function bsdiff(
  old: Buffer,
  neu: Buffer,
  sink: BsdiffSink,
  sa: Int32Array = suffixArray(old),
): Promise<void> {
  const n = old.length;
  const m = neu.length;
  let scan = 0;
  let len = 0;
  let pos = 0;
  let lastScan = 0;
  let lastPos = 0;
  let lastOffset = 0;
  while (scan < m) {
    let oldScore = 0;
    scan += len;
    let scored = scan;
    // find the next place where a fresh match beats continuing the current alignment
    while (scan < m) {
      ({ pos, len } = longestMatch(old, sa, neu, scan));
      for (; scored < scan + len; scored++) if (sameAt(old, neu, scored + lastOffset, scored)) oldScore++;
      if ((len === oldScore && len !== 0) || len > oldScore + MIN_GAIN) break;
      if (sameAt(old, neu, scan + lastOffset, scan)) oldScore--;
      scan++;
    }
    if (len === oldScore && scan !== m) continue;

    // extend the previous match forwards (lenf) and this one backwards (lenb) while it pays
    let lenf = 0;
    {
      let s = 0;
      let best = 0;
      for (let i = 0; lastScan + i < scan && lastPos + i < n;) {
        if (old[lastPos + i] === neu[lastScan + i]) s++;
        i++;
        if (s * 2 - i > best * 2 - lenf) {
          best = s;
          lenf = i;
        }
      }
    }
    let lenb = 0;
    if (scan < m) {
      let s = 0;
      let best = 0;
      for (let i = 1; scan >= lastScan + i && pos >= i; i++) {
        if (old[pos - i] === neu[scan - i]) s++;
        if (s * 2 - i > best * 2 - lenb) {
          best = s;
          lenb = i;
        }
      }
    }
    // where the two extensions overlap, split them at the best point
    if (lastScan + lenf > scan - lenb) {
      const overlap = lastScan + lenf - (scan - lenb);
      let s = 0;
      let best = 0;
      let lens = 0;
      for (let i = 0; i < overlap; i++) {
        if (neu[lastScan + lenf - overlap + i] === old[lastPos + lenf - overlap + i]) s++;
        if (neu[scan - lenb + i] === old[pos - lenb + i]) s--;
        if (s > best) {
          best = s;
          lens = i + 1;
        }
      }
      lenf += lens - overlap;
      lenb -= lens;
    }

    await sink.add(lastScan, lastPos, lenf);
    await sink.extra(lastScan + lenf, scan - lenb);
    await sink.seekBy(pos - lenb - (lastPos + lenf));
    lastScan = scan - lenb;
    lastPos = pos - lenb;
    lastOffset = pos - scan;
  }
}
