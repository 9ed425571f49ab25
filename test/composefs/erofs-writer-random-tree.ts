/**
 * Seeded random composefs trees for the fsck and mount tests, and the view of such a tree a reader
 * (fsck.erofs --extract, the kernel) must show once written, derived from the spec rules
 * (composefs-v1 §5, composefs-v2 §4.3) independently of the writer's code.
 */
import {
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  newInode,
  sortEntries,
  type Inode,
} from '../../src/composefs/format/tree.js';
import { nth } from '../helpers/must.js';

export type Format = 'v1' | 'v2';

export interface RandomTreeOptions {
  format: Format;
  /** Include a system.posix_acl_access xattr (kernels interpret it; fine for fsck). */
  acl?: boolean;
  /** Allow external files far larger than 1 MiB (not extractable). */
  bigFiles?: boolean;
}

/** mulberry32: a tiny deterministic PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAME_BYTES = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789-_.= \\\n\t~', 'latin1');

export function randomTree(seed: number, opts: RandomTreeOptions): Inode {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => nth(xs, int(xs.length));
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const v1 = opts.format === 'v1';
  const mtimes: [bigint, number][] = [
    [1700000000n, 0],
    [1700000000n, 0],
    [1600000000n, v1 ? 123456789 : 0],
    [-5n, 0],
  ];
  const stat = (): Partial<Inode> => {
    const [mtimeSec, mtimeNsec] = pick(mtimes);
    const big = int(8) === 0;
    return { uid: big ? 70000 : int(3), gid: big ? 1 : int(3), mtimeSec, mtimeNsec };
  };
  const xattrPool: [string, Buffer][] = [
    ['security.selinux', Buffer.from('system_u:object_r:etc_t:s0')],
    ['security.selinux', Buffer.from('system_u:object_r:bin_t:s0')],
    ['user.foo', Buffer.from('bar')],
    ['user.empty', Buffer.alloc(0)],
    ['trusted.overlay.opaque', Buffer.from('y')],
    ['trusted.overlay.metacopy', Buffer.from('not really')],
    ['lustre.q', Buffer.from('lustre value')],
    ['weird.key', Buffer.from('v=1 \n')],
    ['security.capability', Buffer.from('0000000200200000000000000000000000000000', 'hex')],
    ['user.big', Buffer.alloc(300, 0x41)],
  ];
  if (opts.acl) {
    // A minimal valid POSIX ACL: version 2, USER_OBJ rw, GROUP_OBJ r, OTHER r.
    xattrPool.push([
      'system.posix_acl_access',
      Buffer.from('02000000010006000000000004000400000000002000040000000000', 'hex'),
    ]);
  }
  const xattrs = (): Inode['xattrs'] => {
    const out = new Map<string, Buffer>();
    const n = int(4);
    for (let i = 0; i < n; i++) {
      const [k, v] = pick(xattrPool);
      out.set(k, v);
    }
    return [...out].map(([k, v]) => ({ key: Buffer.from(k, 'latin1'), value: v }));
  };
  const name = (taken: Set<string>): Buffer => {
    for (;;) {
      const len = int(10) === 0 ? 255 : 1 + int(24);
      const b = Buffer.from(
        Array.from({ length: len }, () => (int(6) === 0 ? 0x80 + int(128) : pick([...NAME_BYTES]))),
      );
      const s = b.toString('latin1');
      if (s === '.' || s === '..' || taken.has(s)) continue;
      taken.add(s);
      return b;
    }
  };
  const inlineSizes = v1 ? [1, 63, 64, 65, 100, 2048, 2049, 4096, 4097, 5000] : [1, 63, 64, 65, 100, 512];
  const leaves: Inode[] = [];
  const leaf = (): Inode => {
    const kind = int(12);
    let ino: Inode;
    if (kind <= 2) {
      const n = pick(inlineSizes);
      ino = newInode(S_IFREG | 0o644, { ...stat(), content: bytes(n), size: BigInt(n) });
    } else if (kind === 3) {
      ino = newInode(S_IFREG | 0o600, stat());
    } else if (kind <= 5) {
      const size =
        opts.bigFiles && int(3) === 0 ? BigInt(1 + int(2 ** 30)) * 4099n : BigInt(1 + int(1 << 20));
      const digest = v1 && int(5) === 0 ? null : bytes(32);
      const payload = digest
        ? Buffer.from(`${digest.subarray(0, 1).toString('hex')}/${digest.subarray(1).toString('hex')}`)
        : Buffer.from('some/backing/path');
      ino = newInode(S_IFREG | 0o755, { ...stat(), size, digest, payload });
    } else if (kind === 6) {
      const len = int(4) === 0 ? (v1 ? 4000 + int(96) : 1024) : 1 + int(60);
      const target = Buffer.from(Array.from({ length: len }, () => pick([...NAME_BYTES, 0x2f])));
      ino = newInode(S_IFLNK | 0o777, { ...stat(), payload: target, size: BigInt(len) });
    } else if (kind === 7) {
      ino = newInode(pick([S_IFCHR, S_IFBLK]) | 0o640, { ...stat(), rdev: BigInt(1 + int(0xfffff)) });
    } else if (kind === 8) {
      ino = newInode(S_IFIFO | 0o644, stat());
    } else if (kind === 9) {
      ino = newInode(S_IFSOCK | 0o755, stat());
    } else {
      // A whiteout (chr 0:0): V1 escapes it, V2 writes a char device.
      ino = newInode(S_IFCHR | 0o644, stat());
    }
    ino.xattrs = xattrs();
    leaves.push(ino);
    return ino;
  };
  const dirs: Inode[] = [];
  const dir = (depth: number, wide: boolean): Inode => {
    const d = newInode(S_IFDIR | pick([0o755, 0o700, 0o1777]), { ...stat(), xattrs: xattrs() });
    dirs.push(d);
    const taken = new Set<string>();
    const n = wide ? 300 : int(8);
    for (let i = 0; i < n; i++) {
      const child = depth < 3 && int(4) === 0 ? dir(depth + 1, false) : leaf();
      d.entries!.push({ name: name(taken), inode: child, hardlink: false });
    }
    return d;
  };
  const root = dir(0, false);
  const addToRoot = (nm: string, inode: Inode): void => {
    if (root.entries!.some((e) => e.name.equals(Buffer.from(nm)))) return;
    root.entries!.push({ name: Buffer.from(nm), inode, hardlink: false });
  };
  addToRoot('wide', dir(1, seed % 2 === 0));
  // A root child named like a whiteout stub: the stub of that name is then not added (spec v1 §5.5).
  addToRoot('0a', newInode(S_IFREG | 0o644));
  // Two inodes sharing more than 128 xattrs: V1 keeps only 128 shared refs (spec v1 §7.3).
  if (seed % 3 === 0) {
    const many = Array.from({ length: 130 }, (_, i) => ({
      key: Buffer.from(`user.s${i}`),
      value: Buffer.from('v'),
    }));
    for (const nm of ['many1', 'many2']) addToRoot(nm, newInode(S_IFREG | 0o644, { xattrs: many }));
  }
  // Hardlinks: extra entries to existing leaves, anywhere in the tree.
  const linkable = leaves.filter((l) => (l.mode & S_IFMT) !== S_IFDIR);
  for (let i = 0; i < 6 && linkable.length > 0; i++) {
    const target = pick(linkable);
    const d = pick(dirs);
    const taken = new Set(d.entries!.map((e) => e.name.toString('latin1')));
    d.entries!.push({ name: name(taken), inode: target, hardlink: true });
  }
  // nlink = number of entries referencing the inode, as mkcomposefs' input would say.
  const refs = new Map<Inode, number>();
  for (const d of dirs) for (const e of d.entries!) refs.set(e.inode, (refs.get(e.inode) ?? 0) + 1);
  for (const [ino, n] of refs) if ((ino.mode & S_IFMT) !== S_IFDIR) ino.nlink = n;
  for (const d of dirs) sortEntries(d.entries!);
  // The canonical (non-hardlink) entry must be the first in DFS order over sorted names for readers
  // that rebuild hardlinks; re-mark hardlink flags accordingly.
  const seen = new Set<Inode>();
  const walk = (d: Inode): void => {
    for (const e of d.entries!) {
      if ((e.inode.mode & S_IFMT) === S_IFDIR) {
        walk(e.inode);
        continue;
      }
      e.hardlink = seen.has(e.inode);
      seen.add(e.inode);
    }
  };
  walk(root);
  return root;
}

/** What a reader must show for one path. Keys of maps are hex (names and xattrs are bytes). */
export interface ViewEntry {
  type: number;
  perm: number;
  uid: number;
  gid: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  /** Leaves only. */
  nlink?: number;
  size?: bigint;
  content?: Buffer;
  target?: Buffer;
  rdev?: number;
  xattrs: Map<string, string>;
  /** A chunk-based file whose data lives elsewhere (all chunks are holes in the image). */
  external?: boolean;
  /** Entries with the same group are the same inode (hardlinks). */
  group: Inode | string;
}

const hex = (s: string | Buffer): string =>
  (typeof s === 'string' ? Buffer.from(s, 'latin1') : s).toString('hex');

function escapeKey(key: Buffer): string {
  const k = key.toString('latin1');
  return hex(k.startsWith('trusted.overlay.') ? `trusted.overlay.overlay.${k.slice(16)}` : k);
}

/** cfs-version C mkcomposefs picks with the default options (0, 1): 1 iff the input has a whiteout. */
export function hasWhiteout(root: Inode): boolean {
  const stack = [root];
  while (stack.length) {
    for (const e of stack.pop()!.entries ?? []) {
      if (e.hardlink) continue;
      if ((e.inode.mode & S_IFMT) === S_IFCHR && (e.inode.rdev & 0xffffffffn) === 0n) return true;
      if (e.inode.entries) stack.push(e.inode);
    }
  }
  return false;
}

/** The expected view, path (hex of the path bytes below the root, '' = root) → entry. */
export function expectedView(root: Inode, format: Format): Map<string, ViewEntry> {
  const v1 = format === 'v1';
  const version = hasWhiteout(root) ? 1 : 0;
  const view = new Map<string, ViewEntry>();
  const byInode = new Map<Inode, ViewEntry>();
  const entryOf = (ino: Inode): ViewEntry => {
    const type = ino.mode & S_IFMT;
    const xattrs = new Map(ino.xattrs.map((x) => [escapeKey(x.key), x.value.toString('hex')]));
    const e: ViewEntry = {
      type,
      perm: ino.mode & 0o7777,
      uid: ino.uid,
      gid: ino.gid,
      mtimeSec: ino.mtimeSec,
      mtimeNsec: v1 ? ino.mtimeNsec : 0,
      xattrs,
      group: ino,
    };
    if (type === S_IFDIR) return e;
    e.nlink = ino.nlink;
    if (type === S_IFREG) {
      e.size = ino.content ? BigInt(ino.content.length) : ino.size;
      if (ino.content) e.content = ino.content;
      if (!ino.content && ino.size > 0n) {
        e.external = true;
        const d = ino.digest;
        const meta = d
          ? Buffer.concat([Buffer.from([0, 4 + d.length, 0, d.length === 32 ? 1 : 2]), d])
          : Buffer.alloc(0);
        xattrs.set(hex('trusted.overlay.metacopy'), meta.toString('hex'));
        const redirect = v1
          ? ino.payload && ino.payload.length > 0
            ? Buffer.concat([Buffer.from('/'), ino.payload])
            : null
          : Buffer.from(`/${d!.subarray(0, 1).toString('hex')}/${d!.subarray(1).toString('hex')}`);
        if (redirect) xattrs.set(hex('trusted.overlay.redirect'), redirect.toString('hex'));
      }
    } else if (type === S_IFLNK) {
      e.target = ino.payload!;
      e.size = BigInt(ino.payload!.length);
    } else if (type === S_IFCHR || type === S_IFBLK) {
      e.rdev = Number(ino.rdev & 0xffffffffn);
    }
    return e;
  };
  const walk = (d: Inode, path: Buffer, dirEntry: ViewEntry): void => {
    for (const c of d.entries!) {
      const p = Buffer.concat([path, Buffer.from('/'), c.name]);
      const key = p.toString('hex');
      // Hardlinks share one ViewEntry object, so rewrites apply to all names.
      const existing = byInode.get(c.inode);
      const e = existing ?? entryOf(c.inode);
      byInode.set(c.inode, e);
      view.set(key, e);
      if (!existing && v1 && e.type === S_IFCHR && e.rdev === 0) {
        // spec composefs-v1 §5.1 step 4: escaped whiteout.
        e.type = S_IFREG;
        e.size = 0n;
        delete e.rdev;
        delete e.content;
        e.xattrs.set(hex('trusted.overlay.overlay.whiteout'), '');
        e.xattrs.set(hex('user.overlay.whiteout'), '');
        dirEntry.xattrs.set(hex('trusted.overlay.overlay.whiteouts'), '');
        dirEntry.xattrs.set(hex('user.overlay.whiteouts'), '');
        if (version >= 1) {
          dirEntry.xattrs.set(hex('trusted.overlay.overlay.opaque'), hex('x'));
          dirEntry.xattrs.set(hex('user.overlay.opaque'), hex('x'));
        }
      }
      if (!existing && e.type === S_IFDIR) walk(c.inode, p, e);
    }
  };
  const r = entryOf(root);
  view.set('', r);
  walk(root, Buffer.alloc(0), r);
  if (v1) {
    r.xattrs.set(hex('trusted.overlay.opaque'), hex('y'));
    const selinux = root.xattrs.find((x) => x.key.toString('latin1') === 'security.selinux');
    for (let i = 0; i < 256; i++) {
      const name = i.toString(16).padStart(2, '0');
      const key = Buffer.from(`/${name}`).toString('hex');
      if (view.has(key)) continue;
      view.set(key, {
        type: S_IFCHR,
        perm: 0o644,
        uid: root.uid,
        gid: root.gid,
        mtimeSec: root.mtimeSec,
        mtimeNsec: root.mtimeNsec,
        nlink: 1,
        size: 0n,
        rdev: 0,
        xattrs: new Map(selinux ? [[hex('security.selinux'), selinux.value.toString('hex')]] : []),
        group: name,
      });
    }
  }
  return view;
}
