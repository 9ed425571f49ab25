/**
 * `odh apply --jobs 64` (issue 13 item 5): many layers in flight listen to one abort signal by
 * design; that must not print "MaxListenersExceededWarning" (it did with --jobs ≥ 10 and
 * --complete: 22 reused layers copied at once).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type BuiltFixture } from '../../fixtures/build.js';
import { createDelta } from '../../src/delta/create.js';
import { debris, removeTree, runOdh, tempRoot } from './run.js';

let root: string;
let pair: BuiltFixture;
let delta: string;

beforeAll(async () => {
  root = tempRoot('odh-test-jobs-');
  pair = await buildFixture('bootc-chunked', path.join(root, 'cache'));
  delta = path.join(root, 'delta.tar');
  await createDelta({ old: pair.old.ref, new: pair.new.ref, output: delta, jobs: 2 });
}, 300_000);
afterAll(() => removeTree(root));

describe('odh apply --jobs 64', () => {
  it('--complete over 22 layers: no warning on stderr, the image is the new one', async () => {
    const out = path.join(root, 'out.tar');
    const r = await runOdh(
      ['apply', '--complete', '--jobs', '64', '--json', '--source-image', pair.old.ref, delta, out],
      { TMPDIR: root },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Warning/i);
    expect((JSON.parse(r.stdout) as { manifestDigest: string }).manifestDigest).toBe(pair.new.manifestDigest);
    expect(debris(root).filter((p) => !p.endsWith('cache'))).toEqual([]);
  });
});
