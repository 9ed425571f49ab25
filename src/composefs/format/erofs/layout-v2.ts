/**
 * Layout of the composefs-rs "V2" image (composefs_version 2): DFS pre-order inodes, all extended,
 * shared xattrs sorted ascending, the V2 tail-crossing rule. spec composefs-v2 §4.
 */
import {
  BLOCK_SIZE,
  CHUNK_INDEX_SIZE,
  EXTENDED_INODE_SIZE,
  FT_DIR,
  INODE_SLOT_SIZE,
  INODE_TABLE_START,
  LAYOUT_CHUNK_BASED,
  LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN,
  XATTR_METACOPY,
  XATTR_REDIRECT,
  inodeFormat,
} from './format.js';
import {
  DOT,
  DOTDOT,
  type DirectoryContent,
  type DirentRef,
  checkEntryName,
  direntFileType,
  sortedByName,
  splitDirectory,
} from './dirents.js';
import type { DataPart, ErofsLayout, PlacedInode } from './layout.js';
import { roundUp } from './layout.js';
import {
  type HashAlgorithm,
  checkSymlinkTarget,
  digestAlgorithm,
  escapeOverlayKey,
  metacopyValue,
  objectPath,
} from './overlay.js';
import {
  type XattrBody,
  type XattrEntry,
  checkXattrEntry,
  splitXattrKey,
  xattrBodySizeOf,
  xattrEntrySize,
  xattrFilterBit,
} from './xattr.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type DirEntry, type Inode } from '../tree.js';
import { OdhError } from '../../../util/errors.js';
import { item } from '../column.js';

export interface LayoutV2Options {
  /** Repository hash: the metacopy algorithm byte and the expected object-id length. */
  hash?: HashAlgorithm;
}

interface Collected {
  src: Inode;
  /** Built only for error messages. */
  path: () => string;
  dir: DirectoryContent | null;
  nlink: number;
}

const METACOPY = Buffer.from(XATTR_METACOPY, 'latin1');
const REDIRECT = Buffer.from(XATTR_REDIRECT, 'latin1');

function sortedEntries(dir: Inode): DirEntry[] {
  return sortedByName(dir.entries ?? []);
}

/** Number of directory entries referencing each leaf (its V2 nlink). spec composefs-v2 §2. */
function countLinks(root: Inode): Map<Inode, number> {
  if ((root.mode & S_IFMT) !== S_IFDIR)
    throw new OdhError('FORMAT', 'the root must be a directory', { path: '/' });
  const refs = new Map<Inode, number>();
  const dirs = new Set<Inode>([root]);
  const stack = [root];
  for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
    for (const e of d.entries ?? []) {
      if ((e.inode.mode & S_IFMT) === S_IFDIR) {
        if (e.hardlink) throw new OdhError('UNSUPPORTED', 'V2 images cannot hard-link a directory');
        // A directory reached twice (a cycle or a shared subtree) would make the walk endless.
        if (dirs.has(e.inode)) throw new OdhError('FORMAT', 'directory appears twice in the tree');
        dirs.add(e.inode);
        stack.push(e.inode);
      } else refs.set(e.inode, (refs.get(e.inode) ?? 0) + 1);
    }
  }
  return refs;
}

/** Step A: DFS pre-order; a hard-linked leaf gets its inode at its first occurrence. */
function collect(root: Inode): Collected[] {
  const refs = countLinks(root);
  const list: Collected[] = [];
  const leafIndex = new Map<Inode, number>();
  interface Frame {
    me: number;
    /** list[me]. */
    self: Collected;
    parent: number;
    children: DirEntry[];
    next: number;
    refs: DirentRef[];
  }
  const open = (dir: Inode, parent: number, path: () => string): Frame => {
    const me = list.length;
    const self: Collected = { src: dir, path, dir: null, nlink: 0 };
    list.push(self);
    return { me, self, parent: parent < 0 ? me : parent, children: sortedEntries(dir), next: 0, refs: [] };
  };
  const stack: Frame[] = [open(root, -1, () => '/')];
  for (let f = stack.at(-1); f !== undefined; f = stack.at(-1)) {
    const e = f.children[f.next++];
    if (e !== undefined) {
      const parentPath = f.self.path;
      checkEntryName(e.name, parentPath);
      const path = (): string => `${parentPath() === '/' ? '' : parentPath()}/${e.name.toString('latin1')}`;
      const type = direntFileType(e.inode.mode);
      if ((e.inode.mode & S_IFMT) === S_IFDIR) {
        const child = open(e.inode, f.me, path);
        f.refs.push({ name: e.name, target: child.me, fileType: type });
        stack.push(child);
        continue;
      }
      let idx = leafIndex.get(e.inode);
      if (idx === undefined) {
        idx = list.length;
        leafIndex.set(e.inode, idx);
        list.push({ src: e.inode, path, dir: null, nlink: refs.get(e.inode) ?? 1 });
      }
      f.refs.push({ name: e.name, target: idx, fileType: type });
      continue;
    }
    stack.pop();
    const all = [
      ...f.refs,
      { name: DOT, target: f.me, fileType: FT_DIR },
      { name: DOTDOT, target: f.parent, fileType: FT_DIR },
    ].sort((a, b) => Buffer.compare(a.name, b.name));
    f.self.dir = splitDirectory(all);
    f.self.nlink = all.reduce((n, r) => n + (r.fileType === FT_DIR ? 1 : 0), 0);
  }
  return list;
}

type Kind = 'dir' | 'inline' | 'empty' | 'external' | 'device' | 'symlink' | 'other';

function kindOf(ino: Inode): Kind {
  switch (ino.mode & S_IFMT) {
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    case S_IFCHR:
    case S_IFBLK:
      return 'device';
    case S_IFREG:
      if (ino.content && ino.content.length > 0) return 'inline';
      return ino.size > 0n ? 'external' : 'empty';
    default:
      return 'other';
  }
}

/** Step B: metacopy and redirect first, then the node's own xattrs by original name (escaped). */
function xattrList(c: Collected, opts: LayoutV2Options): XattrEntry[] {
  const out: XattrEntry[] = [];
  if (kindOf(c.src) === 'external') {
    if (!c.src.digest)
      throw new OdhError('FORMAT', 'external file without fs-verity digest', { path: c.path() });
    const alg = digestAlgorithm(c.src.digest, opts.hash, c.path);
    out.push(splitXattrKey(METACOPY, metacopyValue(c.src.digest, alg), 'v2'));
    out.push(splitXattrKey(REDIRECT, Buffer.from(`/${objectPath(c.src.digest)}`, 'latin1'), 'v2'));
  }
  const own = [...c.src.xattrs].sort((a, b) => Buffer.compare(a.key, b.key));
  for (const x of own) out.push(splitXattrKey(escapeOverlayKey(x.key), x.value, 'v2'));
  for (const e of out) checkXattrEntry(e, c.path);
  return out;
}

function tripleKey(e: XattrEntry): string {
  return `${e.index}\0${e.suffix.toString('latin1')}\0${e.value.toString('latin1')}`;
}

/** Step C: the shared xattr table (spec composefs-v2 §4.5). */
interface SharedTable {
  /** Triples seen more than once, sorted by (index, suffix, value). */
  shared: XattrEntry[];
  /** Offset of each shared triple (by tripleKey) in the table. */
  offsets: Map<string, number>;
  size: number;
}

function sharedTable(lists: readonly XattrEntry[][]): SharedTable {
  const counts = new Map<string, { e: XattrEntry; n: number }>();
  for (const xattrs of lists) {
    for (const e of xattrs) {
      const k = tripleKey(e);
      const hit = counts.get(k);
      if (hit) hit.n++;
      else counts.set(k, { e, n: 1 });
    }
  }
  const shared = [...counts.values()]
    .filter((v) => v.n > 1)
    .map((v) => v.e)
    .sort(
      (a, b) => a.index - b.index || Buffer.compare(a.suffix, b.suffix) || Buffer.compare(a.value, b.value),
    );
  const offsets = new Map<string, number>();
  let size = 0;
  for (const e of shared) {
    offsets.set(tripleKey(e), size);
    size += xattrEntrySize(e);
  }
  return { shared, offsets, size };
}

/** An inode's xattr body (null without xattrs) and the table offsets of its shared triples. */
interface PlannedXattrs {
  body: XattrBody | null;
  sharedOffsets: number[];
  size: number;
}

function planXattrs(xattrs: readonly XattrEntry[], table: SharedTable): PlannedXattrs {
  let filter = 0;
  const local: XattrEntry[] = [];
  const sharedOffsets: number[] = [];
  for (const e of xattrs) {
    filter |= (1 << xattrFilterBit(e)) >>> 0;
    const s = table.offsets.get(tripleKey(e));
    if (s === undefined) local.push(e);
    else sharedOffsets.push(s);
  }
  const size = xattrs.length === 0 ? 0 : xattrBodySizeOf(sharedOffsets.length, local);
  // Shared ids are filled in once the table's position is known (after every inode is placed).
  const body = size === 0 ? null : { filter: filter >>> 0, sharedIds: [], local, size };
  return { body, sharedOffsets, size };
}

/** Where an inode's data goes: its layout, i_size, i_u and the inline tail or data blocks. */
interface InodeData {
  layout: number;
  size: bigint;
  iu: number;
  inline: DataPart;
  inlineLen: number;
  blocks: DataPart[];
}

/** No data (fresh each time: placed inodes own their parts). */
function noData(): InodeData {
  return { layout: LAYOUT_FLAT_PLAIN, size: 0n, iu: 0, inline: { kind: 'none' }, inlineLen: 0, blocks: [] };
}

/** Inline bytes: the whole content shares the inode's block (spec composefs-v2 §4.7). */
function inlineBytes(data: Buffer): InodeData {
  const inline: DataPart = { kind: 'bytes', data };
  return {
    ...noData(),
    layout: LAYOUT_FLAT_INLINE,
    size: BigInt(data.length),
    inline,
    inlineLen: data.length,
  };
}

function inodeData(c: Collected): InodeData {
  const src = c.src;
  switch (kindOf(src)) {
    case 'dir': {
      if (c.dir === null) throw new OdhError('FORMAT', 'directory without its entries', { path: c.path() });
      const d = c.dir;
      const blocks: DataPart[] = d.blocks.map((chunk) => ({ kind: 'dirents', chunk }));
      const size = BigInt(BLOCK_SIZE * d.blocks.length + d.tailSize);
      if (d.tailSize === 0) return { ...noData(), size, blocks };
      const inline: DataPart = { kind: 'dirents', chunk: d.tail };
      return { ...noData(), layout: LAYOUT_FLAT_INLINE, size, inline, inlineLen: d.tailSize, blocks };
    }
    case 'inline':
      return inlineBytes(src.content ?? Buffer.alloc(0));
    case 'external':
      // One 2^43-byte chunk, 4-byte block map entries: chunk format 31. spec composefs-v2 §4.7.
      return {
        ...noData(),
        layout: LAYOUT_CHUNK_BASED,
        size: src.size,
        iu: 31,
        inline: { kind: 'nullChunks', count: 1 },
        inlineLen: CHUNK_INDEX_SIZE,
      };
    case 'symlink':
      return inlineBytes(checkSymlinkTarget(src.payload, c.path));
    case 'device':
      return { ...noData(), iu: Number(BigInt.asUintN(32, src.rdev)) };
    default:
      return noData();
  }
}

/**
 * The inode's slot from `pos`: 32-byte aligned, and a flat-inline inode whose tail would cross a
 * block boundary moves to the next block (spec composefs-v2 §4.7 step 4: the exclusive-end
 * off-by-one is reproduced on purpose).
 */
function inodeSlot(pos: number, data: InodeData, xattrSize: number): number {
  pos = roundUp(pos, INODE_SLOT_SIZE);
  if (data.layout !== LAYOUT_FLAT_INLINE) return pos;
  const start = pos + EXTENDED_INODE_SIZE + xattrSize;
  const last = start - 1;
  const end = start + Number(data.size % BigInt(BLOCK_SIZE));
  if (Math.floor(last / BLOCK_SIZE) === Math.floor(end / BLOCK_SIZE)) return pos;
  return roundUp(pos + BLOCK_SIZE - (last % BLOCK_SIZE), INODE_SLOT_SIZE);
}

function placedInode(c: Collected, offset: number, data: InodeData, xattrs: XattrBody | null): PlacedInode {
  const src = c.src;
  return {
    offset,
    nid: offset / INODE_SLOT_SIZE,
    extended: true,
    format: inodeFormat(data.layout, true),
    mode: ((src.mode & S_IFMT) | (src.mode & 0xffff)) & 0xffff,
    nlink: c.nlink,
    size: data.size,
    iu: data.iu,
    ino: offset / INODE_SLOT_SIZE,
    uid: src.uid,
    gid: src.gid,
    mtimeSec: src.mtimeSec,
    mtimeNsec: 0,
    xattrs,
    inline: data.inline,
    blocks: data.blocks,
    firstBlock: 0,
  };
}

/** Data blocks follow the shared table, in inode order; a block-holding inode's i_u is its first block. */
function assignBlocks(placed: readonly PlacedInode[], firstBlock: number): number {
  let block = firstBlock;
  for (const p of placed) {
    if (p.blocks.length === 0) continue;
    p.firstBlock = block;
    p.iu = block;
    block += p.blocks.length;
  }
  return block;
}

export function layoutV2(root: Inode, opts: LayoutV2Options = {}): ErofsLayout {
  const nodes = collect(root).map((c) => ({ c, xattrs: xattrList(c, opts) }));
  const table = sharedTable(nodes.map((n) => n.xattrs));

  // Step E pass 1: positions. spec composefs-v2 §4.7.
  const placed: PlacedInode[] = [];
  const planned: PlannedXattrs[] = [];
  let pos = INODE_TABLE_START;
  for (const { c, xattrs } of nodes) {
    const x = planXattrs(xattrs, table);
    const data = inodeData(c);
    if (kindOf(c.src) === 'inline' && data.inlineLen > BLOCK_SIZE - EXTENDED_INODE_SIZE - x.size) {
      // composefs-rs inlines at most 512 bytes; more cannot share a block with its inode.
      throw new OdhError('LIMIT', `inline content of ${data.inlineLen} bytes does not fit in one block`, {
        path: c.path(),
      });
    }
    pos = inodeSlot(pos, data, x.size);
    placed.push(placedInode(c, pos, data, x.body));
    planned.push(x);
    pos += EXTENDED_INODE_SIZE + x.size + data.inlineLen;
  }
  const sharedTableOffset = roundUp(pos, INODE_SLOT_SIZE);
  for (const { body, sharedOffsets } of planned) {
    if (body !== null) body.sharedIds = sharedOffsets.map((o) => (sharedTableOffset + o) / 4);
  }
  const end = assignBlocks(placed, roundUp(sharedTableOffset + table.size, BLOCK_SIZE) / BLOCK_SIZE);
  return {
    composefsVersion: 2,
    flags: 0,
    rootNid: item(placed, 0).nid,
    inos: placed.length,
    buildTimeSec: 0n,
    buildTimeNsec: 0,
    xattrBlkaddr: 0,
    inodes: placed,
    sharedTableOffset,
    shared: table.shared,
    imageSize: end * BLOCK_SIZE,
  };
}
