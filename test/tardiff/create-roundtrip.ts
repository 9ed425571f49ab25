/**
 * Round-trip harness for creator tests: builds a real old OCI image (test/helpers/images.ts), extracts
 * its merged root filesystem the way upstream tests prepare `--directory`, creates a tar-diff from
 * the old layer blobs (compressed, sniffed) to a new layer tar, applies it with the project's applier
 * over a DirectorySource, and checks every op with the reference checker.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { DirectorySource } from '../../src/image-source/directory.js';
import { extractMergedRootfs } from '../../src/image-source/rootfs-extract.js';
import { applyTarDiff } from '../../src/tardiff/apply.js';
import {
  createTarDiff,
  layerFile,
  type CreateTarDiffResult,
  type OldImageIndex,
  type TarDiffMode,
} from '../../src/tardiff/create/index.js';
import {
  buildLayerTar,
  buildOciImage,
  type BuiltImage,
  type LayerEntry,
  type LayerSpec,
} from '../helpers/images.js';
import { checkTarDiff, type CheckReport } from './create-checker.js';

const dirs: string[] = [];

export async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'odh-create-'));
  dirs.push(d);
  return d;
}

export async function cleanupTempDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

export interface OldImage {
  img: BuiltImage;
  rootfs: string;
  /** The layer blobs as stored in the layout (compressed), in manifest order. */
  blobPaths: string[];
}

export async function oldImage(layers: LayerSpec[]): Promise<OldImage> {
  const d = await tempDir();
  const img = await buildOciImage(path.join(d, 'old'), { layers });
  const rootfs = path.join(d, 'rootfs');
  await extractMergedRootfs(img.ociRef, rootfs);
  const blobPaths = img.layers.map((l) => path.join(img.layoutDir, 'blobs', 'sha256', l.digest.slice(7)));
  return { img, rootfs, blobPaths };
}

export interface RoundTrip {
  result: CreateTarDiffResult;
  delta: Buffer;
  report: CheckReport;
  newTar: Buffer;
}

/** Creates a tar-diff old → new, applies it, and asserts byte equality and a clean checker report. */
export async function roundTrip(
  old: OldImage,
  newEntries: LayerEntry[] | Buffer,
  mode: TarDiffMode,
  oldIndex?: OldImageIndex,
): Promise<RoundTrip> {
  const d = await tempDir();
  const newTar = Buffer.isBuffer(newEntries) ? newEntries : await buildLayerTar(newEntries);
  const newPath = path.join(d, 'new.tar');
  await writeFile(newPath, newTar);
  const out = path.join(d, 'out.tardiff');
  const result = await createTarDiff({
    ...(oldIndex ? { oldIndex } : { oldLayers: old.blobPaths.map(layerFile) }),
    newLayer: newPath,
    mode,
    tempDir: d,
    out,
  });
  const delta = await readFile(out);
  expect(result.bytes).toBe(delta.length);
  const report = checkTarDiff(delta, old.rootfs);
  expect(report.problems).toEqual([]);
  expect(report.version).toBe(mode === 'zstd' || mode === 'auto' ? 2 : 1);
  const h = createHash('sha256');
  const chunks: Buffer[] = [];
  await applyTarDiff(Readable.from([delta]), await DirectorySource.create(old.rootfs), async (c) => {
    h.update(c);
    chunks.push(Buffer.from(c));
  });
  const rebuilt = Buffer.concat(chunks);
  expect(rebuilt.length).toBe(newTar.length);
  expect(rebuilt.equals(newTar)).toBe(true);
  return { result, delta, report, newTar };
}
