/**
 * Pin and fetch of the upstream binary against a stand-in GitHub (local HTTP server): the real
 * GitHub is out of reach here, so every test name says "stand-in".
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveUpstream } from '../../harness/upstream/fetch.js';
import { defaultManifestPath, readManifest, renderManifest } from '../../harness/upstream/manifest.js';
import { pinUpstream } from '../../harness/upstream/pin.js';
import type { UpstreamManifest } from '../../harness/upstream/types.js';
import { OdhError } from '../../src/util/errors.js';
import { sha256, standinBinaryScript, startStandinServer, type StandinServer } from './upstream-standin.js';
import { nth, xorByte } from '../helpers/must.js';

const VERSION = '0.6.0';
const X86 = Buffer.from(standinBinaryScript({ version: `oci-delta version ${VERSION}` }));
const ARM = Buffer.from(`${standinBinaryScript({ version: `oci-delta version ${VERSION}` })}# aarch64\n`);
const ASSETS = [
  { name: `oci-delta-${VERSION}.tar.gz`, body: Buffer.from('source tarball') },
  { name: `oci-delta-${VERSION}-x86_64-static.sha256`, body: Buffer.from(`${sha256(X86)}\n`) },
  { name: 'oci-delta-x86_64', body: Buffer.from('#!/bin/sh\nexit 9\n') },
  { name: `oci-delta-${VERSION}-x86_64-static`, body: X86 },
  { name: `oci-delta-${VERSION}-aarch64-static`, body: ARM },
];
const FAST = { tries: 4, backoffMs: 5 };

let server: StandinServer;
let work: string;
let cacheRoot: string;
/** No proxy variables, no ODH_OCI_DELTA: the tests must not depend on the caller's environment. */
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  server = await startStandinServer({ version: VERSION, assets: ASSETS });
  work = mkdtempSync(path.join(os.tmpdir(), 'odh-upstream-test-'));
  cacheRoot = path.join(work, 'cache');
  env = { HOME: work, PATH: process.env.PATH };
});

afterEach(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

function assetUrl(name: string): string {
  return `${server.url}/download/v${VERSION}/${name}`;
}

function pinnedManifest(over: Partial<UpstreamManifest['assets']['x86_64']> = {}): UpstreamManifest {
  return {
    repository: 'containers/oci-delta',
    version: VERSION,
    assets: {
      x86_64: {
        url: assetUrl(`oci-delta-${VERSION}-x86_64-static`),
        sha256: sha256(X86),
        size: X86.length,
        ...over,
      },
    },
  };
}

const cachedFile = () => path.join(cacheRoot, VERSION, 'x86_64', 'oci-delta');
/** Everything under the cache (temp names included): "nothing cached" means this is empty. */
function cacheEntries(): string[] {
  const dir = path.join(cacheRoot, VERSION, 'x86_64');
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('odh upstream pin (stand-in GitHub releases API)', () => {
  it('stand-in: pins the latest release, picks the static binaries, records sha256 and size', async () => {
    const file = path.join(work, 'manifest.json');
    writeFileSync(
      file,
      renderManifest({ repository: 'containers/oci-delta', version: null, assets: {}, note: 'x' }),
    );
    const m = await pinUpstream({ apiUrl: server.url, manifestPath: file, env, http: FAST });
    const onDisk = await readManifest(file);
    expect(onDisk).toEqual(m);
    expect(onDisk.version).toBe(VERSION);
    expect(onDisk.tag).toBe(`v${VERSION}`);
    expect(onDisk.assets.x86_64).toEqual({
      name: `oci-delta-${VERSION}-x86_64-static`,
      url: assetUrl(`oci-delta-${VERSION}-x86_64-static`),
      sha256: sha256(X86),
      size: X86.length,
    });
    expect(onDisk.assets.aarch64?.sha256).toBe(sha256(ARM));
    expect(onDisk.assets.aarch64?.size).toBe(ARM.length);
    expect(nth(server.requests, 0).path).toBe('/repos/containers/oci-delta/releases/latest');
    expect(readdirSync(work).filter((n) => n.startsWith('.odh-tmp'))).toEqual([]);
  });

  it('stand-in: --version asks for tag v{version}; the token goes to the API host only, not across the redirect', async () => {
    const file = path.join(work, 'manifest.json');
    await pinUpstream({
      version: VERSION,
      apiUrl: server.url,
      manifestPath: file,
      env: { ...env, GITHUB_TOKEN: 'secret-token' },
      http: FAST,
    });
    expect(nth(server.requests, 0).path).toBe(`/repos/containers/oci-delta/releases/tags/v${VERSION}`);
    expect(nth(server.requests, 0).authorization).toBe('Bearer secret-token');
    const storage = server.requests.filter((r) => r.path.startsWith('/storage/'));
    expect(storage.length).toBe(2);
    for (const r of storage) {
      expect(r.host).toBe(`localhost:${server.port}`);
      expect(r.authorization).toBeUndefined();
    }
  });

  it('stand-in: an unknown release version is a NOT_FOUND error and the manifest is untouched', async () => {
    const file = path.join(work, 'manifest.json');
    const before = renderManifest({ repository: 'containers/oci-delta', version: null, assets: {} });
    writeFileSync(file, before);
    const err = await pinUpstream({
      version: '9.9.9',
      apiUrl: server.url,
      manifestPath: file,
      env,
      http: FAST,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OdhError);
    expect((err as OdhError).code).toBe('NOT_FOUND');
    expect((err as OdhError).message).toMatch(/HTTP 404 .*releases\/tags\/v9\.9\.9/);
    expect(readFileSync(file, 'utf8')).toBe(before);
  });
});

describe('resolveUpstream / odh upstream fetch (stand-in asset downloads)', () => {
  it('stand-in: downloads through the 302 redirect, verifies, caches an executable, probes it', async () => {
    const r = await resolveUpstream({
      manifest: pinnedManifest(),
      arch: 'x86_64',
      cacheRoot,
      env,
      http: FAST,
    });
    expect(r).toEqual({
      status: 'available',
      path: cachedFile(),
      version: VERSION,
      source: 'download',
      capabilities: { binaryDiff: true },
    });
    expect(readFileSync(cachedFile()).equals(X86)).toBe(true);
    expect(statSync(cachedFile()).mode & 0o777).toBe(0o755);
    expect(cacheEntries()).toEqual(['oci-delta']);
    expect(server.requests.map((q) => q.path)).toEqual([
      `/download/v${VERSION}/oci-delta-${VERSION}-x86_64-static`,
      `/storage/oci-delta-${VERSION}-x86_64-static`,
    ]);
  });

  it('stand-in: a sha256 mismatch is refused and nothing is cached', async () => {
    const wrong = sha256(Buffer.from('something else'));
    const r = await resolveUpstream({
      manifest: pinnedManifest({ sha256: wrong }),
      arch: 'x86_64',
      cacheRoot,
      env,
      http: FAST,
    });
    expect(r.status).toBe('unavailable');
    if (r.status === 'unavailable')
      expect(r.reason).toMatch(new RegExp(`sha256 mismatch .*expected ${wrong}, got ${sha256(X86)}`));
    expect(cacheEntries()).toEqual([]);
  });

  it('stand-in: a size mismatch (manifest says fewer bytes) is refused and nothing is cached', async () => {
    const r = await resolveUpstream({
      manifest: pinnedManifest({ size: X86.length - 1 }),
      arch: 'x86_64',
      cacheRoot,
      env,
      http: FAST,
    });
    expect(r.status).toBe('unavailable');
    if (r.status === 'unavailable') expect(r.reason).toMatch(/more than the expected/);
    expect(cacheEntries()).toEqual([]);
  });

  it('stand-in: HTTP 404 for the asset gives "unavailable" naming the status, without retries', async () => {
    const r = await resolveUpstream({
      manifest: pinnedManifest({ url: `${server.url}/storage/no-such-asset` }),
      arch: 'x86_64',
      cacheRoot,
      env,
      http: FAST,
    });
    expect(r.status).toBe('unavailable');
    if (r.status === 'unavailable') expect(r.reason).toMatch(/HTTP 404 from .*\/storage\/no-such-asset/);
    expect(server.requests.length).toBe(1);
    expect(cacheEntries()).toEqual([]);
  });

  it('stand-in: a truncated transfer (Content-Length larger than the body) is retried and then succeeds', async () => {
    const p = `/storage/oci-delta-${VERSION}-x86_64-static`;
    server.faults.push({ kind: 'truncate', path: p, times: 1 });
    const retries: string[] = [];
    const r = await resolveUpstream({
      manifest: pinnedManifest(),
      arch: 'x86_64',
      cacheRoot,
      env,
      http: { ...FAST, onRetry: (_n, why) => retries.push(why) },
    });
    expect(r.status).toBe('available');
    expect(server.requests.filter((q) => q.path === p).length).toBe(2);
    expect(retries.length).toBe(1);
    expect(readFileSync(cachedFile()).equals(X86)).toBe(true);
  });

  it('stand-in: truncation on every try gives up after 4 tries, nothing cached', async () => {
    const p = `/storage/oci-delta-${VERSION}-x86_64-static`;
    server.faults.push({ kind: 'truncate', path: p, times: 100 });
    const r = await resolveUpstream({
      manifest: pinnedManifest(),
      arch: 'x86_64',
      cacheRoot,
      env,
      http: FAST,
    });
    expect(r.status).toBe('unavailable');
    if (r.status === 'unavailable') expect(r.reason).toMatch(/failed after 4 tries: /);
    expect(server.requests.filter((q) => q.path === p).length).toBe(4);
    expect(cacheEntries()).toEqual([]);
  });

  it('stand-in: 5xx answers are retried with back-off', async () => {
    const p = `/download/v${VERSION}/oci-delta-${VERSION}-x86_64-static`;
    server.faults.push({ kind: 'status', path: p, status: 503, times: 2 });
    const r = await resolveUpstream({
      manifest: pinnedManifest(),
      arch: 'x86_64',
      cacheRoot,
      env,
      http: FAST,
    });
    expect(r.status).toBe('available');
    expect(server.requests.filter((q) => q.path === p).length).toBe(3);
  });

  it('stand-in: server down gives "unavailable" with a reason, never a throw', async () => {
    const m = pinnedManifest();
    await server.close();
    const r = await resolveUpstream({ manifest: m, arch: 'x86_64', cacheRoot, env, http: FAST });
    expect(r.status).toBe('unavailable');
    if (r.status === 'unavailable') expect(r.reason).toMatch(/failed after 4 tries: .*ECONNREFUSED/);
    expect(cacheEntries()).toEqual([]);
  });

  it('stand-in: a verified cached binary is reused offline (server stopped), and re-verified on use', async () => {
    const m = pinnedManifest();
    expect((await resolveUpstream({ manifest: m, arch: 'x86_64', cacheRoot, env, http: FAST })).status).toBe(
      'available',
    );
    await server.close();
    const again = await resolveUpstream({ manifest: m, arch: 'x86_64', cacheRoot, env, http: FAST });
    expect(again).toMatchObject({ status: 'available', source: 'cache', path: cachedFile() });
    const offline = await resolveUpstream({ manifest: m, arch: 'x86_64', cacheRoot, env, offline: true });
    expect(offline).toMatchObject({ status: 'available', source: 'cache' });

    // Same size, one byte changed: the cache copy no longer verifies and is removed.
    const bytes = readFileSync(cachedFile());
    xorByte(bytes, bytes.length - 2, 1);
    writeFileSync(cachedFile(), bytes);
    const tampered = await resolveUpstream({ manifest: m, arch: 'x86_64', cacheRoot, env, offline: true });
    expect(tampered.status).toBe('unavailable');
    if (tampered.status === 'unavailable')
      expect(tampered.reason).toMatch(/not in the cache and downloads are off/);
    expect(cacheEntries()).toEqual([]);
  });

  it('stand-in: a cached copy that no longer verifies is replaced by a fresh verified download', async () => {
    const m = pinnedManifest();
    expect((await resolveUpstream({ manifest: m, arch: 'x86_64', cacheRoot, env, http: FAST })).status).toBe(
      'available',
    );
    writeFileSync(cachedFile(), Buffer.alloc(X86.length, 0x41));
    const r = await resolveUpstream({ manifest: m, arch: 'x86_64', cacheRoot, env, http: FAST });
    expect(r).toMatchObject({ status: 'available', source: 'download' });
    expect(readFileSync(cachedFile()).equals(X86)).toBe(true);
    expect(cacheEntries()).toEqual(['oci-delta']);
  });

  it('the committed manifest is unpinned: "not built or pinned (run odh upstream build; upstream publishes no binaries)"', async () => {
    const committed = await readManifest(defaultManifestPath());
    expect(committed.version).toBeNull();
    const r = await resolveUpstream({ arch: 'x86_64', cacheRoot, env });
    expect(r).toEqual({
      status: 'unavailable',
      reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
    });
  });

  it('no pinned asset for this architecture is "unavailable", not a crash', async () => {
    const r = await resolveUpstream({ manifest: pinnedManifest(), arch: 'aarch64', cacheRoot, env });
    expect(r).toEqual({
      status: 'unavailable',
      reason: `no aarch64 asset pinned for oci-delta ${VERSION} (run odh upstream pin, or odh upstream build)`,
    });
  });

  it('stand-in: ODH_OCI_DELTA / localBinary uses a local binary as is, reported as "local"', async () => {
    const bin = path.join(work, 'oci-delta');
    writeFileSync(bin, standinBinaryScript({ version: 'oci-delta version 0.5.1', binaryDiff: false }), {
      mode: 0o755,
    });
    const viaEnv = await resolveUpstream({ env: { ...env, ODH_OCI_DELTA: bin }, cacheRoot });
    expect(viaEnv).toEqual({
      status: 'available',
      path: bin,
      version: '0.5.1',
      source: 'local',
      capabilities: { binaryDiff: false },
    });
    const missing = await resolveUpstream({ localBinary: path.join(work, 'nope'), env, cacheRoot });
    expect(missing.status).toBe('unavailable');
    if (missing.status === 'unavailable')
      expect(missing.reason).toMatch(/^local oci-delta: .*nope: no such file$/);
    expect(server.requests).toEqual([]);
  });
});
