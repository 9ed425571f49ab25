/**
 * The V1 (C mkcomposefs 1.0.8) image writer. It runs in the compiled core (format/core.ts;
 * native/core/v1-plan.c and v1-emit.c): a flat tree is copied in, rewritten and numbered, then
 * emitted in two passes over one emitter (a measuring pass finds every offset, the writing pass
 * emits the bytes). Kept apart from the V2 writer so the `mkfs` command loads only what V1 needs.
 */
import type { Inode } from '../tree.js';
import { flattenTree, type FlatTree } from '../flat-tree.js';
import { Core, type CoreV1Options } from '../core.js';

export type V1WriteOptions = CoreV1Options;

/** Where the V1 emitter puts each inode (by BFS position = ino) and the shared xattr table. */
export interface V1LayoutFacts {
  inodes: { ino: number; nid: number; xattrSize: number; iu: number }[];
  sharedTableOffset: number;
  imageSize: number;
}

export function layoutErofsV1(root: Inode, opts: V1WriteOptions = {}): V1LayoutFacts {
  const core = new Core();
  const placed = core.layoutV1(core.copyIn(flattenTree(root)), opts);
  return {
    inodes: placed.offset.map((offset, k) => ({
      ino: k,
      nid: offset / 32,
      xattrSize: placed.xattrSize[k]!,
      iu: placed.iu[k]!,
    })),
    sharedTableOffset: placed.inodesEnd,
    imageSize: placed.imageSize,
  };
}

/** The V1 image of a flat tree (the tree is not changed: the core rewrites its own copy). */
export function writeErofsV1(tree: FlatTree, opts: V1WriteOptions = {}): Buffer {
  const core = new Core();
  return core.imageV1(core.copyIn(tree), opts);
}

/** Streams the V1 image of a flat tree to `onChunk` (each chunk valid only during the call); returns its size. */
export function streamErofsV1(
  tree: FlatTree,
  opts: V1WriteOptions,
  onChunk: (chunk: Buffer) => void,
): number {
  const core = new Core();
  return core.writeV1(core.copyIn(tree), opts, onChunk);
}
