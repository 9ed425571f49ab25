import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage, openManifest } from '../../src/oci/image.js';
import { MEDIA_TYPE_IMAGE_MANIFEST, parseManifest, ARTIFACT_TYPE_DELTA } from '../../src/oci/types.js';
import { parseDeltaArtifact } from '../../src/delta/artifact.js';
import { applyDelta } from '../../src/delta/apply.js';
import { hasTool } from '../helpers/tools.js';
import { built, fastClient, localBytes, makeDelta, pushRef } from './helpers.js';
import { startRegistry, type TestRegistry } from './registry-process.js';

const haveRegistry = hasTool('docker-registry', 'docker-registry');

describe.skipIf(!haveRegistry)('registry round trip (docker-registry 2.8 on loopback)', () => {
  let reg: TestRegistry;
  let tmp: string;
  beforeAll(async () => {
    reg = await startRegistry();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-regrt-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it('pushes an image and pulls manifest, config and layers back byte-identical', async () => {
    const f = await built();
    const client = fastClient(reg.host);
    const pushed = await pushRef(client, 'rt/image', f.new.ref, 'new');
    expect(pushed.digest).toBe(f.new.manifestDigest);
    expect(pushed.blobs.uploaded).toBeGreaterThan(1);

    const local = await localBytes(f.new.ref, f.new.manifestDigest);
    const byTag = await client.getManifest('rt/image', 'new');
    expect(byTag.raw.equals(local)).toBe(true);
    expect(byTag.mediaType).toBe(MEDIA_TYPE_IMAGE_MANIFEST);
    const m = parseManifest(local);
    for (const d of [m.config, ...m.layers]) {
      const remote = await client.readBlob('rt/image', d, 64 << 20);
      expect(remote.equals(await localBytes(f.new.ref, d.digest))).toBe(true);
    }

    // The same through the generic reader: docker:// wherever a layout ref is accepted.
    const img = await openImage(`docker://${reg.host}/rt/image:new`);
    try {
      expect(img.manifestDescriptor.digest).toBe(f.new.manifestDigest);
      expect(img.manifestRaw.equals(local)).toBe(true);
      expect(img.config.rootfs.diff_ids).toEqual(f.new.diffIds);
    } finally {
      await img.reader.close();
    }
    const byDigest = await openImage(`docker://${reg.host}/rt/image@${f.new.manifestDigest}`);
    await byDigest.reader.close();
    expect(byDigest.manifestRaw.equals(local)).toBe(true);
  });

  it('pushes a delta artifact with subject and reads it back as a delta', async () => {
    const f = await built();
    const client = fastClient(reg.host);
    await pushRef(client, 'rt/delta', f.new.ref, 'new');
    const delta = await makeDelta(f.old.ref, f.new.ref);
    try {
      const pushed = await pushRef(client, 'rt/delta', delta.path, 'delta-zstd');
      // distribution 2.8 ignores `subject`: we keep the referrers tag schema ourselves.
      expect(pushed.referrers).toBe('tag-schema');
      const local = await openManifest(delta.path);
      await local.reader.close();
      expect(pushed.digest).toBe(local.manifestDescriptor.digest);

      const remote = await openManifest(`docker://${reg.host}/rt/delta:delta-zstd`);
      try {
        expect(remote.manifestRaw.equals(local.manifestRaw)).toBe(true);
        expect(remote.manifest.artifactType).toBe(ARTIFACT_TYPE_DELTA);
        expect(remote.manifest.subject?.digest).toBe(f.new.manifestDigest);
        const a = await parseDeltaArtifact(remote.manifestRaw, {
          readBlob: (d) => remote.reader.readBlobBytes(d, 64 << 20),
        });
        expect(a.targetManifestDescriptor.digest).toBe(f.new.manifestDigest);
        for (const l of a.layers) {
          if (!l.delta) continue;
          const bytes = await remote.reader.readBlobBytes(l.delta, 64 << 20);
          const reader = (await openManifest(delta.path)).reader;
          expect(bytes.equals(await reader.readBlobBytes(l.delta, 64 << 20))).toBe(true);
          await reader.close();
        }
      } finally {
        await remote.reader.close();
      }
      // A normal image is not a delta: the error says so.
      await expect(
        applyDelta({
          delta: `docker://${reg.host}/rt/delta:new`,
          source: { kind: 'image', ref: f.old.ref },
          output: path.join(tmp, 'not-a-delta.oci-archive'),
        }),
      ).rejects.toThrow(/not a delta artifact/);
    } finally {
      await delta.cleanup();
    }
  });

  it('odh apply takes a docker:// delta and rebuilds the target image', async () => {
    const f = await built();
    const client = fastClient(reg.host);
    await pushRef(client, 'rt/apply', f.new.ref, 'new');
    const delta = await makeDelta(f.old.ref, f.new.ref);
    try {
      await pushRef(client, 'rt/apply', delta.path, 'delta-zstd');
    } finally {
      await delta.cleanup();
    }
    const out = path.join(tmp, 'applied.oci-archive');
    const r = await applyDelta({
      delta: `docker://${reg.host}/rt/apply:delta-zstd`,
      source: { kind: 'image', ref: f.old.ref },
      output: out,
      complete: true,
    });
    const img = await openImage(out);
    await img.reader.close();
    expect(img.config.rootfs.diff_ids).toEqual(f.new.diffIds);
    expect(r.configDigest).toBe(f.new.configDigest);
  });

  it.skipIf(!hasTool('skopeo', 'skopeo'))(
    'skopeo copies what we pushed and keeps the manifest digests',
    async () => {
      const f = await built();
      const client = fastClient(reg.host);
      await pushRef(client, 'rt/skopeo', f.new.ref, 'new');
      const delta = await makeDelta(f.old.ref, f.new.ref);
      let deltaDigest: string;
      try {
        deltaDigest = (await pushRef(client, 'rt/skopeo', delta.path, 'delta-zstd')).digest;
      } finally {
        await delta.cleanup();
      }
      for (const [tag, want] of [
        ['new', f.new.manifestDigest],
        ['delta-zstd', deltaDigest],
      ] as const) {
        const dir = path.join(tmp, `skopeo-${tag}`);
        execFileSync('skopeo', [
          'copy',
          '--quiet',
          '--src-tls-verify=false',
          `docker://${reg.host}/rt/skopeo:${tag}`,
          `oci:${dir}`,
        ]);
        const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
        expect(index.manifests[0].digest).toBe(want);
      }
    },
  );
});
