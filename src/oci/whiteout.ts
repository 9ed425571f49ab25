/**
 * OCI layer whiteouts (image-spec "Whiteouts"; spec oci-delta §5.2, spec composefs-v2 §3.4 step 4):
 * a member whose file name is `.wh.<name>` removes `<name>` from the lower layers, and
 * `.wh..wh..opq` makes its directory opaque. The one classifier of those names: the composefs tree
 * builder, the tar-diff source analysis and the rootfs extractor all ask it.
 */

const PREFIX = Buffer.from('.wh.');
const OPAQUE = Buffer.from('.wh..wh..opq');
const SLASH = 0x2f;

export type Whiteout = { kind: 'opaque' } | { kind: 'remove'; name: Buffer } | null;

/**
 * Classifies one file name (a single path component, bytes). A bare `.wh.` is `remove` of the
 * empty name, which removes nothing: composefs drops such an entry (spec composefs-v2 §3.4 step 4:
 * the whiteout entry itself is never added).
 */
export function whiteoutOf(name: Buffer): Whiteout {
  if (name.length < PREFIX.length || name.compare(PREFIX, 0, PREFIX.length, 0, PREFIX.length) !== 0) {
    return null;
  }
  if (name.equals(OPAQUE)) return { kind: 'opaque' };
  return { kind: 'remove', name: name.subarray(PREFIX.length) };
}

/** A whiteout member located in the tree: `dir` has no trailing `/` and is empty for the root. */
export type PathWhiteout =
  { kind: 'opaque'; dir: Buffer } | { kind: 'remove'; dir: Buffer; path: Buffer } | null;

/**
 * Classifies a cleaned member path (no leading `/`, no `.`/`..`) for the oci-delta layer scans:
 * an opaque whiteout names its directory, a plain one the path it removes (`dir/<name>`). A bare
 * `.wh.` is not a whiteout here but an ordinary entry (as the source analysis and the extractor
 * have always treated it; composefs, above, drops it instead).
 */
export function whiteoutAt(path: Buffer): PathWhiteout {
  const slash = path.lastIndexOf(SLASH);
  const wh = whiteoutOf(path.subarray(slash + 1));
  if (wh === null) return null;
  const dir = slash < 0 ? Buffer.alloc(0) : path.subarray(0, slash);
  if (wh.kind === 'opaque') return { kind: 'opaque', dir };
  if (wh.name.length === 0) return null;
  // the member path with the prefix cut out of its last component
  return { kind: 'remove', dir, path: Buffer.concat([path.subarray(0, slash + 1), wh.name]) };
}
