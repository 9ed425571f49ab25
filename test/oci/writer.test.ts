import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/oci/image.js';
import { createLayoutWriter, encodeIndexJson } from '../../src/oci/writer.js';
import { hasTool } from '../helpers/tools.js';
import { sha256 } from './layout-fixture.js';

let tmp: string;
const LAYER_A = Buffer.alloc(5000, 0x41);
const LAYER_B = Buffer.alloc(3 << 20);
for (let i = 0; i < LAYER_B.length; i += 997) LAYER_B[i] = i & 0xff;
const CONFIG = Buffer.from(
  JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [sha256(LAYER_A), sha256(LAYER_B)] },
  }),
);
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha256(CONFIG),
      size: CONFIG.length,
    },
    layers: [LAYER_A, LAYER_B].map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: sha256(l),
      size: l.length,
    })),
  }),
);
const MANIFEST_ENTRY = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: sha256(MANIFEST),
  size: MANIFEST.length,
};

/** Chunks a buffer like a network stream would. */
function streamOf(b: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < b.length; i += 65536) yield b.subarray(i, i + 65536);
    })(),
  );
}

async function writeImage(kind: 'archive' | 'dir', p: string, refName?: string): Promise<void> {
  const w = await createLayoutWriter({ kind, path: p, refName });
  expect(await w.addBlob(LAYER_A)).toEqual({ digest: sha256(LAYER_A), size: LAYER_A.length });
  expect(await w.addBlob(streamOf(LAYER_B), { expectedDigest: sha256(LAYER_B) })).toEqual({
    digest: sha256(LAYER_B),
    size: LAYER_B.length,
  });
  await w.addBlob(streamOf(LAYER_A)); // duplicate: written once
  await w.addJsonBlob(CONFIG);
  await w.addJsonBlob(MANIFEST);
  await w.finish(MANIFEST_ENTRY);
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-writer-'));
});
afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('index.json (spec oci-delta §1.2)', () => {
  it('is compact with the upstream key order; ref.name only when given', () => {
    const d = `sha256:${'ab'.repeat(32)}`;
    const e = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: 123 };
    expect(encodeIndexJson(e).toString()).toBe(
      `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${d}","size":123}]}`,
    );
    expect(encodeIndexJson(e, 'a<b').toString()).toBe(
      `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${d}","size":123,"annotations":{"org.opencontainers.image.ref.name":"a\\u003cb"}}]}`,
    );
  });
});

describe('oci-archive writer', () => {
  it('follows the upstream tar conventions exactly (byte-equal to GNU tar ustar -b1 of the same tree)', async (ctx) => {
    const out = path.join(tmp, 'w.tar');
    await writeImage('archive', out, 'v1');
    const bytes = await fs.readFile(out);
    // Walk the headers by hand (independent of src/tar).
    const names: string[] = [];
    let off = 0;
    while (off < bytes.length) {
      const h = bytes.subarray(off, off + 512);
      if (h.every((b) => b === 0)) break;
      const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
      const size = parseInt(h.subarray(124, 136).toString('latin1'), 8);
      const dir = name.endsWith('/');
      names.push(name);
      expect(h.toString('latin1', 156, 157)).toBe(dir ? '5' : '0');
      expect(h.subarray(100, 108).toString('latin1')).toBe(dir ? '0000755\0' : '0000644\0');
      expect(h.subarray(108, 124).toString('latin1')).toBe('0000000\0' + '0000000\0');
      expect(h.subarray(136, 148).toString('latin1')).toBe('00000000000\0');
      expect(h.subarray(257, 265).toString('latin1')).toBe('ustar\x0000');
      expect(h.subarray(265, 329).every((b) => b === 0)).toBe(true); // empty uname/gname
      off += 512 + Math.ceil(size / 512) * 512;
    }
    expect(names).toEqual([
      'oci-layout',
      'blobs/',
      'blobs/sha256/',
      `blobs/sha256/${sha256(LAYER_A).slice(7)}`,
      `blobs/sha256/${sha256(LAYER_B).slice(7)}`,
      `blobs/sha256/${sha256(CONFIG).slice(7)}`,
      `blobs/sha256/${sha256(MANIFEST).slice(7)}`,
      'index.json',
    ]);
    // Exactly two zero blocks end it, with no record padding.
    expect(bytes.length).toBe(off + 1024);
    expect(bytes.subarray(off).every((b) => b === 0)).toBe(true);

    if (!hasTool('tar', 'tar')) ctx.skip();
    // GNU tar writes the same ustar header layout (octal + NUL, checksum "NNNNNN\0 ", empty names
    // with --numeric-owner) and with -b1 no record padding: the whole archive must be identical.
    const tree = path.join(tmp, 'tree');
    execFileSync('tar', ['-xf', out, '-C', (await fs.mkdir(tree, { recursive: true }), tree)]);
    for (const n of names) await fs.chmod(path.join(tree, n), n.endsWith('/') ? 0o755 : 0o644);
    const gnu = path.join(tmp, 'gnu.tar');
    execFileSync(
      'tar',
      [
        '--format=ustar',
        '--numeric-owner',
        '--owner=0',
        '--group=0',
        '--mtime=@0',
        '-b',
        '1',
        '--no-recursion',
        '-cf',
        gnu,
        ...names,
      ],
      { cwd: tree },
    );
    expect((await fs.readFile(gnu)).equals(bytes)).toBe(true);
  });

  it('is deterministic', async () => {
    const a = path.join(tmp, 'd1.tar');
    const b = path.join(tmp, 'd2.tar');
    await writeImage('archive', a);
    await writeImage('archive', b);
    expect((await fs.readFile(a)).equals(await fs.readFile(b))).toBe(true);
  });

  it('reads back with our reader and with skopeo, keeping the manifest digest', async (ctx) => {
    const out = path.join(tmp, 'rb.tar');
    await writeImage('archive', out, 'v1');
    const img = await openImage(`oci-archive:${out}:v1`);
    expect(img.manifestRaw.equals(MANIFEST)).toBe(true);
    await img.reader.close();
    if (!hasTool('skopeo', 'skopeo')) ctx.skip();
    expect(sha256(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${out}:v1`]))).toBe(
      sha256(MANIFEST),
    );
    const copy = path.join(tmp, 'rb-copy');
    execFileSync('skopeo', [
      'copy',
      '-q',
      '--preserve-digests',
      '--dest-oci-accept-uncompressed-layers',
      `oci-archive:${out}`,
      `oci:${copy}:x`,
    ]);
    const idx = JSON.parse(await fs.readFile(path.join(copy, 'index.json'), 'utf8'));
    expect(idx.manifests[0].digest).toBe(sha256(MANIFEST));
  });

  it('refuses an existing output, and a digest mismatch leaves nothing behind', async () => {
    const out = path.join(tmp, 'exists.tar');
    await fs.writeFile(out, 'x');
    await expect(createLayoutWriter({ kind: 'archive', path: out })).rejects.toMatchObject({
      code: 'EXISTS',
    });
    const dir = path.join(tmp, 'mm');
    await fs.mkdir(dir);
    const w = await createLayoutWriter({ kind: 'archive', path: path.join(dir, 'o.tar') });
    await expect(w.addBlob(streamOf(LAYER_B), { expectedDigest: sha256(LAYER_A) })).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    expect(await fs.readdir(dir)).toEqual([]);
    await expect(w.finish(MANIFEST_ENTRY)).rejects.toMatchObject({ code: 'USAGE' });
    const w2 = await createLayoutWriter({ kind: 'dir', path: path.join(dir, 'o') });
    await w2.addBlob(LAYER_A);
    await w2.abort();
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('a failing source stream aborts the output', async () => {
    const dir = path.join(tmp, 'fail');
    await fs.mkdir(dir);
    const w = await createLayoutWriter({ kind: 'archive', path: path.join(dir, 'o.tar') });
    const bad = Readable.from(
      (async function* () {
        yield Buffer.alloc(1000);
        throw new Error('network went away');
      })(),
    );
    await expect(w.addBlob(bad)).rejects.toThrow(/network went away/);
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe('oci directory writer', () => {
  it('writes the same names with modes 0755/0644 and reads back', async (ctx) => {
    const out = path.join(tmp, 'layout-dir');
    await writeImage('dir', out, 'v1');
    const mode = async (p: string) => (await fs.stat(path.join(out, p))).mode & 0o7777;
    expect(await mode('.')).toBe(0o755);
    expect(await mode('blobs')).toBe(0o755);
    expect(await mode('blobs/sha256')).toBe(0o755);
    expect(await mode('oci-layout')).toBe(0o644);
    expect(await mode('index.json')).toBe(0o644);
    expect((await fs.readdir(path.join(out, 'blobs', 'sha256'))).sort()).toEqual(
      [LAYER_A, LAYER_B, CONFIG, MANIFEST].map((b) => sha256(b).slice(7)).sort(),
    );
    expect(await mode(`blobs/sha256/${sha256(LAYER_B).slice(7)}`)).toBe(0o644);
    expect(await fs.readFile(path.join(out, 'oci-layout'), 'utf8')).toBe('{"imageLayoutVersion":"1.0.0"}');
    expect(
      (await fs.readFile(path.join(out, 'index.json'))).equals(encodeIndexJson(MANIFEST_ENTRY, 'v1')),
    ).toBe(true);
    const img = await openImage(`oci:${out}:v1`);
    expect(img.config.rootfs.diff_ids).toHaveLength(2);
    await img.reader.close();
    if (!hasTool('skopeo', 'skopeo')) ctx.skip();
    expect(sha256(execFileSync('skopeo', ['inspect', '--raw', `oci:${out}:v1`]))).toBe(sha256(MANIFEST));
  });
});
