/**
 * What "conformant" means for one applier output: its layers' diff_ids, recomputed from the blobs
 * it holds, equal the new image's (spec oci-delta §4.1: only diff_ids and the config are preserved),
 * and its composefs image ID equals the new image's (spec composefs-v2 §5), flavour by flavour.
 * The ground truth is computed from the NEW image itself, then cross-checked with expected.json.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ComposefsPins, PairPins } from '../../fixtures/expected.js';
import { composefsImageId } from '../../src/composefs/oci/image-id.js';
import { decompressSniffed } from '../../src/oci/compression.js';
import { DigestHasher, parseDigest } from '../../src/oci/digest.js';
import { openImage } from '../../src/oci/image.js';
import { flavourKey, type Flavour } from './types.js';

export interface ImageDiffIds {
  /** `config.rootfs.diff_ids` as the image states them. */
  config: string[];
  /** Digests of each layer blob's uncompressed bytes (in the config's algorithm, sha256 by default). */
  content: string[];
  /** Sum of the manifest's layer sizes. */
  layerBytes: number;
}

/** Reads every layer blob of `ref` once (blob digests are verified by the reader) and hashes its tar. */
export async function imageDiffIds(ref: string): Promise<ImageDiffIds> {
  const img = await openImage(ref);
  try {
    const config = img.config.rootfs.diff_ids;
    const content: string[] = [];
    for (const [i, desc] of img.manifest.layers.entries()) {
      const alg = config[i] ? parseDigest(config[i], 'diff_id').algorithm : 'sha256';
      const h = new DigestHasher(alg);
      await pipeline(
        await img.reader.openBlob(desc),
        decompressSniffed({ layer: desc.digest }),
        new Writable({
          write(chunk: Buffer, _e, cb) {
            h.update(chunk);
            cb();
          },
        }),
      );
      content.push(h.digest());
    }
    return { config, content, layerBytes: img.manifest.layers.reduce((n, d) => n + d.size, 0) };
  } finally {
    await img.reader.close();
  }
}

export interface GroundTruth {
  diffIds: string[];
  /** composefs image IDs (bare hex) by flavour key. */
  ids: Map<string, string>;
  /** Sum of the new image's compressed layer sizes. */
  fullBytes: number;
  /** Disagreements of the new image with itself or with the pins (empty when all is well). */
  problems: string[];
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function groundTruth(
  newRef: string,
  flavours: readonly Flavour[],
  pins: PairPins | undefined,
): Promise<GroundTruth> {
  const d = await imageDiffIds(newRef);
  const problems: string[] = [];
  if (!sameList(d.config, d.content))
    problems.push('new image: layer contents disagree with its config diff_ids');
  if (pins && !sameList(pins.new.diffIds, d.content)) {
    problems.push('new image diff_ids differ from fixtures/expected.json');
  }
  const ids = new Map<string, string>();
  for (const f of flavours) {
    const key = flavourKey(f);
    const id = await composefsImageId(newRef, f);
    ids.set(key, id);
    const pinned = pins?.new.composefs[key as keyof ComposefsPins];
    if (pinned !== undefined && pinned !== id) {
      problems.push(
        `new image composefs ${key} ID ${id.slice(0, 16)}… differs from the pin ${pinned.slice(0, 16)}…`,
      );
    }
  }
  return { diffIds: d.content, ids, fullBytes: d.layerBytes, problems };
}

/** Index of the first differing diff_id (or the layer-count difference) as a one-line reason. */
export function diffIdMismatch(expected: string[], got: ImageDiffIds): string | undefined {
  if (got.content.length !== expected.length) {
    return `output has ${got.content.length} layers, the new image ${expected.length}`;
  }
  const i = got.content.findIndex((x, k) => x !== expected[k]);
  if (i >= 0)
    return `layer ${i} diff_id is ${got.content[i]!.slice(0, 19)}…, want ${expected[i]!.slice(0, 19)}…`;
  const j = got.config.findIndex((x, k) => x !== expected[k]);
  if (j >= 0 || got.config.length !== expected.length)
    return `output config diff_ids differ from the new image's`;
  return undefined;
}
