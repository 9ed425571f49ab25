import { OdhError } from '../util/errors.js';
import { openLayoutArchive, openLayoutDir, type OciLayoutReader } from './layout.js';
import { parseRef, type OciLayoutRef } from './ref.js';
import { openRegistryReader } from './registry/reader.js';
import {
  ANNOTATION_REF_NAME,
  MEDIA_TYPE_IMAGE_INDEX,
  parseImageConfig,
  parseManifest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
} from './types.js';

/**
 * Opening an image: a reference (`oci:`, `oci-archive:`, `docker://`) becomes a layout reader, its
 * selected manifest and, for an image, its verified config. Everything else that "opens an image"
 * builds on this: `delta/image-reader.ts` (the delta code's verified blob reads, fetched once when
 * remote), `image-source/old-layers.ts` (an old image's layers streamed with their diff_ids
 * checked) and `image-source/oci-image.ts` (those layers as the applier's data source).
 */

/** Largest manifest we read into memory (the registry-side limit common in practice). */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Largest image config we read into memory. */
export const MAX_CONFIG_BYTES = 64 << 20;

/** Which index entry to use: by ref.name, by position, or (neither) the first. */
export interface ManifestSelector {
  name?: string;
  index?: number;
}

/**
 * Picks the manifest descriptor from index.json (spec oci-delta §1.2): `name` → first entry whose
 * `org.opencontainers.image.ref.name` equals it; `index` → that position; neither → `manifests[0]`.
 * A selected nested index is UNSUPPORTED.
 */
export async function selectManifest(
  reader: OciLayoutReader,
  selector: ManifestSelector = {},
): Promise<{ descriptor: Descriptor; position: number }> {
  const { index } = await reader.index();
  const ctx = { file: reader.where };
  const named = selector.name;
  const position =
    named !== undefined
      ? index.manifests.findIndex((d) => d.annotations?.[ANNOTATION_REF_NAME] === named)
      : (selector.index ?? 0);
  const descriptor = index.manifests[position];
  if (descriptor === undefined) {
    const why =
      named !== undefined
        ? `no manifest named ${JSON.stringify(named)} in index.json`
        : `index.json has ${index.manifests.length} manifest(s), no entry @${position}`;
    throw new OdhError('NOT_FOUND', why, ctx);
  }
  if (descriptor.mediaType === MEDIA_TYPE_IMAGE_INDEX) {
    throw new OdhError('UNSUPPORTED', `index.json entry @${position} is a nested image index`, ctx);
  }
  return { descriptor, position };
}

/** Opens the layout a reference names (directory, archive, or a registry image seen as a layout). */
export async function openLayout(ref: OciLayoutRef): Promise<OciLayoutReader> {
  // A registry image reads like a one-manifest layout; it has no positional reads (locateBlob).
  if (ref.transport === 'docker') return openRegistryReader(ref.docker!);
  return ref.transport === 'oci' ? openLayoutDir(ref.path) : openLayoutArchive(ref.path);
}

/** An opened manifest (image or artifact): raw bytes are kept because digests are over them. */
export interface OpenedManifest {
  reader: OciLayoutReader;
  ref: OciLayoutRef;
  manifestDescriptor: Descriptor;
  manifestRaw: Buffer;
  manifest: ImageManifest;
}

/** An opened image: manifest plus its verified config. */
export interface OpenedImage extends OpenedManifest {
  configRaw: Buffer;
  config: ImageConfig;
}

/**
 * Opens a layout reference, selects its manifest and reads + verifies it (digest and size). Use
 * this for artifacts such as deltas, whose config is not an image config. The caller closes `reader`.
 */
export async function openManifest(refOrString: OciLayoutRef | string): Promise<OpenedManifest> {
  const ref = typeof refOrString === 'string' ? parseRef(refOrString) : refOrString;
  const reader = await openLayout(ref);
  try {
    const { descriptor } = await selectManifest(reader, ref);
    const manifestRaw = await reader.readBlobBytes(descriptor, MAX_MANIFEST_BYTES);
    const manifest = parseManifest(manifestRaw, `manifest ${descriptor.digest}`, { file: reader.where });
    return { reader, ref, manifestDescriptor: descriptor, manifestRaw, manifest };
  } catch (e) {
    await reader.close();
    throw e;
  }
}

/**
 * `openManifest` plus the image config, read, verified and parsed (rootfs.diff_ids validated).
 * Layer blobs are not touched (stream them with `reader.openBlob`). The caller closes `reader`.
 */
export async function openImage(refOrString: OciLayoutRef | string): Promise<OpenedImage> {
  const m = await openManifest(refOrString);
  try {
    const configRaw = await m.reader.readBlobBytes(m.manifest.config, MAX_CONFIG_BYTES);
    const config = parseImageConfig(configRaw, `config ${m.manifest.config.digest}`, {
      file: m.reader.where,
    });
    return { ...m, configRaw, config };
  } catch (e) {
    await m.reader.close();
    throw e;
  }
}
