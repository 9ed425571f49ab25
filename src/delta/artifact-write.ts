import { encodeManifestGo, goJsonString } from '../oci/gojson.js';
import {
  ARTIFACT_TYPE_DELTA,
  EMPTY_JSON,
  EMPTY_JSON_DIGEST,
  MEDIA_TYPE_EMPTY,
  MEDIA_TYPE_IMAGE_CONFIG,
  MEDIA_TYPE_IMAGE_MANIFEST,
  type Descriptor,
} from '../oci/types.js';
import type { OciLayoutWriter, WrittenBlob } from '../oci/writer.js';
import {
  ANNOTATION_CONTENT,
  ANNOTATION_REUSED,
  ANNOTATION_REUSED_DIFF_ID,
  ANNOTATION_SOURCE,
  ANNOTATION_SOURCE_CONFIG,
  ANNOTATION_TARGET,
  ANNOTATION_TO,
  CONTENT_IMAGE_CONFIG,
  CONTENT_IMAGE_LAYER,
  CONTENT_IMAGE_MANIFEST,
} from './artifact.js';

/**
 * The delta artifact exactly as upstream `oci-delta create` serialises it (spec oci-delta §1.1–1.5):
 * the delta manifest is compact Go JSON (field order schemaVersion, artifactType, config, layers,
 * subject, annotations; no top-level mediaType), map keys sorted bytewise, the `{}` empty config,
 * `subject` = the target manifest's descriptor, and the reused annotations only when a layer is
 * reused, each a JSON array encoded as a string. Pure: bytes in, bytes out.
 */

/** One changed target layer as the delta stores it. */
export interface DeltaLayerBlob {
  /** The stored blob (a tar-diff or the original compressed layer). */
  mediaType: string;
  digest: string;
  size: number;
  /** `delta.to`: the target layer's digest as the target manifest lists it. */
  to: string;
}

/** A target layer the consumer already has (its diff_id occurs in the old image, spec §1.5). */
export interface ReusedLayer {
  digest: string;
  diffId: string;
}

export interface DeltaManifestInput {
  /** Verbatim target manifest bytes and their digest (also `subject` and `delta.target`). */
  targetManifest: { digest: string; size: number };
  targetConfig: { digest: string; size: number };
  /** Changed layers in target-manifest order. */
  layers: DeltaLayerBlob[];
  /** Reused layers in target-manifest order. */
  reused: ReusedLayer[];
  /** `delta.source`: the old image's manifest digest. */
  sourceManifest: string;
  /** `delta.source-config`: the old image's config digest. */
  sourceConfig: string;
  /** Embedded signatures' entries (`cosign-signature`, `cosign-signature-content`), spec §1.6. */
  signatures?: Descriptor[];
}

/** A Go `json.Marshal` of a `[]string`: compact, Go string escapes (spec §1.3). */
function goStringArray(values: string[]): string {
  return `[${values.map(goJsonString).join(',')}]`;
}

/** The delta manifest's descriptors, in upstream's order (spec §1.4). */
export function deltaManifestLayers(input: DeltaManifestInput): Descriptor[] {
  return [
    {
      mediaType: MEDIA_TYPE_IMAGE_MANIFEST,
      digest: input.targetManifest.digest,
      size: input.targetManifest.size,
      annotations: { [ANNOTATION_CONTENT]: CONTENT_IMAGE_MANIFEST },
    },
    {
      mediaType: MEDIA_TYPE_IMAGE_CONFIG,
      digest: input.targetConfig.digest,
      size: input.targetConfig.size,
      annotations: { [ANNOTATION_CONTENT]: CONTENT_IMAGE_CONFIG },
    },
    ...input.layers.map((l): Descriptor => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      annotations: { [ANNOTATION_CONTENT]: CONTENT_IMAGE_LAYER, [ANNOTATION_TO]: l.to },
    })),
    ...(input.signatures ?? []),
  ];
}

/** The delta manifest bytes (spec §1.3). */
export function encodeDeltaManifest(input: DeltaManifestInput): Buffer {
  const annotations: Record<string, string> = {
    [ANNOTATION_SOURCE]: input.sourceManifest,
    [ANNOTATION_SOURCE_CONFIG]: input.sourceConfig,
    [ANNOTATION_TARGET]: input.targetManifest.digest,
  };
  // spec §1.3: present only if at least one layer is reused; parallel arrays in target order.
  if (input.reused.length > 0) {
    annotations[ANNOTATION_REUSED] = goStringArray(input.reused.map((r) => r.digest));
    annotations[ANNOTATION_REUSED_DIFF_ID] = goStringArray(input.reused.map((r) => r.diffId));
  }
  // encodeManifestGo sorts annotation keys bytewise and omits the empty top-level mediaType.
  return encodeManifestGo({
    schemaVersion: 2,
    artifactType: ARTIFACT_TYPE_DELTA,
    config: { mediaType: MEDIA_TYPE_EMPTY, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON.length },
    layers: deltaManifestLayers(input),
    subject: {
      mediaType: MEDIA_TYPE_IMAGE_MANIFEST,
      digest: input.targetManifest.digest,
      size: input.targetManifest.size,
    },
    annotations,
  });
}

/**
 * Writes the closing entries in upstream's order (spec §1.1): after the target manifest, config and
 * layer blobs come the `{}` config, the delta manifest, then index.json (`finish` commits the output).
 */
export async function finishDeltaArtifact(
  writer: OciLayoutWriter,
  input: DeltaManifestInput,
): Promise<WrittenBlob & { bytes: Buffer }> {
  await writer.addBlob(EMPTY_JSON, { expectedDigest: EMPTY_JSON_DIGEST });
  const bytes = encodeDeltaManifest(input);
  const written = await writer.addJsonBlob(bytes);
  await writer.finish({ mediaType: MEDIA_TYPE_IMAGE_MANIFEST, ...written });
  return { ...written, bytes };
}
