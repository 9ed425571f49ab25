/**
 * The composefs EROFS writer: one entry point, V1 (C mkcomposefs 1.0.8, write-v1.ts) or V2
 * (composefs-rs legacy: a pure layout, layout-v2.ts, that serialize.ts writes). Images hold
 * metadata only.
 */
import type { Inode } from '../tree.js';
import { flattenTree } from '../flat-tree.js';
import type { ErofsLayout } from './layout.js';
import { layoutV2 } from './layout-v2.js';
import type { HashAlgorithm } from './overlay.js';
import { serialize } from './serialize.js';
import { writeErofsV1, type V1WriteOptions } from './write-v1.js';
import { fsverityDigest } from '../fsverity.js';

export { layoutErofsV1, streamErofsV1, writeErofsV1 } from './write-v1.js';
export type { V1LayoutFacts, V1WriteOptions } from './write-v1.js';

export interface WriteErofsOptions extends V1WriteOptions {
  format: 'v1' | 'v2';
}

/** The V2 layout (pure), as serialize.ts writes it. */
export function layoutErofsV2(root: Inode, opts: { hash?: HashAlgorithm } = {}): ErofsLayout {
  return layoutV2(root, { hash: opts.hash });
}

/** Builds the image of the tree rooted at the directory `root`. The tree is not modified. */
export function writeErofs(root: Inode, opts: WriteErofsOptions): Buffer {
  return opts.format === 'v1'
    ? writeErofsV1(flattenTree(root), opts)
    : serialize(layoutV2(root, { hash: opts.hash }));
}

/** The image ID: the fs-verity digest (4 KiB blocks, no salt) of the whole image. spec composefs-v2 §5. */
export function imageId(image: Buffer, alg: HashAlgorithm = 'sha256'): Buffer {
  return fsverityDigest(image, alg);
}
