/**
 * The composefs EROFS writer: one entry point, V1 (C mkcomposefs 1.0.8) or V2 (composefs-rs legacy).
 * V1 rewrites and numbers a flat tree (v1-plan.ts), then emits the image in two passes over one
 * emitter (v1-emit.ts); V2 computes a pure layout (layout-v2.ts) that serialize.ts writes. Images
 * hold metadata only.
 */
import type { Inode } from '../tree.js';
import { flattenTree, type FlatTree } from '../flat-tree.js';
import type { ErofsLayout } from './layout.js';
import { layoutV2 } from './layout-v2.js';
import type { HashAlgorithm } from './overlay.js';
import { serialize } from './serialize.js';
import { emitV1, emitV1Chunks, measureV1, type V1Placement } from './v1-emit.js';
import { planV1 } from './v1-plan.js';
import { fsverityDigest } from '../fsverity.js';

export interface WriteErofsOptions {
  format: 'v1' | 'v2';
  /** V1 only: `--min-version` / `--max-version` of mkcomposefs (spec composefs-v1 §3.1); defaults 0 and 1. */
  minVersion?: number;
  maxVersion?: number;
  /** Object-id / metacopy algorithm; defaults to what each digest's length implies. */
  hash?: HashAlgorithm;
}

export type V1WriteOptions = Omit<WriteErofsOptions, 'format'>;

/** The V2 layout (pure), as serialize.ts writes it. */
export function layoutErofsV2(root: Inode, opts: { hash?: HashAlgorithm } = {}): ErofsLayout {
  return layoutV2(root, { hash: opts.hash });
}

/** Where the V1 emitter puts each inode (by BFS position = ino) and the shared xattr table. */
export interface V1LayoutFacts {
  inodes: { ino: number; nid: number; xattrSize: number; iu: number }[];
  sharedTableOffset: number;
  imageSize: number;
}

export function layoutErofsV1(root: Inode, opts: V1WriteOptions = {}): V1LayoutFacts {
  const placed: V1Placement = measureV1(planV1(flattenTree(root), opts));
  return {
    inodes: Array.from(placed.offset, (offset, k) => ({
      ino: k,
      nid: offset / 32,
      xattrSize: placed.xattrSize[k],
      iu: placed.iu[k],
    })),
    sharedTableOffset: placed.inodesEnd,
    imageSize: placed.imageSize,
  };
}

/**
 * The V1 image of a flat tree, which it rewrites in place as C rewrites its tree: pass a tree
 * nothing else reads afterwards (the dumpfile parser's, or a fresh `flattenTree`).
 */
export function writeErofsV1(tree: FlatTree, opts: V1WriteOptions = {}): Buffer {
  return emitV1(planV1(tree, opts)).image;
}

/** Streams the V1 image of a flat tree (rewritten in place) to `onChunk`; returns its size. */
export function streamErofsV1(
  tree: FlatTree,
  opts: V1WriteOptions,
  onChunk: (chunk: Buffer) => void,
): number {
  return emitV1Chunks(planV1(tree, opts), onChunk);
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
