import path from 'node:path';
import { OdhError } from '../../src/util/errors.js';
import { pickAsset } from './assets.js';
import { downloadToFile, getJson, type DownloadOptions } from '../../src/net/download.js';
import { defaultManifestPath, readManifest, UPSTREAM_REPOSITORY, writeManifest } from './manifest.js';
import { UPSTREAM_ARCHES, type UpstreamArch, type UpstreamAsset, type UpstreamManifest } from './types.js';
import { runTempDir } from '../../src/util/run.js';

export const DEFAULT_GITHUB_API = 'https://api.github.com';

export interface PinOptions {
  /** Release version (with or without `v`); default: the latest release. spec oci-delta §7: tags are `v{version}`. */
  version?: string;
  apiUrl?: string;
  manifestPath?: string;
  env?: NodeJS.ProcessEnv;
  http?: DownloadOptions;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

interface ReleaseAsset {
  name: string;
  url: string;
  size: number;
}

/** The fields of a GitHub release object we rely on, validated. */
function parseRelease(raw: unknown, from: string): { tag: string; assets: ReleaseAsset[] } {
  const bad = (what: string): never => {
    throw new OdhError('FORMAT', `GitHub release from ${from}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null) bad('not a JSON object');
  const r = raw as Record<string, unknown>;
  if (typeof r.tag_name !== 'string' || r.tag_name === '') bad('no tag_name');
  if (!Array.isArray(r.assets)) bad('no assets array');
  const assets: ReleaseAsset[] = [];
  for (const a of r.assets as unknown[]) {
    if (typeof a !== 'object' || a === null) continue;
    const o = a as Record<string, unknown>;
    if (typeof o.name !== 'string' || typeof o.browser_download_url !== 'string') continue;
    assets.push({
      name: o.name,
      url: o.browser_download_url,
      size: typeof o.size === 'number' ? o.size : -1,
    });
  }
  return { tag: r.tag_name as string, assets };
}

export function releaseUrl(apiUrl: string, repository: string, version?: string): string {
  const base = apiUrl.replace(/\/+$/, '');
  if (version === undefined) return `${base}/repos/${repository}/releases/latest`;
  const tag = version.startsWith('v') ? version : `v${version}`;
  return `${base}/repos/${repository}/releases/tags/${encodeURIComponent(tag)}`;
}

/**
 * `odh upstream pin`: asks the GitHub releases API for a release, picks one binary per architecture
 * (assets.ts rules), downloads each to measure its size and sha256, and rewrites the manifest
 * atomically. Throws OdhError when the release has no usable binary at all.
 */
export async function pinUpstream(opts: PinOptions = {}): Promise<UpstreamManifest> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const manifestPath = opts.manifestPath ?? defaultManifestPath();
  const previous = await readManifest(manifestPath).catch(() => null);
  const repository = previous?.repository ?? UPSTREAM_REPOSITORY;
  const apiUrl = opts.apiUrl ?? DEFAULT_GITHUB_API;
  const headers: Record<string, string> = {
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
  };
  if (env.GITHUB_TOKEN) headers.authorization = `Bearer ${env.GITHUB_TOKEN}`;
  const http: DownloadOptions = { ...opts.http, env };

  const url = releaseUrl(apiUrl, repository, opts.version);
  log(`asking ${url}`);
  const release = parseRelease(await getJson(url, { ...http, headers }), url);
  const version = release.tag.replace(/^v/, '');

  const { dir: work, cleanup } = await runTempDir('pin');
  const assets: Partial<Record<UpstreamArch, UpstreamAsset>> = {};
  try {
    for (const arch of UPSTREAM_ARCHES) {
      const a = pickAsset(release.assets, arch);
      if (!a) {
        log(`${arch}: no matching asset in ${release.tag}`);
        continue;
      }
      log(`${arch}: downloading ${a.name}`);
      // The API's token is for the API host only; downloadToFile drops it on cross-host redirects.
      const got = await downloadToFile(a.url, path.join(work, arch), {
        ...http,
        headers: env.GITHUB_TOKEN ? { authorization: `Bearer ${env.GITHUB_TOKEN}` } : {},
        ...(a.size > 0 ? { maxBytes: a.size } : {}),
      });
      if (a.size >= 0 && got.size !== a.size) {
        throw new OdhError(
          'DIGEST_MISMATCH',
          `${a.name}: release lists ${a.size} bytes, download has ${got.size}`,
        );
      }
      assets[arch] = { name: a.name, url: a.url, sha256: got.sha256, size: got.size };
      log(`${arch}: ${got.size} bytes sha256 ${got.sha256}`);
    }
  } finally {
    await cleanup();
  }
  if (Object.keys(assets).length === 0) {
    const names = release.assets.map((a) => a.name).join(', ') || 'none';
    throw new OdhError(
      'NOT_FOUND',
      `release ${release.tag} of ${repository} has no oci-delta binary asset (assets: ${names})`,
    );
  }
  const manifest: UpstreamManifest = {
    repository,
    version,
    tag: release.tag,
    assets,
    note: `Pinned by \`odh upstream pin\` from ${url}; edit by hand or re-run to change.`,
  };
  await writeManifest(manifest, manifestPath);
  return manifest;
}
