/**
 * Reads a directory tree as a reader exposes it (an fsck.erofs extraction or a kernel mount) and
 * compares it with an expected view (erofs-writer-random-tree.ts).
 */
import { execFileSync } from 'node:child_process';
import { type BigIntStats, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../src/composefs/format/tree.js';
import type { ViewEntry } from './erofs-writer-random-tree.js';

export interface Checks {
  owner: boolean;
  mtime: boolean;
  nlinkAndHardlinks: boolean;
  /**
   * Sizes of external (all-hole chunk-based) files: fsck.erofs 1.5 --extract writes them empty, also
   * for images made by C mkcomposefs (checked on config.dump's image), so only a mount can show them.
   */
  externalSizes: boolean;
  /** Read xattrs with python3 (os.listxattr/getxattr); skipped when null. */
  xattrs: boolean;
}

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

/** Every path below `top` (hex of the bytes after `top`, '' = top) → lstat. */
function walk(top: Buffer): Map<string, { path: Buffer; st: BigIntStats }> {
  const out = new Map<string, { path: Buffer; st: BigIntStats }>();
  const stack: [Buffer, Buffer][] = [[top, Buffer.alloc(0)]];
  out.set('', { path: top, st: lstatSync(top, { bigint: true })! });
  while (stack.length) {
    const [dir, rel] = stack.pop()!;
    for (const name of readdirSync(dir, { encoding: 'buffer' })) {
      const p = join(dir, name);
      const r = join(rel, name);
      const st = lstatSync(p, { bigint: true })!;
      out.set(r.toString('hex'), { path: p, st });
      if ((Number(st.mode) & S_IFMT) === S_IFDIR) stack.push([p, r]);
    }
  }
  return out;
}

const XATTR_SCRIPT = `
import os, sys, json
top = os.fsencode(sys.argv[1])
out = {}
for d, dirs, files in os.walk(top):
    for n in [None] + dirs + files:
        p = d if n is None else os.path.join(d, n)
        rel = p[len(top):].hex()
        xs = {}
        for k in os.listxattr(p, follow_symlinks=False):
            try:
                xs[os.fsencode(k).hex()] = os.getxattr(p, k, follow_symlinks=False).hex()
            except OSError:
                pass  # listed but not readable here (user.* on special files)
        out[rel] = xs
json.dump(out, sys.stdout)
`;

/** Returns a list of mismatches (empty when the tree shows exactly the expected view). */
export function compareView(top: string, expected: Map<string, ViewEntry>, checks: Checks): string[] {
  const errors: string[] = [];
  const actual = walk(Buffer.from(top));
  const name = (k: string): string => JSON.stringify(Buffer.from(k, 'hex').toString('latin1') || '/');
  for (const k of actual.keys()) if (!expected.has(k)) errors.push(`unexpected ${name(k)}`);
  const xattrs = checks.xattrs
    ? (JSON.parse(
        execFileSync('python3', ['-c', XATTR_SCRIPT, top], { maxBuffer: 1 << 28 }).toString(),
      ) as Record<string, Record<string, string>>)
    : null;
  const inoOfGroup = new Map<unknown, bigint>();
  for (const [k, e] of expected) {
    const a = actual.get(k);
    if (!a) {
      errors.push(`missing ${name(k)}`);
      continue;
    }
    const st = a.st;
    const mode = Number(st.mode);
    const diff = (what: string, got: unknown, want: unknown): void => {
      if (got !== want) errors.push(`${name(k)}: ${what} ${String(got)} ≠ ${String(want)}`);
    };
    diff('type', (mode & S_IFMT).toString(8), e.type.toString(8));
    diff('perm', (mode & 0o7777).toString(8), e.perm.toString(8));
    if (checks.owner) {
      diff('uid', Number(st.uid), e.uid);
      diff('gid', Number(st.gid), e.gid);
    }
    if (checks.mtime) diff('mtime', st.mtimeNs, e.mtimeSec * 1_000_000_000n + BigInt(e.mtimeNsec));
    if (e.size !== undefined && (checks.externalSizes || !e.external)) diff('size', st.size, e.size);
    if (e.rdev !== undefined) diff('rdev', Number(st.rdev), e.rdev);
    if (e.content) diff('content', readFileSync(a.path).equals(e.content), true);
    if (e.target && (mode & S_IFMT) === S_IFLNK) {
      diff('target', readlinkSync(a.path, { encoding: 'buffer' }).equals(e.target), true);
    }
    if (checks.nlinkAndHardlinks && e.nlink !== undefined) {
      diff('nlink', Number(st.nlink), e.nlink);
      const ino = inoOfGroup.get(e.group);
      if (ino === undefined) inoOfGroup.set(e.group, st.ino);
      else diff('hardlink inode', st.ino, ino);
    }
    if (xattrs) {
      const got = xattrs[k] ?? {};
      const gotKeys = Object.keys(got).sort();
      const wantKeys = [...e.xattrs.keys()].sort();
      diff('xattr keys', gotKeys.join(','), wantKeys.join(','));
      for (const [xk, xv] of e.xattrs) if (got[xk] !== undefined) diff(`xattr ${xk}`, got[xk], xv);
    }
    if ((mode & S_IFMT) === S_IFREG && e.size === undefined) errors.push(`${name(k)}: no expected size`);
  }
  return errors;
}
