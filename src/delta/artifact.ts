import { OdhError, type ErrorContext } from '../util/errors.js';
import { parseDigest } from '../oci/digest.js';
import {
  ARTIFACT_TYPE_DELTA,
  parseImageConfig,
  parseManifest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
} from '../oci/types.js';

// Annotation keys of the delta manifest (spec oci-delta §1.3, §1.4).
export const ANNOTATION_PREFIX = 'io.github.containers.delta.';
export const ANNOTATION_CONTENT = 'io.github.containers.delta.content';
export const ANNOTATION_TO = 'io.github.containers.delta.to';
export const ANNOTATION_SOURCE = 'io.github.containers.delta.source';
export const ANNOTATION_SOURCE_CONFIG = 'io.github.containers.delta.source-config';
export const ANNOTATION_TARGET = 'io.github.containers.delta.target';
export const ANNOTATION_REUSED = 'io.github.containers.delta.reused';
export const ANNOTATION_REUSED_DIFF_ID = 'io.github.containers.delta.reused-diff-id';

/** `delta.content` values (spec oci-delta §1.4); any other value is ignored. */
export const CONTENT_IMAGE_MANIFEST = 'image-manifest';
export const CONTENT_IMAGE_CONFIG = 'image-config';
export const CONTENT_IMAGE_LAYER = 'image-layer';
export const CONTENT_COSIGN_SIGNATURE = 'cosign-signature';
export const CONTENT_COSIGN_SIGNATURE_CONTENT = 'cosign-signature-content';

/** Reads a whole small blob (manifest, config) of the delta, checking its digest and size. */
export interface DeltaBlobReader {
  readBlob(desc: Descriptor, ctx?: ErrorContext): Promise<Buffer>;
}

/** One layer of the target image and how the delta provides it. */
export interface TargetLayer {
  index: number;
  /** The layer descriptor of the embedded target manifest. */
  target: Descriptor;
  /** `config.rootfs.diff_ids[index]`. */
  diffId: string;
  /** The delta's blob reconstructing it (`delta.to` == target digest); undefined = reused. */
  delta?: Descriptor;
}

export interface DeltaArtifact {
  /** The delta manifest as parsed. */
  manifest: ImageManifest;
  /** `delta.source-config`: config digest of the image the delta applies to. */
  sourceConfig: string;
  /** `delta.source` / `delta.target` when present (informational). */
  sourceManifest?: string;
  targetDigest?: string;
  /** Embedded target manifest: descriptor, verbatim bytes, parsed value. */
  targetManifestDescriptor: Descriptor;
  targetManifestBytes: Buffer;
  targetManifest: ImageManifest;
  /** Embedded target config: descriptor, verbatim bytes, parsed value. */
  targetConfigDescriptor: Descriptor;
  targetConfigBytes: Buffer;
  targetConfig: ImageConfig;
  /** Every target layer in manifest order. */
  layers: TargetLayer[];
  /** `image-layer` entries whose `delta.to` names no target layer (ignored when applying). */
  unusedLayers: Descriptor[];
  /** Embedded cosign signature manifests (not verified here; spec oci-delta §1.6). */
  signatures: Descriptor[];
}

/** True when a manifest declares the delta artifact type (spec oci-delta §4.3 `is_delta_artifact`). */
export function isDeltaArtifact(m: Pick<ImageManifest, 'artifactType'>): boolean {
  return m.artifactType === ARTIFACT_TYPE_DELTA;
}

/** The delta manifest's annotations and its source config digest (spec oci-delta §1.3). */
function sourceConfigOf(
  manifest: ImageManifest,
  where: string,
): { ann: Record<string, string>; sourceConfig: string } {
  const ann = manifest.annotations;
  if (ann === undefined) throw new OdhError('FORMAT', `${where} has no annotations`);
  const sc = ann[ANNOTATION_SOURCE_CONFIG];
  if (sc === undefined || sc === '') {
    throw new OdhError(
      'FORMAT',
      `${where} is missing source config digest annotation ${ANNOTATION_SOURCE_CONFIG}`,
    );
  }
  return { ann, sourceConfig: parseDigest(sc, `${where} annotation ${ANNOTATION_SOURCE_CONFIG}`).digest };
}

/** The delta's layers by what they carry (spec oci-delta §1.4). */
interface DeltaLayers {
  manifestDesc: Descriptor;
  configDesc: Descriptor;
  /** Delta layers by the target layer digest they rebuild (`delta.to`). */
  byTo: Map<string, Descriptor>;
  signatures: Descriptor[];
}

/** Dispatch only on delta.content; unknown values and unannotated layers are ignored (spec §1.4). */
function classifyLayers(manifest: ImageManifest, where: string): DeltaLayers {
  let manifestDesc: Descriptor | undefined;
  let configDesc: Descriptor | undefined;
  const byTo = new Map<string, Descriptor>();
  const signatures: Descriptor[] = [];
  manifest.layers.forEach((d, i) => {
    const lwhere = `${where} layers[${i}]`;
    switch (d.annotations?.[ANNOTATION_CONTENT]) {
      case CONTENT_IMAGE_MANIFEST:
        if (manifestDesc) throw new OdhError('FORMAT', `${lwhere}: a second embedded image manifest`);
        manifestDesc = d;
        break;
      case CONTENT_IMAGE_CONFIG:
        if (configDesc) throw new OdhError('FORMAT', `${lwhere}: a second embedded image config`);
        configDesc = d;
        break;
      case CONTENT_IMAGE_LAYER: {
        const to = d.annotations?.[ANNOTATION_TO];
        if (to === undefined || to === '') return; // spec §1.4: skipped
        // spec §1.4: unparseable delta.to is an error (Rust) naming the layer.
        const toDigest = parseDigest(to, `${lwhere} (${d.digest}) annotation ${ANNOTATION_TO}`).digest;
        if (byTo.has(toDigest)) {
          throw new OdhError('FORMAT', `${lwhere}: a second delta layer for target layer ${toDigest}`);
        }
        byTo.set(toDigest, d);
        break;
      }
      case CONTENT_COSIGN_SIGNATURE:
        signatures.push(d);
        break;
      default:
        break;
    }
  });
  if (!manifestDesc) throw new OdhError('FORMAT', `${where} has no embedded image manifest`);
  if (!configDesc) throw new OdhError('FORMAT', `${where} has no embedded image config`);
  return { manifestDesc, configDesc, byTo, signatures };
}

/** Every target layer with its diff_id and delta layer, and the delta layers no target layer uses. */
function targetLayersOf(
  targetManifest: ImageManifest,
  targetConfig: ImageConfig,
  byTo: ReadonlyMap<string, Descriptor>,
): Pick<DeltaArtifact, 'layers' | 'unusedLayers'> {
  const diffIds = targetConfig.rootfs.diff_ids;
  if (diffIds.length !== targetManifest.layers.length) {
    throw new OdhError(
      'FORMAT',
      `target config has ${diffIds.length} diff_ids but the target manifest has ${targetManifest.layers.length} layers`,
    );
  }
  const layers: TargetLayer[] = diffIds.map((diffId, index) => {
    const target = targetManifest.layers[index];
    if (target === undefined) throw new OdhError('FORMAT', `target manifest has no layer ${index}`);
    const l: TargetLayer = { index, target, diffId };
    const delta = byTo.get(target.digest);
    if (delta) l.delta = delta;
    return l;
  });
  const used = new Set(targetManifest.layers.map((l) => l.digest));
  const unusedLayers = [...byTo].filter(([to]) => !used.has(to)).map(([, d]) => d);
  return { layers, unusedLayers };
}

/**
 * Parses and validates a delta manifest (spec oci-delta §1.3–1.5, §4.1 steps 2–3, §4.3
 * `parse_delta_manifest`), reading the embedded target manifest and config through `blobs`
 * (digest-verified). Layer blobs are not read here.
 */
export async function parseDeltaArtifact(
  manifestBytes: Uint8Array,
  blobs: DeltaBlobReader,
  where = 'delta manifest',
): Promise<DeltaArtifact> {
  const manifest = parseManifest(manifestBytes, where, {});
  if (!isDeltaArtifact(manifest)) {
    const at = manifest.artifactType === undefined ? 'none' : JSON.stringify(manifest.artifactType);
    throw new OdhError('FORMAT', `not a delta artifact (artifactType: ${at})`);
  }
  const { ann, sourceConfig } = sourceConfigOf(manifest, where);
  const { manifestDesc, configDesc, byTo, signatures } = classifyLayers(manifest, where);

  const targetManifestBytes = await blobs.readBlob(manifestDesc, { layer: manifestDesc.digest });
  const targetManifest = parseManifest(targetManifestBytes, `embedded image manifest ${manifestDesc.digest}`);
  const targetConfigBytes = await blobs.readBlob(configDesc, { layer: configDesc.digest });
  const targetConfig = parseImageConfig(targetConfigBytes, `embedded image config ${configDesc.digest}`);
  if (targetManifest.config.digest !== configDesc.digest) {
    throw new OdhError(
      'FORMAT',
      `embedded image config ${configDesc.digest} is not the target manifest's config ${targetManifest.config.digest}`,
    );
  }
  const a: DeltaArtifact = {
    manifest,
    sourceConfig,
    targetManifestDescriptor: manifestDesc,
    targetManifestBytes,
    targetManifest,
    targetConfigDescriptor: configDesc,
    targetConfigBytes,
    targetConfig,
    ...targetLayersOf(targetManifest, targetConfig, byTo),
    signatures,
  };
  if (ann[ANNOTATION_SOURCE]) a.sourceManifest = ann[ANNOTATION_SOURCE];
  if (ann[ANNOTATION_TARGET]) a.targetDigest = ann[ANNOTATION_TARGET];
  return a;
}
