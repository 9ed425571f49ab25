/**
 * The V1 (C mkcomposefs 1.0.8) image writer: a flat tree is rewritten and numbered (v1-plan.ts),
 * then emitted in two passes over one emitter (v1-emit.ts). Kept apart from the V2 writer so the
 * `mkfs` command loads only what V1 needs.
 */
import type { Inode } from '../tree.js';
import { flattenTree, type FlatTree } from '../flat-tree.js';
import type { HashAlgorithm } from './overlay.js';
import { emitV1, emitV1Chunks, measureV1, type V1Placement } from './v1-emit.js';
import { planV1 } from './v1-plan.js';
import { i32, u32 } from '../column.js';

export interface V1WriteOptions {
  /** `--min-version` / `--max-version` of mkcomposefs (spec composefs-v1 §3.1); defaults 0 and 1. */
  minVersion?: number;
  maxVersion?: number;
  /** Object-id / metacopy algorithm; defaults to what each digest's length implies. */
  hash?: HashAlgorithm;
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
      xattrSize: i32(placed.xattrSize, k),
      iu: u32(placed.iu, k),
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
