import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractMergedRootfs } from '../../src/image-source/oci-image.js';
import { DirectorySource } from '../../src/image-source/directory.js';
import { bootcLayerEntries, buildOciImage, seededBytes } from '../helpers/images.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'odh-extract-'));
  dirs.push(d);
  return d;
}

/** Every path under `root`, '/'-separated and sorted, directories marked with a trailing '/'. */
async function tree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(path.join(root, rel))).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    const st = await lstat(path.join(root, r));
    if (st.isDirectory()) out.push(`${r}/`, ...(await tree(root, r)));
    else out.push(r);
  }
  return out;
}

describe('extractMergedRootfs (spec oci-delta §3.2 --directory, §5.2 whiteouts)', () => {
  it('extracts layers in order with whiteouts, opaque dirs, symlinks and hardlinks', async () => {
    const work = await tempDir();
    const big = seededBytes('big', 70000);
    const img = await buildOciImage(path.join(work, 'img'), {
      layers: [
        {
          compression: 'gzip',
          entries: [
            { type: 'dir', path: 'etc', mode: 0o755 },
            { type: 'file', path: 'etc/a', content: 'a1' },
            { type: 'file', path: 'etc/gone', content: 'gone' },
            { type: 'file', path: 'etc/shadow', content: 'secret', mode: 0o200 },
            { type: 'file', path: 'opt/sub/x', content: 'x' },
            { type: 'file', path: 'opt/y', content: 'y' },
            { type: 'file', path: 'boot/.kernel/v/.vmlinuz.hmac', content: 'h' },
            { type: 'file', path: 'boot/.kernel-old/keep', content: 'k' },
            { type: 'symlink', path: 'etc/link', target: 'a' },
            { type: 'fifo', path: 'etc/fifo' },
            { type: 'char-device', path: 'dev/null', major: 1, minor: 3 },
            { type: 'file', path: 'big', content: big },
            { type: 'hardlink', path: 'big-link', target: 'big' },
          ],
        },
        {
          compression: 'zstd',
          entries: [
            { type: 'file', path: 'etc/a', content: 'a2' },
            { type: 'whiteout', path: 'etc/gone' },
            { type: 'whiteout', path: 'boot/.kernel' },
            { type: 'file', path: 'opt/kept-same-layer', content: 'same layer, before the marker' },
            { type: 'opaque', path: 'opt' },
            { type: 'dir', path: 'etc/link-became-dir' },
          ],
        },
        {
          compression: 'none',
          entries: bootcLayerEntries([{ path: 'usr/lib/libz.so.1', content: seededBytes('z', 900) }]),
        },
      ],
    });
    const dest = path.join(work, 'rootfs');
    const stats = await extractMergedRootfs(img.archiveRef, dest);
    const objDir = (await readdir(path.join(dest, 'sysroot/ostree/repo/objects')))[0]!;
    const obj = (await readdir(path.join(dest, 'sysroot/ostree/repo/objects', objDir)))[0]!;
    expect(await tree(dest)).toEqual([
      'big',
      'big-link',
      'boot/',
      'boot/.kernel-old/',
      'boot/.kernel-old/keep',
      'etc/',
      'etc/a',
      'etc/link',
      'etc/link-became-dir/',
      'etc/shadow',
      'opt/',
      'opt/kept-same-layer',
      'sysroot/',
      'sysroot/ostree/',
      'sysroot/ostree/repo/',
      'sysroot/ostree/repo/objects/',
      `sysroot/ostree/repo/objects/${objDir}/`,
      `sysroot/ostree/repo/objects/${objDir}/${obj}`,
      'usr/',
      'usr/lib/',
      'usr/lib/libz.so.1',
    ]);
    expect(await readFile(path.join(dest, 'etc/a'), 'utf8')).toBe('a2');
    expect(await readlink(path.join(dest, 'etc/link'))).toBe('a');
    expect(await readFile(path.join(dest, 'big-link'))).toEqual(big);
    expect((await lstat(path.join(dest, 'big-link'))).ino).toBe((await lstat(path.join(dest, 'big'))).ino);
    expect((await lstat(path.join(dest, 'etc/shadow'))).mode & 0o777).toBe(0o600);
    expect(stats).toEqual({ files: 11, dirs: 2, symlinks: 1, hardlinks: 2, skipped: 2 });
    // the extracted tree feeds DirectorySource, as upstream's --directory
    const ds = await DirectorySource.create(dest);
    const f = await ds.open(Buffer.from('usr/lib/libz.so.1'));
    expect(f.size).toBe(900);
    await f.close();
  });

  it('refuses an entry below a symlink and writes nothing outside the destination', async () => {
    const work = await tempDir();
    const outside = path.join(work, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'victim'), 'untouched');
    const img = await buildOciImage(path.join(work, 'img'), {
      layers: [
        {
          entries: [
            { type: 'file', path: '../../etc/passwd', content: 'inside' },
            { type: 'file', path: '/abs', content: 'abs' },
            { type: 'symlink', path: 'escape', target: '../outside' },
          ],
        },
        { entries: [{ type: 'file', path: 'escape/victim', content: 'pwned' }] },
      ],
    });
    const dest = path.join(work, 'rootfs');
    await expect(extractMergedRootfs(img.ociRef, dest)).rejects.toMatchObject({
      code: 'UNSAFE_PATH',
      message: expect.stringContaining('"escape/victim"'),
    });
    expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('untouched');
    expect(await readFile(path.join(dest, 'etc/passwd'), 'utf8')).toBe('inside');
    expect(await readFile(path.join(dest, 'abs'), 'utf8')).toBe('abs');
    expect((await readdir(work)).sort()).toEqual(['img', 'outside', 'rootfs']);
  });

  it('refuses a hardlink to a symlink (it would alias a file outside)', async () => {
    const work = await tempDir();
    const img = await buildOciImage(path.join(work, 'img'), {
      layers: [
        {
          entries: [
            { type: 'symlink', path: 'host-passwd', target: '/etc/passwd' },
            { type: 'hardlink', path: 'copy', target: 'host-passwd' },
          ],
        },
      ],
    });
    await expect(extractMergedRootfs(img.ociRef, path.join(work, 'rootfs'))).rejects.toMatchObject({
      code: 'UNSAFE_PATH',
    });
  });
});

describe('extractMergedRootfs whiteouts never create or follow anything', () => {
  it('a whiteout of a missing path creates nothing; one below a symlink is refused', async () => {
    const work = await tempDir();
    const outside = path.join(work, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'victim'), 'untouched');
    const img = await buildOciImage(path.join(work, 'img'), {
      layers: [
        { entries: [{ type: 'symlink', path: 'escape', target: '../outside' }] },
        {
          entries: [
            { type: 'whiteout', path: 'no/such/dir/file' },
            { type: 'opaque', path: 'not/there' },
          ],
        },
        { entries: [{ type: 'whiteout', path: 'escape/victim' }] },
      ],
    });
    const dest = path.join(work, 'rootfs');
    await expect(extractMergedRootfs(img.ociRef, dest)).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
    expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('untouched');
    expect(await tree(dest)).toEqual(['escape']);
  });

  it('a hardlink to a missing target is a FORMAT error naming the link', async () => {
    const work = await tempDir();
    const img = await buildOciImage(path.join(work, 'img'), {
      layers: [{ entries: [{ type: 'hardlink', path: 'dir/link', target: 'nowhere/file' }] }],
    });
    await expect(extractMergedRootfs(img.ociRef, path.join(work, 'rootfs'))).rejects.toMatchObject({
      code: 'FORMAT',
      message: expect.stringMatching(/nowhere\/file.*does not exist.*"dir\/link"/),
    });
  });
});
