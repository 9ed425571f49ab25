/**
 * `odh composefs …` as a black box (the built CLI: `npm test` runs tsc first; run `npx tsc -p .`
 * before running this file alone).
 * - mkfs/dump on the C 1.0.8 assets: our image's sha256 equals the pinned `.sha256`, and our dump of
 *   it equals our dump of C's own image (`.img.gz`);
 * - id / dumpfile on the deterministic OCI layout of composefs-rs cli.rs: pinned SHA-512 IDs
 *   (spec composefs-v2 §8.4(a), composefs-v1 §13.3);
 * - one-line errors and exit 1 for bad refs, corrupt layers, bad dumpfiles, bad options.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsverityDigest } from '../../src/composefs/format/fsverity.js';
import { makeTempDir } from '../../src/util/atomic.js';
import { REPO_ROOT, vectorPath } from '../helpers/shared.js';
import { composefsTestLayer, PINNED, writeOciArchive, writeOciLayout } from './oci-layout-fixture.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  tmp = await makeTempDir('odh-cfs-cli-');
});
afterAll(async () => {
  await tmp.cleanup();
});

const cfs = (args: string[], input?: Buffer) =>
  execa('node', [ODH, 'composefs', ...args], {
    reject: false,
    encoding: 'buffer',
    stripFinalNewline: false,
    input,
    cwd: tmp.dir,
  });

const out = (r: { stdout: unknown }) => Buffer.from(r.stdout as Uint8Array).toString();
const err = (r: { stderr: unknown }) => Buffer.from(r.stderr as Uint8Array).toString();

/** A failed run: exit 1 (2 for usage errors) and exactly one stderr line "odh: error: …". */
function expectOneLineError(r: { exitCode?: number; stderr: unknown }, pattern: RegExp, exitCode = 1): void {
  expect(r.exitCode).toBe(exitCode);
  const lines = err(r).trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^(odh: )?error: /);
  expect(lines[0]).toMatch(pattern);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const C = (name: string) => vectorPath('composefs-c', name);

/**
 * The C assets with an input and their strictness (spec composefs-v1 §13.1). cs9-x86_64-developer is
 * left to scripts/bench-composefs.ts (it checks the same sha256) to keep this file fast.
 */
const ASSETS: { name: string; lenient?: boolean }[] = [
  { name: 'bigfile-xattr.dump' },
  { name: 'bigfile.dump' },
  { name: 'config-with-hard-link.dump.gz' },
  { name: 'config.dump.gz' },
  { name: 'cs9-x86_64-minimal.dump.gz' },
  { name: 'honggfuzz-bigfile-with-acl.dump' },
  { name: 'honggfuzz-chardev-nonzero-size.dump' },
  { name: 'honggfuzz-long-symlink.dump' },
  { name: 'honggfuzz-longlink-unterminated.dump', lenient: true },
  { name: 'longlink.dump', lenient: true },
  { name: 'no-newline.dump', lenient: true },
  { name: 'special.dump' },
  { name: 'special_v1.dump' },
];

function versionArgs(name: string): string[] {
  const f = C(`${name}.version`);
  if (!existsSync(f)) return [];
  const v = readFileSync(f, 'utf8').trim();
  return ['--min-version', v, '--max-version', v];
}

describe('odh composefs mkfs / dump on the C composefs 1.0.8 assets', () => {
  for (const a of ASSETS) {
    it(`${a.name}: image identical to C mkcomposefs, dump equal to the dump of C's image`, async () => {
      const raw = readFileSync(C(a.name));
      const input = a.name.endsWith('.gz') ? gunzipSync(raw) : raw;
      const img = path.join(tmp.dir, `${a.name}.img`);
      const r = await cfs(['mkfs', ...versionArgs(a.name), '--from-file', '-', img], input);
      expect(err(r)).toBe('');
      expect(r.exitCode).toBe(0);
      const ours = readFileSync(img);
      expect(sha256(ours)).toBe(
        readFileSync(C(`${a.name}.sha256`), 'utf8')
          .trim()
          .split(/\s+/)[0],
      );
      const cImg = path.join(tmp.dir, `${a.name}.c.img`);
      writeFileSync(cImg, gunzipSync(readFileSync(C(`${a.name.replace(/\.gz$/, '')}.img.gz`))));
      const d1 = await cfs(['dump', img]);
      const d2 = await cfs(['dump', cImg]);
      expect(d1.exitCode).toBe(0);
      expect(d2.exitCode).toBe(0);
      expect(out(d1).length).toBeGreaterThan(0);
      expect(out(d1)).toBe(out(d2));
    });
  }

  it('--print-digest prints the SHA-256 fs-verity digest of the written image', async () => {
    const img = path.join(tmp.dir, 'pd.img');
    const r = await cfs(['mkfs', '--print-digest', '--from-file', C('bigfile.dump'), img]);
    expect(r.exitCode).toBe(0);
    expect(out(r)).toBe(`${fsverityDigest(readFileSync(img), 'sha256').toString('hex')}\n`);
    const only = await cfs(['mkfs', '--print-digest-only', '--from-file', C('bigfile.dump')]);
    expect(out(only)).toBe(out(r));
  });

  it('writes the image to stdout with -', async () => {
    const r = await cfs([
      'mkfs',
      '--min-version',
      '0',
      '--max-version',
      '0',
      '--from-file',
      C('special.dump'),
      '-',
    ]);
    expect(r.exitCode).toBe(0);
    expect(sha256(Buffer.from(r.stdout as Uint8Array))).toBe(
      readFileSync(C('special.dump.sha256'), 'utf8').trim().split(/\s+/)[0],
    );
  });

  it('rejects every should-fail asset with one error line and leaves no output behind', async () => {
    const names = (await readdir(vectorPath('composefs-c'))).filter((n) => n.startsWith('should-fail-'));
    expect(names.length).toBe(14);
    for (const n of names) {
      const img = path.join(tmp.dir, `${n}.img`);
      const r = await cfs(['mkfs', '--from-file', C(n), img]);
      expectOneLineError(r, /./);
      expect(existsSync(img)).toBe(false);
    }
    expect((await readdir(tmp.dir)).filter((n) => n.startsWith('.odh-tmp-'))).toEqual([]);
  });

  it('rejects bad options', async () => {
    expectOneLineError(
      await cfs(['mkfs', '--min-version', '2', '--from-file', C('special.dump'), 'x.img']),
      /version/,
      2,
    );
    expectOneLineError(
      await cfs(['mkfs', '--min-version', '1x', '--from-file', C('special.dump'), 'x.img']),
      /version/,
      2,
    );
    expectOneLineError(
      await cfs(['mkfs', '--format', 'v2', '--max-version', '1', '--from-file', C('special.dump'), 'x.img']),
      /v1 only/,
      2,
    );
    expectOneLineError(
      await cfs(['mkfs', '--from-file', path.join(tmp.dir, 'absent.dump'), 'x.img']),
      /not found/,
    );
    expect(existsSync(path.join(tmp.dir, 'x.img'))).toBe(false);
  });

  it('dump refuses a file that is not a composefs image', async () => {
    expectOneLineError(await cfs(['dump', C('special.dump')]), /./);
    expectOneLineError(await cfs(['dump', path.join(tmp.dir, 'absent.img')]), /not found/);
  });
});

describe('odh composefs id / dumpfile on the cli.rs OCI layout', () => {
  it('prints the pinned V2 and V1 SHA-512 image IDs (bare hex); V1 + SHA-512 are the defaults', async () => {
    const v2 = await writeOciLayout(path.join(tmp.dir, 'l-v2'), [composefsTestLayer(false)], {
      compression: 'gzip',
    });
    const v1 = await writeOciLayout(path.join(tmp.dir, 'l-v1'), [composefsTestLayer(true)], {
      compression: 'zstd',
    });
    const r2 = await cfs(['id', '--format', 'v2', '--hash', 'sha512', `oci:${v2.dir}`]);
    expect(out(r2)).toBe(`${PINNED.v2}\n`);
    expect(r2.exitCode).toBe(0);
    const r1 = await cfs(['id', '--format', 'v1', '--hash', 'sha512', `oci:${v1.dir}:latest`]);
    expect(out(r1)).toBe(`${PINNED.v1}\n`);
    const dflt = await cfs(['id', '-q', `oci:${v1.dir}`]);
    expect(out(dflt)).toBe(`${PINNED.v1}\n`);
    expect(err(dflt)).toBe('');
    const archive = path.join(tmp.dir, 'l-v1.tar');
    await writeOciArchive(v1, archive);
    expect(out(await cfs(['id', '-q', `oci-archive:${archive}`]))).toBe(`${PINNED.v1}\n`);
  });

  it('dumpfile output feeds mkfs back to the same pinned IDs (composefs-rs and C dumpfile rules)', async () => {
    const v2 = await writeOciLayout(path.join(tmp.dir, 'd-v2'), [composefsTestLayer(false)]);
    const v1 = await writeOciLayout(path.join(tmp.dir, 'd-v1'), [composefsTestLayer(true)]);
    const d2 = await cfs(['dumpfile', '-q', '--format', 'v2', `oci:${v2.dir}`]);
    expect(d2.exitCode).toBe(0);
    const m2 = await cfs(
      ['mkfs', '--format', 'v2', '--hash', 'sha512', '--print-digest-only', '--from-file', '-'],
      Buffer.from(d2.stdout as Uint8Array),
    );
    expect(out(m2)).toBe(`${PINNED.v2}\n`);
    const d1 = await cfs(['dumpfile', '-q', `oci:${v1.dir}`]);
    expect(out(d1).split('\n')[1]).toBe(
      '/hello-link.txt 22 100644 2 0 0 0 1234567890.0 - hello\\x20from\\x20test\\x20layer\\n -',
    );
    const m1 = await cfs(
      [
        'mkfs',
        '--min-version',
        '1',
        '--max-version',
        '1',
        '--hash',
        'sha512',
        '--print-digest-only',
        '--from-file',
        '-',
      ],
      Buffer.from(d1.stdout as Uint8Array),
    );
    expect(out(m1)).toBe(`${PINNED.v1}\n`);
  });

  it('reports progress on stderr and results only on stdout', async () => {
    const l = await writeOciLayout(path.join(tmp.dir, 'p'), [composefsTestLayer(true)]);
    const r = await cfs(['id', `oci:${l.dir}`]);
    expect(out(r)).toBe(`${PINNED.v1}\n`);
    expect(err(r)).toMatch(/layer 1\/1 sha256:/);
  });

  it('fails with one error line for bad refs and corrupt layers', async () => {
    expectOneLineError(await cfs(['id', `oci:${path.join(tmp.dir, 'absent')}`]), /not found/i);
    expectOneLineError(await cfs(['id', 'docker://example.com/x:1']), /./);
    const bad = await writeOciLayout(path.join(tmp.dir, 'bad'), [composefsTestLayer(false)], {
      corruptLayer: 0,
    });
    expectOneLineError(await cfs(['id', '-q', `oci:${bad.dir}`]), /digest mismatch/);
    expectOneLineError(await cfs(['dumpfile', '-q', `oci:${bad.dir}`]), /digest mismatch/);
    expectOneLineError(await cfs(['id', '--format', 'v3', `oci:${bad.dir}`]), /v3/, 2);
  });

  it('says in --help that the bootable variant is out of scope', async () => {
    const r = await cfs(['id', '--help']);
    expect(out(r)).toMatch(/--bootable/);
    expect(out(r)).toMatch(/out of\s+scope/);
    expect(out(r)).toMatch(/V1 format and SHA-512/);
  });
});
