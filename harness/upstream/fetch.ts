import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { OdhError } from '../../src/util/errors.js';
import { downloadToFile, type DownloadOptions } from '../../src/net/download.js';
import { hostArch, pinnedAsset, readManifest } from './manifest.js';
import { probeBinary } from './probe.js';
import { builtBinaryPath, cachedBinaryPath, defaultCacheRoot, sha256File } from './cache.js';
import type { UpstreamArch, UpstreamAsset, UpstreamManifest, UpstreamResolution } from './types.js';

/** Whether `file` exists and matches the pinned asset exactly. */
async function verifiedCopy(file: string, asset: UpstreamAsset): Promise<boolean> {
  const st = await fs.stat(file).catch(() => null);
  if (!st?.isFile() || st.size !== asset.size) return false;
  const got = await sha256File(file);
  return got.size === asset.size && got.sha256 === asset.sha256;
}

/**
 * Downloads `asset` to `dest`: into a temp name beside it, checked for size and sha256, made
 * executable, then renamed into place. A mismatch leaves nothing behind.
 */
export async function installAsset(
  asset: UpstreamAsset,
  dest: string,
  http: DownloadOptions = {},
): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = path.join(
    path.dirname(dest),
    `.odh-tmp-${path.basename(dest)}-${randomBytes(6).toString('hex')}`,
  );
  try {
    const got = await downloadToFile(asset.url, tmp, { ...http, maxBytes: asset.size });
    if (got.size !== asset.size) {
      throw new OdhError(
        'DIGEST_MISMATCH',
        `size mismatch for ${asset.url}: expected ${asset.size}, got ${got.size}`,
      );
    }
    if (got.sha256 !== asset.sha256) {
      throw new OdhError(
        'DIGEST_MISMATCH',
        `sha256 mismatch for ${asset.url}: expected ${asset.sha256}, got ${got.sha256}`,
      );
    }
    await fs.chmod(tmp, 0o755);
    await fs.rename(tmp, dest);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export interface FetchOptions {
  /** The manifest itself (tests) or its path; default harness/upstream/manifest.json. */
  manifest?: UpstreamManifest;
  manifestPath?: string;
  cacheRoot?: string;
  /** Default: the host's architecture. */
  arch?: UpstreamArch;
  /** Never download; use the verified cache only. */
  offline?: boolean;
  env?: NodeJS.ProcessEnv;
  http?: DownloadOptions;
}

export interface FetchResult {
  path: string;
  version: string;
  arch: UpstreamArch;
  source: 'cache' | 'download';
}

/** `odh upstream fetch`: the pinned binary for this architecture, verified; throws OdhError otherwise. */
export async function fetchUpstream(opts: FetchOptions = {}): Promise<FetchResult> {
  const env = opts.env ?? process.env;
  const arch = opts.arch ?? hostArch();
  if (arch === null)
    throw new OdhError('UNSUPPORTED', `no oci-delta release build for architecture ${process.arch}`);
  const manifest = opts.manifest ?? (await readManifest(opts.manifestPath));
  const pin = pinnedAsset(manifest, arch);
  if (!pin.ok) throw new OdhError('UNAVAILABLE', pin.reason);
  const dest = cachedBinaryPath(opts.cacheRoot ?? defaultCacheRoot(env), pin.version, arch);
  if (await verifiedCopy(dest, pin.asset)) {
    // A read-only shared cache may refuse this; the probe then names the problem.
    await fs.chmod(dest, 0o755).catch(() => {});
    return { path: dest, version: pin.version, arch, source: 'cache' };
  }
  if (opts.offline) {
    // A copy that no longer verifies (edited manifest, corrupted file) is garbage: drop it.
    await fs.rm(dest, { force: true });
    throw new OdhError(
      'UNAVAILABLE',
      `oci-delta ${pin.version} (${arch}) is not in the cache and downloads are off`,
      {
        path: dest,
      },
    );
  }
  // A stale copy is replaced by the atomic rename, never deleted first: a concurrent resolver that
  // has just verified a fresh copy keeps a valid path.
  await installAsset(pin.asset, dest, { ...opts.http, env });
  return { path: dest, version: pin.version, arch, source: 'download' };
}

export interface ResolveOptions extends FetchOptions {
  /** `--oci-delta PATH`; default `$ODH_OCI_DELTA`. A local binary is used as is (no verification). */
  localBinary?: string;
  probeTimeoutMs?: number;
}

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The upstream binary adapters should use, or why there is none. Never throws: offline, not
 * pinned, no asset for this architecture, a failed or mismatching download, a binary that does
 * not run all come back as `{ status: 'unavailable', reason }`.
 */
export async function resolveUpstream(opts: ResolveOptions = {}): Promise<UpstreamResolution> {
  const env = opts.env ?? process.env;
  const local = opts.localBinary ?? (env.ODH_OCI_DELTA || undefined);
  try {
    if (local !== undefined) {
      const abs = path.resolve(local);
      const p = await probeBinary(abs, { timeoutMs: opts.probeTimeoutMs });
      if (!p.ok) return { status: 'unavailable', reason: `local oci-delta: ${p.reason}` };
      return {
        status: 'available',
        path: abs,
        version: p.version,
        source: 'local',
        capabilities: p.capabilities,
      };
    }
    const manifest = opts.manifest ?? (await readManifest(opts.manifestPath));
    const arch = opts.arch ?? hostArch();
    const built = arch ? manifest.builds?.[arch] : undefined;
    // No pinned release (upstream publishes none) but a binary built by `odh upstream build`.
    if (manifest.version === null && built && arch) {
      const file = builtBinaryPath(opts.cacheRoot ?? defaultCacheRoot(env), built, arch);
      const got = await sha256File(file).catch(() => null);
      if (!got || got.sha256 !== built.sha256 || got.size !== built.size) {
        return {
          status: 'unavailable',
          reason: `built oci-delta ${built.version} is not in the cache or differs from the manifest (run odh upstream build)`,
        };
      }
      const p = await probeBinary(file, { timeoutMs: opts.probeTimeoutMs });
      if (!p.ok) return { status: 'unavailable', reason: `built oci-delta ${built.version}: ${p.reason}` };
      return {
        status: 'available',
        path: file,
        version: built.version,
        source: 'build',
        capabilities: p.capabilities,
      };
    }
    const f = await fetchUpstream({ ...opts, manifest });
    const p = await probeBinary(f.path, { timeoutMs: opts.probeTimeoutMs });
    if (!p.ok) return { status: 'unavailable', reason: `oci-delta ${f.version}: ${p.reason}` };
    return {
      status: 'available',
      path: f.path,
      // The pinned version is what was verified; --version output may be decorated (e.g. "v0.6.0-1").
      version: f.version,
      source: f.source,
      capabilities: p.capabilities,
    };
  } catch (e) {
    return { status: 'unavailable', reason: reasonOf(e) };
  }
}
