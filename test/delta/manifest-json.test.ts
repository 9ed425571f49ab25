import { describe, expect, it } from 'vitest';
import { serializeManifest } from '../../src/delta/manifest-json.js';
import { parseManifest } from '../../src/oci/types.js';

// Expected bytes are written by hand from Go's encoding/json rules (spec oci-delta §4.1 step 6d):
// struct field order, omitempty, sorted map keys, HTML-safe escaping, unknown fields dropped.
const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('serializeManifest (Go json.Marshal of the output manifest)', () => {
  it('orders fields like the Go struct and drops unknown ones', () => {
    const input = JSON.stringify({
      layers: [
        {
          size: 3,
          digest: D('b'),
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          annotations: { z: '1', a: '2', '10': 'ten', '9': 'nine' },
          vendorExtra: true,
        },
      ],
      config: { digest: D('a'), size: 2, mediaType: 'application/vnd.oci.image.config.v1+json' },
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      schemaVersion: 2,
      somethingElse: { x: 1 },
      annotations: { 'org.example/b': 'x<y & z>w', 'org.example/a': '\u2028' },
    });
    const out = serializeManifest(parseManifest(Buffer.from(input))).toString();
    expect(out).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
        `"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${D('a')}","size":2},` +
        `"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"${D('b')}","size":3,` +
        '"annotations":{"10":"ten","9":"nine","a":"2","z":"1"}}],' +
        '"annotations":{"org.example/a":"\\u2028","org.example/b":"x\\u003cy \\u0026 z\\u003ew"}}',
    );
  });

  it('keeps subject, artifactType, urls and platform in Go order', () => {
    const input = JSON.stringify({
      schemaVersion: 2,
      artifactType: 'application/example',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: D('c'), size: 2 },
      layers: [
        {
          platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          urls: ['https://example.com/x'],
          mediaType: 'm',
          digest: D('d'),
          size: 1,
        },
      ],
      subject: { size: 5, digest: D('e'), mediaType: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(serializeManifest(parseManifest(Buffer.from(input))).toString()).toBe(
      '{"schemaVersion":2,"artifactType":"application/example",' +
        `"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"${D('c')}","size":2},` +
        `"layers":[{"mediaType":"m","digest":"${D('d')}","size":1,"urls":["https://example.com/x"],` +
        '"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}],' +
        `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${D('e')}","size":5}}`,
    );
  });
});
