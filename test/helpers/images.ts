/**
 * Builds real OCI images for tests with tar-stream, node zlib and zstd-napi — independent of the
 * project's own tar and OCI writers, so tests never check our code with itself. Everything is
 * deterministic: fixed mtimes, sorted-free explicit entry order, content from `seededBytes`.
 *
 * An image is written both as an `oci:` layout directory and as an `oci-archive:` tar, and the
 * uncompressed layer tars are kept beside them so tests can compare diff_ids and feed tar readers.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';

/** Fixed mtime for every entry we write (2023-11-14T22:13:20Z). */
export const FIXED_MTIME = new Date(1_700_000_000 * 1000);

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  tar: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

export type LayerCompression = 'gzip' | 'zstd' | 'none';

interface EntryCommon {
  /** Path as written in the tar header (may be hostile: `../x`, `/abs`, long names…). */
  path: string;
  /** Permission bits; note tar-stream replaces a mode of exactly 0 by its default. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Extra PAX records, e.g. `{ 'SCHILY.xattr.user.k': 'v' }` or `GNU.sparse.*` markers. */
  pax?: Record<string, string>;
}

/** One tar entry of a test layer. Whiteout kinds expand to the `.wh.` names of spec oci-delta §5.2. */
export type LayerEntry =
  | (EntryCommon & { type: 'file'; content: Buffer | string })
  | (EntryCommon & { type: 'dir' })
  | (EntryCommon & { type: 'symlink'; target: string })
  | (EntryCommon & { type: 'hardlink'; target: string })
  | (EntryCommon & { type: 'char-device' | 'block-device'; major: number; minor: number })
  | (EntryCommon & { type: 'fifo' })
  /** Plain whiteout hiding `path` (written as `dirname(path)/.wh.basename(path)`). */
  | { type: 'whiteout'; path: string }
  /** Opaque whiteout of directory `path` (written as `path/.wh..wh..opq`; `''` = root). */
  | { type: 'opaque'; path: string };

export interface LayerSpec {
  entries: LayerEntry[];
  /** Hostile cases: these bytes are the layer's "tar" verbatim (`entries` is ignored). */
  rawTar?: Buffer;
  compression?: LayerCompression;
  /** gzip level (zlib), default 6. */
  gzipLevel?: number;
  /** zstd level, default 3. */
  zstdLevel?: number;
}

export interface ImageSpec {
  layers: LayerSpec[];
  /** `org.opencontainers.image.ref.name` annotation in index.json. */
  refName?: string;
  /** Extra top-level config fields (e.g. `config: { Cmd: [...] }`), merged before `rootfs`. */
  config?: Record<string, unknown>;
}

export interface BuiltLayer {
  /** Path of the uncompressed layer tar (the bytes whose sha256 is the diff_id). */
  tarPath: string;
  diffId: string;
  /** Compressed blob digest/size and media type as in the manifest. */
  digest: string;
  size: number;
  mediaType: string;
}

export interface BuiltImage {
  /** `oci:` layout directory. */
  layoutDir: string;
  /** `oci-archive:` tar file. */
  archivePath: string;
  /** Ready-made transport references. */
  ociRef: string;
  archiveRef: string;
  manifestDigest: string;
  manifestBytes: Buffer;
  configDigest: string;
  configBytes: Buffer;
  diffIds: string[];
  layers: BuiltLayer[];
}

/** Deterministic pseudo-random bytes: a sha256 chain seeded by a string (spec oci-delta §8.4 style). */
export function seededBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  let off = 0;
  while (off < size) {
    off += block.copy(out, off, 0, Math.min(block.length, size - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function tarName(e: LayerEntry): string {
  if (e.type === 'whiteout') {
    const dir = path.posix.dirname(e.path);
    const base = path.posix.basename(e.path);
    return dir === '.' ? `.wh.${base}` : `${dir}/.wh.${base}`;
  }
  if (e.type === 'opaque') return e.path === '' ? '.wh..wh..opq' : `${e.path}/.wh..wh..opq`;
  return e.path;
}

/** Assembles an uncompressed layer tar with tar-stream (PAX for long names, xattrs, extra records). */
export async function buildLayerTar(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const base: Partial<tarStream.Header> & { name: string } = {
      name: tarName(e),
      mtime: FIXED_MTIME,
      uid: 'uid' in e ? (e.uid ?? 0) : 0,
      gid: 'gid' in e ? (e.gid ?? 0) : 0,
      uname: '',
      gname: '',
    };
    if ('pax' in e && e.pax) base.pax = e.pax;
    let body: Buffer | undefined;
    switch (e.type) {
      case 'file':
        body = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
        Object.assign(base, { type: 'file', mode: e.mode ?? 0o644, size: body.length });
        break;
      case 'dir':
        Object.assign(base, { type: 'directory', mode: e.mode ?? 0o755 });
        break;
      case 'symlink':
        Object.assign(base, { type: 'symlink', mode: e.mode ?? 0o777, linkname: e.target });
        break;
      case 'hardlink':
        Object.assign(base, { type: 'link', mode: e.mode ?? 0o644, linkname: e.target });
        break;
      case 'char-device':
      case 'block-device':
        Object.assign(base, {
          type: e.type === 'char-device' ? 'character-device' : 'block-device',
          mode: e.mode ?? 0o600,
          devmajor: e.major,
          devminor: e.minor,
        });
        break;
      case 'fifo':
        Object.assign(base, { type: 'fifo', mode: e.mode ?? 0o644 });
        break;
      case 'whiteout':
      case 'opaque':
        Object.assign(base, { type: 'file', mode: 0o644, size: 0 });
        break;
    }
    await new Promise<void>((resolve, reject) => {
      // Always hand a buffer (empty for non-files): tar-stream then ends the entry itself.
      pack.entry(base, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

export function compressLayer(tar: Buffer, spec: Pick<LayerSpec, 'compression' | 'gzipLevel' | 'zstdLevel'>) {
  switch (spec.compression ?? 'gzip') {
    case 'gzip':
      // mtime 0 and no name, like test-synthetic (spec oci-delta §8.4)
      return { blob: gzipSync(tar, { level: spec.gzipLevel ?? 6 }), mediaType: MEDIA_TYPES.gzip };
    case 'zstd':
      return {
        blob: zstdCompress(tar, { compressionLevel: spec.zstdLevel ?? 3 }),
        mediaType: MEDIA_TYPES.zstd,
      };
    case 'none':
      return { blob: tar, mediaType: MEDIA_TYPES.tar };
  }
}

/**
 * Writes an image under `outDir`: `outDir/oci` (layout), `outDir/image.tar` (archive) and
 * `outDir/layers/<i>.tar` (uncompressed layers).
 */
export async function buildOciImage(outDir: string, spec: ImageSpec): Promise<BuiltImage> {
  const blobs = new Map<string, Buffer>(); // hex → bytes, in insertion order
  const addBlob = (bytes: Buffer): { digest: string; size: number } => {
    const hex = sha256Hex(bytes);
    blobs.set(hex, bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };

  await mkdir(path.join(outDir, 'layers'), { recursive: true });
  const layers: BuiltLayer[] = [];
  for (const [i, ls] of spec.layers.entries()) {
    const tar = ls.rawTar ?? (await buildLayerTar(ls.entries));
    const tarPath = path.join(outDir, 'layers', `${i}.tar`);
    await writeFile(tarPath, tar);
    const { blob, mediaType } = compressLayer(tar, ls);
    const d = addBlob(Buffer.from(blob));
    layers.push({ tarPath, diffId: `sha256:${sha256Hex(tar)}`, mediaType, ...d });
  }
  const diffIds = layers.map((l) => l.diffId);
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      ...spec.config,
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const config = addBlob(configBytes);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: { mediaType: MEDIA_TYPES.config, ...config },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  const manifest = addBlob(manifestBytes);
  const indexBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [
        {
          mediaType: MEDIA_TYPES.manifest,
          ...manifest,
          ...(spec.refName ? { annotations: { 'org.opencontainers.image.ref.name': spec.refName } } : {}),
        },
      ],
    }),
  );
  const layoutBytes = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const layoutDir = path.join(outDir, 'oci');
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(layoutDir, 'oci-layout'), layoutBytes);
  await writeFile(path.join(layoutDir, 'index.json'), indexBytes);
  for (const [hex, bytes] of blobs) await writeFile(path.join(layoutDir, 'blobs', 'sha256', hex), bytes);

  const archivePath = path.join(outDir, 'image.tar');
  const archiveEntries: LayerEntry[] = [
    { type: 'file', path: 'oci-layout', content: layoutBytes },
    { type: 'file', path: 'index.json', content: indexBytes },
    { type: 'dir', path: 'blobs' },
    { type: 'dir', path: 'blobs/sha256' },
    ...[...blobs].map(([hex, bytes]): LayerEntry => ({
      type: 'file',
      path: `blobs/sha256/${hex}`,
      content: bytes,
    })),
  ];
  await writeFile(archivePath, await buildLayerTar(archiveEntries));

  const suffix = spec.refName ? `:${spec.refName}` : '';
  return {
    layoutDir,
    archivePath,
    ociRef: `oci:${layoutDir}${suffix}`,
    archiveRef: `oci-archive:${archivePath}${suffix}`,
    manifestDigest: manifest.digest,
    manifestBytes,
    configDigest: config.digest,
    configBytes,
    diffIds,
    layers,
  };
}

/** A file of a bootc-style layer: its in-image path and content. */
export interface BootcFile {
  path: string;
  content: Buffer;
  mode?: number;
}

/** The ostree object path of some content: `sysroot/ostree/repo/objects/<h[:2]>/<h[2:]>.file`. */
export function ostreeObjectPath(content: Buffer): string {
  const h = sha256Hex(content);
  return `sysroot/ostree/repo/objects/${h.slice(0, 2)}/${h.slice(2)}.file`;
}

/**
 * Entries of a bootc-style layer (spec oci-delta §8.4 test-synthetic): each file is stored once as
 * an ostree object, and its in-image path is a hardlink to that object in the same layer.
 */
export function bootcLayerEntries(files: BootcFile[]): LayerEntry[] {
  const out: LayerEntry[] = [];
  for (const f of files) {
    out.push({ type: 'file', path: ostreeObjectPath(f.content), content: f.content, mode: f.mode ?? 0o644 });
  }
  for (const f of files) {
    out.push({ type: 'hardlink', path: f.path, target: ostreeObjectPath(f.content), mode: f.mode ?? 0o644 });
  }
  return out;
}

/** Flips 64 bytes (`^= 0xA5`) at `offset`, as test-synthetic's updates do (spec oci-delta §8.4). */
export function flip64(content: Buffer, offset: number): Buffer {
  const out = Buffer.from(content);
  for (let i = offset; i < offset + 64 && i < out.length; i++) out[i] = out[i]! ^ 0xa5;
  return out;
}

/** Library sizes of upstream's bootc test-synthetic images (spec oci-delta §8.4). */
export const SYNTHETIC_LIB_SIZES: Readonly<Record<string, number>> = {
  'libc.so.6': 8192,
  'libm.so.6': 6144,
  'libssl.so.1': 8192,
  'libcrypto.so.1': 10240,
  'libz.so.1': 5120,
  'libbz2.so.1': 4096,
  'liblzma.so.5': 6144,
  'libpcre.so.3': 7168,
};

/** One test-synthetic library as `usr/lib64/<name>` with seeded content of its upstream size. */
export function syntheticLib(name: string): BootcFile {
  const size = SYNTHETIC_LIB_SIZES[name];
  if (size === undefined) throw new Error(`no test-synthetic library ${name}`);
  return { path: `usr/lib64/${name}`, content: seededBytes(name, size) };
}
