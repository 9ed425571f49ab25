/**
 * Deltas made by the upstream Go oci-delta (fixtures/upstream/, see scripts/fixtures-upstream.ts)
 * applied by our applier: each result must have the new image's layer diff_ids and composefs IDs.
 * While none are committed, a skipped test says so (a skip is never a pass).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFixture } from '../../fixtures/build.js';
import { DEFAULT_FLAVOURS, flavourKey } from '../../harness/conformance/types.js';
import {
  fileDigest,
  readUpstreamDeltas,
  upstreamDeltaDir,
} from '../../harness/conformance/upstream-deltas.js';
import { groundTruth, imageDiffIds } from '../../harness/conformance/verify.js';
import { expectedPins } from '../../fixtures/expected.js';
import { composefsImageId } from '../../src/composefs/oci/image-id.js';
import { applyDelta } from '../../src/delta/apply.js';

const manifest = await readUpstreamDeltas();
const dir = upstreamDeltaDir();
const cache = path.join(os.tmpdir(), 'odh-test-fixture-cache');
// Made only when a test runs: hooks of a file whose tests are all skipped never run, so a temp dir
// made at import time would be left behind on every run without upstream deltas.
let tmp: string | undefined;
const tempDir = async () => (tmp ??= await mkdtemp(path.join(os.tmpdir(), 'odh-upstream-deltas-')));
afterAll(() => (tmp ? rm(tmp, { recursive: true, force: true }) : undefined));

describe('upstream-made deltas applied by the TypeScript applier', () => {
  if (manifest.deltas.length === 0) {
    it.skip('no upstream-made deltas committed (fixtures/upstream/manifest.json is empty; run scripts/fixtures-upstream.ts where the upstream binary works)', () => {});
    return;
  }

  it('every listed file exists with its digest, and no unlisted delta is lying around', async () => {
    for (const d of manifest.deltas) {
      expect(existsSync(path.join(dir, d.file)), d.file).toBe(true);
      expect(await fileDigest(path.join(dir, d.file)), d.file).toBe(d.digest);
    }
  });

  for (const d of manifest.deltas) {
    it(`${d.fixture} by ${d.creator} (oci-delta ${manifest.upstreamVersion}): diff_ids and composefs IDs of the new image`, async () => {
      const b = await buildFixture(d.fixture, cache);
      const truth = await groundTruth(b.new.ref, DEFAULT_FLAVOURS, expectedPins(d.fixture));
      expect(truth.problems).toEqual([]);
      const out = `oci-archive:${path.join(await tempDir(), `${d.file}.out`)}`;
      await applyDelta({
        delta: path.join(dir, d.file),
        source: { kind: 'image', ref: b.old.ref },
        output: out,
        complete: true,
      });
      const got = await imageDiffIds(out);
      expect(got.content).toEqual(truth.diffIds);
      expect(got.config).toEqual(truth.diffIds);
      for (const f of DEFAULT_FLAVOURS) {
        expect(await composefsImageId(out, f), flavourKey(f)).toBe(truth.ids.get(flavourKey(f)));
      }
    });
  }
});
