/**
 * --source-image specifics: --force-source, hostile old-layer names, and that the source's temp
 * store never outlives a failure.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeltaArchive, encodeTarDiff, type LayerPlan } from '../helpers/delta-builder.js';
import { buildOciImage, type BuiltImage } from '../helpers/images.js';
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

let root: string;
let sc: Scenario;
let delta: string;
let n = 0;

beforeAll(async () => {
  root = tempRoot('odh-test-srcimg-');
  sc = await buildScenario(path.join(root, 'images'));
  delta = path.join(root, 'delta.tar');
  await buildDeltaArchive(delta, sc.spec);
});
afterAll(() => removeTree(root));

function caseDir(): { dir: string; tmp: string; out: string } {
  const dir = path.join(root, `case-${n++}`);
  const tmp = path.join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  return { dir, tmp, out: path.join(dir, 'out.tar') };
}

describe('odh apply --source-image', () => {
  it('--force-source applies onto an image with another config digest, warning loudly', async () => {
    // Same layers as the old image, one extra config field: a different config digest.
    const layers = sc.old.layers.map((l) => l);
    expect(layers.length).toBe(3);
    const relabelled = await rebuildWithConfig(sc.old, path.join(root, 'relabelled'));
    expect(relabelled.configDigest).not.toBe(sc.old.configDigest);
    const { dir, tmp, out } = caseDir();

    const refused = await odh(['apply', '--source-image', relabelled.archiveRef, delta, out], tmp);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/odh: error: source image config .* is not the delta's source-config/);
    expect(existsSync(out)).toBe(false);

    const r = await odh(
      ['apply', '--force-source', '--json', '--source-image', relabelled.archiveRef, delta, out],
      tmp,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/WARNING: source image config .* --force-source/);
    const res = JSON.parse(r.stdout);
    expect(res.sourceMatched).toBe(false);
    const img = await readArchive(out);
    img.manifest.layers
      .slice(1)
      .forEach((l, i) => expect(diffIdOf(img.blobs.get(l.digest)!)).toBe(sc.new.diffIds[i + 1]));
    expect(leftovers(dir)).toEqual([]);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('old-layer names with ".." stay inside the image: cleaned lexically, never the host', async () => {
    // An old image whose only layer names its file "../../../etc/odh-escape.txt" (cleaned to
    // "etc/odh-escape.txt", upstream CleanPath) — the content served is the image's.
    const content = Buffer.from('from inside the image\n'.repeat(10));
    const old = await buildOciImage(path.join(root, 'dotdot-old'), {
      layers: [{ entries: [{ type: 'file', path: '../../../etc/odh-escape.txt', content }] }],
    });
    const target = await buildOciImage(path.join(root, 'dotdot-new'), {
      layers: [{ entries: [{ type: 'file', path: 'copy.txt', content }] }],
    });
    const tar = (await import('node:fs')).readFileSync(target.layers[0]!.tarPath);
    const { tarEntryRanges } = await import('../helpers/delta-builder.js');
    const e = tarEntryRanges(tar).find((x) => x.name === 'copy.txt')!;
    const ops = (name: string) =>
      encodeTarDiff([
        { op: 'data', data: tar.subarray(0, e.dataOffset) },
        { op: 'open', name },
        { op: 'copy', size: content.length },
        { op: 'data', data: tar.subarray(e.dataOffset + e.size) },
      ]);
    const mk = async (name: string) => {
      const file = path.join(root, `dotdot-delta-${n++}.tar`);
      const layers: LayerPlan[] = [{ kind: 'tar-diff', tarDiff: ops(name) }];
      await buildDeltaArchive(file, { old, new: target, layers });
      return file;
    };
    const good = caseDir();
    const ok = await odh(
      ['apply', '--source-image', old.archiveRef, await mk('../etc/odh-escape.txt'), good.out],
      good.tmp,
    );
    expect(ok.exitCode, ok.stderr).toBe(0);
    const img = await readArchive(good.out);
    expect(diffIdOf(img.blobs.get(img.manifest.layers[0]!.digest)!)).toBe(target.diffIds[0]);
    expect(leftovers(good.tmp)).toEqual([]);

    // A host file the image does not have is not found, even though it exists on this machine.
    const bad = caseDir();
    const r = await odh(
      ['apply', '--source-image', old.archiveRef, await mk('/etc/hostname'), bad.out],
      bad.tmp,
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /odh: error: source file not in the old image.s merged root filesystem \(path "etc\/hostname"\)/,
    );
    expect(existsSync(bad.out)).toBe(false);
    expect(leftovers(bad.dir)).toEqual([]);
    expect(leftovers(bad.tmp)).toEqual([]);
  });

  it('removes the source store when a layer fails', async () => {
    const plans = [...sc.plans];
    plans[1] = {
      kind: 'tar-diff',
      tarDiff: encodeTarDiff([
        { op: 'open', name: 'usr/lib64/libc.so.6' },
        { op: 'copy', size: 1 << 20 },
      ]),
    };
    const bad = path.join(root, 'delta-bad-copy.tar');
    await buildDeltaArchive(bad, { ...sc.spec, layers: plans });
    const { dir, tmp, out } = caseDir();
    const r = await odh(['apply', '--jobs', '3', '--source-image', sc.old.archiveRef, bad, out], tmp);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/odh: error: unexpected EOF in source file/);
    expect(existsSync(out)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
    expect(leftovers(tmp)).toEqual([]);
  });
});

/** The same layers under a config with one more field (so another config digest). */
async function rebuildWithConfig(img: BuiltImage, dir: string): Promise<BuiltImage> {
  const { writeFile, mkdir, readFile } = await import('node:fs/promises');
  const { createHash } = await import('node:crypto');
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const cfg = JSON.parse(img.configBytes.toString());
  cfg.config = { Env: ['RELABELLED=1'] };
  const configBytes = Buffer.from(JSON.stringify(cfg));
  const m = JSON.parse(img.manifestBytes.toString());
  m.config.digest = `sha256:${sha(configBytes)}`;
  m.config.size = configBytes.length;
  const manifestBytes = Buffer.from(JSON.stringify(m));
  const layoutDir = path.join(dir, 'oci');
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  for (const l of img.layers) {
    await writeFile(
      path.join(layoutDir, 'blobs', 'sha256', l.digest.slice(7)),
      await readFile(path.join(img.layoutDir, 'blobs', 'sha256', l.digest.slice(7))),
    );
  }
  await writeFile(path.join(layoutDir, 'blobs', 'sha256', sha(configBytes)), configBytes);
  await writeFile(path.join(layoutDir, 'blobs', 'sha256', sha(manifestBytes)), manifestBytes);
  await writeFile(path.join(layoutDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    path.join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${sha(manifestBytes)}`,
          size: manifestBytes.length,
        },
      ],
    }),
  );
  return {
    ...img,
    layoutDir,
    ociRef: `oci:${layoutDir}`,
    archiveRef: `oci:${layoutDir}`,
    configBytes,
    configDigest: `sha256:${sha(configBytes)}`,
    manifestBytes,
    manifestDigest: `sha256:${sha(manifestBytes)}`,
  };
}
