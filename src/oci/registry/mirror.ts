import { OdhError } from '../../util/errors.js';
import { openLayout } from '../image.js';
import { parseRef } from '../ref.js';
import type { RegistryClient } from './client.js';
import { pushLayoutManifest, type PushedManifest } from './push.js';

/** Tags one mirrored pair gets in its repository. */
export const MIRROR_TAGS = { old: 'old', new: 'new', delta: 'delta-zstd' } as const;

/** One image pair and its delta, as local layout references, to publish under `repository`. */
export interface MirrorPair {
  name: string;
  repository: string;
  old: string;
  new: string;
  delta: string;
}

export interface MirroredPair {
  name: string;
  repository: string;
  old: PushedManifest;
  new: PushedManifest;
  delta: PushedManifest;
}

/**
 * `HOST/PREFIX` → registry host and repository prefix (`ghcr.io/org/fixtures` → `ghcr.io`,
 * `org/fixtures`). The prefix may be empty.
 */
export function parseRegistryTarget(s: string): { host: string; prefix: string } {
  const t = s.replace(/^docker:\/\//, '').replace(/\/+$/, '');
  const slash = t.indexOf('/');
  const host = slash < 0 ? t : t.slice(0, slash);
  const prefix = slash < 0 ? '' : t.slice(slash + 1);
  if (host === '' || !/^[A-Za-z0-9.-]+(:[0-9]+)?$|^\[[0-9a-fA-F:]+\](:[0-9]+)?$/.test(host)) {
    throw new OdhError('USAGE', `invalid --registry ${JSON.stringify(s)} (want HOST[:PORT]/PREFIX)`);
  }
  if (
    prefix !== '' &&
    !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(prefix)
  ) {
    throw new OdhError(
      'USAGE',
      `invalid repository prefix ${JSON.stringify(prefix)} in --registry (lowercase path components)`,
    );
  }
  return { host, prefix };
}

/** Pushes the manifest a local layout reference names (and its blobs) as `repo:tag`. */
export async function pushRef(
  client: RegistryClient,
  repo: string,
  ref: string,
  tag: string,
): Promise<PushedManifest> {
  const reader = await openLayout(parseRef(ref));
  try {
    return await pushLayoutManifest(client, repo, reader, { tag });
  } finally {
    await reader.close();
  }
}

/** Pulls `tag` back and checks the registry serves exactly the digest we pushed. */
export async function verifyServed(client: RegistryClient, pushed: PushedManifest): Promise<void> {
  const tag = pushed.tag ?? pushed.digest;
  const served = await client.getManifest(pushed.repository, tag);
  if (served.digest !== pushed.digest) {
    throw new OdhError(
      'DIGEST_MISMATCH',
      `registry ${client.host} repo ${pushed.repository}: tag ${tag} serves ${served.digest}, we pushed ${pushed.digest}`,
    );
  }
}

/**
 * Publishes one pair: old and new images (`:old`, `:new`), then the delta (`:delta-zstd`, whose
 * `subject` is the new image, so it is also listed for referrers), then pulls every tag back and
 * compares digests. Idempotent: blobs present are skipped (HEAD).
 */
export async function mirrorPair(client: RegistryClient, pair: MirrorPair): Promise<MirroredPair> {
  const repo = pair.repository;
  const oldPushed = await pushRef(client, repo, pair.old, MIRROR_TAGS.old);
  const newPushed = await pushRef(client, repo, pair.new, MIRROR_TAGS.new);
  const delta = await pushRef(client, repo, pair.delta, MIRROR_TAGS.delta);
  for (const p of [oldPushed, newPushed, delta]) await verifyServed(client, p);
  return { name: pair.name, repository: repo, old: oldPushed, new: newPushed, delta };
}
