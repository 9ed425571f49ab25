import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDelta, type CreateDeltaResult } from '../../src/delta/create.js';
import { assembleDelta, type LayerPlan } from '../helpers/delta-builder.js';
import { hasTool } from '../helpers/tools.js';
import { archiveEntries, buildScenario, sha256, type Scenario } from './create-scenario.js';

// spec oci-delta §1.1–1.5: the artifact `create` writes, checked byte for byte against the
// independent upstream-shaped assembler of test/helpers/delta-builder.ts and against literal JSON.

const EMPTY = '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
const A = 'io.github.containers.delta.';

let work: string;
let sc: Scenario;
let deltaFile: string;
let result: CreateDeltaResult;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'odh-create-artifact-'));
  sc = await buildScenario(work);
  deltaFile = path.join(work, 'delta.tar');
  result = await createDelta({
    old: sc.old.archiveRef,
    new: sc.new.ociRef,
    output: `oci-archive:${deltaFile}:delta-v2`,
    binaryDiff: 'zstd',
    jobs: 2,
    tempDir: work,
  });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('odh create artifact (spec oci-delta §1)', () => {
  it('decides per layer: reuse by diff_id, tar-diff when smaller, original otherwise', () => {
    expect(result.layers.map((l) => l.kind)).toEqual(sc.expectedKinds);
    expect(result.layers.map((l) => l.digest)).toEqual(sc.new.layers.map((l) => l.digest));
    for (const l of result.layers) {
      if (l.kind === 'tar-diff') expect(l.size).toBeLessThan(l.originalSize);
      if (l.kind === 'original') {
        expect(l.size).toBe(l.originalSize);
        expect(l.tarDiffBytes).toBeGreaterThanOrEqual(l.originalSize);
      }
    }
    const processed = sc.new.layers.slice(2).reduce((n, l) => n + l.size, 0);
    const tarDiffs = result.layers.filter((l) => l.kind === 'tar-diff').reduce((n, l) => n + l.size, 0);
    expect(result.stats).toEqual({
      oldLayers: 5,
      newLayers: 5,
      processedLayers: 3,
      skippedLayers: 2,
      processedLayerBytes: processed,
      tarDiffLayerBytes: tarDiffs,
      originalLayerBytes: sc.new.layers[4]!.size,
      bytesSaved: processed - tarDiffs - sc.new.layers[4]!.size,
    });
  });

  it('writes the entries in upstream order and the manifest bytes the independent assembler makes', async () => {
    const entries = await archiveEntries(deltaFile);
    // Our tar-diff blobs, by target layer, as stored in the archive.
    const stored = new Map(entries.map((e) => [e.name, e.data]));
    const plans: LayerPlan[] = result.layers.map((l) => {
      if (l.kind === 'reused') return { kind: 'reused' };
      if (l.kind === 'original') return { kind: 'original' };
      return { kind: 'tar-diff', tarDiff: stored.get(`blobs/sha256/${l.blobDigest!.slice(7)}`)! };
    });
    const want = assembleDelta({ old: sc.old, new: sc.new, layers: plans, refName: 'delta-v2' });
    // Upstream's archive: the blob directories just before the first blob (spec §4.1 "Output tar").
    const wantNames = want.entries.map((e) => e.name);
    wantNames.splice(1, 0, 'blobs/', 'blobs/sha256/');
    expect(entries.map((e) => e.name)).toEqual(wantNames);
    expect(entries.filter((e) => e.name.endsWith('/')).map((e) => e.typeflag)).toEqual(['5', '5']);
    for (const w of want.entries) {
      expect(stored.get(w.name)!.equals(w.data), `entry ${w.name}`).toBe(true);
    }
    expect(result.manifestDigest).toBe(want.manifestDigest);
    // §1.1 order spelled out: oci-layout, target manifest, target config, changed layers, {}, delta manifest, index.json
    const hex = (d: string) => `blobs/sha256/${d.slice(7)}`;
    expect(entries.map((e) => e.name)).toEqual([
      'oci-layout',
      'blobs/',
      'blobs/sha256/',
      hex(sc.new.manifestDigest),
      hex(sc.new.configDigest),
      hex(result.layers[2]!.blobDigest!),
      hex(result.layers[3]!.blobDigest!),
      hex(sc.new.layers[4]!.digest),
      `blobs/sha256/${EMPTY}`,
      hex(result.manifestDigest),
      'index.json',
    ]);
    expect(stored.get(`blobs/sha256/${EMPTY}`)!.toString()).toBe('{}');
    expect(stored.get('oci-layout')!.toString()).toBe('{"imageLayoutVersion":"1.0.0"}');
  });

  it('writes the delta manifest as compact Go JSON with the literal key order of spec §1.3', async () => {
    const entries = await archiveEntries(deltaFile);
    const m = entries.find((e) => e.name === `blobs/sha256/${result.manifestDigest.slice(7)}`)!.data;
    expect(sha256(m)).toBe(result.manifestDigest);
    const l = result.layers;
    const layer = (mt: string, d: string, size: number, to: string) =>
      `{"mediaType":"${mt}","digest":"${d}","size":${size},"annotations":{"${A}content":"image-layer","${A}to":"${to}"}}`;
    const expected =
      '{"schemaVersion":2,"artifactType":"application/vnd.io.github.containers.oci-delta.v1",' +
      `"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:${EMPTY}","size":2},` +
      '"layers":[' +
      `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${sc.new.manifestDigest}","size":${sc.new.manifestBytes.length},"annotations":{"${A}content":"image-manifest"}},` +
      `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${sc.new.configDigest}","size":${sc.new.configBytes.length},"annotations":{"${A}content":"image-config"}},` +
      `${layer('application/vnd.tar-diff', l[2]!.blobDigest!, l[2]!.size, sc.new.layers[2]!.digest)},` +
      `${layer('application/vnd.tar-diff', l[3]!.blobDigest!, l[3]!.size, sc.new.layers[3]!.digest)},` +
      // spec §1.4: a stored original is labelled tar+gzip
      `${layer('application/vnd.oci.image.layer.v1.tar+gzip', sc.new.layers[4]!.digest, sc.new.layers[4]!.size, sc.new.layers[4]!.digest)}` +
      '],' +
      `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${sc.new.manifestDigest}","size":${sc.new.manifestBytes.length}},` +
      '"annotations":{' +
      `"${A}reused":"[\\"${sc.new.layers[0]!.digest}\\",\\"${sc.new.layers[1]!.digest}\\"]",` +
      `"${A}reused-diff-id":"[\\"${sc.new.diffIds[0]}\\",\\"${sc.new.diffIds[1]}\\"]",` +
      `"${A}source":"${sc.old.manifestDigest}",` +
      `"${A}source-config":"${sc.old.configDigest}",` +
      `"${A}target":"${sc.new.manifestDigest}"}}`;
    expect(m.toString('utf8')).toBe(expected);
    expect(m.toString('utf8')).not.toContain(
      '"mediaType":"application/vnd.oci.image.manifest.v1+json","config"',
    );
  });

  it('points index.json at the delta manifest with the :NAME of the output reference', async () => {
    const entries = await archiveEntries(deltaFile);
    const index = entries.find((e) => e.name === 'index.json')!.data.toString();
    expect(index).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[' +
        `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${result.manifestDigest}",` +
        `"size":${result.manifestSize},"annotations":{"org.opencontainers.image.ref.name":"delta-v2"}}]}`,
    );
  });

  it('leaves no temp files behind and reports the artifact size', async () => {
    expect(
      (await readdir(work)).filter((n) => n.startsWith('odh-create-') || n.startsWith('.odh-tmp')),
    ).toEqual([]);
    expect(result.deltaBytes).toBe((await readFile(deltaFile)).length);
  });

  it.skipIf(!hasTool('skopeo', 'skopeo'))('is readable by skopeo inspect --raw', () => {
    const raw = execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${deltaFile}:delta-v2`]);
    expect(sha256(raw)).toBe(result.manifestDigest);
    const parsed = JSON.parse(raw.toString()) as { artifactType: string; subject: { digest: string } };
    expect(parsed.artifactType).toBe('application/vnd.io.github.containers.oci-delta.v1');
    expect(parsed.subject.digest).toBe(sc.new.manifestDigest);
  });
});
