/**
 * The overlayfs xattrs composefs writes for external files and the `trusted.overlay.` escape.
 * spec composefs-v2 §4.3 step 1–2, composefs-v1 §5.1 steps 2–3.
 */
import { OVERLAY_ESCAPED_PREFIX, OVERLAY_PREFIX } from './format.js';
import { OdhError } from '../../../util/errors.js';

const OVERLAY = Buffer.from(OVERLAY_PREFIX, 'latin1');
const OVERLAY_ESCAPED = Buffer.from(OVERLAY_ESCAPED_PREFIX, 'latin1');

/** `trusted.overlay.X` → `trusted.overlay.overlay.X`; other keys unchanged. */
export function escapeOverlayKey(key: Buffer): Buffer {
  if (key.length >= OVERLAY.length && OVERLAY.compare(key, 0, OVERLAY.length) === 0) {
    return Buffer.concat([OVERLAY_ESCAPED, key.subarray(OVERLAY.length)]);
  }
  return key;
}

export type HashAlgorithm = 'sha256' | 'sha512';

const ALG_BYTE: Record<HashAlgorithm, number> = { sha256: 1, sha512: 2 };
const DIGEST_LEN: Record<HashAlgorithm, number> = { sha256: 32, sha512: 64 };

/** The algorithm a digest's length implies, checked against an explicit choice. */
export function digestAlgorithm(
  digest: Buffer,
  hash: HashAlgorithm | undefined,
  path: () => string,
): HashAlgorithm {
  const alg: HashAlgorithm | undefined =
    hash ?? (digest.length === 64 ? 'sha512' : digest.length === 32 ? 'sha256' : undefined);
  if (alg === undefined || DIGEST_LEN[alg] !== digest.length) {
    throw new OdhError(
      'FORMAT',
      `fs-verity digest of ${digest.length} bytes does not match ${hash ?? 'sha256 or sha512'}`,
      { path: path() },
    );
  }
  return alg;
}

/** The overlayfs metacopy value: version 0, length 4+L, flags 0, algorithm, digest (ovl_metacopy). */
export function metacopyValue(digest: Buffer, alg: HashAlgorithm): Buffer {
  // One allocation: this runs once per external file.
  const v = Buffer.allocUnsafe(4 + digest.length);
  v[0] = 0;
  v[1] = 4 + digest.length;
  v[2] = 0;
  v[3] = ALG_BYTE[alg];
  digest.copy(v, 4);
  return v;
}

/** The object path of a digest: first byte hex, `/`, the rest hex (spec composefs-v2 §1.3). */
export function objectPath(digest: Buffer): string {
  return `${digest.subarray(0, 1).toString('hex')}/${digest.subarray(1).toString('hex')}`;
}

/** Symlink targets: 1–4095 bytes (PATH_MAX with its NUL); C rejects longer ones, and V1 gives one block. */
export const SYMLINK_TARGET_MAX = 4095;

export function checkSymlinkTarget(target: Buffer | null, path: () => string): Buffer {
  if (!target || target.length === 0 || target.length > SYMLINK_TARGET_MAX) {
    throw new OdhError(
      'LIMIT',
      `symlink target must be 1–${SYMLINK_TARGET_MAX} bytes, got ${target?.length ?? 0}`,
      {
        path: path(),
      },
    );
  }
  return target;
}
