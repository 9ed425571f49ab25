/**
 * Our tar-diff creator next to Go containers/tar-diff (the `tar-diff` oracle, v0.1.2) on the same
 * tars: sizes, wall time and peak RSS per mode, each run as its own process, interleaved per layer
 * (Go, then our modes) in the same run. Every delta of ours is applied back (our applier; tardf1 also
 * by Go `tar-patch`) and compared with the new layer tar byte for byte. Used by `npm run bench` and
 * by the size test on the fixture catalog.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { findOracle } from '../../harness/oracles.js';
import { decompressSniffed } from '../../src/oci/compression.js';
import { openImage } from '../../src/oci/image.js';
import { extractMergedRootfs } from '../../src/image-source/rootfs-extract.js';
import { DirectorySource } from '../../src/image-source/directory.js';
import { applyTarDiff } from '../../src/tardiff/apply.js';
import type { TarDiffMode } from '../../src/tardiff/create/index.js';
import { sh } from './measure.js';

/** The built CLI, from the source tree (tests) or from dist/ (bench). */
function odhPath(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return path.join(dir, 'dist', 'bin', 'odh.js');
}
const ODH = odhPath();

export interface Run {
  bytes: number;
  seconds: number;
  maxRssKiB: number;
}

export interface LayerComparison {
  layer: number;
  newTarBytes: number;
  go: Run;
  ours: Partial<Record<TarDiffMode, Run>>;
  /**
   * The floor: `zstd -19 --long=27 --patch-from=<old merged tar> <new tar>` (system zstd), what a
   * whole-tar dictionary compressor reaches without any tar-diff structure.
   */
  patchFrom: number;
}

export interface TarSet {
  /** Old layer tars (uncompressed) in extraction order. */
  oldTars: string[];
  /**
   * The old image's merged root filesystem as one tar (Go tar-diff 0.1.2 takes one old tar and
   * knows no whiteouts), so both creators see exactly the files an applier's source has.
   */
  oldCombined: string;
  /** The old image's merged root filesystem, extracted (for applying). */
  rootfs: string;
  /** New-only layer tars: target manifest position → uncompressed tar. */
  newTars: Map<number, string>;
}

async function dumpLayer(ref: string, index: number, file: string): Promise<void> {
  const img = await openImage(ref);
  try {
    await pipeline(
      await img.reader.openBlob(img.manifest.layers[index]!),
      decompressSniffed(),
      createWriteStream(file),
    );
  } finally {
    await img.reader.close();
  }
}

/** The tars of an image pair: old layers, their concatenation, the rootfs, the new-only layers. */
export async function pairTars(oldRef: string, newRef: string, dir: string): Promise<TarSet> {
  await fs.mkdir(dir, { recursive: true });
  const oldImg = await openImage(oldRef);
  const newImg = await openImage(newRef);
  const oldIds = new Set(oldImg.config.rootfs.diff_ids);
  const oldCount = oldImg.manifest.layers.length;
  const newIds = newImg.config.rootfs.diff_ids;
  await oldImg.reader.close();
  await newImg.reader.close();
  const oldTars: string[] = [];
  for (let i = 0; i < oldCount; i++) {
    const f = path.join(dir, `old-${i}.tar`);
    await dumpLayer(oldRef, i, f);
    oldTars.push(f);
  }
  const rootfs = path.join(dir, 'rootfs');
  await extractMergedRootfs(oldRef, rootfs);
  const oldCombined = path.join(dir, 'old-merged.tar');
  await sh(`tar -C '${rootfs}' -cf '${oldCombined}' --sort=name --transform 's,^\\./,,' .`);
  const newTars = new Map<number, string>();
  for (const [i, id] of newIds.entries()) {
    if (oldIds.has(id) || [...newTars.keys()].some((j) => newIds[j] === id)) continue;
    const f = path.join(dir, `new-${i}.tar`);
    await dumpLayer(newRef, i, f);
    newTars.set(i, f);
  }
  return { oldTars, oldCombined, rootfs, newTars };
}

async function runMeasured(command: string, out: string): Promise<Run> {
  const r = await sh(command);
  return { bytes: (await fs.stat(out)).size, seconds: r.seconds, maxRssKiB: r.maxRssKiB };
}

/** Applies `delta` with our applier over `rootfs`; throws unless it rebuilds `newTar` exactly. */
export async function checkOurs(delta: string, rootfs: string, newTar: string): Promise<void> {
  const h = createHash('sha256');
  await applyTarDiff(
    Readable.from([await fs.readFile(delta)]),
    await DirectorySource.create(rootfs),
    async (c) => {
      h.update(c);
    },
  );
  const want = createHash('sha256')
    .update(await fs.readFile(newTar))
    .digest('hex');
  const got = h.digest('hex');
  if (got !== want) throw new Error(`our applier rebuilt ${got}, want ${want} (${delta})`);
}

/** Applies a tardf1 `delta` with Go tar-patch; throws unless it rebuilds `newTar` exactly. */
export async function checkGo(delta: string, rootfs: string, newTar: string): Promise<void> {
  const tarPatch = findOracle('tar-patch');
  if (!tarPatch.available) throw new Error(tarPatch.reason);
  const out = `${delta}.go-patched.tar`;
  await sh(`'${tarPatch.path}' '${delta}' '${rootfs}' '${out}'`);
  const same = (await fs.readFile(out)).equals(await fs.readFile(newTar));
  await fs.rm(out);
  if (!same) throw new Error(`Go tar-patch did not rebuild the new tar from ${delta}`);
}

/**
 * For each new-only layer: Go tar-diff, then our `modes` (CLI processes, so time and RSS are
 * comparable), each of ours applied back (and tardf1 by Go tar-patch too).
 */
export async function compareWithGo(
  set: TarSet,
  modes: TarDiffMode[],
  dir: string,
): Promise<LayerComparison[]> {
  const goBin = findOracle('tar-diff');
  if (!goBin.available) throw new Error(goBin.reason);
  const olds = set.oldTars.map((t) => `'${t}'`).join(' ');
  const out: LayerComparison[] = [];
  for (const [layer, newTar] of set.newTars) {
    const goOut = path.join(dir, `go-${layer}.tardiff`);
    const c: LayerComparison = {
      layer,
      newTarBytes: (await fs.stat(newTar)).size,
      go: await runMeasured(`'${goBin.path}' '${set.oldCombined}' '${newTar}' '${goOut}'`, goOut),
      ours: {},
      patchFrom: 0,
    };
    const pf = path.join(dir, `patch-from-${layer}.zst`);
    await sh(`zstd -q -f -19 --long=27 --patch-from='${set.oldCombined}' '${newTar}' -o '${pf}'`);
    c.patchFrom = (await fs.stat(pf)).size;
    await fs.rm(pf);
    for (const mode of modes) {
      const o = path.join(dir, `ours-${layer}-${mode}.tardiff`);
      c.ours[mode] = await runMeasured(
        `node '${ODH}' tar-diff -q -f --binary-diff ${mode} --tmp-dir '${dir}' ${olds} '${newTar}' '${o}'`,
        o,
      );
      await checkOurs(o, set.rootfs, newTar);
      if (mode === 'bsdiff' || mode === 'copy') await checkGo(o, set.rootfs, newTar);
      await fs.rm(o);
    }
    await fs.rm(goOut);
    out.push(c);
  }
  return out;
}
