/**
 * OCI tar entries → composefs tree, rule by rule (spec composefs-v2 §3.2–§3.5, spec composefs-v1
 * §14.3). Entries are synthetic (no tar bytes) so each rule is tested alone; the expected values are
 * read off the spec text.
 */
import { describe, expect, it } from 'vitest';
import { writeErofs, writeErofsV1 } from '../../src/composefs/format/erofs/write.js';
import { fsverityDigest } from '../../src/composefs/format/fsverity.js';
import { makedev, ociEntryPath } from '../../src/composefs/oci/entry.js';
import { applyLayerEntries, type OciLayerEntry } from '../../src/composefs/oci/layer.js';
import { OciTreeBuilder, type OciXattrPolicy } from '../../src/composefs/oci/merge.js';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, type Inode } from '../../src/composefs/format/tree.js';
import { must } from '../helpers/must.js';

interface E {
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: bigint;
  content?: Buffer;
  size?: bigint;
  link?: string;
  dev?: [number, number];
  xattrs?: [string, string][];
  pax?: Record<string, string>;
  v7?: boolean;
  sparse?: boolean;
}

function ent(path: string, e: E = {}): OciLayerEntry {
  const content = e.content ?? Buffer.alloc(0);
  return {
    entry: {
      path: Buffer.from(path),
      linkpath: Buffer.from(e.link ?? ''),
      typeflag: e.type ?? (path.endsWith('/') ? '5' : '0'),
      format: e.v7 ? 'v7' : 'gnu',
      sparse: e.sparse ?? false,
      mode: e.mode ?? (path.endsWith('/') ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? 1000n,
      size: e.size ?? BigInt(content.length),
      devmajor: e.dev?.[0] ?? 0,
      devminor: e.dev?.[1] ?? 0,
      xattrs: (e.xattrs ?? []).map(([k, v]) => ({ key: Buffer.from(k), value: Buffer.from(v) })),
      pax: new Map(Object.entries(e.pax ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
    },
    body: (async function* () {
      // Two chunks when possible, to exercise incremental hashing.
      if (content.length > 1) {
        yield content.subarray(0, 1);
        yield content.subarray(1);
      } else if (content.length === 1) yield content;
    })(),
  };
}

async function* list(entries: OciLayerEntry[]): AsyncIterable<OciLayerEntry> {
  yield* entries;
}

async function build(
  layers: OciLayerEntry[][],
  xattrs: OciXattrPolicy = 'all',
  hash: 'sha256' | 'sha512' = 'sha256',
) {
  const b = new OciTreeBuilder();
  for (const [i, l] of layers.entries()) await applyLayerEntries(b, list(l), { hash, layer: `layer${i}` });
  // Every tree here is also finished flat (what `composefs id` writes V1 from): the V1 image of
  // that flat tree must be the V1 image of the object tree, byte for byte. finishFlat reads the
  // build tree without changing it, so it runs first.
  const flat = b.finishFlat(xattrs);
  const tree = b.finish(xattrs);
  const opts = { format: 'v1', minVersion: 1, maxVersion: 1, hash } as const;
  expect(writeErofsV1(flat, opts).equals(writeErofs(tree, opts))).toBe(true);
  return tree;
}

function child(dir: Inode, path: string): Inode | undefined {
  let cur: Inode | undefined = dir;
  for (const c of path.split('/').filter(Boolean)) {
    cur = cur?.entries?.find((e) => e.name.equals(Buffer.from(c)))?.inode;
  }
  return cur;
}

function names(dir: Inode | undefined): string[] {
  return (dir?.entries ?? []).map((e) => e.name.toString('latin1'));
}

const USR = ent('usr/', { mode: 0o755, uid: 7, gid: 8, mtime: 1234567890n, xattrs: [['user.a', '1']] });

describe('entry path normalisation (spec composefs-v2 §3.3)', () => {
  const p = (s: string) => {
    const r = ociEntryPath(Buffer.from(s));
    return r.name === null ? null : [...r.dir, r.name].map((b) => b.toString()).join('/');
  };
  it('strips leading and trailing slashes, empty and "." components', () => {
    expect(p('/usr/bin/')).toBe('usr/bin');
    expect(p('./usr//./bin')).toBe('usr/bin');
    expect(p('a/b/.')).toBe('a/b');
  });
  it('treats "/", "./", "." and a trailing ".." as the root entry', () => {
    for (const s of ['/', './', '.', '', 'a/..']) expect(p(s)).toBeNull();
  });
  it("rejects '..' in the directory part", () => {
    expect(() => ociEntryPath(Buffer.from('a/../b'))).toThrow(/'\.\.'/);
  });
});

describe('makedev (spec composefs-v2 §3.3)', () => {
  it('uses the glibc encoding', () => {
    expect(makedev(8n, 1n)).toBe(0x801n);
    expect(makedev(0x12345n, 0x6789an)).toBe((0x12000n << 32n) | (0x345n << 8n) | (0x67800n << 12n) | 0x9an);
  });
});

describe('tree from entries', () => {
  it('inlines files of 0..64 bytes and makes larger ones external objects (spec §3.3)', async () => {
    const c64 = Buffer.alloc(64, 0x61);
    const c65 = Buffer.alloc(65, 0x62);
    for (const hash of ['sha256', 'sha512'] as const) {
      const t = await build(
        [[USR, ent('empty', {}), ent('f64', { content: c64 }), ent('f65', { content: c65 })]],
        'all',
        hash,
      );
      const empty = child(t, 'empty')!;
      expect(empty.size).toBe(0n);
      expect(empty.content).toBeNull();
      expect(empty.digest).toBeNull();
      const f64 = child(t, 'f64')!;
      expect(f64.content).toEqual(c64);
      expect(f64.digest).toBeNull();
      const f65 = child(t, 'f65')!;
      expect(f65.content).toBeNull();
      expect(f65.size).toBe(65n);
      const d = fsverityDigest(c65, hash);
      expect(f65.digest).toEqual(d);
      expect(f65.payload!.toString()).toBe(`${d.toString('hex').slice(0, 2)}/${d.toString('hex').slice(2)}`);
      expect(f65.mode).toBe(S_IFREG | 0o644);
    }
  });

  it('copies the root metadata (incl. xattrs) from /usr; a tar root entry does not matter (spec §3.5)', async () => {
    const t = await build([[ent('./', { mode: 0o700, uid: 1, mtime: 5n }), USR]]);
    expect(t.mode).toBe(S_IFDIR | 0o755);
    expect([t.uid, t.gid, t.mtimeSec]).toEqual([7, 8, 1234567890n]);
    expect(t.xattrs.map((x) => [x.key.toString(), x.value.toString()])).toEqual([['user.a', '1']]);
    expect(names(t)).toEqual(['usr']);
  });

  it('fails without /usr, or when /usr is not a directory', async () => {
    await expect(build([[ent('etc/')]])).rejects.toThrow(/no \/usr/);
    await expect(build([[ent('usr', { content: Buffer.from('x') })]])).rejects.toThrow(
      /\/usr is not a directory/,
    );
  });

  it('empties /run, sets its mtime from /usr and keeps its mode (spec §3.5)', async () => {
    const t = await build([[USR, ent('run/', { mode: 0o1777, uid: 3, mtime: 99n }), ent('run/x', {})]]);
    const run = child(t, 'run')!;
    expect(names(run)).toEqual([]);
    expect(run.mtimeSec).toBe(1234567890n);
    expect(run.mode).toBe(S_IFDIR | 0o1777);
    expect(run.uid).toBe(3);
  });

  it('fails when /run is not a directory', async () => {
    await expect(build([[USR, ent('run', { type: '2', link: 'var/run' })]])).rejects.toThrow(
      /\/run is not a directory/,
    );
  });

  it('applies whiteouts from later layers, including whole subtrees, and never adds them (spec §3.4)', async () => {
    const t = await build([
      [USR, ent('etc/'), ent('etc/a/'), ent('etc/a/x', {}), ent('etc/b', {})],
      [ent('etc/.wh.a', {}), ent('etc/.wh.missing', {})],
    ]);
    expect(names(child(t, 'etc'))).toEqual(['b']);
  });

  it('opaque whiteout clears the directory, including earlier entries of the same layer (spec §3.4)', async () => {
    const t = await build([
      [USR, ent('etc/', { mode: 0o755 }), ent('etc/old', {})],
      [
        ent('etc/', { mode: 0o750, mtime: 77n }),
        ent('etc/new1', {}),
        ent('etc/.wh..wh..opq', {}),
        ent('etc/new2', {}),
      ],
    ]);
    const etc = child(t, 'etc')!;
    expect(names(etc)).toEqual(['new2']);
    expect(etc.mode).toBe(S_IFDIR | 0o750);
    expect(etc.mtimeSec).toBe(77n);
  });

  it('directory over directory takes only the stat; other replacements drop the old node (spec §3.4)', async () => {
    const t = await build([
      [
        USR,
        ent('d/'),
        ent('d/keep', {}),
        ent('f2d', {}),
        ent('d2f/'),
        ent('d2f/x', {}),
        ent('s2f', { type: '2', link: 't' }),
      ],
      [
        ent('d/', { mode: 0o700, uid: 5, xattrs: [['user.new', 'v']] }),
        ent('f2d/'),
        ent('d2f', { content: Buffer.from('now a file') }),
        ent('s2f', { content: Buffer.from('file') }),
      ],
    ]);
    const d = child(t, 'd')!;
    expect(names(d)).toEqual(['keep']);
    expect([d.mode, d.uid]).toEqual([S_IFDIR | 0o700, 5]);
    expect(d.xattrs.map((x) => x.key.toString())).toEqual(['user.new']);
    expect(child(t, 'f2d')!.mode).toBe(S_IFDIR | 0o755);
    expect(names(child(t, 'f2d'))).toEqual([]);
    expect(child(t, 'd2f')!.content!.toString()).toBe('now a file');
    expect(child(t, 'd2f')!.entries).toBeNull();
    expect(child(t, 's2f')!.mode).toBe(S_IFREG | 0o644);
  });

  it('hardlinks share the earlier leaf; the first entry in sorted DFS order is canonical (spec §3.4, v1 §14.3)', async () => {
    const t = await build([
      [
        USR,
        ent('hello.txt', { content: Buffer.from('hello from test layer\n') }),
        ent('hello-link.txt', { type: '1', link: 'hello.txt', mode: 0o777, uid: 9 }),
        ent('a/'),
        ent('a/z', { type: '1', link: '/hello.txt' }),
      ],
    ]);
    const link = t.entries!.find((e) => e.name.toString() === 'hello-link.txt')!;
    const file = t.entries!.find((e) => e.name.toString() === 'hello.txt')!;
    const az = must(child(t, 'a')?.entries?.[0], '/a/z');
    expect(link.inode).toBe(file.inode);
    expect(az.inode).toBe(file.inode);
    expect(file.inode.nlink).toBe(3);
    // DFS pre-order: /a/z comes before /hello-link.txt and /hello.txt.
    expect([az.hardlink, link.hardlink, file.hardlink]).toEqual([false, true, true]);
    // The hardlink header's own stat is ignored.
    expect([file.inode.mode, file.inode.uid]).toEqual([S_IFREG | 0o644, 0]);
  });

  it('a replaced hardlink target leaves other links on the old leaf', async () => {
    const t = await build([
      [USR, ent('a', { content: Buffer.from('old') }), ent('b', { type: '1', link: 'a' })],
      [ent('a', { content: Buffer.from('new') })],
    ]);
    expect(child(t, 'a')!.content!.toString()).toBe('new');
    expect(child(t, 'b')!.content!.toString()).toBe('old');
    expect([child(t, 'a')!.nlink, child(t, 'b')!.nlink]).toEqual([1, 1]);
  });

  it('rejects hardlinks to missing entries and to directories', async () => {
    await expect(build([[USR, ent('x', { type: '1', link: 'nope' })]])).rejects.toThrow(/does not exist/);
    await expect(build([[USR, ent('x', { type: '1', link: 'usr' })]])).rejects.toThrow(/is a directory/);
  });

  it('rejects missing parents and non-directory parents (nothing is created implicitly)', async () => {
    await expect(build([[USR, ent('etc/passwd', {})]])).rejects.toThrow(/parent directory "etc" is missing/);
    await expect(build([[USR, ent('f', {}), ent('f/x', {})]])).rejects.toThrow(/"f" is not a directory/);
  });

  it('reads SCHILY xattrs: last of a name wins, sorted by name bytes; the policy filters (spec §3.2, v1 §14.3)', async () => {
    const xs: [string, string][] = [
      ['user.b', '1'],
      ['security.capability', 'cap'],
      ['user.b', '2'],
      ['security.selinux', 'lbl'],
      ['trusted.x', 'y'],
    ];
    const all = await build([[USR, ent('f', { xattrs: xs })]]);
    expect(child(all, 'f')!.xattrs.map((x) => `${x.key}=${x.value}`)).toEqual([
      'security.capability=cap',
      'security.selinux=lbl',
      'trusted.x=y',
      'user.b=2',
    ]);
    const cap = await build([[USR, ent('f', { xattrs: xs })]], 'capability');
    expect(child(cap, 'f')!.xattrs.map((x) => x.key.toString())).toEqual(['security.capability']);
    expect(cap.xattrs).toEqual([]);
    const user = await build([[USR, ent('f', { xattrs: xs })]], 'capability+user');
    expect(child(user, 'f')!.xattrs.map((x) => x.key.toString())).toEqual(['security.capability', 'user.b']);
    expect(user.xattrs.map((x) => x.key.toString())).toEqual(['user.a']);
  });

  it('maps symlinks, devices and fifos (spec §3.3)', async () => {
    const t = await build([
      [
        USR,
        ent('l', { type: '2', link: '../x//y', mode: 0o777 }),
        ent('c', { type: '3', dev: [1, 3] }),
        ent('b', { type: '4', dev: [8, 0x1ff] }),
        ent('p', { type: '6' }),
      ],
    ]);
    expect(child(t, 'l')!.payload!.toString()).toBe('../x//y');
    expect(child(t, 'l')!.size).toBe(7n);
    expect(child(t, 'l')!.mode).toBe(S_IFLNK | 0o777);
    expect(child(t, 'c')!.rdev).toBe(0x103n);
    expect(child(t, 'c')!.mode).toBe(S_IFCHR | 0o644);
    expect(child(t, 'b')!.rdev).toBe(makedev(8n, 0x1ffn));
    expect(child(t, 'p')!.mode).toBe(0o010644);
    await expect(build([[USR, ent('c', { type: '3', v7: true })]])).rejects.toThrow(/without device numbers/);
  });

  it('rejects an empty entry path', async () => {
    await expect(build([[USR, ent('', {})]])).rejects.toThrow(/empty path/);
  });

  it('rejects unsupported entry types and sparse files', async () => {
    await expect(build([[USR, ent('s', { type: 'g' })]])).rejects.toThrow(/unsupported tar entry type/);
    await expect(build([[USR, ent('s', { type: 'S', sparse: true })]])).rejects.toThrow(/sparse/);
  });

  it('reads PAX mtime: integer part, fraction as nanoseconds; negative is an error (spec §3.2, v1 §14.3)', async () => {
    const t = await build([
      [
        USR,
        ent('a', { pax: { mtime: '1700000000.5' } }),
        ent('b', { pax: { mtime: '1700000000.1234567899' } }),
        ent('c', { pax: { mtime: '12.x' } }),
      ],
    ]);
    expect([child(t, 'a')!.mtimeSec, child(t, 'a')!.mtimeNsec]).toEqual([1700000000n, 500000000]);
    expect(child(t, 'b')!.mtimeNsec).toBe(123456789);
    expect([child(t, 'c')!.mtimeSec, child(t, 'c')!.mtimeNsec]).toEqual([12n, 0]);
    await expect(build([[USR, ent('n', { pax: { mtime: '-5' } })]])).rejects.toThrow(/invalid PAX mtime/);
  });

  it('keeps negative base-256 mtimes and truncates uid/gid to 32 bits', async () => {
    const t = await build([[USR, ent('f', { mtime: -5n, uid: 2 ** 32 + 3 })]]);
    expect(child(t, 'f')!.mtimeSec).toBe(-5n);
    expect(child(t, 'f')!.uid).toBe(3);
  });

  it('accepts tar modes carrying the same type bits, refuses contradicting ones (spec §10 item 5)', async () => {
    const t = await build([[ent('usr/', { mode: 0o40755 }), ent('f', { mode: 0o100600 })]]);
    expect(child(t, 'f')!.mode).toBe(S_IFREG | 0o600);
    await expect(build([[USR, ent('f', { mode: 0o40644 })]])).rejects.toThrow(/file-type bits/);
  });

  it('rejects content shorter than the header size', async () => {
    const e = ent('f', { content: Buffer.alloc(100), size: 200n });
    await expect(build([[USR, e]])).rejects.toThrow(/100 bytes, header says 200/);
  });
});
