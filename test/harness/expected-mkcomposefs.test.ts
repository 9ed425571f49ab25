/**
 * Every V1-sha256 pin in fixtures/expected.json equals what C mkcomposefs 1.0.8 writes (spec
 * composefs-v1 §14.4: composefs-rs V1 = C `--min-version=1`, C-identical only with SHA-256 object
 * digests). The pins were written by our own composefs code; here the image is built by C from the
 * dumpfile of the fixture image's tree, and its fs-verity digest (`--print-digest-only`) must be
 * the pin.
 */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { buildFixture } from '../../fixtures/build.js';
import { expectedPins } from '../../fixtures/expected.js';
import { MKCOMPOSEFS_FLAGS } from '../../harness/conformance/mkcomposefs.js';
import { composefsImage } from '../../src/composefs/oci/image-id.js';
import { printDumpfile } from '../../src/composefs/dumpfile/print.js';
import { hasOracle, oraclePath } from '../helpers/oracles.js';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '../helpers/shared.js';

const cacheDir = path.join(os.tmpdir(), 'odh-test-fixture-cache');
const pinned = Object.keys(
  (
    JSON.parse(readFileSync(path.join(REPO_ROOT, 'fixtures', 'expected.json'), 'utf8')) as {
      fixtures: Record<string, unknown>;
    }
  ).fixtures,
);

describe.skipIf(!hasOracle('mkcomposefs'))('fixtures/expected.json V1-sha256 pins = C mkcomposefs', () => {
  it('has pins to check', () => expect(pinned.length).toBeGreaterThanOrEqual(10));

  it.each(pinned)(
    '%s: old and new V1-sha256 pins equal C mkcomposefs --min-version=1 of the image tree',
    async (name) => {
      const pins = expectedPins(name)!;
      const built = await buildFixture(name, cacheDir);
      for (const side of ['old', 'new'] as const) {
        const pin = pins[side].composefs['v1-sha256'];
        expect(pin, `${name} ${side}`).toMatch(/^[0-9a-f]{64}$/);
        const { tree } = await composefsImage(`oci-archive:${built[side].path}`, {
          format: 'v1',
          hash: 'sha256',
        });
        const c = await execa(
          oraclePath('mkcomposefs'),
          [...MKCOMPOSEFS_FLAGS, '--print-digest-only', '--from-file', '-'],
          { input: printDumpfile(tree, { format: 'composefs-info' }), encoding: 'utf8' },
        );
        expect(c.stdout.trim(), `${name} ${side}: C mkcomposefs vs fixtures/expected.json`).toBe(pin);
      }
    },
    300_000,
  );
});
