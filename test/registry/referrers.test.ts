/**
 * The same registry scenario against every registry available (test/registry/registries.ts): push an
 * image pair and a delta, find the delta through the target's referrers (the Referrers API where the
 * registry serves it, else the sha256-<hex> tag schema), and apply it with `odh apply --discover
 * HOST/REPO:TAG` (the spelling its help gives), checking the result's layer diff_ids against the
 * new image's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/oci/image.js';
import { ARTIFACT_TYPE_DELTA } from '../../src/oci/types.js';
import { discoverDelta } from '../../src/oci/registry/discover.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { built, fastClient, makeDelta, pushRef } from './helpers.js';
import { registryKinds, type RunningRegistry } from './registries.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const kinds = await registryKinds();

describe.each(kinds)('delta discovery against $name', (kind) => {
  let reg: RunningRegistry | undefined;
  let work: string | undefined;
  beforeAll(async () => {
    if (kind.unavailable) return;
    reg = await kind.start();
    work = await mkdtemp(path.join(os.tmpdir(), 'odh-referrers-'));
  }, 300_000);
  afterAll(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('push, discover through the referrers, apply with --discover HOST/REPO:TAG', async (ctx) => {
    if (kind.unavailable) {
      ctx.skip(kind.unavailable);
      return;
    }
    const f = await built();
    const client = fastClient(reg!.host);
    const repo = 'referrers/target';
    await pushRef(client, repo, f.old.ref, 'old');
    await pushRef(client, repo, f.new.ref, 'new');
    const d = await makeDelta(f.old.ref, f.new.ref);
    let deltaDigest: string;
    try {
      deltaDigest = (await pushRef(client, repo, d.path, 'delta')).digest;
    } finally {
      await d.cleanup();
    }

    const refs = await client.referrers(repo, f.new.manifestDigest, ARTIFACT_TYPE_DELTA);
    let api = kind.referrersApi;
    if (api === 'probe') {
      const res = await fetch(`http://${reg!.host}/v2/${repo}/referrers/${f.new.manifestDigest}`);
      await res.body?.cancel();
      api = res.status === 200;
      process.stderr.write(`${kind.name}: Referrers API ${api ? 'served' : `not served (${res.status})`}\n`);
    }
    expect(refs.via).toBe(api ? 'api' : 'tag');
    expect(refs.descriptors.map((x) => x.digest)).toEqual([deltaDigest]);

    const found = await discoverDelta(`docker://${reg!.host}/${repo}:new`, f.old.configDigest, {
      tlsVerify: false,
      credentials: null,
    });
    expect(found.descriptor.digest).toBe(deltaDigest);
    expect(found.via).toBe(refs.via);

    const out = path.join(work!, 'out.oci-archive');
    const r = await execa(
      'node',
      [
        ODH,
        'apply',
        '--complete',
        '--source-image',
        f.old.ref,
        '--discover',
        `${reg!.host}/${repo}:new`,
        out,
      ],
      { reject: false, env: { TMPDIR: work! } },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`odh: discovered delta docker://${reg!.host}/${repo}@${deltaDigest}`);
    const img = await openImage(`oci-archive:${out}`);
    try {
      expect(img.config.rootfs.diff_ids).toEqual(f.new.diffIds);
    } finally {
      await img.reader.close();
    }
  });
});
