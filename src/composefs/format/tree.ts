/**
 * The filesystem tree every composefs producer fills and every EROFS writer consumes.
 * It is the superset of the C mkcomposefs node (spec composefs-v1 §2) and the composefs-rs
 * tree (spec composefs-v2 §2): names, xattr keys and values are bytes; 64-bit fields are BigInt.
 *
 * Hardlinks: several DirEntry objects reference the same Inode object. Exactly one of them is the
 * canonical entry (hardlink === false); V1 places the inode at the BFS position of that entry
 * (spec composefs-v1 §6.1). For trees built from OCI layers the canonical entry is the first one
 * in tree order.
 */

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export type FileType = 'reg' | 'dir' | 'lnk' | 'blk' | 'chr' | 'fifo' | 'sock';

export interface Xattr {
  key: Buffer;
  value: Buffer;
}

export interface DirEntry {
  /** 1..255 bytes, no '/', no NUL, not '.' or '..'. */
  name: Buffer;
  inode: Inode;
  /** true for a hardlink entry: the inode's canonical entry is elsewhere. */
  hardlink: boolean;
}

export interface Inode {
  /** Full st_mode including the S_IFMT type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Leaves: as given by the input (V1 writes it); directories are recomputed by writers. */
  nlink: number;
  /** Device number for chr/blk (V1 truncates to 32 bits, V2 keeps 64). */
  rdev: bigint;
  /** Regular: file size; symlink: target length; others: as the input said. */
  size: bigint;
  mtimeSec: bigint;
  mtimeNsec: number;
  /** In input order; writers sort as their format requires. */
  xattrs: Xattr[];
  /** Symlink target, or the backing-file path (redirect) of an external regular file. */
  payload: Buffer | null;
  /** Inline content of a regular file. */
  content: Buffer | null;
  /** fs-verity digest of the backing object of an external regular file (32 or 64 bytes). */
  digest: Buffer | null;
  /** Directories only: entries sorted by name bytes (Buffer.compare). */
  entries: DirEntry[] | null;
}

export function fileType(mode: number): FileType {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'reg';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'lnk';
    case S_IFBLK:
      return 'blk';
    case S_IFCHR:
      return 'chr';
    case S_IFIFO:
      return 'fifo';
    case S_IFSOCK:
      return 'sock';
    default:
      throw new RangeError(`invalid file type in mode 0${(mode >>> 0).toString(8)}`);
  }
}

export function newInode(mode: number, init?: Partial<Inode>): Inode {
  const inode: Inode = {
    mode,
    uid: 0,
    gid: 0,
    nlink: 1,
    rdev: 0n,
    size: 0n,
    mtimeSec: 0n,
    mtimeNsec: 0,
    xattrs: [],
    payload: null,
    content: null,
    digest: null,
    entries: (mode & S_IFMT) === S_IFDIR ? [] : null,
  };
  return init === undefined ? inode : Object.assign(inode, init);
}

/** Sorts a directory's entries by name bytes (never as JS strings). */
export function sortEntries(entries: DirEntry[]): void {
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
}

/**
 * NLINK as composefs-rs counts it (spec composefs-v2 §2, §4.5): a leaf, the directory entries that
 * refer to it; a directory, 2 plus its subdirectory entries. Each directory is walked once.
 */
export function linkCounts(root: Inode): Map<Inode, number> {
  const counts = new Map<Inode, number>();
  const stack: Inode[] = [root];
  const entered = new Set<Inode>([root]);
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    let subdirs = 0;
    for (const e of dir.entries ?? []) {
      if (e.inode.entries !== null) {
        subdirs++;
        if (!entered.has(e.inode)) {
          entered.add(e.inode);
          stack.push(e.inode);
        }
      } else {
        counts.set(e.inode, (counts.get(e.inode) ?? 0) + 1);
      }
    }
    counts.set(dir, 2 + subdirs);
  }
  return counts;
}
