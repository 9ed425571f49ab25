/**
 * What `composefs-info dump` shows for the image C `mkcomposefs` 1.0.8 writes from a tree: the
 * tree after the writer's rewriting (spec composefs-v1 §5–§7, §9.1) and the reader's reconstruction
 * (§12.1). spec composefs-v1 §12.3 lists the visible changes: directory sizes become EROFS sizes,
 * directory nlink is recomputed, device/fifo/socket sizes become 0, whiteout bookkeeping xattrs are
 * dropped, xattrs are listed inline-first then shared, and the first DFS occurrence of a hardlinked
 * inode becomes the primary. Used to compare a parsed dumpfile with a dump of its image.
 *
 * Not modelled: the redirect quirk's read past the value when the redirect entry ends 4-aligned
 * (the two bytes are taken as zero).
 */
import { markFirstOccurrences } from './path-tree.js';
import { applyXattrs } from '../format/erofs/reader-reconstruct.js';
import type { RawXattr } from '../format/erofs/reader-image.js';
import {
  newInode,
  S_IFBLK,
  S_IFCHR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type Inode,
  type Xattr,
} from '../format/tree.js';

const K = (s: string): Buffer => Buffer.from(s, 'latin1');
const OVERLAY = K('trusted.overlay.');
const ESCAPED = K('trusted.overlay.overlay.');
const SELINUX = K('security.selinux');
const MAX_SHARED_REFS = 128;
const BLOCK = 4096;

export interface ComposefsInfoModelOptions {
  /** The image's composefs_version (0 or 1, spec composefs-v1 §3.1). */
  cfsVersion: number;
}

interface Pending {
  from: Inode;
  to: Inode;
  /** Xattrs as stored in the image (escaped keys, writer additions), before sorting. */
  stored: Map<string, Xattr>;
  isStub: boolean;
}

function isWhiteout(inode: Inode): boolean {
  return (inode.mode & S_IFMT) === S_IFCHR && (inode.rdev & 0xffffffffn) === 0n;
}

function set(p: Pending, key: Buffer, value: Buffer): void {
  p.stored.set(key.toString('latin1'), { key, value });
}

/**
 * spec composefs-v1 §9.1: the entries (with `.` and `..`) in name-byte order, packed greedily into
 * chunks of ≤ 4096 bytes; a final chunk > 2048 bytes is a block.
 */
export function directorySize(names: Buffer[]): bigint {
  const sorted = [...names].sort(Buffer.compare);
  let blocks = 0;
  let chunk = 0;
  for (const name of sorted) {
    const cost = 12 + name.length;
    if (chunk + cost > BLOCK) {
      blocks++;
      chunk = 0;
    }
    chunk += cost;
  }
  if (chunk > 2048) return BigInt((blocks + 1) * BLOCK);
  return BigInt(blocks * BLOCK + chunk);
}

/** Returns a new tree: what composefs-info dump reads back from mkcomposefs's image of `root`. */
export function modelComposefsInfoDump(root: Inode, options: ComposefsInfoModelOptions): Inode {
  const pend = new Map<Inode, Pending>();
  const order: Pending[] = [];
  const copy = (from: Inode): Pending => {
    let p = pend.get(from);
    if (p === undefined) {
      p = { from, to: newInode(from.mode & 0xffff), stored: new Map(), isStub: false };
      pend.set(from, p);
      order.push(p);
      fillFields(p);
    }
    return p;
  };

  const rootP = copy(root);
  const stack: Inode[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const dp = copy(dir);
    const names: Buffer[] = [K('.'), K('..')];
    let subdirs = 0;
    let hasWhiteout = false;
    dp.to.entries = [];
    for (const e of dir.entries ?? []) {
      names.push(e.name);
      const cp = copy(e.inode);
      dp.to.entries.push({ name: e.name, inode: cp.to, hardlink: e.hardlink });
      if (e.hardlink) continue;
      if (e.inode.entries !== null) {
        subdirs++;
        stack.push(e.inode);
      }
      if (isWhiteout(e.inode)) hasWhiteout = true;
    }
    if (dir === root) {
      // spec composefs-v1 §5.5: stubs 00…ff for every missing root name.
      const have = new Set((dir.entries ?? []).map((e) => e.name.toString('latin1')));
      for (let i = 0; i < 256; i++) {
        const name = i.toString(16).padStart(2, '0');
        if (have.has(name)) continue;
        names.push(K(name));
        const stub: Pending = { from: root, to: newInode(S_IFCHR | 0o644), stored: new Map(), isStub: true };
        const sel = root.xattrs.find((x) => x.key.equals(SELINUX));
        if (sel) set(stub, SELINUX, sel.value);
        order.push(stub);
      }
    }
    dp.to.size = directorySize(names);
    dp.to.nlink = 2 + subdirs;
    if (hasWhiteout) {
      // spec composefs-v1 §5.3: the parent's markers.
      set(dp, K('trusted.overlay.overlay.whiteouts'), Buffer.alloc(0));
      set(dp, K('user.overlay.whiteouts'), Buffer.alloc(0));
      if (options.cfsVersion >= 1) {
        set(dp, K('trusted.overlay.overlay.opaque'), K('x'));
        set(dp, K('user.overlay.opaque'), K('x'));
      }
    }
  }

  // spec composefs-v1 §5.4: the root's opaque marker (not escaped).
  set(rootP, K('trusted.overlay.opaque'), K('y'));

  // spec composefs-v1 §7.3: pairs on more than one inode are shared; ≤ 128 refs per inode.
  const lists = order.map((p) => ({ p, list: dedupeSorted(p) }));
  const counts = new Map<string, number>();
  for (const { list } of lists) {
    for (const x of list) {
      const id = pairId(x);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  for (const { p, list } of lists) {
    if (p.isStub) continue;
    const inline: RawXattr[] = [];
    const shared: RawXattr[] = [];
    for (const x of list) {
      const raw = { key: x.key, value: x.value, valueEnd: 0 };
      if ((counts.get(pairId(x)) ?? 0) > 1 && shared.length < MAX_SHARED_REFS) shared.push(raw);
      else inline.push(raw);
    }
    applyXattrs(p.to, [...inline, ...shared], 'composefs-info', Buffer.alloc(0));
  }
  markFirstOccurrences(rootP.to);
  return rootP.to;
}

function pairId(x: Xattr): string {
  return `${x.key.toString('latin1')}\0${x.value.toString('latin1')}`;
}

/** Final stored list (one value per key; writer additions replaced input values), sorted by key. */
function dedupeSorted(p: Pending): Xattr[] {
  return [...p.stored.values()].sort((a, b) => Buffer.compare(a.key, b.key));
}

/** Copies one inode's fields as the image stores them, with the writer's xattr additions. */
function fillFields(p: Pending): void {
  const { from, to } = p;
  to.uid = from.uid;
  to.gid = from.gid;
  to.mtimeSec = from.mtimeSec;
  to.mtimeNsec = from.mtimeNsec;
  // spec composefs-v1 §5.1 step 2: trusted.overlay.* is escaped.
  for (const x of from.xattrs) {
    const key = x.key.subarray(0, OVERLAY.length).equals(OVERLAY)
      ? Buffer.concat([ESCAPED, x.key.subarray(OVERLAY.length)])
      : x.key;
    set(p, key, x.value);
  }
  if (from.entries !== null) return;
  to.nlink = from.nlink;
  const type = from.mode & S_IFMT;
  if (isWhiteout(from)) {
    // spec composefs-v1 §5.1 step 4: stored as an empty regular file with whiteout xattrs.
    to.mode = S_IFREG | (from.mode & 0xffff & ~S_IFMT);
    to.size = 0n;
    set(p, K('trusted.overlay.overlay.whiteout'), Buffer.alloc(0));
    set(p, K('user.overlay.whiteout'), Buffer.alloc(0));
    return;
  }
  if (type === S_IFCHR || type === S_IFBLK) to.rdev = from.rdev & 0xffffffffn;
  if (type === S_IFREG) {
    to.size = from.size;
    if (from.content !== null) {
      to.content = from.content;
    } else if (from.size > 0n) {
      // spec composefs-v1 §5.1 step 3: metacopy (36 bytes or empty) and redirect.
      const meta =
        from.digest === null ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0, 36, 0, 1]), from.digest]);
      set(p, K('trusted.overlay.metacopy'), meta);
      if (from.payload !== null && from.payload.length > 0) {
        set(p, K('trusted.overlay.redirect'), Buffer.concat([K('/'), from.payload]));
      }
    }
  } else if (type === S_IFLNK && from.payload !== null) {
    to.payload = from.payload;
    to.size = BigInt(from.payload.length);
  }
}
