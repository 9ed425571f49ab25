import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, it, expect } from 'vitest';
import {
  DigestHasher,
  DigestStream,
  checkDigest,
  digestOf,
  parseDiffId,
  parseDigest,
} from '../../src/oci/digest.js';
import {
  EMPTY_JSON,
  EMPTY_JSON_DIGEST,
  parseDescriptor,
  parseImageConfig,
  parseIndex,
  parseManifest,
} from '../../src/oci/types.js';
import { nth } from '../helpers/must.js';

const H = 'a'.repeat(64);

describe('parseDigest', () => {
  it('accepts sha256 and sha512 with exact lowercase hex lengths', () => {
    expect(parseDigest(`sha256:${H}`)).toEqual({ algorithm: 'sha256', hex: H, digest: `sha256:${H}` });
    expect(parseDigest(`sha512:${'0'.repeat(128)}`).algorithm).toBe('sha512');
  });
  it.each([
    [`sha256:${'A'.repeat(64)}`, /lowercase hex/],
    [`sha256:${'a'.repeat(63)}`, /64 lowercase hex/],
    [`sha512:${'a'.repeat(64)}`, /128 lowercase hex/],
    [`md5:${H}`, /unsupported digest algorithm "md5"/],
    [H, /no algorithm prefix/],
    [42, /must be a string, got number/],
  ])('rejects %s', (input, msg) => {
    expect(() => parseDigest(input, 'x')).toThrow(msg);
    try {
      parseDigest(input);
    } catch (e) {
      expect((e as { code: string }).code).toBe('FORMAT');
    }
  });
});

describe('sha384 diff_ids (spec oci-delta §4.3: diff_id algorithms sha256/sha384/sha512)', () => {
  // FIPS 180-2 appendix D.1: SHA-384("abc").
  const ABC384 =
    'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7';
  it('parseDiffId accepts 96-hex sha384; blob digests (parseDigest) stay sha256/sha512', () => {
    expect(parseDiffId(`sha384:${ABC384}`)).toEqual({
      algorithm: 'sha384',
      hex: ABC384,
      digest: `sha384:${ABC384}`,
    });
    expect(parseDiffId(`sha256:${H}`).algorithm).toBe('sha256');
    expect(parseDiffId(`sha512:${'0'.repeat(128)}`).algorithm).toBe('sha512');
    expect(() => parseDiffId(`sha384:${H}`, 'd')).toThrow(/sha384 digest must be 96 lowercase hex/);
    expect(() => parseDiffId(`md5:${H}`, 'd')).toThrow(/unsupported digest algorithm "md5"/);
    expect(() => parseDigest(`sha384:${ABC384}`, 'blob')).toThrow(/unsupported digest algorithm "sha384"/);
  });
  it('DigestHasher and digestOf hash with sha384', () => {
    expect(new DigestHasher('sha384').update(Buffer.from('abc')).digest()).toBe(`sha384:${ABC384}`);
    expect(digestOf(Buffer.from('abc'), 'sha384')).toBe(`sha384:${ABC384}`);
  });
  it('parseImageConfig accepts sha384 diff_ids and still refuses a short one', () => {
    const ids = [`sha256:${H}`, `sha384:${ABC384}`, `sha512:${'1'.repeat(128)}`];
    expect(parseImageConfig(j({ rootfs: { type: 'layers', diff_ids: ids } })).rootfs.diff_ids).toEqual(ids);
    expect(() =>
      parseImageConfig(j({ rootfs: { type: 'layers', diff_ids: [`sha384:${ABC384.slice(1)}`] } })),
    ).toThrow(/rootfs\.diff_ids\[0\]: sha384 digest must be 96 lowercase hex/);
  });
});

describe('digestOf / DigestStream', () => {
  it('matches the pinned empty-JSON digest of spec oci-delta §1.1', () => {
    expect(digestOf(EMPTY_JSON)).toBe(EMPTY_JSON_DIGEST);
  });
  it('hashes and counts streamed bytes', async () => {
    const data = Buffer.alloc(300_000, 7);
    const ds = new DigestStream();
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
      ds,
      new Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) }),
    );
    expect(ds.size).toBe(300_000);
    expect(ds.digest()).toBe(`sha256:${createHash('sha256').update(data).digest('hex')}`);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });
  it('checkDigest reports upstream wording', () => {
    expect(() =>
      checkDigest({ digest: `sha256:${H}` }, { digest: `sha256:${'b'.repeat(64)}`, size: 1 }),
    ).toThrow(`blob digest mismatch: expected sha256:${H}, got sha256:${'b'.repeat(64)}`);
    expect(() => checkDigest({ digest: `sha256:${H}`, size: 2 }, { digest: `sha256:${H}`, size: 1 })).toThrow(
      /size mismatch/,
    );
  });
});

const desc = (o: object = {}) => ({ mediaType: 'application/x', digest: `sha256:${H}`, size: 3, ...o });
const j = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('validating parsers', () => {
  it('parses a manifest and keeps Go field order', () => {
    const m = parseManifest(
      j({
        annotations: { a: 'b' },
        layers: [desc()],
        config: desc(),
        schemaVersion: 2,
        artifactType: 'x/y',
        extra: 1,
      }),
    );
    expect(Object.keys(m)).toEqual(['schemaVersion', 'artifactType', 'config', 'layers', 'annotations']);
    expect(m.layers[0]).toEqual(desc());
  });
  it.each([
    ['{', /invalid JSON/],
    ['[]', /expected a JSON object, got array/],
    [JSON.stringify({ schemaVersion: 1, config: desc(), layers: [] }), /schemaVersion must be 2/],
    [JSON.stringify({ schemaVersion: 2, layers: [] }), /manifest has no config digest/],
    [
      JSON.stringify({ schemaVersion: 2, config: desc(), layers: [desc({ size: -1 })] }),
      /layers\[0\].*non-negative/,
    ],
    [
      JSON.stringify({ schemaVersion: 2, config: desc(), layers: [desc({ size: 1.5 })] }),
      /non-negative safe integer/,
    ],
    [
      JSON.stringify({ schemaVersion: 2, config: desc({ digest: 'sha256:zz' }), layers: [] }),
      /config\.digest/,
    ],
    [
      JSON.stringify({ schemaVersion: 2, config: desc(), layers: [], annotations: { a: 1 } }),
      /annotation "a" must be a string/,
    ],
    [
      JSON.stringify({ schemaVersion: 2, config: desc({ mediaType: undefined }), layers: [] }),
      /missing field "mediaType"/,
    ],
  ])('rejects bad manifest %s', (text, msg) => {
    expect(() => parseManifest(Buffer.from(text), 'blob X')).toThrow(msg);
  });
  it('rejects an index passed as a manifest by mediaType', () => {
    expect(() =>
      parseManifest(
        j({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }),
      ),
    ).toThrow(/not an image manifest/);
  });
  it('parses an index and a config', () => {
    const idx = parseIndex(
      j({
        schemaVersion: 2,
        manifests: [desc({ annotations: { 'org.opencontainers.image.ref.name': 'v1' } })],
      }),
    );
    expect(nth(idx.manifests, 0).annotations).toEqual({ 'org.opencontainers.image.ref.name': 'v1' });
    expect(() => parseIndex(j({ schemaVersion: 2 }))).toThrow(/missing field "manifests"/);
    const c = parseImageConfig(
      j({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [`sha256:${H}`] },
        config: {},
      }),
    );
    expect(c.rootfs.diff_ids).toEqual([`sha256:${H}`]);
    expect(c.config).toEqual({});
    expect(() => parseImageConfig(j({ rootfs: { type: 'layers', diff_ids: ['x'] } }))).toThrow(
      /diff_ids\[0\]/,
    );
    expect(() => parseImageConfig(j({}))).toThrow(/missing field "rootfs"/);
  });
  it('parseDescriptor rejects missing size and wrong types', () => {
    expect(() => parseDescriptor(desc({ size: undefined }), 'd')).toThrow(/missing field "size"/);
    expect(() => parseDescriptor(desc({ size: '3' }), 'd')).toThrow(/non-negative/);
    expect(() => parseDescriptor(desc({ urls: [1] }), 'd')).toThrow(/urls/);
    expect(() => parseDescriptor(null, 'd')).toThrow(/expected an object, got null/);
  });
});
