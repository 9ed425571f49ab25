import { describe, expect, it } from 'vitest';
import {
  MergedRootfs,
  nameKey,
  qualifiesAsSource,
  type MergeEntry,
  type SourceEntry,
} from '../../src/tardiff/merged-rootfs.js';

// Hand-made header lists: each layer is a list of entries; data offsets are fake but distinct.
type E = Partial<Omit<MergeEntry, 'path' | 'linkpath'>> & { path: string | Buffer; linkpath?: string };
const reg = (path: string, o: Omit<E, 'path'> = {}): E => ({ path, ...o });
const dir = (path: string): E => ({ path, type: 'dir', typeflag: '5', size: 0n, mode: 0o755 });
const sym = (path: string, to: string): E => ({
  path,
  type: 'symlink',
  typeflag: '2',
  linkpath: to,
  size: 0n,
});
const link = (path: string, to: string): E => ({
  path,
  type: 'hardlink',
  typeflag: '1',
  linkpath: to,
  size: 0n,
});
const wh = (path: string): E => reg(path, { size: 0n }); // whiteouts are empty regular files

function entry(e: E, i: number): MergeEntry {
  return {
    type: 'file',
    typeflag: '0',
    mode: 0o644,
    size: 10n,
    sparse: false,
    dataOffset: BigInt(512 * (2 * i + 1)),
    ...e,
    path: Buffer.isBuffer(e.path) ? e.path : Buffer.from(e.path),
    linkpath: Buffer.from(e.linkpath ?? ''),
  };
}

function merge(...layers: E[][]): MergedRootfs {
  const m = new MergedRootfs();
  for (const l of layers) {
    const scan = m.beginLayer();
    l.forEach((e, i) => scan.add(entry(e, i)));
    scan.finish();
  }
  return m;
}

/** Open name → "layer:ordinal", sorted by name bytes. */
function openNames(m: MergedRootfs): Record<string, string> {
  const pairs = [...m.openNames()].sort(([a], [b]) =>
    Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')),
  );
  return Object.fromEntries(pairs.map(([k, s]: [string, SourceEntry]) => [k, `${s.layer}:${s.ordinal}`]));
}

describe('merged rootfs source rules (spec oci-delta §3.1, §5.2)', () => {
  it('qualifies only world-readable, non-empty, non-sparse regular files', () => {
    const m = merge([
      reg('ok'),
      reg('private', { mode: 0o600 }),
      reg('group-only', { mode: 0o640 }),
      reg('other-read-only', { mode: 0o604 }),
      reg('empty', { size: 0n }),
      reg('sparse', { sparse: true }),
      reg('gnu-sparse', { typeflag: 'S', sparse: true }),
      reg('contiguous', { typeflag: '7' }),
      reg('old-regular', { typeflag: '\0' }),
      reg('old-dir/', { typeflag: '\0' }),
      dir('d'),
      sym('s', 'ok'),
      { path: 'fifo', type: 'fifo', typeflag: '6', size: 0n },
      { path: 'dev', type: 'chardev', typeflag: '3', size: 0n },
    ]);
    expect(Object.keys(openNames(m))).toEqual(['ok', 'old-regular', 'other-read-only']);
    expect(qualifiesAsSource(entry(reg('x', { size: 1n }), 0))).toBe(true);
  });

  it('cleans member names and ignores names that clean to nothing', () => {
    const m = merge([
      reg('./a//b/./c'),
      reg('../../etc/passwd'),
      reg('/abs/file'),
      reg('..'),
      reg('/'),
      reg('.'),
    ]);
    expect(openNames(m)).toEqual({ 'a/b/c': '0:0', 'abs/file': '0:2', 'etc/passwd': '0:1' });
  });

  it('a later layer overwriting a file wins; whiteouts remove earlier files', () => {
    const m = merge(
      [reg('a'), reg('b'), reg('c'), reg('dir/x'), reg('dir/y')],
      [reg('a'), wh('.wh.b'), wh('dir/.wh.x')],
    );
    expect(openNames(m)).toEqual({ a: '1:0', c: '0:2', 'dir/y': '0:4' });
  });

  it('whiteouts only hide earlier layers, not files of their own layer', () => {
    const m = merge([reg('a')], [reg('a'), wh('.wh.a'), reg('d/f'), wh('d/.wh..wh..opq')]);
    expect(openNames(m)).toEqual({ a: '1:0', 'd/f': '1:2' });
  });

  it('an opaque directory hides everything beneath it from earlier layers', () => {
    const m = merge(
      [reg('etc/a'), reg('etc/sub/b'), reg('etcetera'), reg('usr/c')],
      [wh('etc/.wh..wh..opq'), reg('etc/new')],
    );
    expect(openNames(m)).toEqual({ etcetera: '0:2', 'etc/new': '1:1', 'usr/c': '0:3' });
    const root = merge([reg('a'), reg('b/c')], [wh('.wh..wh..opq'), reg('z')]);
    expect(openNames(root)).toEqual({ z: '1:1' });
  });

  it('a plain whiteout of a directory hides descendants but not siblings sharing its prefix', () => {
    const m = merge(
      [
        dir('boot'),
        reg('boot/.kernel/version/.vmlinuz.hmac'),
        reg('boot/.kernel-old/keep'),
        reg('boot/.kernel'),
      ],
      [wh('boot/.wh..kernel')],
    );
    expect(openNames(m)).toEqual({ 'boot/.kernel-old/keep': '0:2' });
  });

  it('a path seen again in the same layer makes the earlier file unusable, whatever replaces it', () => {
    const m = merge([
      reg('twice'),
      reg('twice'),
      reg('to-dir'),
      dir('to-dir'),
      reg('to-link'),
      sym('to-link', 'x'),
    ]);
    expect(openNames(m)).toEqual({ twice: '0:1' });
  });

  it('keeps upstream quirk: non-qualifying entries of a later layer do not remove a mapping (spec §9)', () => {
    const m = merge([reg('a'), reg('b'), reg('c')], [sym('a', 'x'), reg('b', { size: 0n }), dir('c')]);
    expect(openNames(m)).toEqual({ a: '0:0', b: '0:1', c: '0:2' });
  });

  it('hardlink names: own path first, then same-layer hardlinks in tar order; sysroot/ostree ignored', () => {
    const obj = 'sysroot/ostree/repo/objects/8a/5d.file';
    const m = merge([
      reg(obj),
      link('usr/bin/bash', obj),
      link('usr/bin/sh', obj),
      reg('plain'),
      link('alias', 'plain'),
    ]);
    expect(openNames(m)).toEqual({ plain: '0:3', 'usr/bin/bash': '0:0' });
    // every surviving allowed name is served, not only the Open name
    expect(m.lookup(Buffer.from('usr/bin/sh'))?.ordinal).toBe(0);
    expect(m.lookup(Buffer.from(obj))).toBeUndefined();
    // the next surviving name is used once the first is whited out
    const m2 = merge(
      [reg(obj), link('usr/bin/bash', obj), link('usr/bin/sh', obj)],
      [wh('usr/bin/.wh.bash')],
    );
    expect(openNames(m2)).toEqual({ 'usr/bin/sh': '0:0' });
    // a file whose only allowed name is gone is unusable
    const m3 = merge([reg(obj), link('usr/bin/bash', obj)], [reg('usr/bin/bash')]);
    expect(openNames(m3)).toEqual({ 'usr/bin/bash': '1:0' });
  });

  it('hardlinks count only within one layer, and only to qualifying files', () => {
    const m = merge(
      [reg('lib/a'), reg('secret', { mode: 0o600 }), link('lib/b', 'secret')],
      [link('lib/c', 'lib/a'), link('lib/d', 'missing')],
    );
    expect(openNames(m)).toEqual({ 'lib/a': '0:0' });
    expect(m.lookup(Buffer.from('lib/c'))).toBeUndefined();
    expect(m.lookup(Buffer.from('lib/b'))).toBeUndefined();
  });

  it('hardlink added in a layer keeps the file source when the regular path is later whited out', () => {
    const m = merge([reg('a'), link('b', 'a')], [wh('.wh.a')]);
    expect(openNames(m)).toEqual({ b: '0:0' });
  });

  it('works on names that are not UTF-8, comparing bytes', () => {
    const name = Buffer.from([0x64, 0xff, 0x2f, 0x66]); // "d\xff/f"
    const m = merge([{ path: name }]);
    expect(m.lookup(name)?.ordinal).toBe(0);
    expect([...m.openNames().keys()]).toEqual([nameKey(name)]);
  });

  it('reports which ordinals of a layer carry wanted names, including hardlink names', () => {
    const m = new MergedRootfs();
    const scan = m.beginLayer();
    const obj = 'sysroot/ostree/repo/objects/00/11.file';
    [reg(obj), reg('x'), link('usr/lib/libz.so.1', obj), reg('y')].forEach((e, i) => scan.add(entry(e, i)));
    const wanted = new Set(['usr/lib/libz.so.1', 'y']);
    expect([...scan.wantedOrdinals((n) => wanted.has(n.toString()))].sort()).toEqual([0, 3]);
  });
});
