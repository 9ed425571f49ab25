import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OdhError } from '../../src/util/errors.js';
import type { UpstreamArch, UpstreamBuild } from './types.js';

/**
 * The verified binary cache: `$XDG_CACHE_HOME/oci-delta-harness/upstream/<version>/<arch>/oci-delta`
 * for fetched binaries, `…/upstream/build/<version>/<arch>/<binary>` for built ones (default
 * `~/.cache/...`). A file is there only after its size and sha256 matched the pinned manifest, and it
 * is re-hashed on every use (a cache is not a trust anchor). Both `fetch` and `build` use it.
 */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'oci-delta-harness', 'upstream');
}

/** A version string becomes a path component: refuse anything that could climb out of the cache. */
function versionComponent(version: string, what: string): string {
  if (!/^[0-9A-Za-z][0-9A-Za-z._+-]*$/.test(version) || version.includes('..')) {
    throw new OdhError('FORMAT', `${what} ${JSON.stringify(version)} is not a plain version string`);
  }
  return version;
}

/** Where `fetch` keeps the binary of a pinned release asset. */
export function cachedBinaryPath(cacheRoot: string, version: string, arch: UpstreamArch): string {
  return path.join(cacheRoot, versionComponent(version, 'upstream manifest version'), arch, 'oci-delta');
}

/** Where `buildUpstream` caches the binary of a manifest build entry. */
export function builtBinaryPath(
  cacheRoot: string,
  b: Pick<UpstreamBuild, 'version' | 'binary'>,
  arch: UpstreamArch,
): string {
  return path.join(cacheRoot, 'build', versionComponent(b.version, 'build version'), arch, b.binary);
}

export async function sha256File(file: string): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(file) as AsyncIterable<Buffer>) {
    size += c.length;
    h.update(c);
  }
  return { size, sha256: h.digest('hex') };
}
