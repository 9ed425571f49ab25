/**
 * What C mkcomposefs 1.0.8 does to its tree before layout, done over a flat tree (format/flat-tree.ts):
 * cfs-version choice, `trusted.overlay.` escaping, metacopy and redirect xattrs, whiteout escaping,
 * the root opaque marker, the 256 whiteout stubs (spec composefs-v1 §3.1, §5), then BFS numbering
 * (§6.1), directory nlink, minimum mtime and ACL flag (§6.2–§6.3) and the xattr pairs with their
 * shared table (§7). The flat tree is rewritten in place, as C rewrites its node tree.
 *
 * Xattrs are integers here: a key is an id in `keys` (interned bytes), a value is (offset, length)
 * in the tree's byte arena, a distinct (key, value) pair is an id in the pair table.
 */
import { OdhError } from '../../../util/errors.js';
import { NO_INODE, type FlatTree } from '../flat-tree.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../tree.js';
import { direntFileType } from './dirents.js';
import { XATTR_METACOPY, XATTR_OPAQUE, XATTR_REDIRECT } from './format.js';
import { type HashAlgorithm, checkSymlinkTarget, digestAlgorithm, escapeOverlayKey } from './overlay.js';
import { chunkBits as chunkBitsOf, chunkCount } from './chunks.js';
import { splitXattrKey, xattrFilterBit, type XattrEntry } from './xattr.js';
import { byte, i32, i64, item, u32, u64, u8 } from '../column.js';

export interface V1PlanOptions {
  minVersion?: number;
  maxVersion?: number;
  hash?: HashAlgorithm;
}

const MAX_CHUNKS = 1024;
const XATTR_BUDGET = 32767;
const MAX_SHARED_REFS = 128;
const EMPTY = Buffer.alloc(0);
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** One interned xattr key with what the disk needs of it. */
export interface V1Key {
  bytes: Buffer;
  /** The key after `trusted.overlay.` escaping (an id in the same table; -1 until asked for). */
  escaped: number;
  /** Prefix index and suffix (spec composefs-v1 §7.1). */
  split: XattrEntry;
  /** Name-filter bit (spec composefs-v2 §4.3). */
  bit: number;
  /** Rank in byte order among all keys (filled once every key is known). */
  rank: number;
  acl: boolean;
}

/** The rewritten, numbered tree with its xattr tables: all the V1 emitter reads. */
export interface V1Plan {
  tree: FlatTree;
  version: number;
  hasAcl: boolean;
  minSec: bigint;
  minNsec: number;
  /** Inode ids in BFS order; `ino[inode]` is the inverse. */
  order: Int32Array;
  ino: Int32Array;
  /** BFS index of each BFS index's parent (the root's is 0). */
  parentIndex: Int32Array;
  keys: V1Key[];
  /** Per inode: its xattrs (sorted by key bytes) are pairIds[xFirst … xFirst+xCount−1]. */
  xFirst: Int32Array;
  xCount: Int32Array;
  pairIds: Int32Array;
  /** Per pair: key id, value (offset, length) in tree.bytes, count of inodes, shared-table offset or -1. */
  pairKey: Int32Array;
  pairValueOff: Int32Array;
  pairValueLen: Int32Array;
  pairShared: Int32Array;
  /** Shared pairs in table order and the table's byte size. */
  sharedOrder: Int32Array;
  sharedSize: number;
  maxSharedRefs: number;
  /** Per inode, computed once (no BigInt arithmetic in the emitter): FLAG_* bits. */
  flags: Uint8Array;
  /** Per external inode: chunk count and chunk bits (spec composefs-v1 §9.3). */
  chunks: Int32Array;
  chunkBits: Uint8Array;
}

/** Regular, non-empty, no inline content: data in an external object. */
export const FLAG_EXTERNAL = 1;
/** SIZE fits in 32 bits (a compact inode is possible). */
export const FLAG_SIZE_U32 = 2;
/** mtime equals the image's minimum mtime (the build time; a compact inode is possible). */
export const FLAG_MIN_MTIME = 4;

/** (version, max_version) from the options; spec composefs-v1 §3.1 steps 1–4. */
function versionRange(opts: V1PlanOptions): [number, number] {
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

const ACL_KEYS = [latin1('system.posix_acl_access'), latin1('system.posix_acl_default')];

/** Interned xattr keys: one id per distinct byte string. */
class KeyTable {
  readonly list: V1Key[] = [];
  private readonly ids = new Map<string, number>();

  id(bytes: Buffer): number {
    const text = bytes.toString('latin1');
    let id = this.ids.get(text);
    if (id !== undefined) return id;
    id = this.list.length;
    const copy = Buffer.from(bytes);
    const split = splitXattrKey(copy, EMPTY, 'v1');
    this.list.push({
      bytes: copy,
      escaped: -1,
      split,
      bit: xattrFilterBit(split),
      rank: 0,
      acl: ACL_KEYS.some((k) => k.equals(copy)),
    });
    this.ids.set(text, id);
    return id;
  }

  key(id: number): V1Key {
    return keyAt(this.list, id);
  }

  /** The id of the key after `trusted.overlay.` escaping (spec composefs-v1 §5.1 step 2). */
  escaped(id: number): number {
    const k = this.key(id);
    if (k.escaped < 0) {
      const escaped = escapeOverlayKey(k.bytes);
      k.escaped = escaped === k.bytes ? id : this.id(escaped);
    }
    return k.escaped;
  }

  /** Ranks keys by bytes (xattrs are sorted by key, spec composefs-v1 §6.2). */
  rank(): void {
    const sorted = [...this.list].sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    sorted.forEach((k, r) => (k.rank = r));
  }
}

/** keys[id], checked (a stored id is always in range); monomorphic for the hot loops. */
function keyAt(keys: readonly V1Key[], id: number): V1Key {
  const k = keys[id];
  if (k === undefined) throw new Error(`internal: xattr key id ${id} out of range (${keys.length} keys)`);
  return k;
}

/** The key of xattr pair `pair` of a plan (for the emitter). */
export function pairKeyOf(plan: V1Plan, pair: number): V1Key {
  return keyAt(plan.keys, i32(plan.pairKey, pair));
}

/** Growable int column. */
class IntList {
  a = new Int32Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }

  get(k: number): number {
    return i32(this.a, k);
  }
}

/**
 * One inode's xattr list while C's lcfs_node_set_xattr runs on it, with its size budget (spec
 * composefs-v1 §4.6): the copy's counter starts at 0, so replacing a long input value can wrap it
 * and fail (§5.1 step 4). Keys are ids, values arena ranges.
 */
class XattrScratch {
  key: number[] = [];
  off: number[] = [];
  len: number[] = [];
  budget = 0;

  reset(): void {
    this.key.length = 0;
    this.off.length = 0;
    this.len.length = 0;
    this.budget = 0;
  }

  push(key: number, off: number, len: number): void {
    this.key.push(key);
    this.off.push(off);
    this.len.push(len);
  }

  constructor(private readonly keys: KeyTable) {}

  set(key: number, off: number, len: number, path: () => string): void {
    const i = this.key.indexOf(key);
    const klen = this.keys.key(key).bytes.length;
    if (i >= 0) {
      const old = item(this.len, i);
      this.key.splice(i, 1);
      this.off.splice(i, 1);
      this.len.splice(i, 1);
      this.budget = this.key.length > 0 ? this.budget - (7 + klen + old) : 0;
    }
    const next = this.budget + 7 + klen + len + (this.key.length === 0 ? 12 : 0);
    // A negative counter is a wrapped u64, i.e. far above the budget.
    if (next < 0 || next > XATTR_BUDGET) {
      throw new OdhError(
        'LIMIT',
        `cannot set xattr ${this.keys.key(key).bytes.toString('latin1')}: xattr size budget exceeded`,
        { path: path() },
      );
    }
    this.budget = next;
    this.push(key, off, len);
  }
}

const isWhiteout = (t: FlatTree, i: number): boolean =>
  (u32(t.mode, i) & S_IFMT) === S_IFCHR && BigInt.asUintN(32, u64(t.rdev, i)) === 0n;

/** Regular, non-empty, no inline content: its data is an external object (spec composefs-v1 §9.3). */
export function isExternal(t: FlatTree, i: number): boolean {
  return (u32(t.mode, i) & S_IFMT) === S_IFREG && u64(t.size, i) > 0n && i32(t.contentLen, i) <= 0;
}

/** Inode ids in pre-order over canonical entries, each with its parent (the root's is itself). */
function preorder(t: FlatTree): { nodes: Int32Array; parents: Int32Array } {
  const nodes = new IntList();
  const parents = new IntList();
  nodes.push(0);
  parents.push(0);
  /** Canonical entries still to visit, the next one on top. */
  const stack: number[] = [];
  const pushChildren = (node: number): void => {
    const first = i32(t.childFirst, node);
    for (let k = first + i32(t.childCount, node) - 1; k >= first; k--) {
      const e = i32(t.childIds, k);
      if (u8(t.entryHardlink, e) === 0) stack.push(e);
    }
  };
  pushChildren(0);
  for (let e = stack.pop(); e !== undefined; e = stack.pop()) {
    const node = i32(t.entryInode, e);
    nodes.push(node);
    parents.push(i32(t.entryParent, e));
    pushChildren(node);
  }
  return { nodes: nodes.a.subarray(0, nodes.n), parents: parents.a.subarray(0, parents.n) };
}

export function planV1(t: FlatTree, opts: V1PlanOptions = {}): V1Plan {
  const [minimum, max] = versionRange(opts);
  if (!t.isDir(0)) throw new OdhError('FORMAT', 'the root must be a directory', { path: '/' });
  const { nodes, parents } = preorder(t);
  // Directories with a whiteout child get the whiteouts (and opaque) markers (spec §5.1 step 5).
  // A plain loop: V8 does not inline an Int32Array#some callback, and isWhiteout's BigInts would
  // then be allocated for every node.
  const hasWhiteoutChild = new Uint8Array(t.inodeCount + 256);
  let whiteouts = false;
  for (let k = 1; k < nodes.length; k++) {
    const i = i32(nodes, k);
    if (!isWhiteout(t, i)) continue;
    hasWhiteoutChild[i32(parents, k)] = 1;
    if (i !== 0) whiteouts = true;
  }
  let version = minimum;
  // spec composefs-v1 §3.1 step 5: the auto-upgrade looks at non-hardlink nodes of the input only.
  if (version < 1 && max >= 1 && whiteouts) version = 1;
  const keys = new KeyTable();
  const constant = (s: string): [number, number] => {
    const b = latin1(s);
    return [t.bytes.put(b), b.length];
  };
  const none = constant('');
  const x = constant('x');
  const y = constant('y');
  const kMetacopy = keys.id(latin1(XATTR_METACOPY));
  const kRedirect = keys.id(latin1(XATTR_REDIRECT));
  const kOpaque = keys.id(latin1(XATTR_OPAQUE));
  const kWhiteout = [
    keys.id(latin1('trusted.overlay.overlay.whiteout')),
    keys.id(latin1('user.overlay.whiteout')),
  ];
  const kWhiteouts = [
    keys.id(latin1('trusted.overlay.overlay.whiteouts')),
    keys.id(latin1('user.overlay.whiteouts')),
  ];
  const kOpaqueX = [
    keys.id(latin1('trusted.overlay.overlay.opaque')),
    keys.id(latin1('user.overlay.opaque')),
  ];

  const lists: XattrLists = {
    first: new Int32Array(t.inodeCount + 256),
    count: new Int32Array(t.inodeCount + 256),
    key: new IntList(),
    off: new IntList(),
    len: new IntList(),
  };
  const s = new XattrScratch(keys);
  for (let k = 0; k < nodes.length; k++) {
    const i = i32(nodes, k);
    const path = (): string => t.path(i);
    const external = rewriteNode(t, i, path);
    s.reset();
    const first = i32(t.xattrFirst, i);
    for (let j = first; j < first + i32(t.xattrCount, i); j++) {
      const key = keys.id(t.xattrKey(j));
      s.push(keys.escaped(key), i32(t.xattrValueOff, j), i32(t.xattrValueLen, j));
    }
    if (external) {
      const dlen = i32(t.digestLen, i);
      s.set(kMetacopy, metacopy(t, i, opts.hash, path), dlen < 0 ? 0 : 4 + dlen, path);
      const plen = i32(t.payloadLen, i);
      if (plen > 0) s.set(kRedirect, redirect(t, i), 1 + plen, path);
    }
    if (i !== 0 && isWhiteout(t, i)) {
      t.size[i] = 0n;
      t.mode[i] = S_IFREG | (u32(t.mode, i) & ~S_IFMT);
      t.contentLen[i] = -1;
      for (const key of kWhiteout) s.set(key, none[0], none[1], path);
    }
    if (u8(hasWhiteoutChild, i)) {
      for (const key of kWhiteouts) s.set(key, none[0], none[1], path);
      if (version >= 1) for (const key of kOpaqueX) s.set(key, x[0], x[1], path);
    }
    // spec composefs-v1 §5.4: the root's opaque marker, not escaped, set last.
    if (i === 0) s.set(kOpaque, y[0], y[1], path);
    flush(lists, i, s);
  }
  addStubs(t, keys, lists);
  keys.rank();
  const numbered = numberAndCount(t);
  return {
    ...numbered,
    ...pairTables(t, keys, lists),
    ...inodeFacts(t, numbered.minSec, numbered.minNsec),
    tree: t,
    version,
    keys: keys.list,
  };
}

/** The per-inode facts the emitter tests on every pass, computed once. */
function inodeFacts(
  t: FlatTree,
  minSec: bigint,
  minNsec: number,
): Pick<V1Plan, 'flags' | 'chunks' | 'chunkBits'> {
  const flags = new Uint8Array(t.inodeCount);
  const chunks = new Int32Array(t.inodeCount);
  const bits = new Uint8Array(t.inodeCount);
  for (let i = 0; i < t.inodeCount; i++) {
    const size = u64(t.size, i);
    let f = size <= 0xffffffffn ? FLAG_SIZE_U32 : 0;
    if (u32(t.mtimeNsec, i) === minNsec && i64(t.mtimeSec, i) === minSec) f |= FLAG_MIN_MTIME;
    if (isExternal(t, i)) {
      f |= FLAG_EXTERNAL;
      chunks[i] = chunkCount(size);
      bits[i] = chunkBitsOf(size);
    }
    flags[i] = f;
  }
  return { flags, chunks, chunkBits: bits };
}

/**
 * Per-node checks and rewrites of spec composefs-v1 §5.1 that are not xattrs. Returns whether the
 * node is an external file (metacopy and redirect follow).
 */
function rewriteNode(t: FlatTree, i: number, path: () => string): boolean {
  const mode = u32(t.mode, i);
  const type = mode & S_IFMT;
  if (type !== S_IFREG && type !== S_IFDIR) direntFileType(mode); // validates the type
  if (type === S_IFLNK) checkSymlinkTarget(t.payload(i), path);
  let contentLen = i32(t.contentLen, i);
  if (contentLen === 0) {
    contentLen = -1; // an empty content is no content
    t.contentLen[i] = contentLen;
  }
  if (type !== S_IFREG || contentLen > 0) return false;
  const size = u64(t.size, i);
  if (size === 0n) return false;
  if (chunkCount(size) > MAX_CHUNKS) {
    throw new OdhError('LIMIT', `file too large: ${size} bytes needs more than ${MAX_CHUNKS} chunks`, {
      path: path(),
    });
  }
  return true;
}

const ALG_BYTE: Record<HashAlgorithm, number> = { sha256: 1, sha512: 2 };

/**
 * The overlayfs metacopy value (ovl_metacopy: version 0, length, flags 0, algorithm, digest) in
 * the arena; its offset (an empty value without a digest).
 */
function metacopy(t: FlatTree, i: number, hash: HashAlgorithm | undefined, path: () => string): number {
  const dlen = i32(t.digestLen, i);
  if (dlen < 0) return 0;
  const implied = dlen === 32 ? 'sha256' : dlen === 64 ? 'sha512' : undefined;
  const alg = hash === undefined || hash === implied ? implied : undefined;
  // The checked path names the mismatch (digest length against --hash).
  const checked = alg ?? digestAlgorithm(t.bytes.view(i32(t.digestOff, i), dlen), hash, path);
  const off = t.bytes.alloc(4 + dlen);
  const b = t.bytes.buf;
  b[off] = 0;
  b[off + 1] = 4 + dlen;
  b[off + 2] = 0;
  b[off + 3] = ALG_BYTE[checked];
  t.bytes.copyWithin(i32(t.digestOff, i), dlen, off + 4);
  return off;
}

/** `/` + the backing path in the arena; its offset. */
function redirect(t: FlatTree, i: number): number {
  const len = i32(t.payloadLen, i);
  const off = t.bytes.alloc(1 + len);
  const b = t.bytes.buf;
  b[off] = 0x2f;
  t.bytes.copyWithin(i32(t.payloadOff, i), len, off + 1);
  return off;
}

/** Every inode's final xattrs (unsorted): inode i has entries first[i] … first[i]+count[i]−1. */
interface XattrLists {
  first: Int32Array;
  count: Int32Array;
  key: IntList;
  off: IntList;
  len: IntList;
}

function flush(
  lists: XattrLists,
  i: number,
  x: { key: readonly number[]; off: readonly number[]; len: readonly number[] },
): void {
  lists.first[i] = lists.key.n;
  lists.count[i] = x.key.length;
  for (const key of x.key) lists.key.push(key);
  for (const off of x.off) lists.off.push(off);
  for (const len of x.len) lists.len.push(len);
}

/** Adds the `00`…`ff` chr 0:0 stubs the root lacks (spec composefs-v1 §5.5), after the rewrite. */
function addStubs(t: FlatTree, keys: KeyTable, lists: XattrLists): void {
  const have = new Set<string>();
  const first = i32(t.childFirst, 0);
  for (let k = first; k < first + i32(t.childCount, 0); k++)
    have.add(t.entryName(i32(t.childIds, k)).toString('latin1'));
  const selinux = keys.id(latin1('security.selinux'));
  let at = -1;
  const rootFirst = i32(lists.first, 0);
  for (let j = rootFirst; j < rootFirst + i32(lists.count, 0); j++) if (lists.key.get(j) === selinux) at = j;
  for (let n = 0; n < 256; n++) {
    const name = n.toString(16).padStart(2, '0');
    if (have.has(name)) continue;
    const i = t.addInode(S_IFCHR | 0o644);
    t.uid[i] = u32(t.uid, 0);
    t.gid[i] = u32(t.gid, 0);
    t.mtimeSec[i] = i64(t.mtimeSec, 0);
    t.mtimeNsec[i] = u32(t.mtimeNsec, 0);
    const nameBytes = latin1(name);
    t.addNamedEntry(0, nameBytes, i, false);
    if (at < 0) flush(lists, i, { key: [], off: [], len: [] });
    else flush(lists, i, { key: [selinux], off: [lists.off.get(at)], len: [lists.len.get(at)] });
  }
  t.indexDirectories();
}

/** BFS numbering (spec composefs-v1 §6.1), directory nlink, minimum mtime, ACL flag. */
function numberAndCount(t: FlatTree): Pick<V1Plan, 'order' | 'ino' | 'parentIndex' | 'minSec' | 'minNsec'> {
  const order = new Int32Array(t.inodeCount);
  const parentIndex = new Int32Array(t.inodeCount);
  const ino = new Int32Array(t.inodeCount).fill(-1);
  let n = 1;
  ino[0] = 0;
  let minSec = i64(t.mtimeSec, 0);
  let minNsec = u32(t.mtimeNsec, 0);
  for (let k = 0; k < n; k++) {
    const i = i32(order, k);
    const first = i32(t.childFirst, i);
    let dirs = 0;
    for (let c = first; c < first + i32(t.childCount, i); c++) {
      const e = i32(t.childIds, c);
      if (u8(t.entryHardlink, e) === 1) continue;
      const child = i32(t.entryInode, e);
      if (t.isDir(child)) dirs++;
      ino[child] = n;
      parentIndex[n] = k;
      order[n++] = child;
    }
    if (t.isDir(i)) t.nlink[i] = 2 + dirs;
    const sec = i64(t.mtimeSec, i);
    const nsec = u32(t.mtimeNsec, i);
    if (sec < minSec || (sec === minSec && nsec < minNsec)) {
      minSec = sec;
      minNsec = nsec;
    }
  }
  for (let e = 0; e < t.entryCount; e++) {
    const target = i32(t.entryInode, e);
    if (target === NO_INODE || i32(ino, target) < 0) {
      throw new OdhError('FORMAT', 'hardlink target is not in the tree', {
        path: `${t.path(i32(t.entryParent, e))}/${t.entryName(e).toString('latin1')}`.replace(/^\/\//, '/'),
      });
    }
  }
  return { order: order.subarray(0, n), ino, parentIndex: parentIndex.subarray(0, n), minSec, minNsec };
}

/** An FNV-style hash of a value, 4 bytes a step, mixed with its key id and length. */
function hashPair(key: number, b: Buffer, off: number, len: number): number {
  let h = (0x811c9dc5 ^ Math.imul(key + 1, 0x9e3779b1) ^ len) >>> 0;
  const end = off + len;
  let i = off;
  for (; i + 4 <= end; i += 4) h = Math.imul(h ^ b.readInt32LE(i), 0x01000193);
  for (; i < end; i++) h = Math.imul(h ^ byte(b, i), 0x01000193);
  return (h ^ (h >>> 15)) >>> 0;
}

/** Distinct (key, value) pairs, interned through an open-addressing hash and counted over inodes. */
class PairTable {
  readonly key = new IntList();
  readonly off = new IntList();
  readonly len = new IntList();
  /** How many inodes carry the pair. */
  readonly count = new IntList();
  private readonly hashes = new IntList();
  private slots = new Int32Array(1 << 12);

  constructor(
    private readonly t: FlatTree,
    private readonly keys: KeyTable,
  ) {}

  /** The pair's id, added on first sight; LIMIT when the entry header's u8 name / u16 value length cannot hold it. */
  intern(key: number, off: number, len: number): number {
    const h = hashPair(key, this.t.bytes.buf, off, len);
    const mask = this.slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const v = i32(this.slots, s);
      if (v === 0) break;
      const p = v - 1;
      if (
        this.key.get(p) === key &&
        this.len.get(p) === len &&
        this.t.bytes.same(off, this.off.get(p), len)
      ) {
        return p;
      }
    }
    const suffix = this.keys.key(key).split.suffix;
    if (suffix.length > 255 || len > 65535) {
      throw new OdhError(
        'LIMIT',
        `xattr ${JSON.stringify(suffix.toString('latin1'))} too large (name ${suffix.length} > 255 or value ${len} > 65535 bytes)`,
      );
    }
    const p = this.key.n;
    this.key.push(key);
    this.off.push(off);
    this.len.push(len);
    this.count.push(0);
    this.hashes.push(h | 0);
    if (this.key.n * 2 > this.slots.length) {
      this.slots = new Int32Array(this.slots.length * 2);
      for (let q = 0; q < this.key.n; q++) this.place(q, this.hashes.get(q) >>> 0);
    } else this.place(p, h);
    return p;
  }

  private place(p: number, h: number): void {
    const mask = this.slots.length - 1;
    let s = h & mask;
    while (i32(this.slots, s) !== 0) s = (s + 1) & mask;
    this.slots[s] = p + 1;
  }
}

/**
 * Fills `order` with the list indices first … first+n−1 sorted by key bytes (key ranks), stable:
 * the input order stays for equal keys (spec composefs-v1 §6.2). Lists are short: insertion sort.
 */
function sortByKeyRank(order: IntList, rankOf: (j: number) => number, first: number, n: number): void {
  order.n = 0;
  for (let j = first; j < first + n; j++) {
    const r = rankOf(j);
    order.push(j);
    let at = order.n - 1;
    for (; at > 0 && rankOf(order.get(at - 1)) > r; at--) order.a[at] = order.get(at - 1);
    order.a[at] = j;
  }
}

/**
 * The shared table: pairs on more than one inode, by key, value length and value, all descending
 * (spec composefs-v1 §7.3); each shared pair's offset in it (−1: not shared).
 */
function sharedPairs(
  t: FlatTree,
  keys: KeyTable,
  pairs: PairTable,
): Pick<V1Plan, 'pairShared' | 'sharedOrder' | 'sharedSize'> {
  const pairShared = new Int32Array(pairs.key.n).fill(-1);
  const shared: number[] = [];
  for (let p = 0; p < pairs.key.n; p++) if (pairs.count.get(p) > 1) shared.push(p);
  const rank = (p: number): number => keys.key(pairs.key.get(p)).rank;
  const byValue = (p: number, q: number): number =>
    t.bytes.compare(pairs.off.get(p), pairs.len.get(p), pairs.off.get(q), pairs.len.get(q));
  shared.sort((p, q) => rank(q) - rank(p) || pairs.len.get(q) - pairs.len.get(p) || byValue(q, p));
  let size = 0;
  for (const p of shared) {
    pairShared[p] = size;
    size += (4 + keys.key(pairs.key.get(p)).split.suffix.length + pairs.len.get(p) + 3) & ~3;
  }
  return { pairShared, sharedOrder: Int32Array.from(shared), sharedSize: size };
}

/**
 * Sorts each inode's xattrs by key, interns (key, value) pairs, counts them over inodes and builds
 * the shared table (spec composefs-v1 §6.2, §7.3).
 */
function pairTables(
  t: FlatTree,
  keys: KeyTable,
  lists: XattrLists,
): Pick<
  V1Plan,
  | 'xFirst'
  | 'xCount'
  | 'pairIds'
  | 'pairKey'
  | 'pairValueOff'
  | 'pairValueLen'
  | 'pairShared'
  | 'sharedOrder'
  | 'sharedSize'
  | 'maxSharedRefs'
  | 'hasAcl'
> {
  const xFirst = new Int32Array(t.inodeCount);
  const xCount = new Int32Array(t.inodeCount);
  const ids = new IntList();
  const pairs = new PairTable(t, keys);
  const order = new IntList();
  const rankOf = (j: number): number => keys.key(lists.key.get(j)).rank;
  let hasAcl = false;
  for (let i = 0; i < t.inodeCount; i++) {
    xFirst[i] = ids.n;
    const n = i32(lists.count, i);
    if (n === 0) continue;
    sortByKeyRank(order, rankOf, i32(lists.first, i), n);
    for (let q = 0; q < order.n; q++) {
      const j = order.get(q);
      let p: number;
      try {
        p = pairs.intern(lists.key.get(j), lists.off.get(j), lists.len.get(j));
      } catch (e) {
        throw e instanceof OdhError ? new OdhError(e.code, e.message, { path: t.path(i) }) : e;
      }
      pairs.count.a[p] = pairs.count.get(p) + 1;
      ids.push(p);
      if (keys.key(lists.key.get(j)).acl) hasAcl = true;
    }
    xCount[i] = n;
  }
  return {
    xFirst,
    xCount,
    pairIds: ids.a.subarray(0, ids.n),
    pairKey: pairs.key.a.subarray(0, pairs.key.n),
    pairValueOff: pairs.off.a.subarray(0, pairs.off.n),
    pairValueLen: pairs.len.a.subarray(0, pairs.len.n),
    ...sharedPairs(t, keys, pairs),
    maxSharedRefs: MAX_SHARED_REFS,
    hasAcl,
  };
}

export { S_IFBLK, S_IFDIR, NO_INODE };
