/**
 * Applying OCI layer entries to a tree and finishing it for OCI, exactly as composefs-rs
 * `image.rs::process_entry` and `FileSystem::transform_for_oci` (spec composefs-v2 §3.4–§3.5,
 * spec composefs-v1 §14.3). Pure: items arrive already built (entry.ts, image-tree.ts).
 */
import { OdhError } from '../../util/errors.js';
import { checkEntryName } from '../format/erofs/dirents.js';
import { addInodeOf, FlatTree } from '../format/flat-tree.js';
import { digestObjectPath } from '../format/fsverity.js';
import { newInode, S_IFDIR, sortEntries, type DirEntry, type Inode, type Xattr } from '../format/tree.js';
import { whiteoutOf, type OciPath } from './entry.js';

/** Directory metadata (a full st_mode including S_IFDIR). */
export interface DirStat {
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  xattrs: Xattr[];
}

/** A directory while layers are applied: children keyed by their name bytes (latin1 is 1:1). */
class BuildDir {
  readonly children = new Map<string, BuildNode>();
  constructor(public stat: DirStat) {}
}

/** A leaf is the Inode itself; hardlinks share the object. */
type BuildNode = BuildDir | Inode;

/** What an entry adds (spec composefs-v2 §3.4 step 2). */
export type OciNewNode =
  | { kind: 'dir'; stat: DirStat }
  | { kind: 'leaf'; inode: Inode }
  | { kind: 'hardlink'; target: OciPath; targetDisplay: string };

/**
 * Which xattrs survive `transform_for_oci`: composefs-rs at the V2 spec's snapshot keeps all
 * (spec composefs-v2 §3.5); since 0.8.0 (the V1 default era) it keeps only `security.capability`,
 * or also `user.*` (spec composefs-v1 §14.3).
 */
export type OciXattrPolicy = 'all' | 'capability' | 'capability+user';

const key = (name: Buffer): string => name.toString('latin1');
const show = (p: OciPath): string =>
  '/' + [...p.dir, ...(p.name ? [p.name] : [])].map((c) => c.toString('latin1')).join('/');

function copyStat(s: DirStat): DirStat {
  return { ...s, xattrs: s.xattrs.map((x) => ({ key: x.key, value: x.value })) };
}

export class OciTreeBuilder {
  /** spec composefs-v2 §3.4: the root starts "uninitialised" (mode 0, ids 0, mtime 0). */
  private readonly root = new BuildDir({
    mode: S_IFDIR,
    uid: 0,
    gid: 0,
    mtimeSec: 0n,
    mtimeNsec: 0,
    xattrs: [],
  });

  /** Applies one entry, in tar order, layer after layer (spec composefs-v2 §3.4). */
  apply(path: OciPath, node: OciNewNode, layer?: string): void {
    const where = { path: show(path), ...(layer !== undefined ? { layer } : {}) };
    // Step 1: the root entry only replaces the root's stat.
    if (path.name === null) {
      if (node.kind !== 'dir') throw new OdhError('FORMAT', 'root entry is not a directory', where);
      this.root.stat = node.stat;
      return;
    }
    // Step 2: a hardlink resolves to the leaf its target names *now*.
    let built: BuildNode;
    if (node.kind === 'dir') built = new BuildDir(node.stat);
    else if (node.kind === 'leaf') built = node.inode;
    else built = this.lookupHardlinkTarget(node.target, node.targetDisplay, where);
    // Step 3: every parent must already exist as a directory.
    const parent = this.findDir(path.dir, where);
    // Step 4: whiteouts remove and are never added themselves.
    const wh = whiteoutOf(path.name);
    if (wh !== null) {
      if (wh.kind === 'opaque') parent.children.clear();
      else parent.children.delete(key(wh.name));
      return;
    }
    // Step 5: a directory over a directory takes only the stat; anything else replaces.
    const k = key(path.name);
    const existing = parent.children.get(k);
    if (built instanceof BuildDir && existing instanceof BuildDir) {
      existing.stat = built.stat;
      return;
    }
    parent.children.set(k, built);
  }

  private findDir(components: Buffer[], where: { path: string; layer?: string }): BuildDir {
    let dir = this.root;
    for (const c of components) {
      const next = dir.children.get(key(c));
      if (next === undefined)
        throw new OdhError('FORMAT', `parent directory "${c.toString('latin1')}" is missing`, where);
      if (!(next instanceof BuildDir)) {
        throw new OdhError('FORMAT', `parent "${c.toString('latin1')}" is not a directory`, where);
      }
      dir = next;
    }
    return dir;
  }

  private lookupHardlinkTarget(
    target: OciPath,
    display: string,
    where: { path: string; layer?: string },
  ): Inode {
    if (target.name === null)
      throw new OdhError('FORMAT', `hardlink target ${JSON.stringify(display)} is the root`, where);
    const parent = this.findDir(target.dir, where);
    const node = parent.children.get(key(target.name));
    if (node === undefined)
      throw new OdhError('FORMAT', `hardlink target ${JSON.stringify(display)} does not exist`, where);
    if (node instanceof BuildDir) {
      throw new OdhError('FORMAT', `hardlink target ${JSON.stringify(display)} is a directory`, where);
    }
    return node;
  }

  /**
   * spec composefs-v2 §3.5: root metadata from /usr, /run emptied (mtime from /usr), then the xattr
   * policy; returns the composefs tree with hardlinks resolved (first entry in sorted DFS pre-order
   * is canonical, nlink = number of entries; spec composefs-v1 §14.3).
   */
  finish(xattrs: OciXattrPolicy): Inode {
    this.finishRoot();
    return toInodeTree(this.root, xattrFilter(xattrs));
  }

  /**
   * finish(), straight into the flat form the V1 writer reads, with the same numbering rules:
   * no object tree, entry objects or name buffers in between (on the 1 GiB / 50k-file bench image
   * those made the end of `composefs id` its peak in memory).
   */
  finishFlat(xattrs: OciXattrPolicy): FlatTree {
    this.finishRoot();
    return toFlatTree(this.root, xattrFilter(xattrs));
  }

  /** spec composefs-v2 §3.5 steps 1–2: root metadata from /usr; /run emptied, mtime from /usr. */
  private finishRoot(): void {
    const usr = this.root.children.get('usr');
    if (usr === undefined)
      throw new OdhError('FORMAT', 'image has no /usr: composefs copies the root metadata from it');
    if (!(usr instanceof BuildDir)) throw new OdhError('FORMAT', '/usr is not a directory', { path: '/usr' });
    this.root.stat = copyStat(usr.stat);
    const run = this.root.children.get('run');
    if (run !== undefined) {
      if (!(run instanceof BuildDir))
        throw new OdhError('FORMAT', '/run is not a directory', { path: '/run' });
      run.children.clear();
      run.stat = { ...run.stat, mtimeSec: usr.stat.mtimeSec, mtimeNsec: usr.stat.mtimeNsec };
    }
  }
}

function xattrFilter(policy: OciXattrPolicy): ((x: Xattr) => boolean) | null {
  if (policy === 'all') return null;
  const cap = Buffer.from('security.capability');
  const user = Buffer.from('user.');
  return (x) =>
    x.key.equals(cap) ||
    (policy === 'capability+user' &&
      x.key.length > user.length &&
      x.key.subarray(0, user.length).equals(user));
}

/** The xattrs of `list` that `keep` keeps (all of them for the 'all' policy's null). */
function kept(list: Xattr[], keep: ((x: Xattr) => boolean) | null): Xattr[] {
  return keep ? list.filter(keep) : list;
}

/** A directory's inode (no entries yet) from its build stat, its xattrs filtered by `keep`. */
function dirInode(d: BuildDir, keep: ((x: Xattr) => boolean) | null): Inode {
  return newInode(d.stat.mode, {
    uid: d.stat.uid,
    gid: d.stat.gid,
    mtimeSec: d.stat.mtimeSec,
    mtimeNsec: d.stat.mtimeNsec,
    xattrs: kept(d.stat.xattrs, keep),
  });
}

/** Converts the build tree (iteratively: trees can be deep) into sorted composefs Inodes. */
function toInodeTree(root: BuildDir, keep: ((x: Xattr) => boolean) | null): Inode {
  const top = dirInode(root, keep);
  const pending: [BuildDir, Inode][] = [[root, top]];
  while (pending.length > 0) {
    const [bd, inode] = pending.pop()!;
    const entries: DirEntry[] = [];
    let subdirs = 0;
    for (const [k, child] of bd.children) {
      const name = Buffer.from(k, 'latin1');
      if (child instanceof BuildDir) {
        const sub = dirInode(child, keep);
        pending.push([child, sub]);
        entries.push({ name, inode: sub, hardlink: false });
        subdirs++;
      } else {
        entries.push({ name, inode: child, hardlink: false });
      }
    }
    sortEntries(entries);
    inode.entries = entries;
    inode.nlink = 2 + subdirs;
  }
  // DFS pre-order over sorted names: the first entry of a leaf is canonical, later ones are hardlinks.
  const refs = new Map<Inode, number>();
  const stack: { entries: DirEntry[]; next: number }[] = [{ entries: top.entries!, next: 0 }];
  for (let frame = stack.at(-1); frame !== undefined; frame = stack.at(-1)) {
    const e = frame.entries[frame.next++];
    if (e === undefined) {
      stack.pop();
      continue;
    }
    if (e.inode.entries !== null) {
      stack.push({ entries: e.inode.entries, next: 0 });
      continue;
    }
    const n = refs.get(e.inode) ?? 0;
    e.hardlink = n > 0;
    refs.set(e.inode, n + 1);
  }
  for (const [leaf, n] of refs) {
    leaf.nlink = n;
    if (keep) leaf.xattrs = leaf.xattrs.filter(keep);
    leaf.payload = payloadOf(leaf);
  }
  return top;
}

/**
 * A leaf's payload: a symlink's target, or for an external file the object path of its digest
 * (spec composefs-v2 §3.3), which layer.ts leaves for the finished tree to derive.
 */
function payloadOf(leaf: Inode): Buffer | null {
  return leaf.payload ?? (leaf.digest !== null ? Buffer.from(digestObjectPath(leaf.digest), 'latin1') : null);
}

/** Children in name-byte order: latin1 keys compare code unit by code unit, i.e. byte by byte. */
function sortedChildren(d: BuildDir): [string, BuildNode][] {
  return [...d.children].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The flat tree of the build tree, equal to flattenTree(toInodeTree(…)): a depth-first pre-order
 * walk over sorted names, in which a leaf's first entry is canonical (numbered then) and each later
 * one a hardlink that adds to its nlink; a directory's nlink is 2 + its subdirectories.
 */
function toFlatTree(root: BuildDir, keep: ((x: Xattr) => boolean) | null): FlatTree {
  const flat = new FlatTree();
  const addDir = (d: BuildDir): number => addInodeOf(flat, dirInode(d, keep));
  const addLeaf = (n: Inode): number => {
    const i = addInodeOf(flat, n, kept(n.xattrs, keep), payloadOf(n));
    flat.nlink[i] = 1; // counted below: one per entry
    return i;
  };
  const leaves = new Map<Inode, number>();
  type Frame = { index: number; children: [string, BuildNode][]; next: number; subdirs: number };
  const stack: Frame[] = [{ index: addDir(root), children: sortedChildren(root), next: 0, subdirs: 0 }];
  for (let frame = stack.at(-1); frame !== undefined; frame = stack.at(-1)) {
    const child = frame.children[frame.next++];
    if (child === undefined) {
      flat.nlink[frame.index] = 2 + frame.subdirs;
      stack.pop();
      continue;
    }
    const [key, node] = child;
    const name = Buffer.from(key, 'latin1');
    const parent = frame.index;
    checkEntryName(name, () => flat.path(parent));
    if (node instanceof BuildDir) {
      const i = addDir(node);
      flat.addNamedEntry(parent, name, i, false);
      frame.subdirs++;
      stack.push({ index: i, children: sortedChildren(node), next: 0, subdirs: 0 });
      continue;
    }
    const seen = leaves.get(node);
    if (seen === undefined) {
      const i = addLeaf(node);
      leaves.set(node, i);
      flat.addNamedEntry(parent, name, i, false);
    } else {
      flat.nlink[seen] = (flat.nlink[seen] ?? 0) + 1;
      flat.addNamedEntry(parent, name, seen, true);
    }
  }
  flat.indexDirectories();
  return flat;
}
