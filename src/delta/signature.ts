import { openManifest } from '../oci/image.js';
import { parseRef, type OciLayoutRef } from '../oci/ref.js';
import { MEDIA_TYPE_IMAGE_MANIFEST, type Descriptor, type ImageManifest } from '../oci/types.js';
import { OdhError, isOdhError } from '../util/errors.js';
import {
  ANNOTATION_CONTENT,
  CONTENT_COSIGN_SIGNATURE,
  CONTENT_COSIGN_SIGNATURE_CONTENT,
} from './artifact.js';

/**
 * Cosign signatures carried by a delta (spec oci-delta §1.6): each signature manifest is stored as a
 * blob listed as `cosign-signature`, and its config and payload blobs are listed as
 * `cosign-signature-content` so a registry copy of the delta keeps them.
 */

/** Largest signature config or payload we read (cosign payloads are a few hundred bytes). */
const MAX_SIGNATURE_BLOB = 4 << 20;

export interface SignatureArtifact {
  /** Where it came from (a reference), for messages. */
  from: string;
  manifestDigest: string;
  manifestBytes: Buffer;
  manifest: ImageManifest;
  /** Config then layers, in manifest order, each once, with its verified bytes. */
  blobs: Array<{ desc: Descriptor; bytes: Buffer }>;
}

/**
 * Reads a signature OCI artifact (`--signature REF`): the first (or selected) manifest of the
 * layout, its config and every layer, all digest-checked.
 */
export async function loadSignatureArtifact(ref: string | OciLayoutRef): Promise<SignatureArtifact> {
  const from = typeof ref === 'string' ? ref : ref.raw;
  const m = await openManifest(ref);
  try {
    const blobs: SignatureArtifact['blobs'] = [];
    const seen = new Set<string>();
    for (const desc of [m.manifest.config, ...m.manifest.layers]) {
      if (seen.has(desc.digest)) continue;
      seen.add(desc.digest);
      blobs.push({ desc, bytes: await m.reader.readBlobBytes(desc, MAX_SIGNATURE_BLOB) });
    }
    return {
      from,
      manifestDigest: m.manifestDescriptor.digest,
      manifestBytes: m.manifestRaw,
      manifest: m.manifest,
      blobs,
    };
  } catch (e) {
    if (isOdhError(e)) throw new OdhError(e.code, `signature ${from}: ${e.message}`);
    throw e;
  } finally {
    await m.reader.close();
  }
}

/** Cosign's tag scheme: the signature of manifest `sha256:<hex>` is tagged `sha256-<hex>.sig`. */
export function cosignTag(manifestDigest: string): string {
  return `${manifestDigest.replace(':', '-')}.sig`;
}

/**
 * Where cosign keeps the signatures of the image `imageRef` names: the tag `sha256-<hex>.sig` in
 * the same repository (registry) or the same layout (an index entry of that ref.name).
 */
export function cosignSignatureRef(imageRef: OciLayoutRef, manifestDigest: string): string {
  const tag = cosignTag(manifestDigest);
  if (imageRef.transport === 'docker') {
    const d = imageRef.docker!;
    return `docker://${d.host}/${d.repository}:${tag}`;
  }
  return `${imageRef.transport}:${imageRef.path}:${tag}`;
}

/**
 * The new image's own cosign signature, when its layout or repository has one under the cosign tag
 * (ours: upstream embeds automatically only what containers-storage keeps for the image, §1.6).
 * Undefined when there is none.
 */
export async function findImageSignature(
  image: string,
  manifestDigest: string,
): Promise<SignatureArtifact | undefined> {
  const ref = parseRef(cosignSignatureRef(parseRef(image), manifestDigest));
  try {
    return await loadSignatureArtifact(ref);
  } catch (e) {
    if (isOdhError(e) && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

/** The delta manifest entries of one signature, in upstream's order (spec §1.4). */
export function signatureDescriptors(sig: SignatureArtifact): Descriptor[] {
  const content = (d: Descriptor): Descriptor => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    annotations: { [ANNOTATION_CONTENT]: CONTENT_COSIGN_SIGNATURE_CONTENT },
  });
  return [
    {
      mediaType: MEDIA_TYPE_IMAGE_MANIFEST,
      digest: sig.manifestDigest,
      size: sig.manifestBytes.length,
      annotations: { [ANNOTATION_CONTENT]: CONTENT_COSIGN_SIGNATURE },
    },
    content(sig.manifest.config),
    ...sig.manifest.layers.map(content),
  ];
}
