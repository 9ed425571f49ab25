import type { OldFile, SourceSet } from './sources.js';

/**
 * Choosing an old file for each new file (spec oci-delta §5.3, upstream `DiffWithSources`): identical
 * content first, then the same path, then fuzzy basename passes. Pure lookups over a `SourceSet`.
 */

const SLASH = 0x2f;
const DOT = 0x2e;
const XZ = Buffer.from('.xz');
const BZ2 = Buffer.from('.bz2');
/** spec oci-delta §5.3: both below this size counts as size-similar. */
const SMALL_FILE = 65536;

/** The last path component. */
export function basenameOf(path: Buffer): Buffer {
  return path.subarray(path.lastIndexOf(SLASH) + 1);
}

/**
 * spec oci-delta §5.3 fuzzy pass 1: the basename up to and including its first `.`
 * (`libcurl.so.4.7.0` → `libcurl.`); null for a basename without a `.`.
 */
export function fuzzyPrefixOf(base: Buffer): Buffer | null {
  const dot = base.indexOf(DOT);
  return dot < 0 ? null : base.subarray(0, dot + 1);
}

/** spec oci-delta §5.3: compressed `.xz`/`.bz2` files are never diffed (they would not share bytes). */
export function isDeltaCandidate(basenames: readonly Buffer[]): boolean {
  return !basenames.some((b) => endsWith(b, XZ) || endsWith(b, BZ2));
}

function endsWith(b: Buffer, suffix: Buffer): boolean {
  return b.length >= suffix.length && b.subarray(b.length - suffix.length).equals(suffix);
}

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
}

export type SourceMatch =
  /** Identical content: a plain Copy reproduces it. */
  | { kind: 'exact'; source: OldFile }
  /** Similar file worth diffing against. */
  | { kind: 'similar'; source: OldFile };

/** spec oci-delta §5.3 steps 1–2. */
export function matchTarget(t: TargetFile, sources: SourceSet): SourceMatch | undefined {
  const exact = sources.withContent(t.sha1, t.size);
  if (exact) return { kind: 'exact', source: exact };
  const bases = t.paths.map(basenameOf);
  if (!isDeltaCandidate(bases)) return undefined;
  const fits = (s: OldFile) => s.deltaCandidate && sizeSimilar(s.size, t.size);
  // a. same path: the first of the target's names that maps to a usable source
  for (const p of t.paths) {
    const s = sources.atPath(p);
    if (!s) continue;
    if (fits(s)) return { kind: 'similar', source: s };
    break;
  }
  // b. fuzzy: pass 0 identical basename, pass 1 same prefix up to the first '.'
  const passes: Array<() => Iterable<OldFile>> = [
    () => bases.flatMap((b) => sources.withBasename(b)),
    () =>
      bases.flatMap((b) => {
        const p = fuzzyPrefixOf(b);
        return p ? sources.withFuzzyPrefix(p) : [];
      }),
  ];
  for (const candidates of passes) {
    let best: OldFile | undefined;
    let bestDiff = Infinity;
    for (const s of candidates()) {
      if (!fits(s)) continue;
      const diff = Math.abs(s.size - t.size);
      // ties: the later candidate in source order wins
      if (diff < bestDiff || (diff === bestDiff && best !== undefined && s.order > best.order)) {
        best = s;
        bestDiff = diff;
      }
    }
    if (best) return { kind: 'similar', source: best };
  }
  return undefined;
}
