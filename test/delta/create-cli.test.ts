import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCompleteLine, formatStatistics, goFixed } from '../../src/delta/create-stats.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { buildScenario, type Scenario } from './create-scenario.js';

/** The built CLI (`npm test` runs `tsc` first; run `npx tsc -p .` before running this file alone). */
const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');

let work: string;
let sc: Scenario;

beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  work = await mkdtemp(path.join(tmpdir(), 'odh-create-cli-'));
  sc = await buildScenario(work);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const odh = (args: string[]) =>
  execa('node', [ODH, 'create', ...args], { reject: false, env: { TMPDIR: work }, timeout: 120_000 });

describe('statistics text (spec oci-delta §6)', () => {
  it('prints Go %.1f / %.2f, ties to even on the exact binary value', () => {
    expect(goFixed(12.25, 1)).toBe('12.2'); // toFixed would say 12.3
    expect(goFixed(12.75, 1)).toBe('12.8');
    expect(goFixed(0.125, 2)).toBe('0.12');
    expect(goFixed(68.2, 1)).toBe('68.2');
    expect(goFixed(99.96, 1)).toBe('100.0');
    expect(goFixed(0, 1)).toBe('0.0');
    expect(goFixed(-0.01, 1)).toBe('-0.0');
    expect(goFixed(2.675, 2)).toBe('2.67'); // 2.675 is 2.67499999… in binary
  });

  it('formats the -s block line for line, with the saved line only when bytes were processed', () => {
    const s = {
      oldLayers: 4,
      newLayers: 3,
      processedLayers: 1,
      skippedLayers: 2,
      processedLayerBytes: 3_630_321,
      tarDiffLayerBytes: 1_153_706,
      originalLayerBytes: 0,
      bytesSaved: 2_476_615,
    };
    expect(formatStatistics(s)).toBe(
      '\nDelta creation statistics:\n' +
        '  Old image layers: 4\n' +
        '  New image layers: 3\n' +
        '  Processed layers: 1\n' +
        '  Skipped layers:   2\n' +
        '  Processed layer bytes:  3630321\n' +
        '  Tar-diff layer bytes:   1153706\n' +
        '  Original layer bytes:   0\n' +
        '  Bytes saved:            2476615 (68.2%)\n\n',
    );
    expect(formatCompleteLine(s)).toBe(
      'Delta complete: 1 layer(s) diffed, 2 reused, bytes saved 68.22% (3.63 MB → 1.15 MB)',
    );
    const none = {
      ...s,
      processedLayers: 0,
      skippedLayers: 3,
      processedLayerBytes: 0,
      tarDiffLayerBytes: 0,
      bytesSaved: 0,
    };
    expect(formatStatistics(none)).toBe(
      '\nDelta creation statistics:\n  Old image layers: 4\n  New image layers: 3\n  Processed layers: 0\n' +
        '  Skipped layers:   3\n  Processed layer bytes:  0\n  Tar-diff layer bytes:   0\n  Original layer bytes:   0\n',
    );
  });
});

describe('odh create OLD NEW OUTPUT', () => {
  it('-s prints the statistics on stdout and info lines on stderr', async () => {
    const out = path.join(work, 'delta-s.tar');
    const r = await odh(['-s', '-j', '2', sc.old.archiveRef, sc.new.ociRef, out]);
    expect(r.stderr).toContain('Found 3 layer(s) to diff, 2 layer(s) unchanged');
    expect(r.stderr).toContain('   Skipped 2 layer(s) with existing content');
    expect(r.stderr).toContain(`Delta written to ${out}`);
    expect(r.stderr).not.toContain('Delta complete:');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 6)).toEqual([
      '',
      'Delta creation statistics:',
      '  Old image layers: 5',
      '  New image layers: 5',
      '  Processed layers: 3',
      '  Skipped layers:   2',
    ]);
    expect(lines[8]).toBe(`  Original layer bytes:   ${sc.new.layers[4]!.size}`);
    expect(lines[9]).toMatch(/^ {2}Bytes saved: {12}\d+ \(\d+\.\d%\)$/);
  });

  it('--json gives the layers, the statistics and the artifact size', async () => {
    const out = path.join(work, 'delta-json');
    const r = await odh([
      '--json',
      '-q',
      '--binary-diff',
      'copy',
      sc.old.ociRef,
      sc.new.ociRef,
      `oci:${out}`,
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout);
    expect(j.layers.map((l: { digest: string }) => l.digest)).toEqual(sc.new.layers.map((l) => l.digest));
    expect(j.layers.slice(0, 2).map((l: { kind: string }) => l.kind)).toEqual(['reused', 'reused']);
    expect(j.stats.skippedLayers).toBe(2);
    expect(j.deltaBytes).toBeGreaterThan(0);
    expect(j.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('Without -s logs the "Delta complete" line', async () => {
    const r = await odh([sc.old.ociRef, sc.new.ociRef, path.join(work, 'delta-plain.tar')]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/Delta complete: 3 layer\(s\) diffed, 2 reused, bytes saved \d+\.\d\d% \(/);
  });

  it('rejects bad flags and missing inputs with one error line, leaving nothing', async () => {
    const before = await readdir(work);
    const bad = await odh(['--binary-diff', 'gzip', sc.old.ociRef, sc.new.ociRef, path.join(work, 'x.tar')]);
    expect(bad.exitCode).toBe(2); // usage error (the CLI contract)
    // upstream's message (spec oci-delta §6), with our extra mode named
    expect(bad.stderr).toContain('invalid --binary-diff "gzip" (want bsdiff, zstd, or auto');
    for (const [flag, value, message] of [
      ['--zstd-diff-window', '-1', 'invalid --zstd-diff-window -1'],
      ['--zstd-diff-window', '513', 'invalid --zstd-diff-window 513 (max 512)'],
      ['--zstd-diff-window', '3', 'invalid --zstd-diff-window 3 (must be 0 or a power of two)'],
      ['--max-zstd-diff-size', '-2', 'invalid --max-zstd-diff-size -2'],
      ['--max-bsdiff-size', '-3', 'invalid --max-bsdiff-size -3'],
    ] as const) {
      const r = await odh([`${flag}=${value}`, sc.old.ociRef, sc.new.ociRef, path.join(work, 'x.tar')]);
      expect(r.exitCode, flag).toBe(2);
      expect(r.stderr.trim()).toBe(`odh: error: ${message} (odh create --help)`);
    }
    const jobs = await odh(['-j', 'many', sc.old.ociRef, sc.new.ociRef, path.join(work, 'x.tar')]);
    expect(jobs.exitCode).toBe(2);
    expect(jobs.stderr).toContain('invalid --jobs "many"');
    const missing = await odh([path.join(work, 'nope.tar'), sc.new.ociRef, path.join(work, 'x.tar')]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(await readdir(work)).toEqual(before);
  });
});

describe('odh create --help (spec oci-delta §6)', () => {
  it("lists upstream create's flags (containers/oci-delta cmd/create.go) and marks ours as extras", async () => {
    const r = await odh(['--help']);
    expect(r.exitCode).toBe(0);
    const upstream = [
      '-s, --statistics',
      '-j, --jobs <N>',
      '--binary-diff <method>',
      '--compression-level <N>',
      '--zstd-diff-level <N>',
      '--zstd-diff-window <MiB>',
      '--max-zstd-diff-size <MiB>',
      '--max-bsdiff-size <MiB>',
      '--signature <REF>',
      '--log-level <level>',
      '--debug',
      '-q, --quiet',
    ];
    const optionLines = r.stdout.split('\n').filter((l) => /^ {2}-/.test(l));
    const flags = optionLines.map((l) => l.trim().split(/ {2,}/)[0]!);
    for (const f of upstream) expect(flags, f).toContain(f);
    // upstream defaults, in the help text
    expect(r.stdout).toMatch(/bsdiff \(default/);
    expect(r.stdout).toContain('(default: "192")');
    expect(r.stdout).toContain('(default: "128")');
    // everything else is ours and says so
    const ours = flags.filter((f) => !upstream.includes(f) && f !== '-h, --help');
    expect(ours.sort()).toEqual(
      [
        '--json',
        '--no-image-signature',
        '--original-media-type <how>',
        '--tmp-dir <DIR>',
        '-f, --force',
      ].sort(),
    );
    const text = r.stdout.replace(/\n\s+/g, ' ');
    for (const f of ours) expect(text).toMatch(new RegExp(`${f.replace(/[<>]/g, '.')} .*?\\[odh extra\\]`));
    // the hidden deprecated -v is still accepted as -s
    expect(flags).not.toContain('-v, --verbose');
  });
});
