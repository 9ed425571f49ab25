/**
 * The deterministic OCI layout of composefs-rs `crates/integration-tests/src/tests/cli.rs`
 * (`create_oci_layout`), built byte by byte here (hand-written GNU tar headers, node zlib, zstd-napi),
 * independent of the project's own tar and OCI code. spec composefs-v2 §8.4(a), composefs-v1 §13.3.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';
import { xorByte } from '../helpers/must.js';

export interface GnuEntry {
  name: string;
  typeflag: '0' | '1' | '2' | '5';
  mode: number;
  mtime: number;
  content?: Buffer;
  linkname?: string;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One GNU-format header block (magic "ustar " + version " \0"), as the Rust `tar` crate writes it. */
export function gnuHeader(e: GnuEntry): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, 'utf8');
  h.write(octal(e.mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(e.content?.length ?? 0, 12), 124, 'ascii');
  h.write(octal(e.mtime, 12), 136, 'ascii');
  h.write(e.typeflag, 156, 'ascii');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar  \0', 257, 'ascii');
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

export function gnuTar(entries: GnuEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(gnuHeader(e));
    if (e.content && e.content.length > 0) {
      parts.push(e.content, Buffer.alloc((512 - (e.content.length % 512)) % 512));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export const HELLO = Buffer.from('hello from test layer\n');
export const MTIME = 1234567890;

/** spec composefs-v2 §8.4(a): `usr/` and `hello.txt`; with `hardlink`, also `hello-link.txt` (v1 §13.3). */
export function composefsTestLayer(hardlink: boolean): Buffer {
  const entries: GnuEntry[] = [
    { name: 'usr/', typeflag: '5', mode: 0o755, mtime: MTIME },
    { name: 'hello.txt', typeflag: '0', mode: 0o644, mtime: MTIME, content: HELLO },
  ];
  if (hardlink)
    entries.push({ name: 'hello-link.txt', typeflag: '1', mode: 0o644, mtime: MTIME, linkname: 'hello.txt' });
  return gnuTar(entries);
}

/** Pinned image IDs (SHA-512 repositories). */
export const PINNED = {
  /** spec composefs-v2 §8.4(a): `OCI_LAYOUT_COMPOSEFS_ID`, layer without the hardlink, V2. */
  v2: 'f26c6eb439749b82f0d1520e83455bb21766572fb2b5cfe009dd7749a61caf74e0c42c56f1a2cbd9d359e7d172c8e2c65641666c9a18cc484a8b0f6e4e6d47ab',
  /** spec composefs-v1 §13.3: `OCI_LAYOUT_COMPOSEFS_V1_ID`, layer with the hardlink, V1. */
  v1: 'd06f1f6a73f62ed48e05ce9442ff045cdf2a9f5ba1ec623795de3d6177a253d91076459795d94f55d8c3d71dab458bb3fc0071255a50c0a4896d86ffdc870b9a',
} as const;

const sha256 = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_MEDIA: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

export interface BuiltLayout {
  dir: string;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
}

/**
 * Writes an `oci:` layout directory holding one image made of the given uncompressed layer tars.
 * `corruptLayer` flips one byte of that layer's blob after its digest was recorded.
 */
export async function writeOciLayout(
  dir: string,
  layers: Buffer[],
  opts: { compression?: Compression; tag?: string; corruptLayer?: number; diffIds?: string[] } = {},
): Promise<BuiltLayout> {
  const compression = opts.compression ?? 'none';
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer, corrupt = false): Promise<string> => {
    const d = sha256(b);
    const stored = corrupt ? Buffer.from(b) : b;
    if (corrupt) xorByte(stored, Math.floor(stored.length / 2), 0xff);
    await writeFile(path.join(blobs, d.slice(7)), stored);
    return d;
  };
  const layerDescs = [];
  for (const [i, tar] of layers.entries()) {
    const blob = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompress(tar) : tar;
    layerDescs.push({
      mediaType: LAYER_MEDIA[compression],
      digest: await put(blob, opts.corruptLayer === i),
      size: blob.length,
    });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: opts.diffIds ?? layers.map(sha256) },
      history: [],
    }),
  );
  const configDigest = await put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: layerDescs,
    }),
  );
  const manifestDigest = await put(manifest);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifestDigest,
        size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' },
      },
    ],
  };
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { dir, manifestDigest, configDigest, layerDigests: layerDescs.map((d) => d.digest) };
}

/** Packs a layout directory written by `writeOciLayout` into an `oci-archive:` tar file. */
export async function writeOciArchive(layout: BuiltLayout, file: string): Promise<void> {
  const { readdir, readFile } = await import('node:fs/promises');
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const add = (name: string, content: Buffer) =>
    new Promise<void>((resolve, reject) =>
      pack.entry({ name, mtime: new Date(0), mode: 0o644 }, content, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  await add('oci-layout', await readFile(path.join(layout.dir, 'oci-layout')));
  await add('index.json', await readFile(path.join(layout.dir, 'index.json')));
  for (const f of (await readdir(path.join(layout.dir, 'blobs', 'sha256'))).sort()) {
    await add(`blobs/sha256/${f}`, await readFile(path.join(layout.dir, 'blobs', 'sha256', f)));
  }
  pack.finalize();
  await done;
  await writeFile(file, Buffer.concat(chunks));
}
