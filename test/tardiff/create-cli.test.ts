import { existsSync, readFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/shared.js';
import { flip64, seededBytes } from '../helpers/images.js';
import { checkTarDiff, opCounts } from './create-checker.js';
import { cleanupTempDirs, oldImage, tempDir, type OldImage } from './create-roundtrip.js';
import { buildLayerTar } from '../helpers/images.js';

/** The built CLI (`npm test` runs `tsc` first; run `npx tsc -p .` before running this file alone). */
const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const odh = (args: string[], cwd: string) => execa('node', [ODH, ...args], { reject: false, cwd });

const A = seededBytes('cli a', 120_000);
const B = seededBytes('cli b', 90_000);
const C = seededBytes('cli c', 30_000);

let old: OldImage;
let work: string;
let newTar: string;
beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  // three old layers (gzip, zstd, plain): a file peeled into a later layer, one removed by a whiteout
  old = await oldImage([
    {
      compression: 'gzip',
      entries: [
        { type: 'file', path: 'usr/lib/a.so', content: A },
        { type: 'file', path: 'usr/lib/gone.so', content: C },
      ],
    },
    { compression: 'zstd', entries: [{ type: 'file', path: 'usr/lib/b.so', content: B }] },
    { compression: 'none', entries: [{ type: 'whiteout', path: 'usr/lib/gone.so' }] },
  ]);
  work = await tempDir();
  newTar = path.join(work, 'new.tar');
  await fs.writeFile(
    newTar,
    await buildLayerTar([
      { type: 'file', path: 'usr/lib/a.so', content: flip64(A, 5000) },
      { type: 'file', path: 'usr/lib/b.so', content: B },
      { type: 'file', path: 'usr/lib/c.so', content: C },
    ]),
  );
});
afterAll(cleanupTempDirs);

describe('odh tar-diff OLD… NEW OUT', () => {
  for (const mode of ['zstd', 'copy'] as const) {
    it(`${mode}: old tars in extraction order, then odh tar-patch rebuilds the new tar`, async () => {
      const out = path.join(work, `out-${mode}.tardiff`);
      const r = await odh(['tar-diff', '--binary-diff', mode, ...old.blobPaths, newTar, out], work);
      expect(r.stderr).toContain(`(tardf${mode === 'zstd' ? 2 : 1})`);
      expect(r.exitCode).toBe(0);
      const report = checkTarDiff(readFileSync(out), old.rootfs);
      expect(report.problems).toEqual([]);
      expect(report.opened.sort()).toEqual(['usr/lib/a.so', 'usr/lib/b.so']); // never the whited-out one
      expect(opCounts(report).ZstdDict).toBe(mode === 'zstd' ? 1 : 0);
      const rebuilt = path.join(work, `rebuilt-${mode}.tar`);
      const p = await odh(['tar-patch', '-q', out, old.rootfs, rebuilt], work);
      expect(p.exitCode).toBe(0);
      expect(readFileSync(rebuilt).equals(readFileSync(newTar))).toBe(true);
    });
  }

  it('without the whiteout layer the removed file is a source again (extraction order matters)', async () => {
    const out = path.join(work, 'out-two.tardiff');
    const r = await odh(['tar-diff', '-q', ...old.blobPaths.slice(0, 2), newTar, out], work);
    expect(r.exitCode).toBe(0);
    expect(checkTarDiff(readFileSync(out)).opened).toContain('usr/lib/gone.so');
  });

  it('errors are one line, exit 1 (usage 2), and leave no output behind', async () => {
    const missing = await odh(['tar-diff', path.join(work, 'nope.tar'), newTar, 'x.tardiff'], work);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^odh: error: input tar not found .*nope\.tar/);

    const garbage = path.join(work, 'garbage.tar');
    await fs.writeFile(garbage, Buffer.alloc(700, 0x41));
    const bad = await odh(['tar-diff', '-q', garbage, newTar, 'y.tardiff'], work);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('garbage.tar');

    const exists = path.join(work, 'exists.tardiff');
    await fs.writeFile(exists, 'keep');
    const clash = await odh(['tar-diff', '-q', old.blobPaths[0]!, newTar, exists], work);
    expect(clash.exitCode).toBe(1);
    expect(readFileSync(exists, 'utf8')).toBe('keep');

    const usage = await odh(['tar-diff', newTar, 'z.tardiff'], work);
    expect(usage.exitCode).toBe(2); // usage error (the CLI contract)

    const names = await fs.readdir(work);
    expect(names.filter((n) => n.startsWith('.odh-tmp-') || /^[xyz]\.tardiff$/.test(n))).toEqual([]);
  });
});
