/**
 * The small trees the upstream writers pin digests for, built as their specs describe them.
 * Shared by the writer tests (not a test file itself).
 */
import {
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
  newInode,
  sortEntries,
  type Inode,
} from '../../src/composefs/format/tree.js';

export function dirWith(root: Inode, entries: [string, Inode, boolean?][]): Inode {
  for (const [name, inode, hardlink] of entries) {
    root.entries!.push({ name: Buffer.from(name, 'latin1'), inode, hardlink: hardlink ?? false });
  }
  sortEntries(root.entries!);
  return root;
}

/** spec composefs-v2 §8.2 / composefs-v1 §13.2: a root 0o755 with nothing in it. */
export function emptyTree(): Inode {
  return newInode(S_IFDIR | 0o755, { nlink: 2 });
}

/**
 * spec composefs-v2 §8.2 `simple` (mkfs.rs): seven leaves with permission bits 0; as a dumpfile in
 * composefs-v1 §13.3 (the external file's payload is its object path).
 */
export function simpleTree(): Inode {
  const digest = Buffer.alloc(32, 0x5a);
  return dirWith(emptyTree(), [
    ['fifo', newInode(S_IFIFO)],
    ['regular-inline', newInode(S_IFREG, { content: Buffer.from('hihi'), size: 4n })],
    [
      'regular-external',
      newInode(S_IFREG, { size: 1234n, digest, payload: Buffer.from(`5a/${'5a'.repeat(31)}`) }),
    ],
    ['chrdev', newInode(S_IFCHR, { rdev: 123n })],
    ['blkdev', newInode(S_IFBLK, { rdev: 123n })],
    ['socket', newInode(S_IFSOCK)],
    ['symlink', newInode(S_IFLNK, { payload: Buffer.from('/target'), size: 7n })],
  ]);
}

/** Parses hexdump rows `OFFSET: xxxx xxxx …` (anything after the hex groups is a comment). */
export function hexdumpImage(rows: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (const line of rows.split('\n')) {
    const [, offset, hex] = /^([0-9a-f]{8}):((?: [0-9a-f]{4})+)/.exec(line.trim()) ?? [];
    if (offset === undefined || hex === undefined) continue;
    Buffer.from(hex.replace(/ /g, ''), 'hex').copy(out, parseInt(offset, 16));
  }
  return out;
}

/** The rows of a hexdump as (offset, bytes) pairs, for checking only the rows a spec lists. */
export function hexdumpRows(rows: string): { offset: number; bytes: Buffer }[] {
  const out: { offset: number; bytes: Buffer }[] = [];
  for (const line of rows.split('\n')) {
    const [, offset, hex] = /^([0-9a-f]{8}):((?: [0-9a-f]{4})+)/.exec(line.trim()) ?? [];
    if (offset !== undefined && hex !== undefined) {
      out.push({ offset: parseInt(offset, 16), bytes: Buffer.from(hex.replace(/ /g, ''), 'hex') });
    }
  }
  return out;
}
