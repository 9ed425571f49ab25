import { basenameOf, fuzzyPrefixOf, isDeltaCandidate } from './basenames.js';
import type { OldFile, OldImageIndex } from './old-image-index.js';

/**
 * Choosing an old file for each new file (spec oci-delta §5.3, upstream `DiffWithSources`): identical
 * content first, then the same path, then fuzzy basename passes. Pure lookups over an `OldImageIndex`.
 */

/** spec oci-delta §5.3: both below this size counts as size-similar. */
const SMALL_FILE = 65536;

/** spec oci-delta §5.3: both < 64 KiB, or each less than ten times the other. */
export function sizeSimilar(a: number, b: number): boolean {
  return (a < SMALL_FILE && b < SMALL_FILE) || (a < 10 * b && b < 10 * a);
}

/** What matching needs to know about a new file. */
export interface TargetFile {
  /** Cleaned names: the entry path, then same-layer hardlink names in tar order. */
  readonly paths: readonly Buffer[];
  readonly size: number;
  readonly sha1: Buffer;
  /** Content sketch (files of at least `SKETCH_MIN_FILE` bytes), for the similarity fallback. */
  readonly sketch?: Int32Array;
}

export type SourceMatch =
  /** Identical content: a plain Copy reproduces it. */
  | { kind: 'exact'; source: OldFile }
  /** Similar file worth diffing against. */
  | { kind: 'similar'; source: OldFile };

/**
 * spec oci-delta §5.3 steps 1–2, then a fallback of ours: the delta candidate sharing the most content
 * (sketch values) with the target, so a renamed file still finds its old self.
 */
export function matchTarget(t: TargetFile, oldIndex: OldImageIndex): SourceMatch | undefined {
  const exact = oldIndex.withContent(t.sha1, t.size);
  if (exact) return { kind: 'exact', source: exact };
  const bases = t.paths.map(basenameOf);
  if (!isDeltaCandidate(bases)) return undefined;
  const fits = (s: OldFile) => s.deltaCandidate && sizeSimilar(s.size, t.size);
  // a. same path: the first of the target's names that maps to a usable source
  for (const p of t.paths) {
    const s = oldIndex.atPath(p);
    if (!s) continue;
    if (fits(s)) return { kind: 'similar', source: s };
    break;
  }
  // b. fuzzy: pass 0 identical basename, pass 1 same prefix up to the first '.'; the smallest size
  // difference wins, ties go to the later source
  const passes: Array<(b: Buffer) => readonly OldFile[]> = [
    (b) => oldIndex.withBasename(b),
    (b) => {
      const p = fuzzyPrefixOf(b);
      return p ? oldIndex.withFuzzyPrefix(p) : [];
    },
  ];
  for (const bucketOf of passes) {
    let best: OldFile | undefined;
    for (const b of bases) best = better(best, nearestSimilar(bucketOf(b), t.size), t.size);
    if (best) return { kind: 'similar', source: best };
  }
  // c. content: only delta candidates are indexed (never `.xz`/`.bz2`), and only usable files
  // (qualifying, readable, outside `sysroot/ostree/`) are sources at all
  const bySketch = t.sketch && oldIndex.similarByContent(t.sketch, t.size);
  if (bySketch) return { kind: 'similar', source: bySketch };
  return undefined;
}

function better(a: OldFile | undefined, b: OldFile | undefined, size: number): OldFile | undefined {
  if (!a) return b;
  if (!b) return a;
  const da = Math.abs(a.size - size);
  const db = Math.abs(b.size - size);
  return db < da || (db === da && b.order > a.order) ? b : a;
}

/**
 * The size-similar file nearest in size to `size` in a bucket sorted by (size, source order); on a
 * tie the later source. Size-similar files form an interval of sizes around `size`, so only the
 * nearest size on each side needs checking: O(log n) per bucket instead of a scan of all pairs.
 */
export function nearestSimilar(bucket: readonly OldFile[], size: number): OldFile | undefined {
  const lower = (pred: (f: OldFile) => boolean) => {
    let lo = 0;
    let hi = bucket.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pred(bucket[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const i = lower((f) => f.size < size);
  let best: OldFile | undefined;
  if (i < bucket.length) {
    const s = bucket[i]!.size;
    const last = bucket[lower((f) => f.size <= s) - 1]!; // latest source of that size
    if (sizeSimilar(s, size)) best = last;
  }
  if (i > 0) {
    const below = bucket[i - 1]!; // latest source of the largest smaller size
    if (sizeSimilar(below.size, size)) best = better(best, below, size);
  }
  return best;
}
