/**
 * The composefs tree held flat: one typed-array column per inode field, byte fields (names, symlink
 * targets, backing paths, inline content, digests, xattrs) as (offset, length) into one byte arena.
 * It is what the C-rules dumpfile parser fills and what the V1 writer reads: a 64k-entry tree is a
 * few dozen typed arrays instead of a million small objects (the object graph spent a third of
 * `mkcomposefs --from-file` time in the garbage collector). `flattenTree` / `toInodeTree` convert
 * from and to the object model of tree.ts, which the OCI builders and the V2 writer use.
 *
 * Inode 0 is the root. An entry links a directory inode to a named child inode; exactly one entry
 * of each non-root inode is its canonical one (`hardlink` 0), the others are hardlinks (spec
 * composefs-v1 §6.1).
 */
import { OdhError } from '../../util/errors.js';
import { S_IFDIR, S_IFMT, newInode, type DirEntry, type Inode, type Xattr } from './tree.js';
import { checkEntryName } from './erofs/dirents.js';
import { checkRange, i32, i64, item, u32, u64, u8 } from './column.js';

const NONE = -1;

type Column = Int32Array | Uint32Array | Uint8Array | BigUint64Array | BigInt64Array;

/** A copy of column `a` with room for n elements (the new tail is zero). */
function grown<T extends Column>(a: T, n: number): T {
  const b = new (a.constructor as new (length: number) => T)(n);
  (b as { set(src: T): void }).set(a);
  return b;
}

/** The columns of each table, grown together (format/core.ts copies them in this order). */
export const INODE_COLUMNS = [
  'mode',
  'uid',
  'gid',
  'nlink',
  'rdev',
  'size',
  'mtimeSec',
  'mtimeNsec',
  'payloadOff',
  'payloadLen',
  'contentOff',
  'contentLen',
  'digestOff',
  'digestLen',
  'xattrFirst',
  'xattrCount',
  'canonical',
  'childFirst',
  'childCount',
] as const;
export const ENTRY_COLUMNS = [
  'entryParent',
  'entryInode',
  'entryNameOff',
  'entryNameLen',
  'entryHardlink',
] as const;
export const XATTR_COLUMNS = ['xattrKeyOff', 'xattrKeyLen', 'xattrValueOff', 'xattrValueLen'] as const;
type ColumnName =
  (typeof INODE_COLUMNS)[number] | (typeof ENTRY_COLUMNS)[number] | (typeof XATTR_COLUMNS)[number];

/** Runs up to this many bytes are copied in a loop: cheaper than a native call plus a view. */
const SHORT_COPY = 128;

/** A growable byte store; offsets stay valid when it grows (views taken before a growth do not). */
export class ByteArena {
  buf: Buffer;
  length = 0;

  constructor(capacity = 1 << 16) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Appends src[start, end) and returns its offset. */
  put(src: Uint8Array, start = 0, end = src.length): number {
    const n = end - start;
    this.reserve(n);
    const off = this.length;
    if (n <= SHORT_COPY) {
      checkRange(src, start, end);
      const b = this.buf;
      for (let i = start, at = off; i < end; i++) b[at++] = src[i]!; // in range: checked above
    } else {
      this.buf.set(src.subarray(start, end), off);
    }
    this.length += n;
    return off;
  }

  /** Copies len bytes of the arena from `from` to `to` (non-overlapping). */
  copyWithin(from: number, len: number, to: number): void {
    const b = this.buf;
    if (len <= SHORT_COPY) {
      checkRange(b, from, from + len);
      for (let i = 0; i < len; i++) b[to + i] = b[from + i]!; // in range: checked above
    } else b.copyWithin(to, from, from + len);
  }

  /** The arena's [off, off + end − start) equals src[start, end). */
  matches(off: number, src: Uint8Array, start: number, end: number): boolean {
    const b = this.buf;
    for (let i = start; i < end; i++) if (b[off++] !== src[i]) return false;
    return true;
  }

  /** The arena's [a, a+len) equals [b, b+len). */
  same(a: number, b: number, len: number): boolean {
    const buf = this.buf;
    for (let i = 0; i < len; i++) if (buf[a + i] !== buf[b + i]) return false;
    return true;
  }

  /** Reserves n bytes for the caller to fill at the returned offset (this.buf[off…]). */
  alloc(n: number): number {
    this.reserve(n);
    const off = this.length;
    this.length += n;
    return off;
  }

  /** A view of [off, off+len): valid until the next put/alloc. */
  view(off: number, len: number): Buffer {
    return this.buf.subarray(off, off + len);
  }

  equals(a: number, alen: number, b: number, blen: number): boolean {
    return alen === blen && this.buf.compare(this.buf, b, b + blen, a, a + alen) === 0;
  }

  compare(a: number, alen: number, b: number, blen: number): number {
    return this.buf.compare(this.buf, b, b + blen, a, a + alen);
  }
}

export class FlatTree {
  readonly bytes: ByteArena;

  /** `expected`: inodes (and entries) to make room for at once; growth doubles from there. */
  constructor(expected = 0) {
    this.bytes = new ByteArena(Math.max(1 << 16, expected * 64));
    if (expected > 0) {
      this.growInodes(expected);
      this.growEntries(expected);
      this.growXattrs(expected);
    }
  }

  // ---- inodes
  inodeCount = 0;
  private inodeCap = 0;
  mode: Uint32Array = new Uint32Array(0);
  uid: Uint32Array = new Uint32Array(0);
  gid: Uint32Array = new Uint32Array(0);
  nlink: Uint32Array = new Uint32Array(0);
  rdev: BigUint64Array = new BigUint64Array(0);
  size: BigUint64Array = new BigUint64Array(0);
  mtimeSec: BigInt64Array = new BigInt64Array(0);
  mtimeNsec: Uint32Array = new Uint32Array(0);
  /** Byte fields: offset into `bytes`, length; length -1 = absent (null). */
  payloadOff: Int32Array = new Int32Array(0);
  payloadLen: Int32Array = new Int32Array(0);
  contentOff: Int32Array = new Int32Array(0);
  contentLen: Int32Array = new Int32Array(0);
  digestOff: Int32Array = new Int32Array(0);
  digestLen: Int32Array = new Int32Array(0);
  /** Each inode's xattrs are xattrFirst…xattrFirst+xattrCount−1, in input order. */
  xattrFirst: Int32Array = new Int32Array(0);
  xattrCount: Int32Array = new Int32Array(0);
  /** The inode's canonical entry (NONE for the root, or before it is known). */
  canonical: Int32Array = new Int32Array(0);
  /** Directories: their entries are childIds[childFirst … childFirst+childCount−1], sorted by name. */
  childFirst: Int32Array = new Int32Array(0);
  childCount: Int32Array = new Int32Array(0);
  childIds: Int32Array = new Int32Array(0);

  // ---- entries
  entryCount = 0;
  private entryCap = 0;
  entryParent: Int32Array = new Int32Array(0);
  entryInode: Int32Array = new Int32Array(0);
  entryNameOff: Int32Array = new Int32Array(0);
  entryNameLen: Int32Array = new Int32Array(0);
  entryHardlink: Uint8Array = new Uint8Array(0);

  // ---- xattrs
  xattrTotal = 0;
  private xattrCap = 0;
  xattrKeyOff: Int32Array = new Int32Array(0);
  xattrKeyLen: Int32Array = new Int32Array(0);
  xattrValueOff: Int32Array = new Int32Array(0);
  xattrValueLen: Int32Array = new Int32Array(0);

  private growColumns(names: readonly ColumnName[], n: number): void {
    const columns = this as Record<ColumnName, Column>;
    for (const name of names) columns[name] = grown(columns[name], n);
  }

  private growInodes(n = Math.max(64, this.inodeCap * 2)): void {
    this.growColumns(INODE_COLUMNS, n);
    this.inodeCap = n;
  }

  private growEntries(n: number): void {
    this.growColumns(ENTRY_COLUMNS, n);
    this.entryCap = n;
  }

  private growXattrs(n: number): void {
    this.growColumns(XATTR_COLUMNS, n);
    this.xattrCap = n;
  }

  /** A new inode with the given st_mode, nlink 1 and every other field zero or absent. */
  addInode(mode: number): number {
    if (this.inodeCount === this.inodeCap) this.growInodes();
    const i = this.inodeCount++;
    this.mode[i] = mode;
    this.nlink[i] = 1;
    this.payloadLen[i] = NONE;
    this.contentLen[i] = NONE;
    this.digestLen[i] = NONE;
    this.xattrFirst[i] = this.xattrTotal;
    this.canonical[i] = NONE;
    return i;
  }

  isDir(i: number): boolean {
    return (u32(this.mode, i) & S_IFMT) === S_IFDIR;
  }

  /** An entry in directory `parent` for `inode` (NONE: set later); name it with setEntryName. */
  addEntry(parent: number, inode: number, hardlink: boolean): number {
    if (this.entryCount === this.entryCap) this.growEntries(Math.max(64, this.entryCap * 2));
    const e = this.entryCount++;
    this.entryParent[e] = parent;
    this.entryInode[e] = inode;
    this.entryHardlink[e] = hardlink ? 1 : 0;
    if (!hardlink && inode !== NONE) this.canonical[inode] = e;
    return e;
  }

  /** The name of entry e: src[start, end), copied into the arena. */
  setEntryName(e: number, src: Uint8Array, start: number, end: number): void {
    this.entryNameOff[e] = this.bytes.put(src, start, end);
    this.entryNameLen[e] = end - start;
  }

  /** addEntry + setEntryName for a whole name. */
  addNamedEntry(parent: number, name: Uint8Array, inode: number, hardlink: boolean): number {
    const e = this.addEntry(parent, inode, hardlink);
    this.setEntryName(e, name, 0, name.length);
    return e;
  }

  /** Appends an xattr to the most recently added inode (xattrs of one inode are contiguous). */
  addXattr(key: Uint8Array, value: Uint8Array): void {
    if (this.xattrTotal === this.xattrCap) this.growXattrs(Math.max(64, this.xattrCap * 2));
    const x = this.xattrTotal++;
    this.xattrKeyOff[x] = this.bytes.put(key);
    this.xattrKeyLen[x] = key.length;
    this.xattrValueOff[x] = this.bytes.put(value);
    this.xattrValueLen[x] = value.length;
    const last = this.inodeCount - 1;
    this.xattrCount[last] = i32(this.xattrCount, last) + 1;
  }

  setPayload(i: number, src: Uint8Array): void {
    this.payloadOff[i] = this.bytes.put(src);
    this.payloadLen[i] = src.length;
  }

  setContent(i: number, src: Uint8Array): void {
    this.contentOff[i] = this.bytes.put(src);
    this.contentLen[i] = src.length;
  }

  setDigest(i: number, src: Uint8Array): void {
    this.digestOff[i] = this.bytes.put(src);
    this.digestLen[i] = src.length;
  }

  /** A byte field as a Buffer view, or null; valid until the tree grows. */
  field(off: number, len: number): Buffer | null {
    return len < 0 ? null : this.bytes.view(off, len);
  }

  /** Inode i's backing path or symlink target, inline content, fs-verity digest (null: absent). */
  payload(i: number): Buffer | null {
    return this.field(i32(this.payloadOff, i), i32(this.payloadLen, i));
  }

  content(i: number): Buffer | null {
    return this.field(i32(this.contentOff, i), i32(this.contentLen, i));
  }

  digest(i: number): Buffer | null {
    return this.field(i32(this.digestOff, i), i32(this.digestLen, i));
  }

  /** Key and value of xattr x (an index in xattrFirst…); views valid until the tree grows. */
  xattrKey(x: number): Buffer {
    return this.bytes.view(i32(this.xattrKeyOff, x), i32(this.xattrKeyLen, x));
  }

  xattrValue(x: number): Buffer {
    return this.bytes.view(i32(this.xattrValueOff, x), i32(this.xattrValueLen, x));
  }

  entryName(e: number): Buffer {
    return this.bytes.view(i32(this.entryNameOff, e), i32(this.entryNameLen, e));
  }

  compareNames(a: number, b: number): number {
    const off = this.entryNameOff;
    const len = this.entryNameLen;
    return this.bytes.compare(i32(off, a), i32(len, a), i32(off, b), i32(len, b));
  }

  /** The path of an inode through canonical entries, for messages. */
  path(i: number): string {
    const parts: string[] = [];
    for (let e = i32(this.canonical, i); e !== NONE;) {
      parts.push(this.entryName(e).toString('latin1'));
      const parent = i32(this.entryParent, e);
      if (parent === 0) break;
      e = i32(this.canonical, parent);
    }
    return `/${parts.reverse().join('/')}`;
  }

  /**
   * Groups the entries by directory (childFirst/childCount/childIds), each group sorted by name
   * bytes; entries keep their relative order when already sorted (the usual case: no sort runs).
   */
  indexDirectories(): void {
    const n = this.inodeCount;
    const count = new Int32Array(n);
    const parent = this.entryParent;
    for (let e = 0; e < this.entryCount; e++) {
      const p = i32(parent, e);
      count[p] = i32(count, p) + 1;
    }
    let at = 0;
    for (let i = 0; i < n; i++) {
      this.childFirst[i] = at;
      this.childCount[i] = 0;
      at += i32(count, i);
    }
    const ids = new Int32Array(this.entryCount);
    for (let e = 0; e < this.entryCount; e++) {
      const p = i32(parent, e);
      const k = i32(this.childCount, p);
      ids[i32(this.childFirst, p) + k] = e;
      this.childCount[p] = k + 1;
    }
    this.childIds = ids;
    for (let i = 0; i < n; i++) {
      const first = i32(this.childFirst, i);
      const end = first + i32(this.childCount, i);
      for (let k = first + 1; k < end; k++) {
        if (this.compareNames(i32(ids, k - 1), i32(ids, k)) > 0) {
          ids.subarray(first, end).sort((a, b) => this.compareNames(a, b));
          break;
        }
      }
    }
  }
}

/**
 * A new inode of `flat` holding n's fields; `xattrs` and `payload` stand in for n's own when given
 * (a filtered list, a derived backing path).
 */
export function addInodeOf(
  flat: FlatTree,
  n: Inode,
  xattrs: readonly Xattr[] = n.xattrs,
  payload: Buffer | null = n.payload,
): number {
  const i = flat.addInode(n.mode);
  flat.uid[i] = n.uid;
  flat.gid[i] = n.gid;
  flat.nlink[i] = n.nlink;
  flat.rdev[i] = BigInt.asUintN(64, n.rdev);
  flat.size[i] = BigInt.asUintN(64, n.size);
  flat.mtimeSec[i] = BigInt.asIntN(64, n.mtimeSec);
  flat.mtimeNsec[i] = n.mtimeNsec;
  for (const x of xattrs) flat.addXattr(x.key, x.value);
  if (payload) flat.setPayload(i, payload);
  if (n.content) flat.setContent(i, n.content);
  if (n.digest) flat.setDigest(i, n.digest);
  return i;
}

/**
 * The flat form of an object tree (tree.ts). Inodes are numbered in depth-first pre-order; a
 * hardlinked inode gets one number. Directory entries keep the tree's order (sorted later if not).
 */
export function flattenTree(root: Inode): FlatTree {
  if ((root.mode & S_IFMT) !== S_IFDIR)
    throw new OdhError('FORMAT', 'the root must be a directory', { path: '/' });
  const flat = new FlatTree();
  const index = new Map<Inode, number>();
  const copyInode = (src: Inode): number => {
    const i = addInodeOf(flat, src);
    index.set(src, i);
    return i;
  };
  copyInode(root);
  const stack: [Inode, number][] = [[root, 0]];
  const pendingLinks: [number, Inode][] = [];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [dir, di] = top;
    const entries: DirEntry[] = dir.entries ?? [];
    for (const e of entries) {
      checkEntryName(e.name, () => flat.path(di));
      let child = index.get(e.inode);
      if (e.hardlink) {
        const entry = flat.addNamedEntry(di, e.name, child ?? NONE, true);
        if (child === undefined) pendingLinks.push([entry, e.inode]);
        continue;
      }
      if (child !== undefined && flat.canonical[child] !== NONE) {
        throw new OdhError('FORMAT', 'inode has two canonical (non-hardlink) entries', {
          path: `${flat.path(di)}/${e.name.toString('latin1')}`.replace(/^\/\//, '/'),
        });
      }
      if (child === undefined) child = copyInode(e.inode);
      flat.addNamedEntry(di, e.name, child, false);
      if (e.inode.entries !== null && (e.inode.mode & S_IFMT) === S_IFDIR) stack.push([e.inode, child]);
    }
  }
  for (const [entry, inode] of pendingLinks) {
    const target = index.get(inode);
    flat.entryInode[entry] = target ?? NONE;
  }
  flat.indexDirectories();
  return flat;
}

/** The object tree (tree.ts) of a flat tree; entries sorted, hardlinks sharing one Inode. */
export function toInodeTree(flat: FlatTree): Inode {
  const inodes: Inode[] = [];
  for (let i = 0; i < flat.inodeCount; i++) inodes.push(inodeOf(flat, i));
  for (const [i, inode] of inodes.entries()) {
    const entries = inode.entries;
    if (entries === null) continue;
    const first = i32(flat.childFirst, i);
    for (let k = first; k < first + i32(flat.childCount, i); k++) {
      const e = i32(flat.childIds, k);
      entries.push({
        name: Buffer.from(flat.entryName(e)),
        inode: item(inodes, i32(flat.entryInode, e)),
        hardlink: u8(flat.entryHardlink, e) === 1,
      });
    }
  }
  return item(inodes, 0);
}

/** A copy of flat inode i as an object inode (no entries yet), xattrs in input order. */
function inodeOf(flat: FlatTree, i: number): Inode {
  const copy = (b: Buffer | null): Buffer | null => (b === null ? null : Buffer.from(b));
  const inode = newInode(u32(flat.mode, i), {
    uid: u32(flat.uid, i),
    gid: u32(flat.gid, i),
    nlink: u32(flat.nlink, i),
    rdev: u64(flat.rdev, i),
    size: u64(flat.size, i),
    mtimeSec: i64(flat.mtimeSec, i),
    mtimeNsec: u32(flat.mtimeNsec, i),
    payload: copy(flat.payload(i)),
    content: copy(flat.content(i)),
    digest: copy(flat.digest(i)),
  });
  const first = i32(flat.xattrFirst, i);
  for (let x = first; x < first + i32(flat.xattrCount, i); x++) {
    inode.xattrs.push({ key: Buffer.from(flat.xattrKey(x)), value: Buffer.from(flat.xattrValue(x)) });
  }
  return inode;
}
