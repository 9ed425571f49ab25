/**
 * Directory content: entries packed greedily into ≤ 4096-byte chunks; a final chunk over 2048 bytes
 * becomes a block, otherwise it is the inline tail. spec composefs-v2 §4.5, §4.9; composefs-v1 §9.1, §11.6.
 */
import {
  BLOCK_SIZE,
  DE_FILE_TYPE,
  DE_NAMEOFF,
  DE_NID,
  DIRENT_SIZE,
  FT_BLKDEV,
  FT_CHRDEV,
  FT_DIR,
  FT_FIFO,
  FT_REG_FILE,
  FT_SOCK,
  FT_SYMLINK,
} from './format.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../tree.js';
import { OdhError } from '../../../util/errors.js';

/** One dirent before nids are known: `target` is the index of the inode in the layout's inode list. */
export interface DirentRef {
  name: Buffer;
  target: number;
  fileType: number;
}

export interface DirectoryContent {
  /** Full-block chunks, each written zero-padded to 4096 in the data area. */
  blocks: DirentRef[][];
  /** The inline tail chunk (possibly empty). */
  tail: DirentRef[];
  tailSize: number;
}

export const DOT = Buffer.from('.');
export const DOTDOT = Buffer.from('..');

export function direntFileType(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return FT_REG_FILE;
    case S_IFDIR:
      return FT_DIR;
    case S_IFCHR:
      return FT_CHRDEV;
    case S_IFBLK:
      return FT_BLKDEV;
    case S_IFIFO:
      return FT_FIFO;
    case S_IFSOCK:
      return FT_SOCK;
    case S_IFLNK:
      return FT_SYMLINK;
    default:
      throw new OdhError('FORMAT', `invalid file type in mode 0${(mode >>> 0).toString(8)}`);
  }
}

/** Sorts by name bytes unless already sorted (the tree's contract makes that the common case). */
export function sortedByName<T extends { name: Buffer }>(entries: readonly T[]): T[] {
  let prev: T | undefined;
  for (const e of entries) {
    if (prev !== undefined && Buffer.compare(prev.name, e.name) > 0) {
      return [...entries].sort((a, b) => Buffer.compare(a.name, b.name));
    }
    prev = e;
  }
  return [...entries];
}

/** Splits entries (already sorted by name bytes, `.` and `..` included) into blocks and a tail. */
export function splitDirectory(entries: DirentRef[]): DirectoryContent {
  const blocks: DirentRef[][] = [];
  let cur: DirentRef[] = [];
  let curSize = 0;
  for (const e of entries) {
    const cost = DIRENT_SIZE + e.name.length;
    if (curSize + cost > BLOCK_SIZE) {
      blocks.push(cur);
      cur = [];
      curSize = 0;
    }
    cur.push(e);
    curSize += cost;
  }
  if (curSize > BLOCK_SIZE / 2) {
    blocks.push(cur);
    return { blocks, tail: [], tailSize: 0 };
  }
  return { blocks, tail: cur, tailSize: curSize };
}

/** i_size of a directory: 4096 per block plus the tail bytes. */
export function directorySize(d: DirectoryContent): number {
  return BLOCK_SIZE * d.blocks.length + d.tailSize;
}

/** Encodes one chunk at `off`: k headers, then the names back to back. Returns its byte length. */
export function encodeDirentChunk(
  buf: Buffer,
  off: number,
  chunk: DirentRef[],
  nidOf: (target: number) => number,
): number {
  let nameoff = DIRENT_SIZE * chunk.length;
  let h = off;
  for (const e of chunk) {
    // nids stay far below 2^32 (images are < 2^32 blocks of metadata); the high half stays zero.
    buf.writeUInt32LE(nidOf(e.target), h + DE_NID);
    buf.writeUInt16LE(nameoff, h + DE_NAMEOFF);
    buf[h + DE_FILE_TYPE] = e.fileType;
    e.name.copy(buf, off + nameoff);
    nameoff += e.name.length;
    h += DIRENT_SIZE;
  }
  return nameoff;
}

/** A directory entry name must be 1–255 bytes with no `/` or NUL and not `.`/`..` (the tree's contract). */
export function checkEntryName(name: Buffer, dirPath: () => string): void {
  const bad =
    name.length === 0 ||
    name.length > 255 ||
    name.includes(0x2f) ||
    name.includes(0) ||
    name.equals(DOT) ||
    name.equals(DOTDOT);
  if (bad) {
    throw new OdhError('FORMAT', `invalid directory entry name ${JSON.stringify(name.toString('latin1'))}`, {
      path: dirPath(),
    });
  }
}
