import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildFixture, type BuiltFixture } from '../../fixtures/build.js';
import { createDelta } from '../../src/delta/create.js';
import { openLayout } from '../../src/oci/image.js';
import { parseRef } from '../../src/oci/ref.js';
import { RegistryClient } from '../../src/oci/registry/client.js';
import type { RegistryOptions } from '../../src/oci/registry/http.js';

/** A small catalog pair (two layers, a few files): fast to build, push and diff. */
export const SMALL_PAIR = 'whiteouts-opaque';

export function fastClient(host: string, opts: RegistryOptions = {}): RegistryClient {
  return new RegistryClient(host, { tlsVerify: false, backoffMs: 5, credentials: null, ...opts });
}

export async function built(name = SMALL_PAIR): Promise<BuiltFixture> {
  return buildFixture(name);
}

/** Makes a delta (TS creator, zstd) into a fresh temp dir; returns its archive path. */
export async function makeDelta(
  oldRef: string,
  newRef: string,
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-regdelta-'));
  const out = path.join(dir, 'delta.oci-archive');
  await createDelta({ old: oldRef, new: newRef, output: out, binaryDiff: 'zstd', jobs: 2 });
  return { path: out, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

export { pushRef } from '../../src/oci/registry/mirror.js';

/** Every blob of a local layout manifest, as bytes (small fixtures only). */
export async function localBytes(ref: string, digest: string): Promise<Buffer> {
  const reader = await openLayout(parseRef(ref));
  try {
    return await reader.readBlobBytes(digest, 256 << 20);
  } finally {
    await reader.close();
  }
}
