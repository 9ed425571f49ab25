/**
 * Never leave debris (issue 13): kill -9 or SIGHUP in the middle of apply, create, tar-patch and
 * fixtures build, then any odh run: no `.odh-tmp-*` beside the output, no `odh-*` in TMPDIR, no
 * `.build-*` in the fixture cache. Each case has its own TMPDIR; the "any run" is `odh --version`,
 * which knows nothing about the killed command's output directory (the run's journal does).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type BuiltFixture } from '../../fixtures/build.js';
import { createDelta } from '../../src/delta/create.js';
import {
  debris,
  errorLines,
  hasEntry,
  removeTree,
  runOdh,
  startOdh,
  startTarPatchOnFifo,
  tempRoot,
  waitFor,
} from './run.js';

let root: string;
let pair: BuiltFixture;
let delta: string;

beforeAll(async () => {
  root = tempRoot('odh-test-debris-');
  pair = await buildFixture('package-update', path.join(root, 'cache'));
  delta = path.join(root, 'delta.tar');
  await createDelta({ old: pair.old.ref, new: pair.new.ref, output: delta, jobs: 1 });
}, 300_000);
afterAll(() => removeTree(root));

let n = 0;

interface Case {
  args: string[];
  out: string;
  /** Where the command's temp entry shows that it is in the middle of its work. */
  tempIn: string;
  prefix: string;
}

const COMMANDS: Record<string, (dir: string) => Case> = {
  apply: (dir) => ({
    args: ['apply', '--jobs', '1', '--source-image', pair.old.ref, delta, path.join(dir, 'out.tar')],
    out: path.join(dir, 'out.tar'),
    tempIn: dir,
    prefix: '.odh-tmp-',
  }),
  create: (dir) => ({
    args: ['create', '-q', '--jobs', '1', pair.old.ref, pair.new.ref, path.join(dir, 'd.tar')],
    out: path.join(dir, 'd.tar'),
    tempIn: dir,
    prefix: '.odh-tmp-',
  }),
  'fixtures build': (dir) => ({
    args: ['fixtures', 'build', '--cache', path.join(dir, 'cache'), 'package-update'],
    out: path.join(dir, 'cache', 'package-update', 'old.oci-archive'),
    tempIn: path.join(dir, 'cache', 'package-update'),
    prefix: '.build-',
  }),
};

async function interrupt(name: string, signal: NodeJS.Signals) {
  const dir = path.join(root, `case-${n++}`);
  const tmp = path.join(dir, 'tmp');
  execFileSync('mkdir', ['-p', tmp]);
  const c = COMMANDS[name]!(dir);
  const r = startOdh(c.args, { TMPDIR: tmp });
  const seen = await waitFor(() => hasEntry(c.tempIn, c.prefix), r);
  expect(seen, `${name} finished before it could be interrupted: ${r.stderr()}`).toBe(true);
  r.child.kill(signal);
  const t0 = Date.now();
  const e = await r.exited;
  return {
    ...e,
    ms: Date.now() - t0,
    dir,
    tmp,
    out: c.out,
    stderr: r.stderr(),
    dirs: [dir, tmp, path.join(dir, 'cache')],
  };
}

/** tar-patch held in the middle of its delta (a FIFO half written), then signalled. */
async function interruptTarPatch(signal: NodeJS.Signals) {
  const dir = path.join(root, `case-${n++}`);
  const tmp = path.join(dir, 'tmp');
  execFileSync('mkdir', ['-p', tmp]);
  const { r, w, out, started } = await startTarPatchOnFifo(dir, tmp);
  expect(started).toBe(true);
  r.child.kill(signal);
  const t0 = Date.now();
  const e = await r.exited;
  await w.close().catch(() => {});
  return { ...e, ms: Date.now() - t0, dir, tmp, out, stderr: r.stderr(), dirs: [dir, tmp] };
}

const run = (name: string, sig: NodeJS.Signals) =>
  name === 'tar-patch' ? interruptTarPatch(sig) : interrupt(name, sig);

describe('interrupted in the middle, then any odh run: nothing left', () => {
  for (const name of ['apply', 'create', 'tar-patch', 'fixtures build']) {
    it(`${name}: kill -9`, async () => {
      const r = await run(name, 'SIGKILL');
      expect(r.signal).toBe('SIGKILL');
      expect(existsSync(r.out)).toBe(false);
      // The killed run could not clean up: its pid-named entries are there…
      expect(debris(...r.dirs).length).toBeGreaterThan(0);
      // …until any later run sweeps them (dead pid), following the journal to the output dir.
      const later = await runOdh(['--version'], { TMPDIR: r.tmp });
      expect(later.code, later.stderr).toBe(0);
      expect(debris(...r.dirs)).toEqual([]);
    });

    it(`${name}: SIGHUP cleans up at once (exit 1, one line)`, async () => {
      const r = await run(name, 'SIGHUP');
      expect(existsSync(r.out)).toBe(false);
      expect(debris(...r.dirs)).toEqual([]);
      // Exit 1 after cleaning up, or (a read that cannot be aborted, like a silent FIFO) the run
      // removes its temp data after a short grace and dies of the signal.
      expect(r.code === 1 || r.signal === 'SIGHUP', `code ${r.code} signal ${r.signal}`).toBe(true);
      expect(r.ms).toBeLessThan(30_000);
      expect(errorLines(r.stderr)).toEqual(['odh: error: interrupted by SIGHUP; nothing was written']);
    });
  }
});

describe('a second signal exits at once', () => {
  it('tar-patch stuck on a silent FIFO: SIGINT, then SIGTERM ends it before the grace period', async () => {
    const dir = path.join(root, `case-${n++}`);
    const tmp = path.join(dir, 'tmp');
    execFileSync('mkdir', ['-p', tmp]);
    const { r, w, out, started } = await startTarPatchOnFifo(dir, tmp, Buffer.from('tardf2'));
    expect(started).toBe(true);
    r.child.kill('SIGINT');
    await new Promise((res) => setTimeout(res, 200));
    const t0 = Date.now();
    r.child.kill('SIGTERM');
    const e = await r.exited;
    await w.close().catch(() => {});
    // The grace period after the first signal is 1.5 s; the second signal does not wait for it.
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(e.signal).toBe('SIGTERM');
    expect(errorLines(r.stderr())).toEqual(['odh: error: interrupted by SIGINT; nothing was written']);
    expect(existsSync(out)).toBe(false);
    expect(debris(dir, tmp)).toEqual([]);
  });
});
