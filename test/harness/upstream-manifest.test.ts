/** The pinned manifest (hand-edited, so validated field by field) and the release-asset naming rules. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pickAsset, scoreAssetName } from '../../harness/upstream/assets.js';
import { runChild } from '../../harness/upstream/child.js';
import {
  defaultManifestPath,
  hostArch,
  parseManifest,
  pinnedAsset,
  readManifest,
  renderManifest,
  writeManifest,
} from '../../harness/upstream/manifest.js';
import type { UpstreamManifest } from '../../harness/upstream/types.js';
import { OdhError } from '../../src/util/errors.js';
import { REPO_ROOT } from '../helpers/shared.js';

const A = 'a'.repeat(64);
const pinned: UpstreamManifest = {
  repository: 'containers/oci-delta',
  version: '0.6.0',
  tag: 'v0.6.0',
  assets: {
    aarch64: { name: 'oci-delta-aarch64', url: 'https://example.org/a', sha256: A, size: 10 },
    x86_64: { url: 'https://example.org/x', sha256: A, size: 11 },
  },
  note: 'hand-pinned',
};

describe('upstream manifest', () => {
  it('the committed manifest is at harness/upstream/manifest.json and unpinned, with a note', async () => {
    expect(defaultManifestPath()).toBe(path.join(REPO_ROOT, 'harness', 'upstream', 'manifest.json'));
    const m = await readManifest();
    expect(m.repository).toBe('containers/oci-delta');
    expect(m.version).toBeNull();
    expect(m.assets).toEqual({});
    expect(m.note).toMatch(/odh upstream pin/);
    expect(pinnedAsset(m, 'x86_64')).toEqual({
      ok: false,
      reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
    });
  });

  it('render → parse is the identity, keys in a fixed order (x86_64 before aarch64)', () => {
    const text = renderManifest(pinned);
    expect(parseManifest(text)).toEqual(pinned);
    expect(Object.keys(JSON.parse(text) as object)).toEqual([
      'repository',
      'version',
      'tag',
      'assets',
      'note',
    ]);
    expect(Object.keys((JSON.parse(text) as { assets: object }).assets)).toEqual(['x86_64', 'aarch64']);
    expect(text.endsWith('}\n')).toBe(true);
  });

  it('hand edits that break a field are FORMAT errors naming the file and the field', () => {
    const bad = (patch: Record<string, unknown>, msg: RegExp) => {
      const text = JSON.stringify({ ...JSON.parse(renderManifest(pinned)), ...patch });
      const e = (() => {
        try {
          parseManifest(text, 'edited.json');
        } catch (err) {
          return err;
        }
        return null;
      })();
      expect(e).toBeInstanceOf(OdhError);
      expect((e as OdhError).code).toBe('FORMAT');
      expect((e as OdhError).message).toMatch(msg);
      expect((e as OdhError).message).toMatch(/\(file edited\.json\)$/);
    };
    const asset = { url: 'https://example.org/x', sha256: A, size: 1 };
    bad({ version: '' }, /version is neither null nor a non-empty string/);
    bad({ repository: 'oci-delta' }, /repository is not "owner\/name"/);
    bad({ assets: { riscv64: asset } }, /unknown architecture "riscv64"/);
    bad(
      { assets: { x86_64: { ...asset, sha256: A.toUpperCase() } } },
      /assets\.x86_64\.sha256 is not 64 lowercase hex/,
    );
    bad({ assets: { x86_64: { ...asset, size: -1 } } }, /assets\.x86_64\.size is not a positive integer/);
    bad(
      { assets: { x86_64: { ...asset, url: 'file:///etc/passwd' } } },
      /assets\.x86_64\.url is not an http\(s\) URL/,
    );
    expect(() => parseManifest('{"repository":', 'x.json')).toThrow(/upstream manifest: not valid JSON/);
  });

  it('writeManifest replaces the file atomically and leaves no temp file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'odh-manifest-'));
    try {
      const file = path.join(dir, 'manifest.json');
      await writeManifest({ repository: 'containers/oci-delta', version: null, assets: {} }, file);
      await writeManifest(pinned, file);
      expect(readFileSync(file, 'utf8')).toBe(renderManifest(pinned));
      expect(readdirSync(dir)).toEqual(['manifest.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('host architecture names follow the release names', () => {
    expect(hostArch('x64')).toBe('x86_64');
    expect(hostArch('arm64')).toBe('aarch64');
    expect(hostArch('s390x')).toBeNull();
    expect(pinnedAsset({ ...pinned, assets: { x86_64: pinned.assets.x86_64 } }, 'aarch64')).toEqual({
      ok: false,
      reason: 'no aarch64 asset pinned for oci-delta 0.6.0 (run odh upstream pin, or odh upstream build)',
    });
  });
});

describe('release asset choice (spec oci-delta §7: names unknown, matched by rule)', () => {
  const names = (...n: string[]) => n.map((name) => ({ name }));

  it('prefers a static binary over a bare one; skips checksums, signatures and source tarballs', () => {
    const assets = names(
      'oci-delta-0.6.0.tar.gz',
      'oci-delta-0.6.0-x86_64-static.sha256',
      'oci-delta-0.6.0-x86_64-static.sig',
      'oci-delta-x86_64',
      'oci-delta-0.6.0-x86_64-static',
      'oci-delta-0.6.0-aarch64-static',
    );
    expect(pickAsset(assets, 'x86_64')?.name).toBe('oci-delta-0.6.0-x86_64-static');
    expect(pickAsset(assets, 'aarch64')?.name).toBe('oci-delta-0.6.0-aarch64-static');
  });

  it('accepts bare oci-delta-<arch> and amd64/arm64 aliases', () => {
    expect(pickAsset(names('oci-delta-aarch64', 'oci-delta-x86_64'), 'aarch64')?.name).toBe(
      'oci-delta-aarch64',
    );
    const gr = names('oci-delta_0.6.0_linux_amd64', 'oci-delta_0.6.0_linux_arm64', 'checksums.txt');
    expect(pickAsset(gr, 'x86_64')?.name).toBe('oci-delta_0.6.0_linux_amd64');
    expect(pickAsset(gr, 'aarch64')?.name).toBe('oci-delta_0.6.0_linux_arm64');
  });

  it('refuses packages, other systems, other tools and look-alike architectures', () => {
    for (const n of [
      'oci-delta-0.6.0-1.fc44.x86_64.rpm',
      'oci-delta-0.6.0-1.fc44.src.rpm',
      'oci-delta-darwin-amd64',
      'oci-delta-windows-amd64.exe',
      'tar-diff-x86_64',
      'oci-delta-x86_64.tar.zst',
      'oci-delta-x86_64.intoto.jsonl',
    ]) {
      expect(scoreAssetName(n, 'x86_64'), n).toBeNull();
    }
    expect(scoreAssetName('oci-delta-arm64e', 'aarch64')).toBeNull();
    expect(pickAsset(names('oci-delta-x86_64'), 'aarch64')).toBeNull();
  });

  it('ties are broken by length then bytes, independent of the listing order', () => {
    const a = names('oci-delta-static-x86_64-b', 'oci-delta-static-x86_64-a');
    expect(pickAsset(a, 'x86_64')?.name).toBe('oci-delta-static-x86_64-a');
    expect(pickAsset([...a].reverse(), 'x86_64')?.name).toBe('oci-delta-static-x86_64-a');
  });
});

describe('peak RSS without GNU time', () => {
  it('/proc VmHWM polling measures a running child', async () => {
    const r = await runChild('sh', ['-c', 'sleep 0.3'], {
      timeoutMs: 10_000,
      measureRss: true,
      rssVia: 'proc',
    });
    expect(r.exitCode).toBe(0);
    expect(r.peakRssKiB).toBeGreaterThan(100);
  });
});
