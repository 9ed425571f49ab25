/**
 * The harness follows the temp rule of src/ (issue 13): `odh conformance` keeps its work under the
 * run's pid-named directory, so `kill -9` in the middle of it leaves nothing once any later odh run
 * (here `odh --version`, which knows nothing about conformance) has swept the dead pid's entries.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { debris, removeTree, runOdh, startOdh, tempRoot, waitFor } from './run.js';

let root: string;
beforeAll(() => {
  root = tempRoot('odh-test-harness-debris-');
});
afterAll(() => removeTree(root));

/** True once a `conformance` temp directory exists in `tmp` or one level below (the run directory). */
function conformanceDirIn(tmp: string): boolean {
  if (!existsSync(tmp)) return false;
  for (const n of readdirSync(tmp)) {
    if (n.includes('conformance')) return true;
    if (n.startsWith('odh-')) {
      if (readdirSync(path.join(tmp, n)).some((m) => m.includes('conformance'))) return true;
    }
  }
  return false;
}

it('kill -9 in the middle of odh conformance, then odh --version: no odh-* left in TMPDIR', async () => {
  const tmp = path.join(root, 'tmp');
  const cache = path.join(root, 'cache');
  execFileSync('mkdir', ['-p', tmp, cache]);
  const r = startOdh(
    ['conformance', '--quick', '--fixtures', 'whiteouts-opaque', '--offline', '-q', '--cache', cache],
    { TMPDIR: tmp },
  );
  const seen = await waitFor(() => {
    try {
      return conformanceDirIn(tmp);
    } catch {
      return false; // an entry vanished between readdir calls
    }
  }, r);
  expect(seen, `conformance ended before its temp directory appeared: ${r.stderr()}`).toBe(true);
  // Let it get into its work (fixture build, cells) before the kill.
  await new Promise((res) => setTimeout(res, 500));
  r.child.kill('SIGKILL');
  const e = await r.exited;
  expect(e.signal).toBe('SIGKILL');
  expect(debris(tmp).length, 'the kill left nothing to sweep: the test proves nothing').toBeGreaterThan(0);

  const v = await runOdh(['--version'], { TMPDIR: tmp });
  expect(v.code, v.stderr).toBe(0);
  expect(debris(tmp, cache)).toEqual([]);
}, 120_000);
