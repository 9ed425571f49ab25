/**
 * Emits an image from a computed layout in one pass: header, superblock, inode table, shared xattr
 * table, data blocks. The buffer starts zeroed, so every padding is implicit.
 * spec composefs-v1 §11, composefs-v2 §4.6–§4.9.
 */
import {
  BLOCK_BITS,
  BLOCK_SIZE,
  COMPOSEFS_HEADER_VERSION,
  COMPOSEFS_MAGIC,
  EROFS_MAGIC,
  FEATURE_COMPAT,
  HDR_COMPOSEFS_VERSION,
  HDR_FLAGS,
  HDR_MAGIC,
  HDR_VERSION,
  COMPACT_INODE_SIZE,
  EXTENDED_INODE_SIZE,
  IC_GID,
  IC_INO,
  IC_NLINK,
  IC_SIZE,
  IC_U,
  IC_UID,
  IE_GID,
  IE_INO,
  IE_MTIME,
  IE_MTIME_NSEC,
  IE_NLINK,
  IE_SIZE,
  IE_U,
  IE_UID,
  I_FORMAT,
  I_MODE,
  I_XATTR_ICOUNT,
  NULL_CHUNK_ADDR,
  SB_BLKSZBITS,
  SB_BLOCKS,
  SB_BUILD_TIME,
  SB_BUILD_TIME_NSEC,
  SB_FEATURE_COMPAT,
  SB_INOS,
  SB_MAGIC,
  SB_ROOT_NID,
  SB_XATTR_BLKADDR,
  SUPERBLOCK_OFFSET,
  xattrIcount,
} from './format.js';
import { encodeDirentChunk } from './dirents.js';
import type { DataPart, ErofsLayout, PlacedInode } from './layout.js';
import { encodeXattrBody, encodeXattrEntry } from './xattr.js';
import { item } from '../column.js';

const U64 = (1n << 64n) - 1n;

export function serialize(layout: ErofsLayout): Buffer {
  const buf = Buffer.alloc(layout.imageSize);
  const nidOf = (target: number): number => item(layout.inodes, target).nid;

  buf.writeUInt32LE(COMPOSEFS_MAGIC, HDR_MAGIC);
  buf.writeUInt32LE(COMPOSEFS_HEADER_VERSION, HDR_VERSION);
  buf.writeUInt32LE(layout.flags, HDR_FLAGS);
  buf.writeUInt32LE(layout.composefsVersion, HDR_COMPOSEFS_VERSION);

  const sb = SUPERBLOCK_OFFSET;
  buf.writeUInt32LE(EROFS_MAGIC, sb + SB_MAGIC);
  buf.writeUInt32LE(FEATURE_COMPAT, sb + SB_FEATURE_COMPAT);
  buf[sb + SB_BLKSZBITS] = BLOCK_BITS;
  buf.writeUInt16LE(layout.rootNid & 0xffff, sb + SB_ROOT_NID);
  buf.writeBigUInt64LE(BigInt(layout.inos), sb + SB_INOS);
  buf.writeBigUInt64LE(BigInt.asUintN(64, layout.buildTimeSec), sb + SB_BUILD_TIME);
  buf.writeUInt32LE(layout.buildTimeNsec >>> 0, sb + SB_BUILD_TIME_NSEC);
  buf.writeUInt32LE(layout.imageSize / BLOCK_SIZE, sb + SB_BLOCKS);
  buf.writeUInt32LE(layout.xattrBlkaddr, sb + SB_XATTR_BLKADDR);

  for (const ino of layout.inodes) {
    writeInode(buf, ino, nidOf);
    for (const [i, part] of ino.blocks.entries()) {
      writePart({ buf, off: (ino.firstBlock + i) * BLOCK_SIZE, wholeBlock: true }, part, nidOf);
    }
  }

  let p = layout.sharedTableOffset;
  for (const e of layout.shared) p += encodeXattrEntry(buf, p, e);
  return buf;
}

function writeInode(buf: Buffer, ino: PlacedInode, nidOf: (t: number) => number): void {
  const o = ino.offset;
  const xsize = ino.xattrs ? ino.xattrs.size : 0;
  buf.writeUInt16LE(ino.format, o + I_FORMAT);
  buf.writeUInt16LE(xattrIcount(xsize) & 0xffff, o + I_XATTR_ICOUNT);
  buf.writeUInt16LE(ino.mode & 0xffff, o + I_MODE);
  let isz: number;
  if (ino.extended) {
    isz = EXTENDED_INODE_SIZE;
    buf.writeBigUInt64LE(ino.size & U64, o + IE_SIZE);
    buf.writeUInt32LE(ino.iu >>> 0, o + IE_U);
    buf.writeUInt32LE(ino.ino >>> 0, o + IE_INO);
    buf.writeUInt32LE(ino.uid >>> 0, o + IE_UID);
    buf.writeUInt32LE(ino.gid >>> 0, o + IE_GID);
    buf.writeBigUInt64LE(BigInt.asUintN(64, ino.mtimeSec), o + IE_MTIME);
    buf.writeUInt32LE(ino.mtimeNsec >>> 0, o + IE_MTIME_NSEC);
    buf.writeUInt32LE(ino.nlink >>> 0, o + IE_NLINK);
  } else {
    isz = COMPACT_INODE_SIZE;
    buf.writeUInt16LE(ino.nlink & 0xffff, o + IC_NLINK);
    buf.writeUInt32LE(Number(ino.size & 0xffffffffn), o + IC_SIZE);
    buf.writeUInt32LE(ino.iu >>> 0, o + IC_U);
    buf.writeUInt32LE(ino.ino >>> 0, o + IC_INO);
    buf.writeUInt16LE(ino.uid & 0xffff, o + IC_UID);
    buf.writeUInt16LE(ino.gid & 0xffff, o + IC_GID);
  }
  if (ino.xattrs) encodeXattrBody(buf, o + isz, ino.xattrs);
  writePart({ buf, off: o + isz + xsize, wholeBlock: false }, ino.inline, nidOf);
}

/** Where a part goes: the image, the part's offset, and whether it fills a whole data block. */
interface PartTarget {
  buf: Buffer;
  off: number;
  wholeBlock: boolean;
}

function writePart({ buf, off, wholeBlock }: PartTarget, part: DataPart, nidOf: (t: number) => number): void {
  switch (part.kind) {
    case 'none':
      return;
    case 'bytes':
      part.data.copy(buf, off);
      return;
    case 'dirents':
      encodeDirentChunk(buf, off, part.chunk, nidOf);
      return;
    case 'nullChunks': {
      // spec composefs-v1 §11.5: a promoted chunk table fills its whole block with null addresses.
      const n = wholeBlock ? BLOCK_SIZE / 4 : part.count;
      // NULL_CHUNK_ADDR is ff ff ff ff: one fill, not n u32 writes.
      buf.fill(NULL_CHUNK_ADDR & 0xff, off, off + 4 * n);
      return;
    }
  }
}
