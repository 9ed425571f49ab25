/**
 * OCI image → composefs tree end to end on real layer bytes (tar-stream PAX tars, gzip and zstd,
 * built by test/helpers/images.ts): the rules of spec composefs-v2 §3.2–§3.5 across two layers,
 * through the project's tar reader and OCI layout reader.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsverityDigest } from '../../src/composefs/format/fsverity.js';
import { composefsImage } from '../../src/composefs/oci/image-id.js';
import { makedev } from '../../src/composefs/oci/entry.js';
import { S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, type Inode } from '../../src/composefs/format/tree.js';
import { buildOciImage, seededBytes, type BuiltImage } from '../helpers/images.js';

const big = seededBytes('tool', 65);
const exact = seededBytes('exact', 64);
const longName = `usr/share/${'n'.repeat(150)}`;
let tmp: string;
let image: BuiltImage;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'odh-cfs-layers-'));
  image = await buildOciImage(tmp, {
    layers: [
      {
        compression: 'gzip',
        entries: [
          {
            type: 'dir',
            path: 'usr',
            mode: 0o755,
            uid: 1,
            gid: 2,
            pax: { 'SCHILY.xattr.user.root': 'from-usr' },
          },
          { type: 'dir', path: 'usr/bin' },
          {
            type: 'file',
            path: 'usr/bin/tool',
            content: big,
            mode: 0o4755,
            pax: { 'SCHILY.xattr.security.capability': 'cap', 'SCHILY.xattr.user.k': 'v' },
          },
          { type: 'hardlink', path: 'usr/bin/tool2', target: 'usr/bin/tool' },
          { type: 'dir', path: 'usr/lib' },
          { type: 'file', path: 'usr/lib/a', content: exact },
          { type: 'dir', path: 'usr/share' },
          { type: 'file', path: longName, content: 'long' },
          { type: 'dir', path: 'etc' },
          { type: 'file', path: 'etc/conf', content: 'x=1\n' },
          { type: 'dir', path: 'etc/dir' },
          { type: 'file', path: 'etc/dir/old', content: 'old' },
          { type: 'char-device', path: 'etc/null', major: 1, minor: 3 },
          { type: 'fifo', path: 'etc/fifo' },
          { type: 'symlink', path: 'etc/link', target: '../usr/bin/tool' },
          { type: 'dir', path: 'run', mode: 0o1777 },
          { type: 'file', path: 'run/lock', content: '1' },
        ],
      },
      {
        compression: 'zstd',
        entries: [
          { type: 'whiteout', path: 'etc/conf' },
          { type: 'dir', path: 'etc/dir', mode: 0o700 },
          { type: 'opaque', path: 'etc/dir' },
          { type: 'file', path: 'etc/dir/new', content: 'new' },
          { type: 'dir', path: 'usr/lib/a' },
          { type: 'file', path: 'usr/lib/a/inner', content: 'i' },
        ],
      },
    ],
  });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function at(root: Inode, p: string): Inode {
  let cur = root;
  for (const c of p.split('/').filter(Boolean)) {
    const e = cur.entries?.find((x) => x.name.equals(Buffer.from(c)));
    if (!e) throw new Error(`no ${p}`);
    cur = e.inode;
  }
  return cur;
}
const names = (d: Inode) => d.entries!.map((e) => e.name.toString());
const xattrs = (n: Inode) => n.xattrs.map((x) => `${x.key}=${x.value}`);

describe('two-layer image → tree', () => {
  it('applies every rule (spec composefs-v2 §3.2–§3.5), xattr policy "all"', async () => {
    for (const ref of [image.ociRef, image.archiveRef]) {
      const { tree } = await composefsImage(ref, { format: 'v2', hash: 'sha256', xattrs: 'all' });
      // Root from /usr, including xattrs.
      expect([tree.mode, tree.uid, tree.gid]).toEqual([S_IFDIR | 0o755, 1, 2]);
      expect(xattrs(tree)).toEqual(['user.root=from-usr']);
      expect(names(tree)).toEqual(['etc', 'run', 'usr']);
      // Whiteout removed etc/conf; opaque cleared etc/dir then etc/dir/new was added; its stat changed.
      expect(names(at(tree, 'etc'))).toEqual(['dir', 'fifo', 'link', 'null']);
      expect(names(at(tree, 'etc/dir'))).toEqual(['new']);
      expect(at(tree, 'etc/dir').mode).toBe(S_IFDIR | 0o700);
      // /run emptied, mtime from /usr, mode kept.
      expect(names(at(tree, 'run'))).toEqual([]);
      expect(at(tree, 'run').mode).toBe(S_IFDIR | 0o1777);
      expect(at(tree, 'run').mtimeSec).toBe(at(tree, 'usr').mtimeSec);
      // 65 bytes → external object; 64 → inline (then replaced by a directory in layer 2).
      const tool = at(tree, 'usr/bin/tool');
      expect([tool.mode, tool.size, tool.content]).toEqual([S_IFREG | 0o4755, 65n, null]);
      expect(tool.digest).toEqual(fsverityDigest(big, 'sha256'));
      expect(xattrs(tool)).toEqual(['security.capability=cap', 'user.k=v']);
      expect(at(tree, 'usr/bin/tool2')).toBe(tool);
      expect(tool.nlink).toBe(2);
      expect(names(at(tree, 'usr/lib/a'))).toEqual(['inner']);
      expect(at(tree, longName).content!.toString()).toBe('long');
      expect([at(tree, 'etc/null').mode, at(tree, 'etc/null').rdev]).toEqual([
        S_IFCHR | 0o600,
        makedev(1n, 3n),
      ]);
      expect(at(tree, 'etc/fifo').mode).toBe(S_IFIFO | 0o644);
      expect(at(tree, 'etc/link').mode).toBe(S_IFLNK | 0o777);
      expect(at(tree, 'etc/link').payload!.toString()).toBe('../usr/bin/tool');
    }
  });

  it('keeps only security.capability with the composefs-rs ≥0.8 policy (the V1 default)', async () => {
    const { tree } = await composefsImage(image.ociRef, { format: 'v1', hash: 'sha512' });
    expect(xattrs(tree)).toEqual([]);
    const tool = at(tree, 'usr/bin/tool');
    expect(xattrs(tool)).toEqual(['security.capability=cap']);
    expect(tool.digest).toEqual(fsverityDigest(big, 'sha512'));
  });

  it('inlines exactly 64 bytes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'odh-cfs-64-'));
    try {
      const img = await buildOciImage(dir, {
        layers: [
          {
            compression: 'none',
            entries: [
              { type: 'dir', path: 'usr' },
              { type: 'file', path: 'usr/a64', content: exact },
              { type: 'file', path: 'usr/a65', content: big },
            ],
          },
        ],
      });
      const { tree } = await composefsImage(img.ociRef, { format: 'v2', hash: 'sha256' });
      expect(at(tree, 'usr/a64').content).toEqual(exact);
      expect(at(tree, 'usr/a64').digest).toBeNull();
      expect(at(tree, 'usr/a65').content).toBeNull();
      expect(at(tree, 'usr/a65').digest).toEqual(fsverityDigest(big, 'sha256'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
