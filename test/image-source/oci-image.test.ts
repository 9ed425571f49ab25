import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openOciImageSource, type OciImageSource } from '../../src/image-source/oci-image.js';
import type { DataSource } from '../../src/tardiff/data-source.js';
import {
  bootcLayerEntries,
  buildLayerTar,
  buildOciImage,
  ostreeObjectPath,
  seededBytes,
  type ImageSpec,
} from '../helpers/images.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'odh-ocisrc-'));
  dirs.push(d);
  return d;
}

async function readAll(src: DataSource, name: string): Promise<Buffer> {
  const f = await src.open(Buffer.from(name));
  try {
    const buf = Buffer.alloc(f.size);
    let got = 0;
    while (got < f.size) {
      const n = await f.readAt(buf, got, f.size - got, got);
      if (n === 0) break;
      got += n;
    }
    expect(got).toBe(f.size);
    expect(await f.readAt(Buffer.alloc(1), 0, 1, f.size)).toBe(0);
    return buf;
  } finally {
    await f.close();
  }
}

const A = seededBytes('a', 3000);
const B1 = seededBytes('b1', 700);
const B2 = seededBytes('b2', 900);
const C = seededBytes('c', 5000);

/** Three layers, one per compression, with overwrites, plain, directory and opaque whiteouts. */
const layered: ImageSpec = {
  layers: [
    {
      compression: 'gzip',
      entries: [
        { type: 'dir', path: 'etc' },
        { type: 'file', path: 'etc/a', content: A },
        { type: 'file', path: 'etc/b', content: B1 },
        { type: 'file', path: 'etc/gone', content: 'gone' },
        { type: 'file', path: 'opt/sub/x', content: 'x-lower' },
        { type: 'file', path: 'boot/.kernel/v/.vmlinuz.hmac', content: 'hmac' },
        { type: 'file', path: 'boot/.kernel-old/keep', content: 'keep' },
        { type: 'file', path: 'etc/shadow', content: 'secret', mode: 0o600 },
        { type: 'file', path: 'etc/empty', content: '' },
      ],
    },
    {
      compression: 'zstd',
      entries: [
        { type: 'file', path: 'etc/b', content: B2 },
        { type: 'whiteout', path: 'etc/gone' },
        { type: 'whiteout', path: 'boot/.kernel' },
        { type: 'opaque', path: 'opt' },
        { type: 'file', path: 'opt/new', content: 'opt-new' },
      ],
    },
    {
      compression: 'none',
      entries: [{ type: 'file', path: 'usr/lib/c', content: C, pax: { 'SCHILY.xattr.user.k': 'v' } }],
    },
  ],
};

describe('OCI image data source (spec oci-delta §3.1, §5.2)', () => {
  let shared: OciImageSource | undefined;
  afterAll(async () => shared?.cleanup());

  it('serves the merged view of gzip, zstd and uncompressed layers', async () => {
    const img = await buildOciImage(await tempDir(), layered);
    for (const ref of [img.ociRef, img.archiveRef]) {
      const src = await openOciImageSource(ref, 'all', { tempDir: await tempDir() });
      shared = src;
      expect(src.configDigest).toBe(img.configDigest);
      expect(await readAll(src, 'etc/a')).toEqual(A);
      expect(await readAll(src, 'etc/b')).toEqual(B2);
      expect(await readAll(src, 'usr/lib/c')).toEqual(C);
      expect((await readAll(src, 'opt/new')).toString()).toBe('opt-new');
      expect((await readAll(src, 'boot/.kernel-old/keep')).toString()).toBe('keep');
      for (const gone of [
        'etc/gone',
        'opt/sub/x',
        'boot/.kernel/v/.vmlinuz.hmac',
        'etc/shadow',
        'etc/empty',
      ]) {
        await expect(src.open(Buffer.from(gone)), gone).rejects.toMatchObject({
          code: 'NOT_FOUND',
          message: expect.stringContaining(JSON.stringify(gone)),
        });
      }
      await src.cleanup();
      await expect(stat(src.storeDir)).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('stores only the needed names: temp disk is bounded by the referenced bytes', async () => {
    const many = Array.from({ length: 40 }, (_, i) => ({
      type: 'file' as const,
      path: `data/f${i}`,
      content: seededBytes(`f${i}`, 4096 + i),
    }));
    const img = await buildOciImage(await tempDir(), {
      layers: [
        { entries: many },
        { compression: 'zstd', entries: [{ type: 'file', path: 'data/f3', content: 'newer' }] },
      ],
    });
    const progress: number[] = [];
    const src = await openOciImageSource(img.ociRef, new Set(['data/f7', 'data/f3', 'not/there']), {
      tempDir: await tempDir(),
      onProgress: (p) => progress.push(p.storedFiles),
    });
    try {
      const files = await readdir(src.storeDir);
      expect(files).toHaveLength(2);
      const sizes = await Promise.all(files.map(async (f) => (await stat(path.join(src.storeDir, f))).size));
      expect(sizes.reduce((a, b) => a + b)).toBe(4096 + 7 + 'newer'.length);
      // after layer 1 both f3 and f7 were stored; layer 2 replaced f3 (old copy pruned, new stored)
      expect(progress).toEqual([2, 2]);
      expect((await readAll(src, 'data/f3')).toString()).toBe('newer');
      expect(await readAll(src, 'data/f7')).toEqual(many[7]!.content);
      await expect(src.open(Buffer.from('data/f8'))).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: expect.stringMatching(/not collected.*data\/f8/),
      });
    } finally {
      await src.cleanup();
    }
  });

  it('names bootc files by their usr/ hardlink, never by sysroot/ostree, sharing one stored copy', async () => {
    const libz = seededBytes('libz', 5120);
    const libc = seededBytes('libc', 8192);
    const entries = bootcLayerEntries([
      { path: 'usr/lib64/libz.so.1', content: libz },
      { path: 'usr/lib64/libc.so.6', content: libc },
    ]);
    entries.push({ type: 'hardlink', path: 'usr/lib64/libz-alias.so', target: ostreeObjectPath(libz) });
    const img = await buildOciImage(await tempDir(), { layers: [{ entries }] });
    const src = await openOciImageSource(
      img.archiveRef,
      new Set(['usr/lib64/libz.so.1', 'usr/lib64/libz-alias.so']),
      {
        tempDir: await tempDir(),
      },
    );
    try {
      expect(await readAll(src, 'usr/lib64/libz.so.1')).toEqual(libz);
      expect(await readAll(src, 'usr/lib64/libz-alias.so')).toEqual(libz);
      expect(await readdir(src.storeDir)).toHaveLength(1);
      await expect(src.open(Buffer.from(ostreeObjectPath(libz)))).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    } finally {
      await src.cleanup();
    }
    const all = await openOciImageSource(img.ociRef, 'all', { tempDir: await tempDir() });
    try {
      expect(await readAll(all, 'usr/lib64/libc.so.6')).toEqual(libc);
      await expect(all.open(Buffer.from(ostreeObjectPath(libc)))).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    } finally {
      await all.cleanup();
    }
  });

  it('cleans hostile member names and never writes outside its temp dir', async () => {
    const work = await tempDir();
    const img = await buildOciImage(path.join(work, 'img'), {
      layers: [
        {
          entries: [
            { type: 'file', path: '../../etc/passwd', content: 'not the host passwd' },
            { type: 'file', path: '/abs/file', content: 'abs' },
            { type: 'symlink', path: 'escape', target: '../../../..' },
            { type: 'file', path: 'escape/pwned', content: 'pwned' },
            { type: 'file', path: '..', content: 'dots' },
          ],
        },
      ],
    });
    const parent = path.join(work, 'tmp');
    await mkdir(parent);
    await writeFile(path.join(work, 'marker'), 'm');
    const before = (await readdir(work)).sort();
    const src = await openOciImageSource(img.ociRef, 'all', { tempDir: parent });
    try {
      expect((await readAll(src, 'etc/passwd')).toString()).toBe('not the host passwd');
      expect((await readAll(src, 'abs/file')).toString()).toBe('abs');
      // served by name; the symlink is never followed to reach it
      expect((await readAll(src, 'escape/pwned')).toString()).toBe('pwned');
      expect(await readdir(parent)).toEqual([path.basename(src.storeDir)]);
      for (const f of await readdir(src.storeDir)) expect(f).toMatch(/^L\d+-E\d+$/);
      expect((await readdir(work)).sort()).toEqual(before);
      expect((await readFile('/etc/passwd', 'utf8')).includes('not the host passwd')).toBe(false);
    } finally {
      await src.cleanup();
    }
  });

  it('checks each layer blob digest and removes its store on failure', async () => {
    const img = await buildOciImage(await tempDir(), {
      layers: [{ compression: 'none', entries: [{ type: 'file', path: 'a', content: A }] }],
    });
    const blob = path.join(img.layoutDir, 'blobs', 'sha256', img.layers[0]!.digest.slice(7));
    const bytes = await readFile(blob);
    bytes[1024] = bytes[1024]! ^ 0xff; // inside the content of `a`
    await writeFile(blob, bytes);
    const parent = await tempDir();
    await expect(openOciImageSource(img.ociRef, 'all', { tempDir: parent })).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    expect(await readdir(parent)).toEqual([]);
  });

  it('checks each layer diff_id against the config', async () => {
    const img = await buildOciImage(await tempDir(), {
      layers: [{ entries: [{ type: 'file', path: 'a', content: A }] }],
    });
    const manifest = JSON.parse(img.manifestBytes.toString());
    const wrong = `sha256:${'0'.repeat(64)}`;
    const config = Buffer.from(
      JSON.stringify({
        ...JSON.parse(img.configBytes.toString()),
        rootfs: { type: 'layers', diff_ids: [wrong] },
      }),
    );
    const blobs = {
      manifestBytes: img.manifestBytes,
      readBlob: async () => config,
      openBlob: async (d: { digest: string }) =>
        createReadStream(path.join(img.layoutDir, 'blobs', 'sha256', d.digest.slice(7))),
    };
    expect(manifest.layers).toHaveLength(1);
    await expect(openOciImageSource(blobs, 'all', { tempDir: await tempDir() })).rejects.toMatchObject({
      code: 'DIFF_ID_MISMATCH',
      message: expect.stringContaining(wrong),
    });
    const twoIds = Buffer.from(
      JSON.stringify({ rootfs: { type: 'layers', diff_ids: [img.diffIds[0], wrong] } }),
    );
    await expect(
      openOciImageSource({ ...blobs, readBlob: async () => twoIds }, 'all', { tempDir: await tempDir() }),
    ).rejects.toMatchObject({ code: 'FORMAT' });
  });
});

describe('OCI image data source on hostile layers', () => {
  async function failsCleanly(spec: ImageSpec, code: string, transform?: (blob: Buffer) => Buffer) {
    const img = await buildOciImage(await tempDir(), spec);
    if (transform) {
      const blob = path.join(img.layoutDir, 'blobs', 'sha256', img.layers[0]!.digest.slice(7));
      await writeFile(blob, transform(await readFile(blob)));
    }
    const parent = await tempDir();
    await expect(openOciImageSource(img.ociRef, 'all', { tempDir: parent })).rejects.toMatchObject({
      code,
      message: expect.stringContaining(img.layers[0]!.digest),
    });
    expect(await readdir(parent)).toEqual([]);
  }
  const tar = (s: string) => Buffer.from(s.padEnd(1024, '\0'));

  it('refuses a layer that is not a tar (bad header checksum)', async () => {
    await failsCleanly({ layers: [{ entries: [], rawTar: tar('this is not a tar header') }] }, 'FORMAT');
  });

  it('refuses a tar cut inside a file', async () => {
    const whole = seededBytes('cut', 5000);
    const full = await buildLayerTar([{ type: 'file', path: 'f', content: whole }]);
    await failsCleanly(
      { layers: [{ entries: [], rawTar: full.subarray(0, 2048), compression: 'zstd' }] },
      'TRUNCATED',
    );
  });

  it('refuses a truncated gzip blob (the digest no longer matches either)', async () => {
    await failsCleanly(
      { layers: [{ entries: [{ type: 'file', path: 'f', content: seededBytes('gz', 9000) }] }] },
      'DIGEST_MISMATCH',
      (b) => b.subarray(0, b.length >> 1),
    );
  });
});
