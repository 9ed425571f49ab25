/**
 * The V1 (C mkcomposefs) tree rewrite, done on a private copy of the input tree: cfs-version choice,
 * `trusted.overlay.` escaping, metacopy/redirect, whiteout escaping, the root opaque marker and the
 * 256 whiteout stubs. spec composefs-v1 §3.1, §5.
 */
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Inode } from '../tree.js';
import { OdhError } from '../../util/errors.js';
import { checkEntryName, direntFileType, sortedByName } from './dirents.js';
import { XATTR_METACOPY, XATTR_OPAQUE, XATTR_REDIRECT } from './format.js';
import {
  type HashAlgorithm,
  checkSymlinkTarget,
  digestAlgorithm,
  escapeOverlayKey,
  metacopyValue,
} from './overlay.js';

export interface V1Xattr {
  key: Buffer;
  value: Buffer;
}

/** A node of the private copy (the C `lcfs_node`). */
export interface V1Node {
  /** The canonical entry's parent and name (null for the root); paths are built only for messages. */
  parent: V1Node | null;
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Truncated to u32 (spec composefs-v1 §2). */
  rdev: number;
  size: bigint;
  mtimeSec: bigint;
  mtimeNsec: number;
  xattrs: V1Xattr[];
  /**
   * C's per-node xattr size counter (u64, wraps); 0 in the copy (spec composefs-v1 §4.6, §5). Held
   * as a signed Number: the steps are < 2^17, so a negative value is exactly a wrapped (huge) u64.
   */
  xattrBudget: number;
  /** Inline content (never empty: an empty content means none). */
  content: Buffer | null;
  payload: Buffer | null;
  digest: Buffer | null;
  /** Directories: children sorted by name bytes, `.`/`..` not included. */
  children: V1Child[] | null;
  /** Inode number (BFS position), set by the layout; -1 before (a plain field: no Map per node). */
  ino: number;
}

export interface V1Child {
  name: Buffer;
  node: V1Node;
  hardlink: boolean;
}

export interface RewriteV1Options {
  minVersion?: number;
  maxVersion?: number;
  hash?: HashAlgorithm;
}

/** The node's path, for error messages. */
export function v1Path(node: V1Node): string {
  const parts: string[] = [];
  for (let n: V1Node | null = node; n && n.parent; n = n.parent) parts.push(n.name.toString('latin1'));
  return `/${parts.reverse().join('/')}`;
}

/** Chunk bits of an external file: clamp(bitlength(size−1), 12, 43). spec composefs-v1 §9.3. */
export function chunkBits(size: bigint): number {
  let bits: number;
  if (size <= 0xffffffffn) bits = size <= 1n ? 0 : 32 - Math.clz32(Number(size - 1n));
  else bits = (size - 1n).toString(2).length;
  if (bits < 12) bits = 12;
  if (bits > 43) bits = 43;
  return bits;
}

export function chunkCount(size: bigint): number {
  const bits = BigInt(chunkBits(size));
  return Number((size + (1n << bits) - 1n) >> bits);
}

const MAX_CHUNKS = 1024;
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const K_METACOPY = latin1(XATTR_METACOPY);
const K_REDIRECT = latin1(XATTR_REDIRECT);
const K_OPAQUE = latin1(XATTR_OPAQUE);
const K_SELINUX = latin1('security.selinux');
const K_WHITEOUT = [latin1('trusted.overlay.overlay.whiteout'), latin1('user.overlay.whiteout')];
const K_WHITEOUTS = [latin1('trusted.overlay.overlay.whiteouts'), latin1('user.overlay.whiteouts')];
const K_OPAQUE_X = [latin1('trusted.overlay.overlay.opaque'), latin1('user.overlay.opaque')];
const EMPTY = Buffer.alloc(0);

const XATTR_BUDGET = 32767;

/**
 * Sets an xattr the way C's lcfs_node_set_xattr does, budget included (spec composefs-v1 §4.6): the
 * copy's counter starts at 0, so replacing a long input value can wrap it and fail (§5.1 step 4).
 */
function setXattr(node: V1Node, key: Buffer, value: Buffer): void {
  const xs = node.xattrs;
  let i = -1;
  for (let j = 0; j < xs.length; j++) {
    if (xs[j].key.length === key.length && xs[j].key.equals(key)) {
      i = j;
      break;
    }
  }
  if (i >= 0) {
    const old = xs[i].value;
    xs.splice(i, 1); // order is irrelevant: xattrs are re-sorted before layout (§5.2)
    node.xattrBudget = xs.length > 0 ? node.xattrBudget - (7 + key.length + old.length) : 0;
  }
  const next = node.xattrBudget + 7 + key.length + value.length + (xs.length === 0 ? 12 : 0);
  // A negative counter is a wrapped u64, i.e. far above the budget.
  if (next < 0 || next > XATTR_BUDGET) {
    throw new OdhError('LIMIT', `cannot set xattr ${key.toString('latin1')}: xattr size budget exceeded`, {
      path: v1Path(node),
    });
  }
  node.xattrBudget = next;
  xs.push({ key, value });
}

const isWhiteout = (n: { mode: number; rdev: number }): boolean =>
  (n.mode & S_IFMT) === S_IFCHR && n.rdev === 0;
const isExternal = (n: V1Node): boolean => (n.mode & S_IFMT) === S_IFREG && n.size > 0n && n.content === null;

/** (version, max_version) from the options; spec composefs-v1 §3.1 steps 1–4. */
function versionRange(opts: RewriteV1Options): [number, number] {
  let version = 0;
  let max = 1;
  if (opts.minVersion !== undefined || opts.maxVersion !== undefined) {
    version = opts.minVersion ?? 0;
    max = opts.maxVersion ?? 0;
  }
  const ok = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 1;
  if (!ok(version) || !ok(max)) {
    throw new OdhError('USAGE', `composefs V1 version must be 0 or 1 (min ${version}, max ${max})`);
  }
  return [version, Math.max(version, max)];
}

/** `/` + the backing path, built in one allocation (one per external file). */
function redirectValue(payload: Buffer): Buffer {
  const v = Buffer.allocUnsafe(1 + payload.length);
  v[0] = 0x2f;
  payload.copy(v, 1);
  return v;
}

function isSortedByName(entries: readonly { name: Buffer }[]): boolean {
  for (let i = 1; i < entries.length; i++)
    if (Buffer.compare(entries[i - 1].name, entries[i].name) > 0) return false;
  return true;
}

/** Deep-copies the tree (hardlinks keep sharing one node). Also reports whether a whiteout exists. */
function copyTree(root: Inode): { root: V1Node; hasWhiteout: boolean } {
  if ((root.mode & S_IFMT) !== S_IFDIR)
    throw new OdhError('FORMAT', 'the root must be a directory', { path: '/' });
  const copies = new Map<Inode, V1Node>();
  const canonical = new Set<Inode>();
  const copy = (src: Inode, parent: V1Node | null, name: Buffer): V1Node => {
    let n = copies.get(src);
    if (!n) {
      n = {
        parent,
        name,
        mode: src.mode,
        uid: src.uid,
        gid: src.gid,
        nlink: src.nlink,
        rdev: Number(BigInt.asUintN(32, src.rdev)),
        size: src.size,
        mtimeSec: src.mtimeSec,
        mtimeNsec: src.mtimeNsec,
        xattrs: src.xattrs.map((x) => ({ key: x.key, value: x.value })),
        xattrBudget: 0,
        content: src.content && src.content.length > 0 ? src.content : null,
        payload: src.payload,
        digest: src.digest,
        children: (src.mode & S_IFMT) === S_IFDIR ? [] : null,
        ino: -1,
      };
      copies.set(src, n);
    }
    return n;
  };
  let hasWhiteout = false;
  const rootCopy = copy(root, null, Buffer.alloc(0));
  canonical.add(root);
  const stack: [Inode, V1Node][] = [[root, rootCopy]];
  while (stack.length) {
    const [src, dst] = stack.pop()!;
    const entries = src.entries ?? [];
    for (const e of isSortedByName(entries) ? entries : sortedByName(entries)) {
      checkEntryName(e.name, () => v1Path(dst));
      const child = copy(e.inode, dst, e.name);
      dst.children!.push({ name: e.name, node: child, hardlink: e.hardlink });
      if (e.hardlink) continue;
      if (canonical.has(e.inode))
        throw new OdhError('FORMAT', 'inode has two canonical (non-hardlink) entries', {
          path: `${v1Path(dst)}/${e.name.toString('latin1')}`,
        });
      canonical.add(e.inode);
      child.parent = dst;
      child.name = e.name;
      // spec composefs-v1 §3.1 step 5: the auto-upgrade looks at non-hardlink nodes of the input only.
      if (isWhiteout(child)) hasWhiteout = true;
      if (child.children) stack.push([e.inode, child]);
    }
  }
  return { root: rootCopy, hasWhiteout };
}

/** Per-node rewrite (spec composefs-v1 §5.1), pre-order from the root; hardlink entries are skipped. */
function rewriteNodes(root: V1Node, version: number, hash: HashAlgorithm | undefined): void {
  const stack: [V1Node, V1Node][] = [[root, root]];
  while (stack.length) {
    const [node, parent] = stack.pop()!;
    direntFileType(node.mode); // validates the type
    if ((node.mode & S_IFMT) === S_IFLNK) checkSymlinkTarget(node.payload, () => v1Path(node));
    if (isExternal(node) && chunkCount(node.size) > MAX_CHUNKS) {
      throw new OdhError('LIMIT', `file too large: ${node.size} bytes needs more than ${MAX_CHUNKS} chunks`, {
        path: v1Path(node),
      });
    }
    for (const x of node.xattrs) x.key = escapeOverlayKey(x.key);
    if (isExternal(node)) {
      const value = node.digest
        ? metacopyValue(
            node.digest,
            digestAlgorithm(node.digest, hash, () => v1Path(node)),
          )
        : EMPTY;
      setXattr(node, K_METACOPY, value);
      if (node.payload && node.payload.length > 0) {
        setXattr(node, K_REDIRECT, redirectValue(node.payload));
      }
    }
    if (isWhiteout(node)) {
      node.size = 0n;
      node.mode = S_IFREG | (node.mode & ~S_IFMT);
      node.content = null;
      for (const k of K_WHITEOUT) setXattr(node, k, EMPTY);
      for (const k of K_WHITEOUTS) setXattr(parent, k, EMPTY);
      if (version >= 1) for (const k of K_OPAQUE_X) setXattr(parent, k, latin1('x'));
    }
    for (const c of node.children ?? []) if (!c.hardlink) stack.push([c.node, node]);
  }
}

/** Adds `00`…`ff` chr 0:0 stubs the root lacks (spec composefs-v1 §5.5). */
function addStubs(root: V1Node): void {
  const children = root.children!;
  const have = new Set(children.map((c) => c.name.toString('latin1')));
  const selinux = root.xattrs.find((x) => x.key.equals(K_SELINUX));
  for (let i = 0; i < 256; i++) {
    const name = i.toString(16).padStart(2, '0');
    if (have.has(name)) continue;
    const stub: V1Node = {
      parent: root,
      name: latin1(name),
      mode: S_IFCHR | 0o644,
      uid: root.uid,
      gid: root.gid,
      nlink: 1,
      rdev: 0,
      size: 0n,
      mtimeSec: root.mtimeSec,
      mtimeNsec: root.mtimeNsec,
      xattrs: selinux ? [{ key: selinux.key, value: selinux.value }] : [],
      xattrBudget: 0,
      content: null,
      payload: null,
      digest: null,
      children: null,
      ino: -1,
    };
    children.push({ name: latin1(name), node: stub, hardlink: false });
  }
  children.sort((a, b) => Buffer.compare(a.name, b.name));
}

/** Copies and rewrites the tree as C does before layout; returns the copy's root and the cfs-version. */
export function rewriteTreeV1(input: Inode, opts: RewriteV1Options = {}): { root: V1Node; version: number } {
  const [minimum, max] = versionRange(opts);
  let version = minimum;
  const { root, hasWhiteout } = copyTree(input);
  if (version < 1 && max >= 1 && hasWhiteout) version = 1;
  rewriteNodes(root, version, opts.hash);
  setXattr(root, K_OPAQUE, latin1('y')); // spec composefs-v1 §5.4: not escaped
  addStubs(root);
  return { root, version };
}
