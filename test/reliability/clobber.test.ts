/**
 * Never clobber (issue 13): a file a user creates at the output path while a command is writing it
 * survives byte for byte; the command exits 1 with one line and leaves nothing of its own. Two
 * applies racing for one output: exactly one wins.
 *
 * apply, create and fixtures build are frozen with SIGSTOP once their temp entry exists (then the
 * user file is written, then SIGCONT); mkfs and tar-patch are held mid-input through a pipe / FIFO.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type BuiltFixture } from '../../fixtures/build.js';
import { createDelta } from '../../src/delta/create.js';
import { openLayout } from '../../src/oci/image.js';
import { parseRef } from '../../src/oci/ref.js';
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
  type Running,
} from './run.js';

const USER = 'IMPORTANT USER DATA\n';
const LOST_RACE =
  /^odh: error: output path appeared while the output was being written; it was left untouched/;

let root: string;
let pair: BuiltFixture;
let delta: string;
let dump: string;

beforeAll(async () => {
  root = tempRoot('odh-test-clobber-');
  pair = await buildFixture('package-update', path.join(root, 'cache'));
  delta = path.join(root, 'delta.tar');
  await createDelta({ old: pair.old.ref, new: pair.new.ref, output: delta, jobs: 1 });
  const r = await runOdh(['composefs', 'dumpfile', '-q', pair.old.ref], { TMPDIR: root });
  expect(r.code).toBe(0);
  dump = r.stdout;
}, 300_000);
afterAll(() => removeTree(root));

let n = 0;
function caseDir(): { dir: string; tmp: string } {
  const dir = path.join(root, `case-${n++}`);
  const tmp = path.join(dir, 'tmp');
  execFileSync('mkdir', ['-p', tmp]);
  return { dir, tmp };
}

/**
 * Starts `args`, freezes it once `tempIn` holds an entry starting with `prefix` and the output does
 * not exist yet, writes the user file, thaws it. Retries (fresh case) when the command was faster.
 */
async function freezeAndClobber(
  make: (c: { dir: string; tmp: string }) => { args: string[]; out: string; tempIn: string; prefix: string },
) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const c = caseDir();
    const { args, out, tempIn, prefix } = make(c);
    const r = startOdh(args, { TMPDIR: c.tmp });
    const seen = await waitFor(() => hasEntry(tempIn, prefix), r);
    if (seen) {
      r.child.kill('SIGSTOP');
      if (!existsSync(out) && hasEntry(tempIn, prefix)) {
        writeFileSync(out, USER, { flag: 'wx' });
        r.child.kill('SIGCONT');
        const e = await r.exited;
        return { ...e, out, c, tempIn, stderr: r.stderr(), stdout: r.stdout() };
      }
      r.child.kill('SIGCONT');
    }
    await r.exited;
  }
  throw new Error('the command always finished before its output could be clobbered');
}

function expectSurvived(r: { code: number | null; out: string; stderr: string }, ...dirs: string[]) {
  expect(readFileSync(r.out, 'utf8')).toBe(USER);
  expect(r.code, r.stderr).toBe(1);
  expect(errorLines(r.stderr)).toHaveLength(1);
  expect(errorLines(r.stderr)[0]).toMatch(LOST_RACE);
  expect(debris(...dirs)).toEqual([]);
}

describe('a file created at the output while the command runs survives intact', () => {
  it('odh apply', async () => {
    const r = await freezeAndClobber(({ dir }) => ({
      args: ['apply', '--jobs', '1', '--source-image', pair.old.ref, delta, path.join(dir, 'out.tar')],
      out: path.join(dir, 'out.tar'),
      tempIn: dir,
      prefix: '.odh-tmp-',
    }));
    expectSurvived(r, r.c.dir, r.c.tmp);
  });

  it('odh apply to an oci: directory (mkdir claim)', async () => {
    const r = await freezeAndClobber(({ dir }) => ({
      args: ['apply', '--jobs', '1', '--source-image', pair.old.ref, delta, `oci:${path.join(dir, 'out')}`],
      out: path.join(dir, 'out'),
      tempIn: dir,
      prefix: '.odh-tmp-',
    }));
    expectSurvived(r, r.c.dir, r.c.tmp);
  });

  it('odh create', async () => {
    const r = await freezeAndClobber(({ dir }) => ({
      args: ['create', '-q', '--jobs', '1', pair.old.ref, pair.new.ref, path.join(dir, 'd.tar')],
      out: path.join(dir, 'd.tar'),
      tempIn: dir,
      prefix: '.odh-tmp-',
    }));
    expectSurvived(r, r.c.dir, r.c.tmp);
  });

  it('odh fixtures build (the cache archive)', async () => {
    const r = await freezeAndClobber(({ dir }) => ({
      args: ['fixtures', 'build', '--cache', path.join(dir, 'cache'), 'package-update'],
      out: path.join(dir, 'cache', 'package-update', 'old.oci-archive'),
      tempIn: path.join(dir, 'cache', 'package-update'),
      prefix: '.build-',
    }));
    expect(readFileSync(r.out, 'utf8')).toBe(USER);
    expect(r.code, r.stderr).toBe(1);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/appeared while the output was being written/);
    expect(debris(r.c.dir, r.c.tmp, path.join(r.c.dir, 'cache'))).toEqual([]);
  });

  it('odh composefs mkfs (dumpfile held on stdin)', async () => {
    const { dir, tmp } = caseDir();
    const out = path.join(dir, 'out.img');
    const r = startOdh(['composefs', 'mkfs', '--from-file', '-', out], { TMPDIR: tmp }, 'pipe');
    r.child.stdin!.write(dump.slice(0, dump.indexOf('\n') + 1));
    expect(await waitFor(() => hasEntry(dir, '.odh-tmp-'), r)).toBe(true);
    writeFileSync(out, USER, { flag: 'wx' });
    r.child.stdin!.end(dump.slice(dump.indexOf('\n') + 1));
    const e = await r.exited;
    expectSurvived({ code: e.code, out, stderr: r.stderr() }, dir, tmp);
  });

  it('odh tar-patch (delta held in a FIFO)', async () => {
    const { dir, tmp } = caseDir();
    const { r, w, out, started, rest } = await startTarPatchOnFifo(dir, tmp);
    expect(started).toBe(true);
    writeFileSync(out, USER, { flag: 'wx' });
    await w.write(rest);
    await w.close();
    const e = await r.exited;
    expectSurvived({ code: e.code, out, stderr: r.stderr() }, dir, tmp);
  });
});

describe('two applies racing for one output', () => {
  it('exactly one succeeds; the output is the winner’s', async () => {
    const { dir, tmp } = caseDir();
    const out = path.join(dir, 'out.tar');
    // Different outputs for one path: gzip and zstd layers give different manifests.
    const runs: Running[] = ['gzip', 'zstd'].map((c) =>
      startOdh(['apply', '--json', '--compress', c, '--source-image', pair.old.ref, delta, out], {
        TMPDIR: tmp,
      }),
    );
    const ends = await Promise.all(runs.map((r) => r.exited));
    const winners = ends.map((e, i) => ({ e, r: runs[i]! })).filter((x) => x.e.code === 0);
    const losers = ends.map((e, i) => ({ e, r: runs[i]! })).filter((x) => x.e.code !== 0);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect(losers[0]!.e.code).toBe(1);
    const lines = errorLines(losers[0]!.r.stderr());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/output path (already exists|appeared while)/);
    const won = JSON.parse(winners[0]!.r.stdout()) as { manifestDigest: string };
    const reader = await openLayout(parseRef(out));
    try {
      const { index } = await reader.index();
      expect(index.manifests[0]!.digest).toBe(won.manifestDigest);
    } finally {
      await reader.close();
    }
    expect(debris(dir, tmp)).toEqual([]);
  });
});
