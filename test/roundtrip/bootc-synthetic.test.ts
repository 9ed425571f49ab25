import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta } from '../../src/delta/apply.js';
import { extractMergedRootfs } from '../../src/image-source/oci-image.js';
import { buildDeltaArchive, makeLayerTarDiff, type FileRecipe } from '../helpers/delta-builder.js';
import {
  bootcLayerEntries,
  buildOciImage,
  flip64,
  ostreeObjectPath,
  type BuiltImage,
  syntheticLib,
} from '../helpers/images.js';
import { hasTool } from '../helpers/tools.js';

// spec oci-delta §8.4 test-synthetic, rebuilt in TS: bootc-like layers (ostree objects + usr/lib64
// hardlinks), an old image of 4 layers (L2 gzip level 1), a new image whose L1 is identical, L2 the
// same tar re-gzipped at level 9, and L3 the four updated libs (64 bytes flipped at 500/300/700/400).
// The delta's Open names are the usr/lib64 names, never sysroot/ostree (§3.1).

const lib = syntheticLib;
const UPDATES: Array<[string, number, FileRecipe['how']]> = [
  ['libc.so.6', 500, 'seek'],
  ['libssl.so.1', 300, 'add'],
  ['libz.so.1', 700, 'zstd'],
  ['liblzma.so.5', 400, 'add'],
];

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('bootc synthetic delta (spec oci-delta §8.4) applied from the old image and from its extracted rootfs', () => {
  let work: string;
  let oldImg: BuiltImage;
  let newImg: BuiltImage;
  let deltaPath: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'odh-bootc-'));
    dirs.push(work);
    const layers = [
      ['libc.so.6', 'libm.so.6'],
      ['libssl.so.1', 'libcrypto.so.1'],
      ['libz.so.1', 'libbz2.so.1'],
      ['liblzma.so.5', 'libpcre.so.3'],
    ].map((names) => bootcLayerEntries(names.map(lib)));
    oldImg = await buildOciImage(path.join(work, 'old'), {
      layers: [
        { entries: layers[0]! },
        { entries: layers[1]!, gzipLevel: 1 },
        { entries: layers[2]! },
        { entries: layers[3]! },
      ],
    });
    const updated = UPDATES.map(([name, at]) => ({ ...lib(name), content: flip64(lib(name).content, at) }));
    newImg = await buildOciImage(path.join(work, 'new'), {
      layers: [
        { entries: layers[0]! },
        { entries: layers[1]!, gzipLevel: 9 },
        { entries: bootcLayerEntries(updated) },
      ],
    });
    // the recipe is keyed by the new object path; the source is the old lib's usr/lib64 name
    const byObject = new Map<string, FileRecipe>();
    for (const [i, [name, , how]] of UPDATES.entries()) {
      byObject.set(ostreeObjectPath(updated[i]!.content), {
        source: `usr/lib64/${name}`,
        sourceBytes: lib(name).content,
        how,
      });
    }
    const newL3 = await readFile(newImg.layers[2]!.tarPath);
    const tarDiff = makeLayerTarDiff(newL3, (n) => byObject.get(n), 2);
    deltaPath = path.join(work, 'delta.tar');
    await buildDeltaArchive(deltaPath, {
      old: oldImg,
      new: newImg,
      layers: [{ kind: 'reused' }, { kind: 'reused' }, { kind: 'tar-diff', tarDiff }],
    });
  });

  it('has the shape test-synthetic asserts: L1 and L2 reused by diff_id, L2 blobs differ', () => {
    expect(newImg.diffIds.slice(0, 2)).toEqual(oldImg.diffIds.slice(0, 2));
    expect(newImg.layers[0]!.digest).toBe(oldImg.layers[0]!.digest);
    expect(newImg.layers[1]!.digest).not.toBe(oldImg.layers[1]!.digest);
  });

  for (const via of ['image', 'dir'] as const) {
    it(`reconstructs the new image's diff_ids with the source ${via === 'image' ? 'image' : 'directory'}`, async () => {
      const out = path.join(work, `out-${via}.tar`);
      let source: Parameters<typeof applyDelta>[0]['source'];
      if (via === 'image') source = { kind: 'image', ref: oldImg.archiveRef };
      else {
        const rootfs = path.join(work, 'rootfs');
        await extractMergedRootfs(oldImg.ociRef, rootfs);
        source = { kind: 'dir', path: rootfs };
      }
      const res = await applyDelta({
        delta: `oci-archive:${deltaPath}`,
        source,
        output: `oci-archive:${out}`,
      });
      expect(res.configDigest).toBe(newImg.configDigest);
      expect(res.layers.map((l) => l.kind)).toEqual(['reused', 'reused', 'tar-diff']);
      expect(res.layers.map((l) => l.diffId)).toEqual(newImg.diffIds);
      expect(res.layers[2]!.ops).toMatchObject({ Open: 4, ZstdDict: 1 });
    });
  }

  it.skipIf(!hasTool('skopeo', 'skopeo'))(
    'reconstructs a complete image skopeo can copy (--complete)',
    async () => {
      const out = path.join(work, 'out-complete.tar');
      await applyDelta({
        delta: `oci-archive:${deltaPath}`,
        source: { kind: 'image', ref: oldImg.ociRef },
        output: `oci-archive:${out}`,
        complete: true,
      });
      const cfg = JSON.parse(
        execFileSync('skopeo', ['inspect', '--config', `oci-archive:${out}`], { encoding: 'utf8' }),
      );
      expect(cfg.rootfs.diff_ids).toEqual(newImg.diffIds);
      execFileSync('skopeo', ['copy', '--quiet', `oci-archive:${out}`, `oci:${path.join(work, 'copied')}:x`]);
    },
  );
});
