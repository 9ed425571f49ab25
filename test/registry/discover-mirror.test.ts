import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLayout, openManifest } from '../../src/oci/image.js';
import { parseRef } from '../../src/oci/ref.js';
import { pushLayoutManifest } from '../../src/oci/registry/push.js';
import { startFront } from './front.js';
import { ARTIFACT_TYPE_DELTA } from '../../src/oci/types.js';
import { discoverDelta, discoverDeltaForSource } from '../../src/oci/registry/discover.js';
import { referrersTag } from '../../src/oci/registry/client.js';
import { mirrorFixtures, parseMirrorList, mirrorListPath } from '../../harness/cli/fixtures-mirror.js';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { openImage } from '../../src/oci/image.js';
import { REPO_ROOT } from '../helpers/shared.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
import { hasTool } from '../helpers/tools.js';
import { built, fastClient, makeDelta, pushRef, SMALL_PAIR } from './helpers.js';
import { startRegistry, type TestRegistry } from './registry-process.js';
import { nth } from '../helpers/must.js';

const haveRegistry = hasTool('docker-registry', 'docker-registry');

describe.skipIf(!haveRegistry)('delta discovery and mirroring (docker-registry 2.8)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('finds the delta for a source config among several via the sha256-<hex> tag schema', async () => {
    const f = await built();
    const other = await built('xattrs');
    const client = fastClient(reg.host);
    const repo = 'disc/target';
    await pushRef(client, repo, f.new.ref, 'new');
    // Three deltas to the same target from three different sources.
    const sources = [f.old, f.new, other.old];
    const pushed: string[] = [];
    for (const [i, s] of sources.entries()) {
      const d = await makeDelta(s.ref, f.new.ref);
      try {
        pushed.push((await pushRef(client, repo, d.path, `delta-${i}`)).digest);
      } finally {
        await d.cleanup();
      }
    }
    expect(new Set(pushed).size).toBe(3);

    // distribution 2.8 has no Referrers API (404): the tag-schema index lists all three.
    const refs = await client.referrers(repo, f.new.manifestDigest, ARTIFACT_TYPE_DELTA);
    expect(refs.via).toBe('tag');
    expect(refs.descriptors.map((d) => d.digest).sort()).toEqual([...pushed].sort());
    const index = JSON.parse(
      (await client.getManifest(repo, referrersTag(f.new.manifestDigest))).raw.toString(),
    );
    expect(index.manifests).toHaveLength(3);

    const target = `docker://${reg.host}/${repo}:new`;
    for (const [i, s] of sources.entries()) {
      const found = await discoverDelta(target, s.configDigest, { tlsVerify: false, credentials: null });
      expect(found.descriptor.digest).toBe(pushed[i]);
      expect(found.via).toBe('tag');
      expect(found.candidates).toBe(3);
      expect(found.target).toBe(f.new.manifestDigest);
      const m = await openManifest(found.ref);
      await m.reader.close();
      expect(m.manifestDescriptor.digest).toBe(pushed[i]);
    }
    const bySource = await discoverDeltaForSource(target, other.old.ref, {
      tlsVerify: false,
      credentials: null,
    });
    expect(bySource.descriptor.digest).toBe(pushed[2]);

    // Pushing a delta again does not list it twice.
    const again = await makeDelta(f.old.ref, f.new.ref);
    try {
      expect((await pushRef(client, repo, again.path, 'delta-0')).referrers).toBe('tag-schema-current');
    } finally {
      await again.cleanup();
    }
    expect((await client.referrers(repo, f.new.manifestDigest)).descriptors).toHaveLength(3);

    const unknown = `sha256:${'0'.repeat(64)}`;
    await expect(discoverDelta(target, unknown, { tlsVerify: false, credentials: null })).rejects.toThrow(
      /no delta for source config sha256:0{64} among 3 delta\(s\) referring to .*referrers tag schema/,
    );
  });

  it('mirrors fixtures, verifies them, and a second run uploads no blob', async () => {
    const counted: string[] = [];
    const client = fastClient(reg.host, { onRequest: (m, u) => counted.push(`${m} ${new URL(u).pathname}`) });
    const first = await mirrorFixtures({ registry: `${reg.host}/odh/fixtures`, names: [SMALL_PAIR], client });
    expect(first.pairs).toHaveLength(1);
    const p = nth(first.pairs, 0);
    expect(p.repository).toBe(`odh/fixtures/${SMALL_PAIR}`);
    expect(p.delta.referrers).toBe('tag-schema');
    expect(first.blobsUploaded).toBeGreaterThan(0);
    const f = await built();
    expect(p.old.digest).toBe(f.old.manifestDigest);
    expect(p.new.digest).toBe(f.new.manifestDigest);
    // The delta is found from the mirrored target and the old image's config.
    const found = await discoverDelta(`docker://${reg.host}/${p.repository}:new`, f.old.configDigest, {
      tlsVerify: false,
      credentials: null,
    });
    expect(found.descriptor.digest).toBe(p.delta.digest);

    const client2 = fastClient(reg.host, {
      onRequest: (m, u) => counted.push(`${m} ${new URL(u).pathname}`),
    });
    counted.length = 0;
    const second = await mirrorFixtures({
      registry: `${reg.host}/odh/fixtures`,
      names: [SMALL_PAIR],
      client: client2,
    });
    expect(second.blobsUploaded).toBe(0);
    expect(second.blobsMounted).toBe(0);
    expect(second.manifestsPushed).toBe(0);
    expect(second.blobsSkipped).toBe(first.blobsUploaded + first.blobsSkipped);
    expect(counted.filter((r) => /^(POST|PATCH|PUT) /.test(r))).toEqual([]);
    expect(nth(second.pairs, 0).delta.digest).toBe(p.delta.digest);
  });

  it('odh apply --discover pulls the delta for --source-image from the registry and rebuilds the target', async () => {
    const f = await built();
    await mirrorFixtures({
      registry: `${reg.host}/odh/cli`,
      names: [SMALL_PAIR],
      client: fastClient(reg.host),
    });
    const work = await mkdtemp(path.join(os.tmpdir(), 'odh-discover-'));
    try {
      const out = path.join(work, 'out.tar');
      const target = `docker://${reg.host}/odh/cli/${SMALL_PAIR}:new`;
      const r = await execa(
        'node',
        [
          ODH,
          'apply',
          '--discover',
          target,
          '--source-image',
          f.old.ref,
          '--tls-verify=false',
          '--complete',
          '--json',
          out,
        ],
        { reject: false },
      );
      expect(r.stderr).toMatch(/discovered delta docker:\/\/.*@sha256:[0-9a-f]{64} \(via tag\)/);
      expect(r.exitCode).toBe(0);
      const img = await openImage(`oci-archive:${out}`);
      await img.reader.close();
      expect(img.config.rootfs.diff_ids).toEqual(f.new.diffIds);
      // Without --source-image the discovery cannot choose: a usage error, nothing written.
      const bad = await execa('node', [ODH, 'apply', '--discover', target, path.join(work, 'x.tar')], {
        reject: false,
      });
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('fixtures/mirror.txt names catalog pairs, each once', () => {
    const names = parseMirrorList(readFileSync(mirrorListPath(), 'utf8'));
    expect(names.length).toBeGreaterThan(0);
    expect(names).toContain(SMALL_PAIR);
    expect(() => parseMirrorList('# c\nidentical\nidentical\n')).toThrow(/listed twice .*line 3/);
    expect(() => parseMirrorList('no-such-pair\n')).toThrow(/unknown fixture/);
    expect(() => parseMirrorList('Bad Name\n')).toThrow(/not a fixture name/);
  });
});

describe.skipIf(!haveRegistry)('cross-repository mount and the Referrers API', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('mounts blobs from another repository instead of uploading them', async () => {
    const f = await built();
    const client = fastClient(reg.host);
    const requests: string[] = [];
    await pushRef(client, 'mount/a', f.new.ref, 'new');
    const second = fastClient(reg.host, {
      onRequest: (m, u) => requests.push(`${m} ${new URL(u).pathname}`),
    });
    const reader = await openLayout(parseRef(f.new.ref));
    try {
      const pushed = await pushLayoutManifest(second, 'mount/b', reader, {
        tag: 'new',
        mountFrom: 'mount/a',
      });
      expect(pushed.blobs.uploaded).toBe(0);
      expect(pushed.blobs.mounted).toBeGreaterThan(0);
    } finally {
      await reader.close();
    }
    expect(requests.filter((r) => r.startsWith('PATCH ') || r.startsWith('PUT /v2/mount/b/blobs'))).toEqual(
      [],
    );
    expect((await second.getManifest('mount/b', 'new')).digest).toBe(f.new.manifestDigest);
  });

  it('uses the Referrers API when the registry has one (filtered by artifactType client-side too)', async () => {
    const subject = `sha256:${'c'.repeat(64)}`;
    const delta = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'d'.repeat(64)}`,
      size: 10,
      artifactType: ARTIFACT_TYPE_DELTA,
    };
    const other = { ...delta, digest: `sha256:${'e'.repeat(64)}`, artifactType: 'application/x-signature' };
    const seen: string[] = [];
    const front = await startFront(reg.host, (req, res, forward) => {
      if (req.url!.startsWith('/v2/api/repo/referrers/')) {
        seen.push(req.url!);
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' });
        res.end(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.index.v1+json',
            manifests: [delta, other],
          }),
        );
        return;
      }
      forward();
    });
    try {
      const r = await fastClient(front.host).referrers('api/repo', subject, ARTIFACT_TYPE_DELTA);
      expect(r.via).toBe('api');
      expect(r.descriptors).toEqual([delta]);
      expect(seen).toEqual([
        `/v2/api/repo/referrers/${subject}?artifactType=${encodeURIComponent(ARTIFACT_TYPE_DELTA)}`,
      ]);
    } finally {
      await front.stop();
    }
  });

  it('leaves the tag schema alone when the registry reports handling subject (OCI-Subject)', async () => {
    const f = await built();
    const puts: string[] = [];
    const front = await startFront(reg.host, (req, _res, forward) => {
      if (req.method === 'PUT' && req.url!.includes('/manifests/')) {
        puts.push(req.url!);
        forward({ addHeaders: { 'oci-subject': f.new.manifestDigest } });
        return;
      }
      forward();
    });
    const d = await makeDelta(f.old.ref, f.new.ref);
    try {
      const client = fastClient(front.host);
      await pushRef(client, 'api/subject', f.new.ref, 'new');
      expect((await pushRef(client, 'api/subject', d.path, 'delta')).referrers).toBe('api');
    } finally {
      await d.cleanup();
      await front.stop();
    }
    expect(puts).toEqual(['/v2/api/subject/manifests/new', '/v2/api/subject/manifests/delta']);
  });
});
