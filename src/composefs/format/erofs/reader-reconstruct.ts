/**
 * From the xattrs stored in an image back to the tree's fields (spec composefs-v1 §12.1 step 6):
 * overlay metadata becomes digest/payload, escaped overlay keys are unescaped, the whiteout
 * bookkeeping the writer added is dropped. Three rule sets:
 * - `composefs-info`: exactly what C `composefs-info dump` does (quirks included);
 * - `composefs-rs`: for V2 images — 36- or 68-byte metacopy, plain redirect, no C quirks;
 * - `raw`: every stored xattr as is, nothing derived.
 */
import { S_IFCHR, S_IFMT, S_IFREG, type Inode, type Xattr } from '../tree.js';
import type { RawXattr } from './reader-image.js';

export type ReconstructRules = 'composefs-info' | 'composefs-rs' | 'raw';

const K = (s: string): Buffer => Buffer.from(s, 'latin1');
const REDIRECT = K('trusted.overlay.redirect');
const METACOPY = K('trusted.overlay.metacopy');
const ESCAPED_WHITEOUT = K('trusted.overlay.overlay.whiteout');
const DROPPED = [
  K('trusted.overlay.overlay.whiteouts'),
  K('user.overlay.whiteout'),
  K('user.overlay.whiteouts'),
];
const OVERLAY = K('trusted.overlay.');
const ESCAPED = K('trusted.overlay.overlay.');

function startsWith(b: Buffer, prefix: Buffer): boolean {
  return b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);
}

function truncateAtNul(b: Buffer): Buffer {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

/** C `lcfs_node_set_xattr`: a repeated name takes the last entry's slot, then appends. */
function setXattr(list: Xattr[], key: Buffer, value: Buffer): void {
  const i = list.findIndex((x) => x.key.equals(key));
  if (i >= 0) {
    const last = list.pop();
    if (last !== undefined && i < list.length) list[i] = last;
  }
  list.push({ key, value });
}

/**
 * C redirect quirk (spec composefs-v1 §12.1 step 6): for a value longer than one byte that starts
 * with `/`, C takes value_size+1 bytes starting after the `/` — two bytes past the value — then
 * truncates at NUL. Bytes past the image end read as 0.
 */
function cRedirectPayload(x: RawXattr, image: Buffer): Buffer {
  if (x.value.length > 1 && x.value[0] === 0x2f) {
    const extra = Buffer.alloc(2);
    image.copy(extra, 0, Math.min(x.valueEnd, image.length), Math.min(x.valueEnd + 2, image.length));
    return Buffer.from(truncateAtNul(Buffer.concat([x.value.subarray(1), extra])));
  }
  return Buffer.from(truncateAtNul(x.value));
}

/** Applies the stored xattrs to `inode` (mode, rdev, size, payload, digest, xattrs). */
export function applyXattrs(inode: Inode, raw: RawXattr[], rules: ReconstructRules, image: Buffer): void {
  if (rules === 'raw') {
    for (const x of raw) setXattr(inode.xattrs, x.key, x.value);
    return;
  }
  const isReg = (inode.mode & S_IFMT) === S_IFREG;
  let whiteout = false;
  for (const x of raw) {
    if (isReg && x.key.equals(REDIRECT)) {
      inode.payload =
        rules === 'composefs-info'
          ? cRedirectPayload(x, image)
          : Buffer.from(x.value[0] === 0x2f ? x.value.subarray(1) : x.value);
      continue;
    }
    if (isReg && x.key.equals(METACOPY)) {
      if (x.value.length === 36 || (rules === 'composefs-rs' && x.value.length === 68)) {
        inode.digest = Buffer.from(x.value.subarray(4));
      }
      continue;
    }
    if (rules === 'composefs-info') {
      if (isReg && x.key.equals(ESCAPED_WHITEOUT)) {
        whiteout = true;
        continue;
      }
      if (DROPPED.some((d) => x.key.equals(d))) continue;
    }
    if (startsWith(x.key, OVERLAY)) {
      if (!startsWith(x.key, ESCAPED)) continue; // writer-added, e.g. the root's opaque=y
      setXattr(inode.xattrs, Buffer.concat([OVERLAY, x.key.subarray(ESCAPED.length)]), x.value);
      continue;
    }
    setXattr(inode.xattrs, x.key, x.value);
  }
  if (whiteout) {
    // An escaped whiteout turns back into a char device 0:0 (spec composefs-v1 §12.1 step 6).
    inode.mode = (inode.mode & ~S_IFMT) | S_IFCHR;
    inode.rdev = 0n;
    inode.size = 0n;
    inode.content = null;
  }
}
