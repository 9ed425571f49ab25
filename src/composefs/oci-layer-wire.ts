/**
 * Tree items of one layer as they cross from a layer worker to the thread that owns the tree
 * builder. Every byte string travels as a latin1 JS string (1:1 with bytes): a structured clone of a
 * Buffer would copy its whole backing ArrayBuffer (a 256 KiB inflate chunk, an 8 KiB pool slab), and
 * the revived items then hold compact copies instead of views into layer data.
 */
import type { OciPath } from './oci-entry.js';
import type { DirStat, OciNewNode } from './oci-merge.js';
import { newInode, type Inode, type Xattr } from './tree.js';

type Bytes = string;

interface WirePath {
  dir: Bytes[];
  name: Bytes | null;
}

/** Stat fields every node carries; xattrs as [key, value, key, value, …]. */
interface WireStat {
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  xattrs: Bytes[];
}

interface WireLeaf extends WireStat {
  nlink: number;
  rdev: bigint;
  size: bigint;
  payload: Bytes | null;
  content: Bytes | null;
  digest: Bytes | null;
}

type WireNode =
  | { kind: 'dir'; stat: WireStat }
  | { kind: 'leaf'; inode: WireLeaf }
  | { kind: 'hardlink'; target: WirePath; targetDisplay: string };

/** One tar entry's effect: where it goes and what it adds (see OciTreeBuilder.apply). */
export interface WireItem {
  path: WirePath;
  node: WireNode;
}

const str = (b: Buffer): Bytes => b.toString('latin1');
const optStr = (b: Buffer | null): Bytes | null => (b === null ? null : str(b));
const buf = (s: Bytes): Buffer => Buffer.from(s, 'latin1');
const optBuf = (s: Bytes | null): Buffer | null => (s === null ? null : buf(s));

function pathToWire(p: OciPath): WirePath {
  return { dir: p.dir.map(str), name: optStr(p.name) };
}

function pathFromWire(p: WirePath): OciPath {
  return { dir: p.dir.map(buf), name: optBuf(p.name) };
}

function xattrsToWire(xs: Xattr[]): Bytes[] {
  const out: Bytes[] = [];
  for (const x of xs) out.push(str(x.key), str(x.value));
  return out;
}

function xattrsFromWire(xs: Bytes[]): Xattr[] {
  const out: Xattr[] = [];
  for (let i = 0; i < xs.length; i += 2) out.push({ key: buf(xs[i]), value: buf(xs[i + 1]) });
  return out;
}

function statToWire(s: DirStat | Inode): WireStat {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    mtimeSec: s.mtimeSec,
    mtimeNsec: s.mtimeNsec,
    xattrs: xattrsToWire(s.xattrs),
  };
}

function statFromWire(s: WireStat): DirStat {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    mtimeSec: s.mtimeSec,
    mtimeNsec: s.mtimeNsec,
    xattrs: xattrsFromWire(s.xattrs),
  };
}

/** A leaf inode never has entries (the builder makes directory inodes itself when it finishes). */
function leafToWire(i: Inode): WireLeaf {
  if (i.entries !== null) throw new RangeError('a directory inode cannot travel as a leaf');
  return {
    ...statToWire(i),
    nlink: i.nlink,
    rdev: i.rdev,
    size: i.size,
    payload: optStr(i.payload),
    content: optStr(i.content),
    digest: optStr(i.digest),
  };
}

function leafFromWire(w: WireLeaf): Inode {
  const inode = newInode(w.mode, {
    ...statFromWire(w),
    nlink: w.nlink,
    rdev: w.rdev,
    size: w.size,
    payload: optBuf(w.payload),
    content: optBuf(w.content),
    digest: optBuf(w.digest),
  });
  inode.entries = null;
  return inode;
}

export function itemToWire(path: OciPath, node: OciNewNode): WireItem {
  const p = pathToWire(path);
  if (node.kind === 'dir') return { path: p, node: { kind: 'dir', stat: statToWire(node.stat) } };
  if (node.kind === 'leaf') return { path: p, node: { kind: 'leaf', inode: leafToWire(node.inode) } };
  return {
    path: p,
    node: { kind: 'hardlink', target: pathToWire(node.target), targetDisplay: node.targetDisplay },
  };
}

export function itemFromWire(w: WireItem): { path: OciPath; node: OciNewNode } {
  const path = pathFromWire(w.path);
  const n = w.node;
  if (n.kind === 'dir') return { path, node: { kind: 'dir', stat: statFromWire(n.stat) } };
  if (n.kind === 'leaf') return { path, node: { kind: 'leaf', inode: leafFromWire(n.inode) } };
  return {
    path,
    node: { kind: 'hardlink', target: pathFromWire(n.target), targetDisplay: n.targetDisplay },
  };
}
