import { OdhError } from '../../util/errors.js';
import { parseDigest } from '../digest.js';
import { openManifest } from '../image.js';
import { parseRef } from '../ref.js';
import { ARTIFACT_TYPE_DELTA, parseManifest, type Descriptor } from '../types.js';
import { RegistryClient } from './client.js';
import { formatDockerRef, manifestReference, parseDockerRef } from './docker-ref.js';
import type { RegistryOptions } from './http.js';
import { registryOptionsFor } from './reader.js';

// Annotation written by oci-delta create (spec oci-delta §1.3); repeated here so oci/ stays below delta/.
const ANNOTATION_SOURCE_CONFIG = 'io.github.containers.delta.source-config';

export interface DiscoveredDelta {
  /** `docker://HOST/REPO@DIGEST` of the delta manifest: pass it to applyDelta as `delta`. */
  ref: string;
  descriptor: Descriptor;
  /** The target image manifest digest the delta reconstructs (its `subject`). */
  target: string;
  /** How it was found. */
  via: 'api' | 'tag';
  /** Delta artifacts referring to the target, matching or not. */
  candidates: number;
}

/**
 * Finds the delta for `targetRef` (`docker://…`) whose `delta.source-config` equals
 * `sourceConfigDigest` (spec oci-delta §1.7): Referrers API filtered by the delta artifactType, or
 * the `sha256-<hex>` tag schema when the API 404s. Entries without annotations are checked by
 * pulling their manifest. NOT_FOUND naming the target and the count when none matches.
 */
export async function discoverDelta(
  targetRef: string,
  sourceConfigDigest: string,
  opts?: RegistryOptions,
): Promise<DiscoveredDelta> {
  const want = parseDigest(sourceConfigDigest, 'source config digest').digest;
  const ref = parseDockerRef(targetRef);
  const client = new RegistryClient(ref.host, opts ?? registryOptionsFor(ref.host));
  const target = await client.getManifest(ref.repository, manifestReference(ref));
  const { descriptors, via } = await client.referrers(ref.repository, target.digest, ARTIFACT_TYPE_DELTA);
  for (const d of descriptors) {
    let sc = d.annotations?.[ANNOTATION_SOURCE_CONFIG];
    if (sc === undefined) {
      const m = await client.getManifest(ref.repository, d.digest);
      sc = parseManifest(m.raw, `delta manifest ${d.digest}`).annotations?.[ANNOTATION_SOURCE_CONFIG];
    }
    if (sc === want) {
      return {
        ref: formatDockerRef({ host: ref.host, repository: ref.repository, digest: d.digest }),
        descriptor: d,
        target: target.digest,
        via,
        candidates: descriptors.length,
      };
    }
  }
  throw new OdhError(
    'NOT_FOUND',
    `no delta for source config ${want} among ${descriptors.length} delta(s) referring to ${formatDockerRef(ref)} (${target.digest}, found via ${via === 'api' ? 'referrers API' : 'referrers tag schema'})`,
  );
}

/** `discoverDelta` with the source given as an image reference (its config digest is read). */
export async function discoverDeltaForSource(
  targetRef: string,
  sourceImageRef: string,
  opts?: RegistryOptions,
): Promise<DiscoveredDelta> {
  const m = await openManifest(parseRef(sourceImageRef));
  try {
    return await discoverDelta(targetRef, m.manifest.config.digest, opts);
  } finally {
    await m.reader.close();
  }
}
