import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectorySource } from '../../src/image-source/directory.js';
import {
  extractMergedRootfs,
  openOciImageSource,
  type OciImageSource,
} from '../../src/image-source/oci-image.js';
import { indexTarFile } from '../../src/tar/index.js';
import { applyTarDiff } from '../../src/tardiff/apply.js';
import { inspectTarDiff } from '../../src/tardiff/inspect.js';
import type { DataSource } from '../../src/tardiff/data-source.js';
import {
  bootcLayerEntries,
  buildLayerTar,
  buildOciImage,
  flip64,
  seededBytes,
  sha256Hex,
  type BuiltImage,
} from '../helpers/images.js';
import { TarDiffBuilder } from '../helpers/tardiff-builder.js';
import { hasTool } from '../helpers/tools.js';

// Round trip: a new layer is rebuilt from a hand-assembled tar-diff (every op kind) against the old
// image, through both data sources; the result must hash to the new layer's diff_id (spec oci-delta
// §4.1 step 6c). The old image mixes compressions, overwrites, whiteouts and a bootc layer (§8.4).

const LIBZ = seededBytes('libz', 5120);
const LIBC = seededBytes('libc', 8192);
const B1 = seededBytes('b1', 3000);
const B2 = seededBytes('b2', 3000);
const C = seededBytes('c', 20000);
const GONE = seededBytes('gone', 1000);

const NEW_LIBC = flip64(LIBC, 500);
const NEW_B = Buffer.from(B2.map((x, i) => (x + i * 7) & 0xff));
const NEW_C = Buffer.concat([flip64(C, 1000), Buffer.from('appended tail\n')]);
const NEW_FILE = Buffer.from('brand new\n');

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'odh-roundtrip-'));
  dirs.push(d);
  return d;
}

async function oldImage(dir: string): Promise<BuiltImage> {
  return buildOciImage(dir, {
    layers: [
      {
        compression: 'gzip',
        entries: bootcLayerEntries([
          { path: 'usr/lib64/libz.so.1', content: LIBZ },
          { path: 'usr/lib64/libc.so.6', content: LIBC },
        ]),
      },
      {
        compression: 'zstd',
        entries: [
          { type: 'dir', path: 'etc' },
          { type: 'file', path: 'etc/b', content: B1 },
          { type: 'file', path: 'etc/gone', content: GONE },
        ],
      },
      {
        compression: 'none',
        entries: [
          { type: 'file', path: 'etc/b', content: B2 },
          { type: 'whiteout', path: 'etc/gone' },
          { type: 'file', path: 'usr/lib/c', content: C },
        ],
      },
    ],
  });
}

/** The new layer tar and its tar-diff: each file's content comes from a different op. */
async function newLayerAndDiff(dir: string, withZstd: boolean) {
  const tar = await buildLayerTar([
    { type: 'dir', path: 'usr' },
    { type: 'file', path: 'usr/lib64/libz.so.1', content: LIBZ },
    { type: 'file', path: 'usr/lib64/libc.so.6', content: NEW_LIBC },
    { type: 'hardlink', path: 'usr/lib64/libc-alias', target: 'usr/lib64/libc.so.6' },
    { type: 'file', path: 'etc/b', content: NEW_B },
    { type: 'file', path: 'usr/lib/c', content: withZstd ? NEW_C : C },
    { type: 'file', path: 'usr/share/new', content: NEW_FILE },
  ]);
  const tarPath = path.join(dir, 'new.tar');
  await writeFile(tarPath, tar);
  const b = new TarDiffBuilder();
  let pos = 0;
  for (const e of await indexTarFile(tarPath)) {
    const start = Number(e.dataOffset);
    b.data(tar.subarray(pos, start)); // header blocks and the previous entry's padding
    pos = start + Number(e.size);
    switch (e.path.toString()) {
      case 'usr/lib64/libz.so.1': // identical: Open + Copy
        b.open('usr/lib64/libz.so.1').copy(LIBZ.length);
        break;
      case 'usr/lib64/libc.so.6': // 64 flipped bytes: Copy, Data, Seek, Copy
        b.open('./usr//lib64/libc.so.6')
          .copy(500)
          .data(NEW_LIBC.subarray(500, 564))
          .seek(564)
          .copy(LIBC.length - 564);
        break;
      case 'etc/b': // same size, every byte changed: AddData against the newest etc/b
        b.open('/etc/../etc/b').seek(0).addDataFor(NEW_B, B2);
        break;
      case 'usr/lib/c':
        if (withZstd) b.open('usr/lib/c').seek(123).zstdDictFor(NEW_C, C);
        else b.open('../usr/lib/c').copy(C.length);
        break;
      case 'usr/share/new':
        b.data(NEW_FILE);
        break;
      default:
        expect(e.size).toBe(0n);
    }
  }
  b.data(tar.subarray(pos));
  return { tar, diffId: `sha256:${sha256Hex(tar)}`, delta: b.build() };
}

async function applyToHash(
  delta: Buffer,
  source: DataSource,
): Promise<{ diffId: string; ops: Record<string, number> }> {
  const h = createHash('sha256');
  const r = await applyTarDiff(Readable.from([delta]), source, async (c) => void h.update(c));
  return { diffId: `sha256:${h.digest('hex')}`, ops: r.ops };
}

describe('tar-diff round trip against both old-image sources', () => {
  let img: BuiltImage;
  let rootfs: string;
  beforeAll(async () => {
    const d = await tempDir();
    img = await oldImage(path.join(d, 'old'));
    rootfs = path.join(d, 'rootfs');
    await extractMergedRootfs(img.archiveRef, rootfs);
  });

  for (const withZstd of [false, true]) {
    it.skipIf(withZstd && !hasTool('zstd', 'zstd'))(
      `reproduces the new layer's diff_id (${withZstd ? 'v2 with ZstdDict' : 'v1'})`,
      async () => {
        const d = await tempDir();
        const { diffId, delta } = await newLayerAndDiff(d, withZstd);
        expect(delta.subarray(0, 8).toString('latin1')).toBe(withZstd ? 'tardf2\n\0' : 'tardf1\n\0');
        const needed = new Set((await inspectTarDiff(Readable.from([delta]))).sources);
        expect([...needed].sort()).toEqual([
          'etc/b',
          'usr/lib/c',
          'usr/lib64/libc.so.6',
          'usr/lib64/libz.so.1',
        ]);

        const ociSource: OciImageSource = await openOciImageSource(img.ociRef, needed, { tempDir: d });
        try {
          const viaImage = await applyToHash(delta, ociSource);
          expect(viaImage.diffId).toBe(diffId);
          expect(viaImage.ops).toMatchObject({
            Open: 4,
            Copy: withZstd ? 3 : 4,
            AddData: 1,
            Seek: withZstd ? 3 : 2,
          });
          expect(viaImage.ops.ZstdDict).toBe(withZstd ? 1 : 0);
        } finally {
          await ociSource.cleanup();
        }
        const viaDir = await applyToHash(delta, await DirectorySource.create(rootfs));
        expect(viaDir.diffId).toBe(diffId);
      },
    );
  }

  it('fails with NOT_FOUND naming a whited-out source in both sources', async () => {
    const d = await tempDir();
    const delta = new TarDiffBuilder().open('etc/gone').copy(10).build();
    const src = await openOciImageSource(img.archiveRef, new Set(['etc/gone']), { tempDir: d });
    try {
      await expect(applyToHash(delta, src)).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: expect.stringContaining('"etc/gone"'),
      });
    } finally {
      await src.cleanup();
    }
    await expect(applyToHash(delta, await DirectorySource.create(rootfs))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    // the whited-out bytes really were in the old image
    expect((await readFile(img.layers[1]!.tarPath)).includes(GONE)).toBe(true);
  });
});
