import { describe, expect, it } from 'vitest';
import { encodeManifestGo, goJsonString } from '../../src/oci/gojson.js';
import { parseManifest } from '../../src/oci/types.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

describe('Go encoding/json re-serialization (spec oci-delta §4.1 step 6d)', () => {
  it('escapes like Go', () => {
    expect(goJsonString('a<b>&c\u2028"\\\n\t\u0001')).toBe(
      '"a\\u003cb\\u003e\\u0026c\\u2028\\"\\\\\\n\\t\\u0001"',
    );
    expect(goJsonString('x\ud800y')).toBe('"x\ufffdy"');
    expect(goJsonString('😀')).toBe('"😀"');
  });

  it('orders fields, drops unknown and empty ones, sorts annotation keys bytewise', () => {
    // Input deliberately shuffled, pretty-printed, with unknown fields and an empty annotations map.
    const input = Buffer.from(
      JSON.stringify(
        {
          annotations: { z: '1', é: '2', B: '<&>', a: '' },
          layers: [
            {
              size: 10,
              annotations: {},
              digest: B,
              mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
              unknown: true,
              urls: [],
            },
          ],
          config: { digest: A, mediaType: 'application/vnd.oci.image.config.v1+json', size: 2 },
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          schemaVersion: 2,
          extra: { x: 1 },
          subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: A, size: 0 },
        },
        null,
        2,
      ),
    );
    const want =
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
      `"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${A}","size":2},` +
      `"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"${B}","size":10}],` +
      `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${A}","size":0},` +
      '"annotations":{"B":"\\u003c\\u0026\\u003e","a":"","z":"1","é":"2"}}';
    expect(encodeManifestGo(parseManifest(input)).toString()).toBe(want);
  });

  it('keeps descriptor extras in Go struct order', () => {
    const m = parseManifest(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          artifactType: 'application/x-art',
          config: {
            artifactType: 't',
            platform: { variant: 'v8', os: 'linux', architecture: 'arm64', 'os.version': '1' },
            data: 'e30=',
            annotations: { k: 'v' },
            urls: ['https://x'],
            size: 2,
            digest: A,
            mediaType: 'application/vnd.oci.empty.v1+json',
          },
          layers: [],
        }),
      ),
    );
    expect(encodeManifestGo(m).toString()).toBe(
      '{"schemaVersion":2,"artifactType":"application/x-art","config":{"mediaType":"application/vnd.oci.empty.v1+json",' +
        `"digest":"${A}","size":2,"urls":["https://x"],"annotations":{"k":"v"},"data":"e30=",` +
        '"platform":{"architecture":"arm64","os":"linux","os.version":"1","variant":"v8"},"artifactType":"t"},"layers":[]}',
    );
  });
});
