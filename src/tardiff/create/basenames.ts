/**
 * The basename rules of source matching (spec oci-delta §5.2–5.3): which basename a path has, its
 * fuzzy prefix, and which files are never diffed. Used by the old-layer index (to build its tables)
 * and by matching (to look a new file up in them).
 */

const SLASH = 0x2f;
const DOT = 0x2e;
const XZ = Buffer.from('.xz');
const BZ2 = Buffer.from('.bz2');

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
