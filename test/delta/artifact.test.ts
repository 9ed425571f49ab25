import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { parseDeltaArtifact, type DeltaBlobReader } from '../../src/delta/artifact.js';
import type { Descriptor } from '../../src/oci/types.js';

// Fixture shaped like spec oci-delta §8.1 "manifest parsing fixture": hand-written JSON, not produced
// by our code. The embedded manifest is pretty JSON with trailing "\n \t" whose raw bytes must survive.
// Tests poke at arbitrary JSON shapes on purpose.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const LAYER_DIGEST = `sha256:${'a'.repeat(64)}`;
const DIFF_ID = `sha256:${'b'.repeat(64)}`;
const SOURCE_CONFIG = `sha256:${'c'.repeat(64)}`;
const TAR_DIFF_DIGEST = `sha256:${'d'.repeat(64)}`;

const configBytes = Buffer.from(
  `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["${DIFF_ID}"]}}`,
);
const targetManifestBytes = Buffer.from(
  JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(configBytes),
        size: configBytes.length,
      },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: LAYER_DIGEST, size: 100 }],
    },
    null,
    2,
  ) + '\n \t',
);

function deltaManifest(edit?: (m: Json) => void): Buffer {
  const m: Json = {
    schemaVersion: 2,
    artifactType: 'application/vnd.io.github.containers.oci-delta.v1',
    config: {
      mediaType: 'application/vnd.oci.empty.v1+json',
      digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
      size: 2,
    },
    // Order [tar-diff, config, manifest]: order must not matter (spec §8.1).
    layers: [
      {
        mediaType: 'application/vnd.tar-diff',
        digest: TAR_DIFF_DIGEST,
        size: 10,
        annotations: {
          'io.github.containers.delta.content': 'image-layer',
          'io.github.containers.delta.to': LAYER_DIGEST,
        },
      },
      {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(configBytes),
        size: configBytes.length,
        annotations: { 'io.github.containers.delta.content': 'image-config' },
      },
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(targetManifestBytes),
        size: targetManifestBytes.length,
        annotations: { 'io.github.containers.delta.content': 'image-manifest' },
      },
      {
        mediaType: 'application/octet-stream',
        digest: `sha256:${'e'.repeat(64)}`,
        size: 1,
        annotations: { 'io.github.containers.delta.content': 'something-from-the-future' },
      },
    ],
    annotations: { 'io.github.containers.delta.source-config': SOURCE_CONFIG },
  };
  edit?.(m);
  return Buffer.from(JSON.stringify(m));
}

/** An in-memory blob store that checks digests, as a layout reader does. */
function store(...blobs: Buffer[]): DeltaBlobReader {
  const map = new Map(blobs.map((b) => [sha(b), b]));
  return {
    async readBlob(d: Descriptor) {
      const b = map.get(d.digest);
      if (!b) throw new Error(`missing blob ${d.digest}`);
      return b;
    },
  };
}

const blobs = () => store(configBytes, targetManifestBytes);

describe('parseDeltaArtifact', () => {
  it('parses layers in any order and keeps the raw embedded bytes', async () => {
    const a = await parseDeltaArtifact(deltaManifest(), blobs());
    expect(a.sourceConfig).toBe(SOURCE_CONFIG);
    expect(a.targetManifestBytes.equals(targetManifestBytes)).toBe(true);
    expect(a.targetConfigBytes.equals(configBytes)).toBe(true);
    expect(a.layers).toHaveLength(1);
    expect(a.layers[0]!.diffId).toBe(DIFF_ID);
    expect(a.layers[0]!.delta?.digest).toBe(TAR_DIFF_DIGEST);
  });

  it('treats a target layer without delta.to match as reused', async () => {
    const a = await parseDeltaArtifact(
      deltaManifest((m) => (m.layers = m.layers.slice(1))),
      blobs(),
    );
    expect(a.layers[0]!.delta).toBeUndefined();
  });

  it('skips an image-layer whose delta.to is empty', async () => {
    const a = await parseDeltaArtifact(
      deltaManifest((m) => (m.layers[0].annotations['io.github.containers.delta.to'] = '')),
      blobs(),
    );
    expect(a.layers[0]!.delta).toBeUndefined();
  });

  const bad: Array<[string, (m: Json) => void, RegExp]> = [
    ['no annotations', (m) => delete m.annotations, /has no annotations/],
    ['no source-config', (m) => (m.annotations = { x: 'y' }), /missing source config digest/],
    [
      'bad source-config',
      (m) => (m.annotations['io.github.containers.delta.source-config'] = 'md5:00'),
      /source-config/,
    ],
    ['no embedded manifest', (m) => m.layers.splice(2, 1), /no embedded image manifest/],
    ['no embedded config', (m) => m.layers.splice(1, 1), /no embedded image config/],
    [
      'wrong artifactType',
      (m) => (m.artifactType = 'application/vnd.example'),
      /not a delta artifact \(artifactType: "application\/vnd.example"\)/,
    ],
    ['no artifactType', (m) => delete m.artifactType, /not a delta artifact \(artifactType: none\)/],
    [
      'unparseable delta.to',
      (m) => (m.layers[0].annotations['io.github.containers.delta.to'] = 'not-a-digest'),
      new RegExp(`layers\\[0\\] \\(${TAR_DIFF_DIGEST}\\).*delta\\.to`),
    ],
    ['duplicate delta.to', (m) => m.layers.push(m.layers[0]), /second delta layer/],
  ];
  for (const [name, edit, re] of bad) {
    it(`rejects: ${name}`, async () => {
      await expect(parseDeltaArtifact(deltaManifest(edit), blobs())).rejects.toThrow(re);
    });
  }

  it('rejects diff_ids count != layers count', async () => {
    const cfg = Buffer.from(`{"rootfs":{"type":"layers","diff_ids":["${DIFF_ID}","${DIFF_ID}"]}}`);
    const fixed = Buffer.from(
      targetManifestBytes
        .toString()
        .replace(sha(configBytes), sha(cfg))
        .replace(`"size": ${configBytes.length}`, `"size": ${cfg.length}`),
    );
    const m = deltaManifest((x) => {
      x.layers[1].digest = sha(cfg);
      x.layers[1].size = cfg.length;
      x.layers[2].digest = sha(fixed);
      x.layers[2].size = fixed.length;
    });
    await expect(parseDeltaArtifact(m, store(cfg, fixed))).rejects.toThrow(
      /2 diff_ids but the target manifest has 1 layers/,
    );
  });
});
