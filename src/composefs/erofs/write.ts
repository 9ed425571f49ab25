/**
 * The composefs EROFS writer: one entry point, V1 (C mkcomposefs 1.0.8) or V2 (composefs-rs legacy).
 * The layout is computed first (pure), then serialised into one Buffer; images hold metadata only.
 */
import type { Inode } from '../tree.js';
import type { ErofsLayout } from './layout.js';
import { layoutV1 } from './layout-v1.js';
import { layoutV2 } from './layout-v2.js';
import type { HashAlgorithm } from './overlay.js';
import { serialize } from './serialize.js';
import { fsverityDigest } from '../fsverity.js';

export interface WriteErofsOptions {
  format: 'v1' | 'v2';
  /** V1 only: `--min-version` / `--max-version` of mkcomposefs (spec composefs-v1 §3.1); defaults 0 and 1. */
  minVersion?: number;
  maxVersion?: number;
  /** Object-id / metacopy algorithm; defaults to what each digest's length implies. */
  hash?: HashAlgorithm;
}

export function layoutErofs(root: Inode, opts: WriteErofsOptions): ErofsLayout {
  return opts.format === 'v1'
    ? layoutV1(root, { minVersion: opts.minVersion, maxVersion: opts.maxVersion, hash: opts.hash })
    : layoutV2(root, { hash: opts.hash });
}

/** Builds the image of the tree rooted at the directory `root`. The tree is not modified. */
export function writeErofs(root: Inode, opts: WriteErofsOptions): Buffer {
  return serialize(layoutErofs(root, opts));
}

/** The image ID: the fs-verity digest (4 KiB blocks, no salt) of the whole image. spec composefs-v2 §5. */
export function imageId(image: Buffer, alg: HashAlgorithm = 'sha256'): Buffer {
  return fsverityDigest(image, alg);
}
