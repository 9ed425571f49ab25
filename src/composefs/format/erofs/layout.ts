/**
 * The pure layout both writers compute before any byte is written: every inode's place and header
 * fields, its xattr body and inline part, the shared xattr table and the data blocks. `serialize`
 * (write.ts) turns it into the image in one pass. spec composefs-v1 §1.3, composefs-v2 §10 item 7.
 */
import type { DirentRef } from './dirents.js';
import type { XattrBody, XattrEntry } from './xattr.js';

/** What follows an inode's xattr body, or fills one data block (blocks are zero-padded to 4096). */
export type DataPart =
  | { kind: 'none' }
  | { kind: 'bytes'; data: Buffer }
  | { kind: 'dirents'; chunk: DirentRef[] }
  /** `count` null chunk addresses (ff ff ff ff). */
  | { kind: 'nullChunks'; count: number };

export interface PlacedInode {
  /** Absolute byte offset of the inode header; nid = offset / 32. */
  offset: number;
  nid: number;
  extended: boolean;
  /** i_format: (layout << 1) | extended. */
  format: number;
  /** Low 16 bits are written. */
  mode: number;
  nlink: number;
  size: bigint;
  /** i_u: block address, rdev or chunk format (already combined). */
  iu: number;
  ino: number;
  uid: number;
  gid: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  xattrs: XattrBody | null;
  inline: DataPart;
  /** Data blocks in order; they occupy consecutive blocks starting at `firstBlock`. */
  blocks: DataPart[];
  firstBlock: number;
}

export interface ErofsLayout {
  composefsVersion: number;
  flags: number;
  rootNid: number;
  inos: number;
  buildTimeSec: bigint;
  buildTimeNsec: number;
  xattrBlkaddr: number;
  /** Inodes in table order; DirentRef.target indexes this list. */
  inodes: PlacedInode[];
  sharedTableOffset: number;
  shared: XattrEntry[];
  /** Image size in bytes, a multiple of 4096. */
  imageSize: number;
}

export function roundUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
