import { OdhError } from '../../util/errors.js';
import { parseDigest } from '../digest.js';
import type { Descriptor } from '../types.js';

// Referrers (OCI distribution-spec v1.1; oci-delta §1.7): the API's answer and the tag-schema
// fallback are both an image index whose entries describe the referring manifests.

/** Referrers tag schema (distribution-spec v1.1): `<alg>-<hex>`. */
export function referrersTag(digest: string): string {
  const p = parseDigest(digest, 'subject digest');
  return `${p.algorithm}-${p.hex}`;
}

export function parseReferrersIndex(raw: Buffer, what: string): Descriptor[] {
  let o: { manifests?: unknown };
  try {
    o = JSON.parse(raw.toString('utf8')) as typeof o;
  } catch {
    throw new OdhError('FORMAT', `${what}: referrers index is not JSON`);
  }
  if (!Array.isArray(o.manifests))
    throw new OdhError('FORMAT', `${what}: referrers index has no manifests array`);
  return o.manifests.map((d: unknown, i: number) => {
    const x = d as Descriptor;
    if (typeof x?.digest !== 'string' || typeof x.size !== 'number' || typeof x.mediaType !== 'string') {
      throw new OdhError('FORMAT', `${what}: referrers index manifests[${i}] is not a descriptor`);
    }
    parseDigest(x.digest, `${what} manifests[${i}].digest`);
    return x;
  });
}
