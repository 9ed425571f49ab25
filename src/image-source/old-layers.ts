import type { Readable } from 'node:stream';
import { DigestHasher, parseDiffId } from '../oci/digest.js';
import { decompressSniffed } from '../oci/compression.js';
import { MAX_CONFIG_BYTES, openManifest } from '../oci/image.js';
import type { OciLayoutRef } from '../oci/ref.js';
import { parseImageConfig, parseManifest, type Descriptor, type ImageManifest } from '../oci/types.js';
import { readTar, type TarItem } from '../tar/index.js';
import { OdhError, isOdhError, type ErrorContext } from '../util/errors.js';

/**
 * The old image's layers as the image sources read them: its manifest, diff_ids and a way to stream
 * each layer blob once, decompressed (by sniffing, spec oci-delta §1.4), with the blob digest checked by the
 * blob reader and the diff_id checked here (spec oci-delta §4.1).
 */

/** What we need from an opened image: verified blob reads (e.g. the delta code's ImageReader). */
export interface ImageBlobs {
  readonly manifestBytes: Buffer;
  /** Whole small blob (the config), verified against its digest. */
  readBlob(d: Descriptor): Promise<Buffer>;
  /** A layer blob stream that fails at its end on a digest or size mismatch. */
  openBlob(d: Descriptor): Promise<Readable>;
}

/** An image reference (`oci:DIR[:NAME]`, `oci-archive:PATH[:NAME]`, bare path) or opened blobs. */
export type OldImageInput = string | OciLayoutRef | ImageBlobs;

export interface OldImage {
  manifest: ImageManifest;
  configDigest: string;
  diffIds: string[];
  openBlob(d: Descriptor): Promise<Readable>;
  /** Releases what `openOldImage` opened (nothing for caller-owned blobs). */
  close(): Promise<void>;
}

/** Opens the image and checks that manifest layers and config diff_ids pair up one to one. */
export async function openOldImage(input: OldImageInput): Promise<OldImage> {
  let blobs: ImageBlobs;
  let close = async () => {};
  if (typeof input === 'string' || 'transport' in input) {
    // oci/image.ts opens the reference and reads the selected manifest (closing the reader on failure).
    const { reader, manifestRaw } = await openManifest(input);
    close = () => reader.close();
    blobs = {
      manifestBytes: manifestRaw,
      readBlob: (d) => reader.readBlobBytes(d, MAX_CONFIG_BYTES),
      openBlob: (d) => reader.openBlob(d),
    };
  } else {
    blobs = input;
  }
  try {
    const manifest = parseManifest(blobs.manifestBytes, 'old image manifest');
    const config = parseImageConfig(
      await blobs.readBlob(manifest.config),
      `old image config ${manifest.config.digest}`,
    );
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) {
      throw new OdhError(
        'FORMAT',
        `old image has ${manifest.layers.length} layer(s) but its config lists ${diffIds.length} diff_id(s)`,
        { layer: manifest.config.digest },
      );
    }
    return {
      manifest,
      configDigest: manifest.config.digest,
      diffIds,
      openBlob: (d) => blobs.openBlob(d),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Streams old layer `index` once: blob → sniffed decompression → tar entries handed to `onEntry` in
 * order (it may read `item.body`). The whole decompressed stream is hashed, including bytes after
 * the end-of-archive blocks, and must equal the layer's diff_id (DIFF_ID_MISMATCH otherwise).
 */
export async function streamOldLayer(
  image: OldImage,
  index: number,
  onEntry: (item: TarItem) => Promise<void>,
): Promise<void> {
  const desc = image.manifest.layers[index]!;
  const ctx: ErrorContext = { layer: desc.digest };
  const blob = await image.openBlob(desc);
  const plain = blob.pipe(decompressSniffed(ctx));
  blob.on('error', (e) => plain.destroy(e));
  const it = (plain as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  // The diff_id names its own algorithm (sha256, sha384 or sha512: spec oci-delta §4.3).
  const hasher = new DigestHasher(
    parseDiffId(image.diffIds[index], `old layer ${index} diff_id`, ctx).algorithm,
  );
  // Pulled by hand (no for-await) so the tar reader stopping early does not close the decompressor:
  // the rest is drained below, to hash it and to let the blob reader verify the digest at its end.
  const tap = async function* () {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      hasher.update(r.value);
      yield r.value;
    }
  };
  try {
    for await (const item of readTar(tap(), { where: ctx })) await onEntry(item);
    for (let r = await it.next(); !r.done; r = await it.next()) hasher.update(r.value);
  } catch (e) {
    plain.destroy();
    blob.destroy();
    // Reader errors (tar, decompression, blob) name the layer or file themselves; an error from
    // `onEntry` that names neither (e.g. storing a file) gets the layer here.
    if (isOdhError(e) && e.context.layer === undefined && e.context.file === undefined) {
      throw new OdhError(e.code, `old layer ${index}: ${e.message}`, ctx, { cause: e });
    }
    throw e;
  }
  const want = image.diffIds[index]!;
  if (hasher.digest() !== want) {
    throw new OdhError(
      'DIFF_ID_MISMATCH',
      `old layer ${index} diff_id mismatch: config says ${want}, content is ${hasher.digest()}`,
      ctx,
    );
  }
}
