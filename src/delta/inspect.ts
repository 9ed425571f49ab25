import { MEDIA_TYPE_TAR_DIFF, parseManifest, type Descriptor } from '../oci/types.js';
import { isOdhError } from '../util/errors.js';
import { COSIGN_SIGNATURE_ANNOTATION } from './signature-verify.js';
import { inspectTarDiff } from '../tardiff/inspect.js';
import type { OpName } from '../tardiff/ops.js';
import { parseDeltaArtifact, type DeltaBlobReader } from './artifact.js';
import { openImageReader, verifyBlob } from './image-reader.js';
import { sniffCompression } from '../oci/compression.js';

export type InspectedKind = 'reused' | 'tar-diff' | 'original';

export interface InspectedLayer {
  index: number;
  kind: InspectedKind;
  /** Target layer descriptor (as listed in the target manifest). */
  target: { digest: string; size: number; mediaType: string };
  diffId: string;
  /** The delta's blob for it (absent when reused). */
  blob?: { digest: string; size: number; mediaType: string };
  /** tar-diff only. */
  tarDiffVersion?: 1 | 2;
  ops?: Record<OpName, number>;
  /** tar-diff only: uncompressed bytes it produces (exact unless `outputSizeExact` is false). */
  outputSize?: number;
  outputSizeExact?: boolean;
  /** tar-diff only: source files it opens, in first-use order. */
  sources?: string[];
  /** original only: compression found from the blob's magic. */
  compression?: 'gzip' | 'zstd' | 'none';
}

export interface DeltaInspection {
  deltaManifestDigest: string;
  sourceConfig: string;
  sourceManifest?: string;
  targetManifest: string;
  targetConfig: string;
  layers: InspectedLayer[];
  /** Sum of the delta's layer blob sizes vs the target's layer sizes they replace. */
  deltaLayerBytes: number;
  targetLayerBytes: number;
  /** Every source file name referenced by any tar-diff, sorted bytewise, each once. */
  sources: string[];
  /** Embedded cosign signatures (spec oci-delta §1.6), not verified here (see apply --verify-key). */
  signatures: InspectedSignature[];
}

export interface InspectedSignature {
  digest: string;
  size: number;
  /** Its payload layers: what each claims to sign. */
  payloads: Array<{
    digest: string;
    mediaType: string;
    /** `critical.image.docker-manifest-digest` of a cosign simple-signing payload. */
    signedManifest?: string;
    dockerReference?: string;
    /** The payload names the delta's target manifest. */
    matchesTarget: boolean;
    hasSignature: boolean;
  }>;
}

/** Cosign payloads are small; bigger ones are not read. */
const MAX_PAYLOAD = 1 << 20;

async function inspectSignature(
  desc: Descriptor,
  blobs: DeltaBlobReader,
  target: string,
): Promise<InspectedSignature> {
  const m = parseManifest(
    await blobs.readBlob(desc, { layer: desc.digest }),
    `signature manifest ${desc.digest}`,
  );
  const payloads: InspectedSignature['payloads'] = [];
  for (const l of m.layers) {
    const p: InspectedSignature['payloads'][number] = {
      digest: l.digest,
      mediaType: l.mediaType,
      matchesTarget: false,
      hasSignature: l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] !== undefined,
    };
    if (l.size <= MAX_PAYLOAD) {
      try {
        const j = JSON.parse((await blobs.readBlob(l, { layer: l.digest })).toString('utf8')) as {
          critical?: { image?: Record<string, unknown>; identity?: Record<string, unknown> };
        };
        const signed = j.critical?.image?.['docker-manifest-digest'];
        const ref = j.critical?.identity?.['docker-reference'];
        if (typeof signed === 'string') p.signedManifest = signed;
        if (typeof ref === 'string') p.dockerReference = ref;
        p.matchesTarget = signed === target;
      } catch (e) {
        if (isOdhError(e)) throw e; // a missing or corrupt blob; unparsable JSON is just reported as such
      }
    }
    payloads.push(p);
  }
  return { digest: desc.digest, size: desc.size, payloads };
}

/** Summarizes a delta (`odh inspect`): every blob read is digest-checked and every tar-diff parsed. */
export async function inspectDelta(ref: string): Promise<DeltaInspection> {
  const delta = await openImageReader(ref, 'delta');
  try {
    const a = await parseDeltaArtifact(delta.manifestBytes, delta);
    const layers: InspectedLayer[] = [];
    const all = new Set<string>();
    let deltaLayerBytes = 0;
    let targetLayerBytes = 0;
    for (const l of a.layers) {
      const target = { digest: l.target.digest, size: l.target.size, mediaType: l.target.mediaType };
      if (!l.delta) {
        layers.push({ index: l.index, kind: 'reused', target, diffId: l.diffId });
        continue;
      }
      const blob = { digest: l.delta.digest, size: l.delta.size, mediaType: l.delta.mediaType };
      deltaLayerBytes += l.delta.size;
      targetLayerBytes += l.target.size;
      const ctx = { layer: l.target.digest };
      if (l.delta.mediaType === MEDIA_TYPE_TAR_DIFF) {
        // Digest first, so a corrupt blob is reported as such rather than as a format error.
        await verifyBlob(delta, l.delta, ctx);
        const s = await inspectTarDiff(await delta.openBlob(l.delta, ctx), { where: l.target.digest });
        s.sources.forEach((n) => all.add(n));
        layers.push({
          index: l.index,
          kind: 'tar-diff',
          target,
          diffId: l.diffId,
          blob,
          tarDiffVersion: s.version,
          ops: s.ops,
          outputSize: Number(s.bytesOut),
          outputSizeExact: s.bytesOutExact,
          sources: s.sources,
        });
      } else {
        const head = await verifyBlob(delta, l.delta, ctx);
        layers.push({
          index: l.index,
          kind: 'original',
          target,
          diffId: l.diffId,
          blob,
          compression: sniffCompression(head),
        });
      }
    }
    const r: DeltaInspection = {
      deltaManifestDigest: delta.manifestDescriptor.digest,
      sourceConfig: a.sourceConfig,
      targetManifest: a.targetManifestDescriptor.digest,
      targetConfig: a.targetConfigDescriptor.digest,
      layers,
      deltaLayerBytes,
      targetLayerBytes,
      sources: [...all].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
      signatures: [],
    };
    for (const sig of a.signatures) {
      r.signatures.push(await inspectSignature(sig, delta, a.targetManifestDescriptor.digest));
    }
    if (a.sourceManifest) r.sourceManifest = a.sourceManifest;
    return r;
  } finally {
    await delta.close();
  }
}
