import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta } from '../../src/delta/apply.js';
import { createDelta } from '../../src/delta/create.js';
import { extractMergedRootfs } from '../../src/image-source/oci-image.js';
import { buildOciImage } from '../helpers/images.js';
import { buildScenario, outputDiffIds, type Scenario } from './create-scenario.js';
import { xorByte } from '../helpers/must.js';

// spec oci-delta §5.1 then §4.1: a delta made by createDelta, applied from the old image and from
// its extracted rootfs, rebuilds every layer with the new image's diff_id. The diff_ids are
// recomputed here from the output blobs with node zlib / zstd-napi, not taken from the applier.

let work: string;
let sc: Scenario;
let rootfs: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'odh-create-rt-'));
  sc = await buildScenario(work);
  rootfs = path.join(work, 'rootfs');
  await extractMergedRootfs(sc.old.ociRef, rootfs);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('create → apply round trip (spec oci-delta §5.1, §4.1)', () => {
  for (const mode of ['zstd', 'copy'] as const) {
    describe(`--binary-diff ${mode}`, () => {
      let delta: string;
      beforeAll(async () => {
        delta = path.join(work, `delta-${mode}`);
        const r = await createDelta({
          old: sc.old.ociRef,
          new: sc.new.archiveRef,
          output: `oci:${delta}`,
          binaryDiff: mode,
          jobs: 3,
          tempDir: work,
        });
        expect(r.layers.map((l) => l.kind).slice(0, 2)).toEqual(['reused', 'reused']);
        if (mode === 'zstd') expect(r.layers.map((l) => l.kind)).toEqual(sc.expectedKinds);
        for (const l of r.layers.filter((x) => x.kind === 'tar-diff')) {
          expect(l.version).toBe(mode === 'zstd' ? 2 : 1);
          if (mode === 'copy') expect(l.ops?.ZstdDict ?? 0).toBe(0);
        }
      });

      it('rebuilds the new image from the old image (--source-image, --complete)', async () => {
        const out = path.join(work, `out-${mode}-image`);
        const res = await applyDelta({
          delta: `oci:${delta}`,
          source: { kind: 'image', ref: sc.old.archiveRef },
          output: `oci:${out}`,
          complete: true,
        });
        expect(res.configDigest).toBe(sc.new.configDigest);
        expect(await outputDiffIds(out)).toEqual(sc.new.diffIds);
      });

      it('rebuilds the changed layers from the extracted rootfs (--source-dir)', async () => {
        const out = path.join(work, `out-${mode}-dir`);
        await applyDelta({
          delta: `oci:${delta}`,
          source: { kind: 'dir', path: rootfs },
          output: `oci:${out}`,
        });
        expect(await outputDiffIds(out)).toEqual([undefined, undefined, ...sc.new.diffIds.slice(2)]);
      });
    });
  }

  it('reuses every layer of identical images (no layer blob, empty processing)', async () => {
    const out = path.join(work, 'delta-same.tar');
    const r = await createDelta({ old: sc.new.ociRef, new: sc.new.archiveRef, output: out, tempDir: work });
    expect(r.layers.every((l) => l.kind === 'reused')).toBe(true);
    expect(r.stats).toMatchObject({
      processedLayers: 0,
      skippedLayers: 5,
      processedLayerBytes: 0,
      bytesSaved: 0,
    });
    const applied = await applyDelta({
      delta: out,
      source: { kind: 'image', ref: sc.new.ociRef },
      output: `oci:${path.join(work, 'out-same')}`,
      complete: true,
    });
    expect(applied.layers.map((l) => l.diffId)).toEqual(sc.new.diffIds);
  });

  it('labels a stored zstd original with its own media type on request, and applies it', async () => {
    // Tiny layers (gzip, then zstd): no tar-diff beats them (spec §1.4 edge case for the zstd one).
    const img = await buildOciImage(path.join(work, 'zstd-orig'), {
      layers: [
        { entries: [{ type: 'file', path: 'a', content: 'a' }] },
        { entries: [{ type: 'file', path: 'b', content: 'b' }], compression: 'zstd' },
      ],
    });
    for (const how of ['upstream', 'target'] as const) {
      const out = path.join(work, `delta-zstd-orig-${how}`);
      const r = await createDelta({
        old: sc.old.ociRef,
        new: img.ociRef,
        output: `oci:${out}`,
        originalMediaType: how,
        tempDir: work,
      });
      expect(r.layers.map((l) => l.kind)).toEqual(['original', 'original']);
      expect(r.layers[1]!.mediaType).toBe(
        how === 'upstream'
          ? 'application/vnd.oci.image.layer.v1.tar+gzip'
          : 'application/vnd.oci.image.layer.v1.tar+zstd',
      );
      const applied = `oci:${path.join(work, `out-zstd-orig-${how}`)}`;
      const res = await applyDelta({
        delta: `oci:${out}`,
        source: { kind: 'dir', path: rootfs },
        output: applied,
      });
      expect(res.layers.map((l) => l.kind)).toEqual(['original', 'original']);
      expect(await outputDiffIds(applied.slice(4))).toEqual(img.diffIds);
    }
  });

  it('fails on a corrupted new layer blob, leaving no output and no temp files', async () => {
    const bad = await buildOciImage(path.join(work, 'bad'), {
      layers: [{ entries: [{ type: 'file', path: 'etc/x', content: 'x'.repeat(5000) }] }],
    });
    const blob = path.join(bad.layoutDir, 'blobs', 'sha256', bad.layers[0]!.digest.slice(7));
    const bytes = await readFile(blob);
    xorByte(bytes, bytes.length - 9, 0xff);
    await writeFile(blob, bytes);
    const out = path.join(work, 'delta-bad.tar');
    const before = await readdir(work);
    await expect(
      createDelta({ old: sc.old.ociRef, new: bad.ociRef, output: out, tempDir: work }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/DIGEST_MISMATCH|FORMAT|TRUNCATED/) });
    expect(existsSync(out)).toBe(false);
    expect(await readdir(work)).toEqual(before);
  });

  it('fails on a corrupted old layer during source analysis, leaving no output and no temp files', async () => {
    const bad = await buildOciImage(path.join(work, 'bad-old'), {
      layers: [{ entries: [{ type: 'file', path: 'etc/app.conf', content: 'y'.repeat(50_000) }] }],
    });
    const blob = path.join(bad.layoutDir, 'blobs', 'sha256', bad.layers[0]!.digest.slice(7));
    const bytes = await readFile(blob);
    xorByte(bytes, 20, 0xff);
    await writeFile(blob, bytes);
    const out = path.join(work, 'delta-bad-old.tar');
    const before = await readdir(work);
    await expect(
      createDelta({ old: bad.ociRef, new: sc.new.ociRef, output: out, tempDir: work }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/DIGEST_MISMATCH|FORMAT|TRUNCATED/) });
    expect(existsSync(out)).toBe(false);
    expect(await readdir(work)).toEqual(before);
  });

  it('carries a new-only layer listed twice in the new manifest once, and rebuilds both', async () => {
    const twice = { entries: [{ type: 'file' as const, path: 'etc/app.conf', content: 'z'.repeat(30_000) }] };
    const img = await buildOciImage(path.join(work, 'twice'), { layers: [twice, twice] });
    expect(img.layers[0]!.digest).toBe(img.layers[1]!.digest);
    const out = path.join(work, 'delta-twice');
    const r = await createDelta({ old: sc.old.ociRef, new: img.ociRef, output: `oci:${out}`, tempDir: work });
    expect(r.stats.processedLayers).toBe(1);
    expect(r.layers.map((l) => l.kind)).toEqual([r.layers[0]!.kind, r.layers[0]!.kind]);
    const applied = path.join(work, 'out-twice');
    await applyDelta({
      delta: `oci:${out}`,
      source: { kind: 'dir', path: rootfs },
      output: `oci:${applied}`,
    });
    expect(await outputDiffIds(applied)).toEqual(img.diffIds);
  });

  it('refuses an existing output before doing any work', async () => {
    const out = path.join(work, 'exists.tar');
    await writeFile(out, 'keep');
    await expect(createDelta({ old: sc.old.ociRef, new: sc.new.ociRef, output: out })).rejects.toMatchObject({
      code: 'EXISTS',
    });
    expect(await readFile(out, 'utf8')).toBe('keep');
  });
});
