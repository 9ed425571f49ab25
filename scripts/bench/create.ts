import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createDelta } from '../../src/delta/create.js';
import { decompressSniffed } from '../../src/oci/compression.js';
import { openImage } from '../../src/oci/image.js';
import { buildFixture, defaultCacheDir } from '../../fixtures/build.js';
import { sh, timed } from './measure.js';

/** The fixtures the size goal is measured on: bootc-style chunks and a package update. */
const PAIRS = ['bootc-chunked', 'package-update'];
/** Our tar-diffs' zstd level (outer stream and ZstdDict patches), used for the baseline too. */
const LEVEL = 3;

/** Decompresses the image's layers `indexes` (in order) into `file`, concatenated. */
async function layerTars(ref: string, indexes: number[], file: string): Promise<void> {
  const img = await openImage(ref);
  try {
    await fs.writeFile(file, '');
    for (const i of indexes) {
      await pipeline(
        await img.reader.openBlob(img.manifest.layers[i]!),
        decompressSniffed(),
        createWriteStream(file, { flags: 'a' }),
      );
    }
  } finally {
    await img.reader.close();
  }
}

/**
 * Delta size against the floor `zstd --long=27 --patch-from=<old layer tars concatenated> <new
 * layer tar>` (system zstd, same level, same run), summed over the layers the delta carries, with
 * create's wall time. Goal: our layer blobs ≤ 1.1 × the baseline.
 */
export async function benchCreate(work: string): Promise<void> {
  const dir = path.join(work, 'create');
  await fs.mkdir(dir, { recursive: true });
  for (const name of PAIRS) {
    const fx = await buildFixture(name, defaultCacheDir());
    const out = path.join(dir, `${name}.delta.tar`);
    const { seconds, value: r } = await timed(() =>
      createDelta({ old: fx.old.ref, new: fx.new.ref, output: out, binaryDiff: 'zstd', tempDir: dir }),
    );
    const oldCat = path.join(dir, `${name}.old.tar`);
    await layerTars(
      fx.old.ref,
      fx.old.layers.map((_, i) => i),
      oldCat,
    );
    let baseline = 0;
    let baselineSeconds = 0;
    const carried = r.layers.filter((l) => l.kind !== 'reused');
    for (const l of carried) {
      const tar = path.join(dir, `${name}.new-${l.index}.tar`);
      await layerTars(fx.new.ref, [l.index], tar);
      const z = `${tar}.zst`;
      const run = await sh(`zstd -q -f -${LEVEL} --long=27 --patch-from=${oldCat} ${tar} -o ${z}`);
      baselineSeconds += run.seconds;
      baseline += (await fs.stat(z)).size;
      await fs.rm(tar);
      await fs.rm(z);
    }
    await fs.rm(oldCat);
    await fs.rm(out);
    const ours = r.stats.tarDiffLayerBytes + r.stats.originalLayerBytes;
    const ratio = baseline > 0 ? ours / baseline : 1;
    process.stdout.write(
      `create ${name}: ${carried.length} layer(s) carried, layer blobs ${ours} B (artifact ${r.deltaBytes} B), ` +
        `zstd -${LEVEL} --long=27 --patch-from baseline ${baseline} B, ratio ${ratio.toFixed(2)}× ` +
        `(goal ≤ 1.10×: ${ratio <= 1.1 ? 'meets' : 'ABOVE'}); create ${seconds.toFixed(2)} s, ` +
        `baseline ${baselineSeconds.toFixed(2)} s\n`,
    );
  }
}
