import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OdhError } from '../../src/util/errors.js';
import {
  UPSTREAM_ARCHES,
  type UpstreamArch,
  type UpstreamAsset,
  type UpstreamBuild,
  type UpstreamManifest,
} from './types.js';

/** The upstream repository (spec oci-delta §7: moved to containers/oci-delta). */
export const UPSTREAM_REPOSITORY = 'containers/oci-delta';

/**
 * The committed manifest. Resolved relative to this module: harness/upstream/manifest.json from the
 * sources (vitest, tsx), ../../../harness/upstream/manifest.json from dist/ (tsc does not copy json).
 */
export function defaultManifestPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const parts = here.split(path.sep);
  const distAt = parts.lastIndexOf('dist');
  if (distAt >= 0) {
    return path.join(
      parts.slice(0, distAt).join(path.sep) || path.sep,
      'harness',
      'upstream',
      'manifest.json',
    );
  }
  return path.join(here, 'manifest.json');
}

const HEX64 = /^[0-9a-f]{64}$/;

function fail(file: string, what: string): never {
  throw new OdhError('FORMAT', `upstream manifest: ${what}`, { file });
}

function parseAsset(file: string, arch: string, v: unknown): UpstreamAsset {
  if (typeof v !== 'object' || v === null) fail(file, `assets.${arch} is not an object`);
  const a = v as Record<string, unknown>;
  if (typeof a.url !== 'string' || !/^https?:\/\//.test(a.url))
    fail(file, `assets.${arch}.url is not an http(s) URL`);
  if (typeof a.sha256 !== 'string' || !HEX64.test(a.sha256)) {
    fail(file, `assets.${arch}.sha256 is not 64 lowercase hex digits`);
  }
  if (typeof a.size !== 'number' || !Number.isSafeInteger(a.size) || a.size <= 0) {
    fail(file, `assets.${arch}.size is not a positive integer`);
  }
  if (a.name !== undefined && typeof a.name !== 'string') fail(file, `assets.${arch}.name is not a string`);
  const out: UpstreamAsset = { url: a.url, sha256: a.sha256, size: a.size };
  if (typeof a.name === 'string') out.name = a.name;
  return out;
}

function parseBuild(file: string, arch: string, v: unknown): UpstreamBuild {
  if (typeof v !== 'object' || v === null) fail(file, `builds.${arch} is not an object`);
  const b = v as Record<string, unknown>;
  for (const k of ['version', 'commit', 'go', 'binary', 'package', 'tags'] as const) {
    if (typeof b[k] !== 'string') fail(file, `builds.${arch}.${k} is not a string`);
  }
  if (!/^[\w.+-]+$/.test(b.binary as string)) fail(file, `builds.${arch}.binary is not a plain file name`);
  if (typeof b.sha256 !== 'string' || !HEX64.test(b.sha256)) {
    fail(file, `builds.${arch}.sha256 is not 64 lowercase hex digits`);
  }
  if (typeof b.size !== 'number' || !Number.isSafeInteger(b.size) || b.size <= 0) {
    fail(file, `builds.${arch}.size is not a positive integer`);
  }
  return {
    version: b.version as string,
    commit: b.commit as string,
    go: b.go as string,
    binary: b.binary as string,
    package: b.package as string,
    tags: b.tags as string,
    sha256: b.sha256,
    size: b.size,
  };
}

/** Validates a parsed manifest: people edit it by hand, so every field is checked. */
export function parseManifest(text: string, file = 'manifest.json'): UpstreamManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'not a JSON object');
  const m = raw as Record<string, unknown>;
  if (typeof m.repository !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(m.repository)) {
    fail(file, 'repository is not "owner/name"');
  }
  if (m.version !== null && (typeof m.version !== 'string' || m.version === '')) {
    fail(file, 'version is neither null nor a non-empty string');
  }
  if (m.tag !== undefined && typeof m.tag !== 'string') fail(file, 'tag is not a string');
  if (m.note !== undefined && typeof m.note !== 'string') fail(file, 'note is not a string');
  const assetsRaw = m.assets ?? {};
  if (typeof assetsRaw !== 'object' || assetsRaw === null || Array.isArray(assetsRaw)) {
    fail(file, 'assets is not an object');
  }
  const assets: Partial<Record<UpstreamArch, UpstreamAsset>> = {};
  for (const [arch, v] of Object.entries(assetsRaw)) {
    if (!(UPSTREAM_ARCHES as readonly string[]).includes(arch)) {
      fail(
        file,
        `assets has unknown architecture ${JSON.stringify(arch)} (want ${UPSTREAM_ARCHES.join(', ')})`,
      );
    }
    assets[arch as UpstreamArch] = parseAsset(file, arch, v);
  }
  const out: UpstreamManifest = { repository: m.repository, version: m.version as string | null, assets };
  if (m.builds !== undefined) {
    if (typeof m.builds !== 'object' || m.builds === null || Array.isArray(m.builds))
      fail(file, 'builds is not an object');
    const builds: Partial<Record<UpstreamArch, UpstreamBuild>> = {};
    for (const [arch, v] of Object.entries(m.builds)) {
      if (!(UPSTREAM_ARCHES as readonly string[]).includes(arch))
        fail(file, `builds has unknown architecture ${JSON.stringify(arch)}`);
      builds[arch as UpstreamArch] = parseBuild(file, arch, v);
    }
    out.builds = builds;
  }
  if (typeof m.tag === 'string') out.tag = m.tag;
  if (typeof m.note === 'string') out.note = m.note;
  return out;
}

export async function readManifest(file = defaultManifestPath()): Promise<UpstreamManifest> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new OdhError('NOT_FOUND', `upstream manifest unreadable: ${(e as Error).message}`, { file });
  }
  return parseManifest(text, file);
}

/** Human-editable rendering: two-space indent, fixed key order, trailing newline. */
export function renderManifest(m: UpstreamManifest): string {
  const assets: Record<string, UpstreamAsset> = {};
  for (const arch of UPSTREAM_ARCHES) {
    const a = m.assets[arch];
    if (a)
      assets[arch] = {
        ...(a.name !== undefined ? { name: a.name } : {}),
        url: a.url,
        sha256: a.sha256,
        size: a.size,
      };
  }
  const ordered = {
    repository: m.repository,
    version: m.version,
    ...(m.tag !== undefined ? { tag: m.tag } : {}),
    assets,
    ...(m.builds !== undefined ? { builds: m.builds } : {}),
    ...(m.note !== undefined ? { note: m.note } : {}),
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

/** Writes the manifest atomically (temp file in the same directory, then rename). */
export async function writeManifest(m: UpstreamManifest, file = defaultManifestPath()): Promise<void> {
  const tmp = path.join(
    path.dirname(file),
    `.odh-tmp-${path.basename(file)}-${randomBytes(6).toString('hex')}`,
  );
  try {
    await fs.writeFile(tmp, renderManifest(m), { flag: 'wx' });
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw new OdhError('IO', `cannot write upstream manifest: ${(e as Error).message}`, { file });
  }
}

/** The pinned asset for `arch`, or why there is none (the reason becomes an "unavailable" status). */
export function pinnedAsset(
  m: UpstreamManifest,
  arch: UpstreamArch,
): { ok: true; version: string; asset: UpstreamAsset } | { ok: false; reason: string } {
  if (m.version === null)
    return {
      ok: false,
      reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
    };
  const asset = m.assets[arch];
  if (!asset) {
    return {
      ok: false,
      reason: `no ${arch} asset pinned for oci-delta ${m.version} (run odh upstream pin, or odh upstream build)`,
    };
  }
  return { ok: true, version: m.version, asset };
}

/** Node's `process.arch` → the release architecture name; null for others. */
export function hostArch(nodeArch: string = process.arch): UpstreamArch | null {
  if (nodeArch === 'x64') return 'x86_64';
  if (nodeArch === 'arm64') return 'aarch64';
  return null;
}
