import { OdhError } from '../../util/errors.js';
import { MAX_MANIFEST_BYTES, selectManifest, type ManifestSelector } from '../image.js';
import type { OciLayoutReader } from '../layout.js';
import {
  MEDIA_TYPE_IMAGE_INDEX,
  MEDIA_TYPE_IMAGE_MANIFEST,
  parseManifest,
  type Descriptor,
} from '../types.js';
import { referrersTag, type BlobPushResult, type RegistryClient } from './client.js';

/** What pushing one manifest did. */
export interface PushedManifest {
  repository: string;
  tag?: string;
  digest: string;
  size: number;
  mediaType: string;
  blobs: Record<BlobPushResult, number>;
  /** For a manifest with `subject`: how referrers will find it. */
  referrers?: 'api' | 'tag-schema' | 'tag-schema-current';
}

export interface PushOptions {
  /** Tag to push the manifest under (default: by digest only). */
  tag?: string;
  /** Which manifest of the layout (default: the first). */
  selector?: ManifestSelector;
  /** Try a cross-repository mount from this repository first. */
  mountFrom?: string;
}

/**
 * Pushes one manifest of a local layout and its blobs (config and layers) to `repo`: every blob
 * first (skipping those present), each verified with HEAD, and only then the manifest, so the
 * registry never serves a manifest whose blobs are missing. A manifest with `subject` is also
 * entered in the referrers tag schema when the registry does not handle `subject` itself
 * (distribution-spec v1.1 "Pushing manifests with subject"; oci-delta §1.7).
 */
export async function pushLayoutManifest(
  client: RegistryClient,
  repo: string,
  reader: OciLayoutReader,
  opts: PushOptions = {},
): Promise<PushedManifest> {
  const { descriptor } = await selectManifest(reader, opts.selector ?? {});
  const raw = await reader.readBlobBytes(descriptor, MAX_MANIFEST_BYTES);
  const manifest = parseManifest(raw, `manifest ${descriptor.digest}`, { file: reader.where });
  const blobs: Record<BlobPushResult, number> = { skipped: 0, mounted: 0, uploaded: 0 };
  const seen = new Set<string>();
  for (const d of [manifest.config, ...manifest.layers]) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    const r = await client.pushBlob(repo, d, () => reader.openBlob(d), opts.mountFrom);
    blobs[r]++;
  }
  // Check again right before the manifest: nothing it names may be missing.
  for (const digest of seen) {
    if ((await client.blobSize(repo, digest)) === undefined) {
      throw new OdhError(
        'IO',
        `registry ${client.host} repo ${repo}: blob ${digest} missing before manifest push`,
      );
    }
  }
  const mediaType = manifest.mediaType ?? MEDIA_TYPE_IMAGE_MANIFEST;
  const reference = opts.tag ?? descriptor.digest;
  // Idempotent: a tag already serving these exact bytes is left alone.
  const current = opts.tag !== undefined ? await servedDigest(client, repo, opts.tag) : undefined;
  const put =
    current === descriptor.digest
      ? { digest: current, subjectHandled: false }
      : await client.putManifest(repo, reference, raw, mediaType);
  const pushed: PushedManifest = { repository: repo, digest: put.digest, size: raw.length, mediaType, blobs };
  if (opts.tag !== undefined) pushed.tag = opts.tag;
  if (manifest.subject) {
    const entry: Descriptor = { mediaType, digest: put.digest, size: raw.length };
    if (manifest.artifactType !== undefined) entry.artifactType = manifest.artifactType;
    else entry.artifactType = manifest.config.mediaType;
    if (manifest.annotations) entry.annotations = manifest.annotations;
    // A re-run that pushed nothing asks the registry whether it has the Referrers API.
    const api =
      put.subjectHandled ||
      (current === descriptor.digest &&
        (await client.referrers(repo, manifest.subject.digest, entry.artifactType)).via === 'api');
    pushed.referrers = api ? 'api' : await addToReferrersTag(client, repo, manifest.subject.digest, entry);
  }
  return pushed;
}

async function servedDigest(client: RegistryClient, repo: string, tag: string): Promise<string | undefined> {
  try {
    return (await client.getManifest(repo, tag)).digest;
  } catch (e) {
    if ((e as OdhError).code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

/**
 * Adds `entry` to the referrers tag-schema index of `subject` (fetch, add, push back); no push
 * when it is already listed (idempotent).
 */
export async function addToReferrersTag(
  client: RegistryClient,
  repo: string,
  subject: string,
  entry: Descriptor,
): Promise<'tag-schema' | 'tag-schema-current'> {
  const tag = referrersTag(subject);
  let manifests: Descriptor[] = [];
  try {
    const current = await client.getManifest(repo, tag);
    const o = JSON.parse(current.raw.toString('utf8')) as { manifests?: Descriptor[] };
    if (!Array.isArray(o.manifests)) {
      throw new OdhError(
        'FORMAT',
        `registry ${client.host} repo ${repo}: tag ${tag} is not a referrers index`,
      );
    }
    manifests = o.manifests;
  } catch (e) {
    if ((e as OdhError).code !== 'NOT_FOUND') throw e;
  }
  if (manifests.some((d) => d.digest === entry.digest)) return 'tag-schema-current';
  const index = { schemaVersion: 2, mediaType: MEDIA_TYPE_IMAGE_INDEX, manifests: [...manifests, entry] };
  const raw = Buffer.from(JSON.stringify(index));
  await client.putManifest(repo, tag, raw, MEDIA_TYPE_IMAGE_INDEX);
  return 'tag-schema';
}
