import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { parseManifest, type Descriptor } from '../oci/types.js';
import { OdhError, isOdhError } from '../util/errors.js';
import type { DeltaArtifact, DeltaBlobReader } from './artifact.js';

/**
 * `--verify-key` (spec oci-delta §1.6 "Verification"): at least one embedded cosign signature must
 * verify with the public key over its simple-signing payload, and the payload must name the target
 * image manifest the delta rebuilds.
 */

/** The cosign annotation holding a layer's base64 signature. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** `critical.type` of a cosign simple-signing payload. */
export const COSIGN_PAYLOAD_TYPE = 'cosign container image signature';

export interface VerifiedSignature {
  /** The signature manifest and the payload layer that verified. */
  signature: string;
  payload: string;
  /** `critical.identity.docker-reference` of the payload, when present. */
  dockerReference?: string;
}

/** Reads a PEM public key (ECDSA, RSA or Ed25519) for `--verify-key`. */
export async function loadVerifyKey(file: string): Promise<KeyObject> {
  let pem: Buffer;
  try {
    pem = await fs.readFile(file);
  } catch (e) {
    throw new OdhError('NOT_FOUND', `cannot read --verify-key: ${(e as Error).message}`, { file });
  }
  try {
    return createPublicKey(pem);
  } catch (e) {
    throw new OdhError('FORMAT', `--verify-key is not a PEM public key: ${(e as Error).message}`, { file });
  }
}

/** The cosign payload fields we check (sigstore `SimpleContainerImage`). */
interface SimpleSigning {
  critical?: {
    type?: unknown;
    image?: { 'docker-manifest-digest'?: unknown };
    identity?: { 'docker-reference'?: unknown };
  };
}

/** Checks one payload layer; throws a one-line reason when it does not verify. */
async function verifyLayer(
  layer: Descriptor,
  blobs: DeltaBlobReader,
  key: KeyObject,
  target: string,
): Promise<string | undefined> {
  const b64 = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
  if (b64 === undefined) throw new Error('no signature annotation');
  const payload = await blobs.readBlob(layer, { layer: layer.digest });
  const sig = Buffer.from(b64, 'base64');
  // sigstore hashes with SHA-256; Ed25519 signs the message itself
  const alg = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  if (!verify(alg, payload, key, sig)) throw new Error('cryptographic signature verification failed');
  let p: SimpleSigning;
  try {
    p = JSON.parse(payload.toString('utf8')) as SimpleSigning;
  } catch (e) {
    throw new Error(`failed to parse signature payload: ${(e as Error).message}`, { cause: e });
  }
  if (p.critical?.type !== COSIGN_PAYLOAD_TYPE) {
    throw new Error(`unexpected signature type: ${String(p.critical?.type)}`);
  }
  const signed = p.critical.image?.['docker-manifest-digest'];
  if (signed !== target) {
    throw new Error(`signature is for manifest ${String(signed)}, but the delta targets ${target}`);
  }
  const ref = p.critical.identity?.['docker-reference'];
  return typeof ref === 'string' ? ref : undefined;
}

/**
 * Verifies the delta's embedded signatures with `key`: success as soon as one payload layer of one
 * signature verifies (spec §1.6 step 3); otherwise SIGNATURE naming the first failure.
 */
export async function verifyDeltaSignatures(
  artifact: DeltaArtifact,
  blobs: DeltaBlobReader,
  key: KeyObject,
): Promise<VerifiedSignature> {
  if (artifact.signatures.length === 0) {
    throw new OdhError('SIGNATURE', 'delta contains no embedded signatures');
  }
  const target = artifact.targetManifestDescriptor.digest;
  let first: string | undefined;
  for (const sigDesc of artifact.signatures) {
    try {
      const bytes = await blobs.readBlob(sigDesc, { layer: sigDesc.digest });
      const m = parseManifest(bytes, `signature manifest ${sigDesc.digest}`);
      if (m.layers.length === 0) throw new Error('no signature layers found');
      for (const layer of m.layers) {
        try {
          const dockerReference = await verifyLayer(layer, blobs, key, target);
          const v: VerifiedSignature = { signature: sigDesc.digest, payload: layer.digest };
          if (dockerReference !== undefined) v.dockerReference = dockerReference;
          return v;
        } catch (e) {
          first ??= `signature ${sigDesc.digest}: ${(e as Error).message}`;
        }
      }
    } catch (e) {
      first ??= `signature ${sigDesc.digest}: ${isOdhError(e) ? e.message : (e as Error).message}`;
    }
  }
  throw new OdhError('SIGNATURE', `no embedded signature could be verified: ${first}`);
}
