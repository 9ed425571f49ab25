/**
 * Layout of the C mkcomposefs 1.0.8 ("V1 family") image: BFS numbering, compact inodes when possible,
 * the descending shared xattr table, C data placement and tail padding. spec composefs-v1 §6–§11.
 */
import {
  BLOCK_SIZE,
  COMPACT_INODE_SIZE,
  COMPOSEFS_FLAG_HAS_ACL,
  EXTENDED_INODE_SIZE,
  FT_DIR,
  INODE_SLOT_SIZE,
  INODE_TABLE_START,
  LAYOUT_CHUNK_BASED,
  LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN,
  inodeFormat,
} from './format.js';
import {
  DOT,
  DOTDOT,
  type DirectoryContent,
  type DirentRef,
  direntFileType,
  splitDirectory,
} from './dirents.js';
import type { DataPart, ErofsLayout, PlacedInode } from './layout.js';
import { roundUp } from './layout.js';
import {
  type RewriteV1Options,
  type V1Node,
  chunkBits,
  chunkCount,
  rewriteTreeV1,
  v1Path,
} from './rewrite-v1.js';
import {
  type XattrEntry,
  checkXattrEntry,
  splitXattrKey,
  xattrBodySizeOf,
  xattrEntrySize,
  xattrFilterBit,
} from './xattr.js';
import { xxh32 } from './xxh32.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Inode } from '../tree.js';
import { OdhError } from '../../util/errors.js';

export type LayoutV1Options = RewriteV1Options;

const MAX_SHARED_REFS = 128;
const U32_MAX = 0xffffffffn;
const EMPTY = Buffer.alloc(0);
/** Shared by every inode that has no such part: per-inode copies were a fifth of the live heap. */
const NO_PART: DataPart = Object.freeze({ kind: 'none' });
const NO_PARTS: readonly DataPart[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);
const NO_LOCAL: readonly XattrEntry[] = Object.freeze([]);
/** One null-chunk part per chunk count (1…1024): external files share them. */
const NULL_CHUNKS: DataPart[] = [];
function nullChunks(count: number): DataPart {
  return (NULL_CHUNKS[count] ??= Object.freeze({ kind: 'nullChunks', count }));
}
const ACL_KEYS = [Buffer.from('system.posix_acl_access'), Buffer.from('system.posix_acl_default')];

/** BFS order (spec composefs-v1 §6.1); a hard-linked inode sits at its canonical entry's position. */
function numberInodes(root: V1Node): { list: V1Node[]; parent: number[] } {
  const list = [root];
  const parent = [0];
  root.ino = 0;
  for (let i = 0; i < list.length; i++) {
    for (const c of list[i].children ?? []) {
      if (c.hardlink) continue;
      c.node.ino = list.length;
      list.push(c.node);
      parent.push(i);
    }
  }
  return { list, parent };
}

function dirents(node: V1Node, me: number, parentIdx: number): DirentRef[] {
  const refs: DirentRef[] = [];
  // Children are sorted by name bytes (rewrite-v1): `.` and `..` are merged in where they sort (first,
  // unless a name starts with a byte below 0x2e or is like ".-"), so no re-sort is needed.
  let dot = false;
  let dotdot = false;
  for (const c of node.children!) {
    if (!dot && Buffer.compare(c.name, DOT) > 0) {
      refs.push({ name: DOT, target: me, fileType: FT_DIR });
      dot = true;
    }
    if (!dotdot && Buffer.compare(c.name, DOTDOT) > 0) {
      refs.push({ name: DOTDOT, target: parentIdx, fileType: FT_DIR });
      dotdot = true;
    }
    const target = c.node.ino;
    if (target < 0) {
      throw new OdhError('FORMAT', 'hardlink target is not in the tree', {
        path: `${v1Path(node)}/${c.name.toString('latin1')}`,
      });
    }
    refs.push({ name: c.name, target, fileType: direntFileType(c.node.mode) });
  }
  if (!dot) refs.push({ name: DOT, target: me, fileType: FT_DIR });
  if (!dotdot) refs.push({ name: DOTDOT, target: parentIdx, fileType: FT_DIR });
  return refs;
}

/** One distinct (full key, value) pair, counted over inodes (spec composefs-v1 §7.3). */
interface Pair {
  entry: XattrEntry;
  key: Buffer;
  bit: number;
  count: number;
  /** Offset in the shared table, if the pair is shared. */
  offset: number | undefined;
  /** Next pair in the same hash bucket. */
  next: Pair | undefined;
}

/** What depends on the key only: computed once per key Buffer, not once per (key, value) pair. */
interface KeyInfo {
  hash: number;
  /** The entry of (key, empty value): its prefix index and suffix are shared by every pair. */
  split: XattrEntry;
  bit: number;
}

/** Values up to this length are hashed directly: cheaper than a Map lookup by Buffer identity. */
const SHORT_VALUE = 128;

/** Interns every inode's xattrs (already sorted by key) as pairs; `pairs[i]` follows list[i].xattrs. */
function internPairs(list: V1Node[]): Pair[][] {
  // Buckets by a hash of (key, value), chained through Pair.next: most pairs are unique (metacopy
  // digests, redirects), so a bucket array per pair would be pure garbage-collector work.
  const buckets = new Map<number, Pair>();
  // The parser interns repeated xattr texts, so the same key Buffers recur: split and hash each once.
  const keys = new Map<Buffer, KeyInfo>();
  const valueHash = new Map<Buffer, number>();
  const same = (a: Buffer, b: Buffer): boolean => a === b || a.equals(b);
  return list.map((node) =>
    node.xattrs.map((x) => {
      let k = keys.get(x.key);
      if (k === undefined) {
        const split = splitXattrKey(x.key, EMPTY, 'v1');
        k = { hash: xxh32(x.key, 0), split, bit: xattrFilterBit(split) };
        keys.set(x.key, k);
      }
      let vh: number | undefined;
      if (x.value.length <= SHORT_VALUE) vh = xxh32(x.value, 0);
      else if ((vh = valueHash.get(x.value)) === undefined) valueHash.set(x.value, (vh = xxh32(x.value, 0)));
      const h = (Math.imul(k.hash, 0x9e3779b1) ^ vh) >>> 0;
      const head = buckets.get(h);
      let p = head;
      while (p !== undefined && !(same(p.key, x.key) && same(p.entry.value, x.value))) p = p.next;
      if (p === undefined) {
        const entry: XattrEntry = { index: k.split.index, suffix: k.split.suffix, value: x.value };
        checkXattrEntry(entry, () => v1Path(node));
        p = { entry, key: x.key, bit: k.bit, count: 0, offset: undefined, next: head };
        buckets.set(h, p);
      }
      p.count++;
      return p;
    }),
  );
}

/** The shared table: pairs on more than one inode, sorted as C does; sets each pair's offset. */
function sharedTable(pairs: Pair[][]): { entries: XattrEntry[]; size: number } {
  const shared = new Set<Pair>();
  for (const l of pairs) for (const p of l) if (p.count > 1) shared.add(p);
  const sorted = [...shared].sort(
    (a, b) =>
      Buffer.compare(b.key, a.key) ||
      b.entry.value.length - a.entry.value.length ||
      Buffer.compare(b.entry.value, a.entry.value),
  );
  let size = 0;
  for (const p of sorted) {
    p.offset = size;
    size += xattrEntrySize(p.entry);
  }
  return { entries: sorted.map((p) => p.entry), size };
}

interface Pending {
  node: V1Node;
  compact: boolean;
  blocks: number;
  tail: number;
  xsize: number;
  sharedOffsets: number[];
  filter: number;
  local: XattrEntry[];
  dir: DirectoryContent | null;
}

export function layoutV1(input: Inode, opts: LayoutV1Options = {}): ErofsLayout {
  const { root, version } = rewriteTreeV1(input, opts);
  const { list, parent } = numberInodes(root);

  // spec composefs-v1 §6.2–§6.3: directory nlink, xattr order, minimum mtime, ACL flag.
  let minSec = list[0].mtimeSec;
  let minNsec = list[0].mtimeNsec;
  let hasAcl = false;
  for (const node of list) {
    if (node.children) {
      node.nlink = 2 + node.children.filter((c) => !c.hardlink && (c.node.mode & S_IFMT) === S_IFDIR).length;
    }
    node.xattrs.sort((a, b) => Buffer.compare(a.key, b.key));
    if (node.mtimeSec < minSec || (node.mtimeSec === minSec && node.mtimeNsec >>> 0 < minNsec >>> 0)) {
      minSec = node.mtimeSec;
      minNsec = node.mtimeNsec;
    }
    if (node.xattrs.some((x) => ACL_KEYS.some((k) => k.equals(x.key)))) hasAcl = true;
  }
  const pairs = internPairs(list);
  const table = sharedTable(pairs);

  // spec composefs-v1 §7.3–§9: shared refs, xattr body, (blocks, tail), compact or extended.
  const pending: Pending[] = list.map((node, i) => {
    let filter = 0;
    let sharedOffsets = NO_IDS as number[];
    let local = NO_LOCAL as XattrEntry[];
    for (const p of pairs[i]) {
      filter |= 1 << p.bit;
      if (p.offset !== undefined && sharedOffsets.length < MAX_SHARED_REFS) {
        if (sharedOffsets === NO_IDS) sharedOffsets = [];
        sharedOffsets.push(p.offset);
      } else {
        if (local === NO_LOCAL) local = [];
        local.push(p.entry);
      }
    }
    const xsize = node.xattrs.length === 0 ? 0 : xattrBodySizeOf(sharedOffsets.length, local);
    let blocks = 0;
    let tail = 0;
    let dir: DirectoryContent | null = null;
    let s = node.size;
    const type = node.mode & S_IFMT;
    if (node.children) {
      dir = splitDirectory(dirents(node, i, parent[i]));
      blocks = dir.blocks.length;
      tail = dir.tailSize;
      s = BigInt(BLOCK_SIZE * blocks + tail);
    } else if (type === S_IFLNK) {
      tail = node.payload?.length ?? 0;
      s = BigInt(tail);
    } else if (type === S_IFREG && node.content) {
      const n = node.content.length;
      blocks = Math.floor(n / BLOCK_SIZE);
      tail = n % BLOCK_SIZE;
      if (tail > BLOCK_SIZE / 2) {
        blocks++;
        tail = 0;
      }
    } else if (type === S_IFREG && node.size > 0n) {
      tail = 4 * chunkCount(node.size);
    }
    const compact =
      node.mtimeSec === minSec &&
      node.mtimeNsec >>> 0 === minNsec >>> 0 &&
      node.nlink >>> 0 <= 0xffff &&
      node.uid >>> 0 <= 0xffff &&
      node.gid >>> 0 <= 0xffff &&
      s <= U32_MAX;
    return { node, compact, blocks, tail, xsize, sharedOffsets, filter: filter >>> 0, local, dir };
  });

  // spec composefs-v1 §10: inode placement and tail padding.
  const offsets: number[] = [];
  let pos = INODE_TABLE_START;
  for (const p of pending) {
    const isz = p.compact ? COMPACT_INODE_SIZE : EXTENDED_INODE_SIZE;
    pos = roundUp(pos, INODE_SLOT_SIZE);
    pos += tailPadding(p, pos, isz);
    offsets.push(pos);
    pos += isz + p.xsize + p.tail;
  }
  const inodesEnd = roundUp(pos, INODE_SLOT_SIZE);
  const dataStart = roundUp(inodesEnd + table.size, BLOCK_SIZE);
  const sharedBase = inodesEnd % BLOCK_SIZE;

  let block = dataStart / BLOCK_SIZE;
  const placed = pending.map((p, i) => {
    const firstBlock = p.blocks > 0 ? block : 0;
    block += p.blocks;
    return place(
      p,
      i,
      offsets[i],
      firstBlock,
      p.sharedOffsets.length === 0 ? p.sharedOffsets : p.sharedOffsets.map((o) => (sharedBase + o) / 4),
    );
  });
  return {
    composefsVersion: version,
    flags: hasAcl ? COMPOSEFS_FLAG_HAS_ACL : 0,
    rootNid: placed[0].nid,
    inos: placed.length,
    buildTimeSec: minSec,
    buildTimeNsec: minNsec >>> 0,
    xattrBlkaddr: Math.floor(inodesEnd / BLOCK_SIZE),
    inodes: placed,
    sharedTableOffset: inodesEnd,
    shared: table.entries,
    imageSize: block * BLOCK_SIZE,
  };
}

/** Zero bytes to put before the inode at `pos` (spec composefs-v1 §10.2); may promote the tail. */
function tailPadding(p: Pending, pos: number, isz: number): number {
  if ((p.node.mode & S_IFMT) === S_IFLNK) {
    const t = isz + p.xsize + p.tail;
    if (t >= BLOCK_SIZE) {
      p.blocks = 1;
      p.tail = 0;
    }
    const crosses = Math.floor(pos / BLOCK_SIZE) !== Math.floor((pos + t - 1) / BLOCK_SIZE);
    return crosses ? roundUp(pos, BLOCK_SIZE) - pos : 0;
  }
  if (p.tail === 0) return 0;
  const r = BLOCK_SIZE - ((pos + isz + p.xsize) % BLOCK_SIZE);
  if (r >= p.tail) return 0;
  const pad = roundUp(r, INODE_SLOT_SIZE);
  const r2 = BLOCK_SIZE - ((pos + isz + p.xsize + pad) % BLOCK_SIZE);
  if (p.tail <= r2) return pad;
  p.blocks++;
  p.tail = 0;
  return roundUp(pos, BLOCK_SIZE) - pos;
}

/** The inode's header fields and data parts (spec composefs-v1 §11.3–§11.5). */
function place(
  p: Pending,
  ino: number,
  offset: number,
  firstBlock: number,
  sharedIds: number[],
): PlacedInode {
  const node = p.node;
  const type = node.mode & S_IFMT;
  let layoutKind = p.tail > 0 ? LAYOUT_FLAT_INLINE : LAYOUT_FLAT_PLAIN;
  let size = 0n;
  let iu = p.blocks > 0 ? firstBlock : 0;
  let inline = NO_PART;
  let blocks = NO_PARTS as DataPart[];
  if (node.children) {
    const d = p.dir!;
    size = BigInt(BLOCK_SIZE * p.blocks + p.tail);
    if (d.blocks.length > 0) blocks = d.blocks.map((chunk): DataPart => ({ kind: 'dirents', chunk }));
    if (p.tail > 0) inline = { kind: 'dirents', chunk: d.tail };
  } else if (type === S_IFLNK) {
    const target = node.payload ?? Buffer.alloc(0);
    size = BigInt(target.length);
    if (p.blocks > 0) blocks = [{ kind: 'bytes', data: target }];
    else inline = { kind: 'bytes', data: target };
  } else if (type === S_IFREG && node.content) {
    const c = node.content;
    size = BigInt(c.length);
    if (p.blocks > 0) blocks = [];
    for (let b = 0; b < p.blocks; b++) {
      blocks.push({ kind: 'bytes', data: c.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE) });
    }
    if (p.tail > 0) inline = { kind: 'bytes', data: c.subarray(c.length - p.tail) };
  } else if (type === S_IFREG && node.size > 0n) {
    layoutKind = LAYOUT_CHUNK_BASED;
    size = node.size;
    // The u16 at i_u offset 0 is the chunk format; the high half keeps the block address.
    iu = ((iu & 0xffff0000) | (chunkBits(node.size) - 12)) >>> 0;
    if (p.blocks > 0) blocks = [nullChunks(chunkCount(node.size))];
    else inline = nullChunks(chunkCount(node.size));
  } else if (type === S_IFCHR || type === S_IFBLK) {
    iu = node.rdev;
  }
  return {
    offset,
    nid: offset / INODE_SLOT_SIZE,
    extended: !p.compact,
    format: inodeFormat(layoutKind, !p.compact),
    mode: node.mode & 0xffff,
    nlink: node.nlink,
    size,
    iu,
    ino,
    uid: node.uid,
    gid: node.gid,
    mtimeSec: node.mtimeSec,
    mtimeNsec: node.mtimeNsec,
    xattrs: p.xsize === 0 ? null : { filter: p.filter, sharedIds, local: p.local, size: p.xsize },
    inline,
    blocks,
    firstBlock,
  };
}
