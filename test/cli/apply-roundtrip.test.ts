import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTool } from '../helpers/tools.js';
import { buildDeltaArchive } from '../helpers/delta-builder.js';
import {
  buildScenario,
  diffIdOf,
  leftovers,
  odh,
  readArchive,
  removeTree,
  tempRoot,
  type Scenario,
} from './fixture.js';
import { xorByte } from '../helpers/must.js';

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const TAR = 'application/vnd.oci.image.layer.v1.tar';

let root: string;
let tmp: string;
let sc: Scenario;
let delta: string;

beforeAll(async () => {
  root = tempRoot('odh-test-roundtrip-');
  tmp = path.join(root, 'tmp');
  mkdirSync(tmp);
  sc = await buildScenario(root);
  delta = path.join(root, 'delta.tar');
  await buildDeltaArchive(delta, sc.spec);
});
afterAll(() => removeTree(root));

let n = 0;
const outPath = () => path.join(root, `out-${n++}.tar`);

/** Checks the output against the new image: same config bytes, same diff_ids, layer by layer. */
async function expectReconstructed(out: string, complete: boolean) {
  const img = await readArchive(out);
  expect(img.configBytes.equals(sc.new.configBytes)).toBe(true);
  expect(img.manifest.layers).toHaveLength(sc.new.layers.length);
  img.manifest.layers.forEach((l, i) => {
    const blob = img.blobs.get(l.digest);
    if (!complete && i === 0) {
      // Reused: descriptor kept as in the target, no blob (spec oci-delta §4.1 6c).
      expect(l.digest).toBe(sc.new.layers[0]!.digest);
      expect(blob).toBeUndefined();
      return;
    }
    expect(blob, `layer ${i} blob`).toBeDefined();
    expect(blob!.length).toBe(l.size);
    expect(diffIdOf(blob!)).toBe(sc.new.diffIds[i]);
  });
  // Manifest re-serialized compact (spec §4.1 6d).
  expect(img.manifestBytes.toString()).toBe(JSON.stringify(JSON.parse(img.manifestBytes.toString())));
  expect(leftovers(root)).toEqual([]);
  expect(leftovers(tmp)).toEqual([]);
  return img;
}

describe('odh apply: round trips on real images', () => {
  it('reconstructs every layer from --source-dir (gzip default)', async () => {
    const out = outPath();
    const r = await odh(['apply', '--source-dir', sc.sourceDir, '--json', delta, out], tmp);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.exitCode).toBe(0);
    const img = await expectReconstructed(out, false);
    expect(img.manifest.layers.map((l) => l.mediaType)).toEqual([
      sc.new.layers[0]!.mediaType,
      GZIP,
      GZIP,
      ZSTD,
    ]);
    const res = JSON.parse(r.stdout) as { layers: Array<{ kind: string; ops?: Record<string, number> }> };
    expect(res.layers.map((l) => l.kind)).toEqual(['reused', 'tar-diff', 'tar-diff', 'original']);
    // Every op kind was exercised by the hand-made tar-diffs.
    const ops = { Data: 0, Open: 0, Copy: 0, AddData: 0, Seek: 0, ZstdDict: 0 } as Record<string, number>;
    for (const l of res.layers) for (const [k, v] of Object.entries(l.ops ?? {})) ops[k]! += v;
    for (const [k, v] of Object.entries(ops)) expect(v, `op ${k}`).toBeGreaterThan(0);
  });

  it('reconstructs every layer from --source-image', async () => {
    const out = outPath();
    const r = await odh(['apply', '--source-image', sc.old.archiveRef, delta, out], tmp);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^wrote /);
    await expectReconstructed(out, false);
  });

  it('reads the delta and the source image as oci: directories too', async () => {
    const deltaDir = path.join(root, 'delta-dir');
    const { writeOciDir, assembleDelta } = await import('../helpers/delta-builder.js');
    await writeOciDir(deltaDir, assembleDelta(sc.spec).entries);
    const out = outPath();
    const r = await odh(['apply', '--source-image', sc.old.ociRef, `oci:${deltaDir}`, out], tmp);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.exitCode).toBe(0);
    await expectReconstructed(out, false);
  });

  it('--complete fills the reused layer from the source image', async () => {
    const out = outPath();
    const r = await odh(['apply', '--complete', '--source-image', sc.old.archiveRef, delta, out], tmp);
    expect(r.exitCode).toBe(0);
    const img = await expectReconstructed(out, true);
    // The filled layer is the source image's own blob (same diff_id, different gzip level).
    expect(img.manifest.layers[0]!.digest).toBe(sc.old.layers[0]!.digest);
  });

  it('--compress zstd and none give matching media types', async () => {
    for (const [c, mt] of [
      ['zstd', ZSTD],
      ['none', TAR],
    ] as const) {
      const out = outPath();
      const r = await odh(
        ['apply', '--compress', c, '--jobs', '2', '--source-dir', sc.sourceDir, delta, out],
        tmp,
      );
      expect(r.exitCode, r.stderr).toBe(0);
      const img = await expectReconstructed(out, false);
      // tar-diff layers follow --compress; the original keeps what its magic says (zstd).
      expect(img.manifest.layers.map((l) => l.mediaType).slice(1)).toEqual([mt, mt, ZSTD]);
    }
  });

  it('writes an oci: directory output with a ref name', async () => {
    const dir = path.join(root, 'out-dir');
    const r = await odh(['apply', '--source-dir', sc.sourceDir, delta, `oci:${dir}:v2`], tmp);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'oci-layout'))).toBe(true);
    const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
    expect(index.manifests[0].annotations).toEqual({ 'org.opencontainers.image.ref.name': 'v2' });
    expect(leftovers(root)).toEqual([]);
  });

  it.skipIf(!hasTool('skopeo', 'skopeo') || !hasTool('umoci', 'umoci'))(
    '--complete output is a standard image for skopeo and umoci',
    async () => {
      // This umoci cannot unpack zstd layers, so the original layer is carried gzip-compressed here
      // (same tar, same diff_id, a different blob than the target's).
      const plans = [...sc.plans];
      plans[3] = { kind: 'blob', mediaType: GZIP, blob: gzipSync(readFileSync(sc.new.layers[3]!.tarPath)) };
      const gzDelta = path.join(root, 'delta-gzip-original.tar');
      await buildDeltaArchive(gzDelta, { ...sc.spec, layers: plans });
      const out = outPath();
      const r = await odh(['apply', '--complete', '--source-image', sc.old.archiveRef, gzDelta, out], tmp);
      expect(r.exitCode, r.stderr).toBe(0);
      const layout = path.join(root, 'skopeo-layout');
      const copy = await execa('skopeo', ['copy', '-q', `oci-archive:${out}`, `oci:${layout}:img`], {
        reject: false,
      });
      expect(copy.exitCode, copy.stderr).toBe(0);
      const bundle = path.join(root, 'bundle');
      const unpack = await execa('umoci', ['unpack', '--rootless', '--image', `${layout}:img`, bundle], {
        reject: false,
      });
      expect(unpack.exitCode, unpack.stderr).toBe(0);
      // Files from each kind of layer made it: reused (filled), tar-diff (ZstdDict), original.
      expect(existsSync(path.join(bundle, 'rootfs', 'usr', 'lib64', 'libc.so.6'))).toBe(true);
      expect(existsSync(path.join(bundle, 'rootfs', 'usr', 'bin', 'tool'))).toBe(true);
      expect(existsSync(path.join(bundle, 'rootfs', 'etc', 'motd'))).toBe(true);
      // Whiteouts applied: libssl removed by N2, gone.conf by L2... (etc/gone.conf never in new image).
      expect(existsSync(path.join(bundle, 'rootfs', 'usr', 'lib64', 'libssl.so.1'))).toBe(false);
    },
  );
});

describe('odh inspect', () => {
  it('reports layer kinds, versions, ops and source files', async () => {
    const r = await odh(['inspect', '--json', delta], tmp);
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.sourceConfig).toBe(sc.old.configDigest);
    expect(j.targetManifest).toBe(sc.new.manifestDigest);
    expect(j.layers.map((l: { kind: string }) => l.kind)).toEqual([
      'reused',
      'tar-diff',
      'tar-diff',
      'original',
    ]);
    expect(j.layers[1].tarDiffVersion).toBe(1);
    expect(j.layers[2].tarDiffVersion).toBe(2);
    expect(j.layers[2].ops.ZstdDict).toBe(2);
    expect(j.layers[3].compression).toBe('zstd');
    expect(j.sources).toEqual([
      'usr/bin/tool',
      'usr/lib64/libc.so.6',
      'usr/lib64/libm.so.6',
      'usr/lib64/libz.so.1',
      'usr/share/doc/fox.txt',
    ]);
    const h = await odh(['inspect', delta], tmp);
    expect(h.exitCode).toBe(0);
    expect(h.stdout).toMatch(/tar-diff v2/);
    expect(h.stdout).toMatch(/usr\/lib64\/libz\.so\.1/);
  });

  it('fails with one error line on a normal image and on a corrupt tar-diff blob', async () => {
    const notDelta = await odh(['inspect', sc.new.archivePath], tmp);
    expect(notDelta.exitCode).toBe(1);
    expect(notDelta.stderr.trim()).toBe('odh: error: not a delta artifact (artifactType: none)');

    const tarDiff = (sc.plans[1] as { tarDiff: Buffer }).tarDiff;
    const bad = Buffer.from(tarDiff);
    xorByte(bad, bad.length - 2, 0x01);
    const digest = `sha256:${createHash('sha256').update(tarDiff).digest('hex')}`;
    const corrupt = path.join(root, 'delta-corrupt-inspect.tar');
    await buildDeltaArchive(corrupt, { ...sc.spec, blobs: new Map([[digest, bad]]) });
    const r = await odh(['inspect', '--json', corrupt], tmp);
    expect(r.exitCode).toBe(1);
    // --json: the failure as one JSON object on stdout (the CLI contract), the line on stderr.
    const body = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('DIGEST_MISMATCH');
    expect(`odh: error: ${body.error.message}`).toBe(r.stderr.trim());
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^odh: error: blob digest mismatch: expected ${digest}, got sha256:[0-9a-f]{64}`),
    );
  });
});
