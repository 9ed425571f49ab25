/**
 * Writes a copy of an OCI image with some layer blobs taken from elsewhere: the config verbatim,
 * each layer either copied or replaced by `layerBlob`, the manifest re-serialized with the layer
 * descriptors that were actually written. Used to complete an applier output that omits reused
 * layers (spec oci-delta §4.1 step 6c) and, in tests, to inject a fault into an output image.
 */
import type { Readable } from 'node:stream';
import { serializeManifest } from '../../src/delta/manifest-json.js';
import { openImage, type OpenedImage } from '../../src/oci/image.js';
import { parseRef } from '../../src/oci/ref.js';
import { MEDIA_TYPE_IMAGE_MANIFEST, type Descriptor } from '../../src/oci/types.js';
import { createLayoutWriter } from '../../src/oci/writer.js';
import { OdhError } from '../../src/util/errors.js';

/** A replacement blob: its bytes and the media type to record (digest and size are measured). */
export interface ReplacementBlob {
  stream: Readable;
  mediaType: string;
  /** Known digest/size (checked while writing) when the blob comes from another verified image. */
  digest?: string;
  size?: number;
}

/** Decides per layer: undefined keeps the input's own blob (which must then exist). */
export type LayerChoice = (
  index: number,
  desc: Descriptor,
  diffId: string,
  input: OpenedImage,
) => Promise<ReplacementBlob | undefined>;

export async function rewriteImage(inputRef: string, outputRef: string, choose: LayerChoice): Promise<void> {
  const input = await openImage(inputRef);
  const out = parseRef(outputRef, { output: true });
  const writer = await createLayoutWriter({
    kind: out.transport === 'oci' ? 'dir' : 'archive',
    path: out.path,
  });
  try {
    const diffIds = input.config.rootfs.diff_ids;
    if (diffIds.length !== input.manifest.layers.length) {
      throw new OdhError(
        'FORMAT',
        `image has ${input.manifest.layers.length} layers but ${diffIds.length} diff_ids`,
        { file: input.reader.where },
      );
    }
    await writer.addBlob(input.configRaw, {
      expectedDigest: input.manifest.config.digest,
      expectedSize: input.manifest.config.size,
    });
    const layers: Descriptor[] = [];
    for (const [i, desc] of input.manifest.layers.entries()) {
      const r = await choose(i, desc, diffIds[i]!, input);
      if (!r) {
        if (!(await input.reader.hasBlob(desc))) {
          throw new OdhError('NOT_FOUND', `layer ${i} blob is absent and no replacement was given`, {
            file: input.reader.where,
            layer: desc.digest,
          });
        }
        await writer.addBlob(await input.reader.openBlob(desc), {
          expectedDigest: desc.digest,
          expectedSize: desc.size,
        });
        layers.push(desc);
        continue;
      }
      const w = await writer.addBlob(r.stream, {
        ...(r.digest !== undefined ? { expectedDigest: r.digest } : {}),
        ...(r.size !== undefined ? { expectedSize: r.size } : {}),
      });
      layers.push({ ...desc, mediaType: r.mediaType, digest: w.digest, size: w.size });
    }
    const manifestBytes = serializeManifest({ ...input.manifest, layers });
    const m = await writer.addJsonBlob(manifestBytes);
    await writer.finish({ mediaType: MEDIA_TYPE_IMAGE_MANIFEST, digest: m.digest, size: m.size });
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    await input.reader.close();
  }
}

/**
 * Completes an image whose reused layers have no blob (upstream `apply` output, or ours without
 * `--complete`): each absent blob is copied from the old image's layer with the same diff_id
 * (spec oci-delta §1.5 reuse is by diff_id), keeping the old layer's compressed bytes.
 */
export async function completeFromOldImage(
  partialRef: string,
  oldRef: string,
  outputRef: string,
): Promise<void> {
  const old = await openImage(oldRef);
  try {
    const byDiffId = new Map<string, Descriptor>();
    old.config.rootfs.diff_ids.forEach((id, i) => {
      const d = old.manifest.layers[i];
      if (d && !byDiffId.has(id)) byDiffId.set(id, d);
    });
    await rewriteImage(partialRef, outputRef, async (i, desc, diffId, input) => {
      if (await input.reader.hasBlob(desc)) return undefined;
      const from = byDiffId.get(diffId);
      if (!from) {
        throw new OdhError('NOT_FOUND', `reused layer ${i} (diff_id ${diffId}) is not in the old image`, {
          file: old.reader.where,
          layer: desc.digest,
        });
      }
      return {
        stream: await old.reader.openBlob(from),
        mediaType: from.mediaType,
        digest: from.digest,
        size: from.size,
      };
    });
  } finally {
    await old.reader.close();
  }
}
