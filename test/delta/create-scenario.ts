/**
 * The shared scenario of the create tests: a bootc-style old image (spec oci-delta §8.4
 * test-synthetic: ostree objects + usr/lib64 hardlinks) and a new image with one identical layer,
 * one re-gzipped layer (same diff_id, other digest), one layer of updated libs, a zstd layer with
 * edited text files and a tiny layer whose tar-diff cannot beat its gzip blob.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import {
  bootcLayerEntries,
  buildOciImage,
  flip64,
  seededBytes,
  type BuiltImage,
  syntheticLib,
} from '../helpers/images.js';
import { tarEntryRanges } from '../helpers/delta-builder.js';

const lib = syntheticLib;

/** Text-like content (compressible, so zstd/gzip blobs are much smaller than the tar). */
function words(seed: string, size: number): Buffer {
  const lex = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
  const r = seededBytes(seed, size);
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const w = `${lex[r[i % size]! % lex.length]}${r[(i * 7) % size]! % 13}${i % 9 === 8 ? '\n' : ' '}`;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

export interface Scenario {
  old: BuiltImage;
  new: BuiltImage;
  /** What create should decide per new layer. */
  expectedKinds: Array<'reused' | 'tar-diff' | 'original'>;
}

export async function buildScenario(dir: string): Promise<Scenario> {
  const groups = [
    ['libc.so.6', 'libm.so.6'],
    ['libssl.so.1', 'libcrypto.so.1'],
    ['libz.so.1', 'libbz2.so.1'],
    ['liblzma.so.5', 'libpcre.so.3'],
  ].map((names) => bootcLayerEntries(names.map(lib)));
  const config1 = words('etc/app.conf', 40_000);
  const doc1 = words('usr/share/doc/readme', 60_000);
  const old = await buildOciImage(path.join(dir, 'old'), {
    layers: [
      { entries: groups[0]! },
      { entries: groups[1]!, gzipLevel: 1 },
      { entries: groups[2]! },
      { entries: groups[3]! },
      {
        entries: [
          { type: 'dir', path: 'etc' },
          { type: 'file', path: 'etc/app.conf', content: config1 },
          { type: 'dir', path: 'usr/share/doc' },
          { type: 'file', path: 'usr/share/doc/readme', content: doc1 },
        ],
        compression: 'zstd',
      },
    ],
  });
  const updated = [
    ['libc.so.6', 500],
    ['libssl.so.1', 300],
    ['libz.so.1', 700],
    ['liblzma.so.5', 400],
  ].map(([name, at]) => ({
    ...lib(name as string),
    content: flip64(lib(name as string).content, at as number),
  }));
  const config2 = Buffer.concat([
    config1.subarray(0, 20_000),
    Buffer.from('# edited\n'),
    config1.subarray(20_000),
  ]);
  const doc2 = flip64(doc1, 30_000);
  const neu = await buildOciImage(path.join(dir, 'new'), {
    refName: 'v2',
    layers: [
      { entries: groups[0]! },
      { entries: groups[1]!, gzipLevel: 9 },
      { entries: bootcLayerEntries(updated) },
      {
        entries: [
          { type: 'dir', path: 'etc' },
          { type: 'file', path: 'etc/app.conf', content: config2 },
          { type: 'dir', path: 'usr/share/doc' },
          { type: 'file', path: 'usr/share/doc/readme', content: doc2 },
        ],
        compression: 'zstd',
      },
      // spec §8.4 integration test: a tiny layer (1-byte file) forces the original-layer fallback
      { entries: [{ type: 'file', path: 'etc/tiny', content: 'x' }], gzipLevel: 9 },
    ],
  });
  return { old, new: neu, expectedKinds: ['reused', 'reused', 'tar-diff', 'tar-diff', 'original'] };
}

/** Entries of an uncompressed tar file: names and data, in order (tar-stream independent walk). */
export async function archiveEntries(
  file: string,
): Promise<Array<{ name: string; typeflag: string; data: Buffer }>> {
  const tar = await readFile(file);
  return tarEntryRanges(tar).map((e) => ({
    name: e.name,
    typeflag: e.typeflag,
    data: tar.subarray(e.dataOffset, e.dataOffset + e.size),
  }));
}

/** sha256 of a layer blob file's decompressed bytes (gzip/zstd sniffed), streamed with node zlib / zstd-napi. */
export async function diffIdOfBlobFile(file: string): Promise<string> {
  const head = Buffer.alloc(4);
  const fh = await open(file, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  let codec: Transform = new PassThrough();
  if (head[0] === 0x1f && head[1] === 0x8b) codec = createGunzip();
  else if (head.readUInt32LE(0) === 0xfd2fb528) codec = new DecompressStream();
  const h = createHash('sha256');
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      h.update(c);
      cb();
    },
  });
  await pipeline(createReadStream(file), codec, sink);
  return `sha256:${h.digest('hex')}`;
}

/**
 * diff_ids of an `oci:` layout's (first) image, recomputed from the layer blobs present; a layer
 * whose blob is absent (reused, not filled) gives undefined.
 */
export async function outputDiffIds(layoutDir: string): Promise<Array<string | undefined>> {
  const blob = (d: string) => path.join(layoutDir, 'blobs', 'sha256', d.slice(7));
  const index = JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
  const out: Array<string | undefined> = [];
  for (const l of manifest.layers as Array<{ digest: string }>) {
    out.push(existsSync(blob(l.digest)) ? await diffIdOfBlobFile(blob(l.digest)) : undefined);
  }
  return out;
}

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
