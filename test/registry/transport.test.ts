import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composefsImageId } from '../../src/composefs/oci/image-id.js';
import { createDelta } from '../../src/delta/create.js';
import { openManifest } from '../../src/oci/image.js';
import { formatRef, parseRef } from '../../src/oci/ref.js';
import { parseDockerRef } from '../../src/oci/registry/docker-ref.js';
import { hasTool } from '../helpers/tools.js';
import { built, fastClient, pushRef } from './helpers.js';
import { startRegistry, type TestRegistry } from './registry-process.js';

describe('docker:// references', () => {
  it.each([
    ['docker://127.0.0.1:5000/a/b:t1', { host: '127.0.0.1:5000', repository: 'a/b', tag: 't1' }],
    ['docker://ghcr.io/org/x', { host: 'ghcr.io', repository: 'org/x', tag: 'latest' }],
    [
      `docker://localhost/r@sha256:${'a'.repeat(64)}`,
      { host: 'localhost', repository: 'r', digest: `sha256:${'a'.repeat(64)}` },
    ],
    [
      `docker://quay.io/x/y:tag@sha256:${'b'.repeat(64)}`,
      { host: 'quay.io', repository: 'x/y', tag: 'tag', digest: `sha256:${'b'.repeat(64)}` },
    ],
    [
      'docker://h.example/a.b_c__d-e--f/g:V1.0_x-y',
      { host: 'h.example', repository: 'a.b_c__d-e--f/g', tag: 'V1.0_x-y' },
    ],
  ])('%s', (s, want) => {
    expect(parseDockerRef(s)).toEqual(want);
    const r = parseRef(s);
    expect(r).toEqual({ transport: 'docker', path: s.slice('docker://'.length), docker: want, raw: s });
    expect(formatRef(r)).toBe(s);
  });

  it.each([
    'docker://noslash',
    'docker:///repo',
    'docker://host/',
    'docker://host/Upper',
    'docker://host/a//b',
    'docker://host/a:',
    'docker://host/a:-bad',
    'docker://host/a@sha256:short',
    'docker://bad host/a',
  ])('%s is USAGE/FORMAT', (s) => {
    expect(() => parseRef(s)).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^(USAGE|FORMAT)$/) }),
    );
  });

  it('cannot be an output', () => {
    expect(() => parseRef('docker://h.example/a:b', { output: true })).toThrow(
      expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/cannot be an output/) }),
    );
  });
});

describe.skipIf(!hasTool('docker-registry', 'docker-registry'))(
  'docker:// inputs (create, composefs)',
  () => {
    let reg: TestRegistry;
    let tmp: string;
    beforeAll(async () => {
      reg = await startRegistry();
      tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-regtransport-'));
    });
    afterAll(async () => {
      await reg?.stop();
      if (tmp) await fs.rm(tmp, { recursive: true, force: true });
    });

    it('createDelta from docker:// old and new writes the same artifact as from the local archives', async () => {
      const f = await built();
      const client = fastClient(reg.host);
      await pushRef(client, 'tr/pair', f.old.ref, 'old');
      await pushRef(client, 'tr/pair', f.new.ref, 'new');
      const local = path.join(tmp, 'local.oci-archive');
      const remote = path.join(tmp, 'remote.oci-archive');
      await createDelta({ old: f.old.ref, new: f.new.ref, output: local, jobs: 1 });
      await createDelta({
        old: `docker://${reg.host}/tr/pair:old`,
        new: `docker://${reg.host}/tr/pair@${f.new.manifestDigest}`,
        output: remote,
        jobs: 1,
      });
      const a = await openManifest(local);
      const b = await openManifest(remote);
      await a.reader.close();
      await b.reader.close();
      expect(b.manifestRaw.equals(a.manifestRaw)).toBe(true);
    });

    it('composefs image ID of a docker:// image equals that of the local archive', async () => {
      const f = await built();
      await pushRef(fastClient(reg.host), 'tr/cfs', f.new.ref, 'new');
      expect(await composefsImageId(`docker://${reg.host}/tr/cfs:new`)).toBe(
        await composefsImageId(f.new.ref),
      );
    });
  },
);
