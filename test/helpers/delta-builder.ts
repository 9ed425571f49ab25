/**
 * Assembles oci-delta artifacts for tests, independent of any creator in src/: tar-diffs are
 * hand-written op lists (encoded here with zstd-napi), and the artifact is laid out exactly as
 * upstream `oci-delta create` writes it (spec oci-delta §1.1–1.4: compact JSON, fixed key order,
 * sorted annotations, no top-level mediaType, the `{}` config, `subject`, reused annotations).
 * Hooks let hostile-input tests bend any part of it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import tarStream from 'tar-stream';
import { compress as zstdCompress, Compressor } from 'zstd-napi';
import type { BuiltImage } from './images.js';

export const DELTA_ARTIFACT_TYPE = 'application/vnd.io.github.containers.oci-delta.v1';
export const TAR_DIFF_MEDIA_TYPE = 'application/vnd.tar-diff';
const EMPTY_CONFIG_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
const A = 'io.github.containers.delta.';

// ---------------------------------------------------------------- tar-diff encoding (spec §2)

/** One tar-diff op as a test writes it; `raw` emits any op byte/size/payload (for hostile cases). */
export type TestOp =
  | { op: 'data'; data: Buffer | string }
  | { op: 'open'; name: string | Buffer }
  | { op: 'copy'; size: number | bigint }
  | { op: 'add'; data: Buffer }
  | { op: 'seek'; offset: number | bigint }
  | { op: 'zstd-dict'; frame: Buffer }
  | { op: 'raw'; code: number; size: number | bigint; payload?: Buffer };

function uvarint(value: number | bigint): Buffer {
  let v = BigInt(value);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** The uncompressed op stream (spec §2.2). */
export function encodeOps(ops: TestOp[]): Buffer {
  const parts: Buffer[] = [];
  const withData = (code: number, data: Buffer) =>
    parts.push(Buffer.from([code]), uvarint(data.length), data);
  for (const o of ops) {
    switch (o.op) {
      case 'data':
        withData(0, Buffer.from(o.data));
        break;
      case 'open':
        withData(1, Buffer.from(o.name));
        break;
      case 'copy':
        parts.push(Buffer.from([2]), uvarint(o.size));
        break;
      case 'add':
        withData(3, o.data);
        break;
      case 'seek':
        parts.push(Buffer.from([4]), uvarint(o.offset));
        break;
      case 'zstd-dict':
        withData(5, o.frame);
        break;
      case 'raw':
        parts.push(Buffer.from([o.code]), uvarint(o.size), o.payload ?? Buffer.alloc(0));
        break;
    }
  }
  return Buffer.concat(parts);
}

/** A whole tar-diff file: magic `tardf1\n\0` / `tardf2\n\0` + one zstd frame of the ops (spec §2.1). */
export function encodeTarDiff(ops: TestOp[], version: 1 | 2 = 1): Buffer {
  const magic = Buffer.from(version === 1 ? 'tardf1\n\0' : 'tardf2\n\0', 'latin1');
  return Buffer.concat([magic, zstdCompress(encodeOps(ops), { compressionLevel: 3 })]);
}

/** A ZstdDict payload: `target` compressed with `source` as raw dictionary (`--patch-from` style). */
export function zstdPatch(source: Buffer, target: Buffer): Buffer {
  const c = new Compressor();
  c.setParameters({ compressionLevel: 3 });
  c.loadDictionary(source);
  return c.compress(target);
}

// ---------------------------------------------------------------- tar walking (test side)

export interface TarEntryRange {
  name: string;
  typeflag: string;
  /** Offset of the entry's data in the tar, and its size. */
  dataOffset: number;
  size: number;
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}

function octal(b: Buffer, off: number, len: number): number {
  const s = cstr(b, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** Walks a ustar/PAX tar (as tar-stream writes it) and reports each entry's data range. */
export function tarEntryRanges(tar: Buffer): TarEntryRange[] {
  const out: TarEntryRange[] = [];
  let off = 0;
  let paxPath: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = octal(h, 124, 12);
    const typeflag = String.fromCharCode(h[156]!);
    const magic = cstr(h, 257, 6);
    const prefix = magic === 'ustar' ? cstr(h, 345, 155) : '';
    let name = cstr(h, 0, 100);
    if (prefix) name = `${prefix}/${name}`;
    const dataOffset = off + 512;
    if (typeflag === 'x') {
      const rec = tar.subarray(dataOffset, dataOffset + size).toString('utf8');
      const m = /\d+ path=([^\n]*)\n/.exec(rec);
      if (m) paxPath = m[1];
    } else if (typeflag !== 'g') {
      out.push({ name: paxPath ?? name, typeflag, dataOffset, size });
      paxPath = undefined;
    }
    off = dataOffset + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** How one regular file of a new layer is rebuilt from an old file (all ops of spec §2.2). */
export interface FileRecipe {
  /** Open name (merged old rootfs path). */
  source: string;
  /** The old file's bytes (the test knows them). */
  sourceBytes: Buffer;
  /** copy: Open+Copy; add: Copy/AddData/Copy; seek: Copy/Data/Seek/Copy; zstd: ZstdDict (v2). */
  how: 'copy' | 'add' | 'seek' | 'zstd';
}

/**
 * Hand-assembles a tar-diff rebuilding `newTar`: headers and unmatched data are literal Data ops; a
 * regular file for which `recipe` returns a plan is rebuilt from its old file.
 */
export function makeLayerTarDiff(
  newTar: Buffer,
  recipe: (name: string, content: Buffer) => FileRecipe | undefined,
  version: 1 | 2 = 1,
): Buffer {
  const ops: TestOp[] = [];
  let pos = 0;
  const literal = (end: number) => {
    if (end > pos) ops.push({ op: 'data', data: newTar.subarray(pos, end) });
    pos = end;
  };
  for (const e of tarEntryRanges(newTar)) {
    if (e.typeflag !== '0' || e.size === 0) continue;
    const content = newTar.subarray(e.dataOffset, e.dataOffset + e.size);
    const r = recipe(e.name, content);
    if (!r) continue;
    literal(e.dataOffset);
    ops.push({ op: 'open', name: r.source });
    ops.push(...fileOps(content, r));
    pos = e.dataOffset + e.size;
  }
  literal(newTar.length);
  return encodeTarDiff(ops, version);
}

function fileOps(content: Buffer, r: FileRecipe): TestOp[] {
  const old = r.sourceBytes;
  if (r.how === 'zstd') return [{ op: 'zstd-dict', frame: zstdPatch(old, content) }];
  if (r.how === 'copy') {
    if (!old.equals(content)) throw new Error(`recipe copy: ${r.source} differs from the new content`);
    return [{ op: 'copy', size: old.length }];
  }
  if (old.length !== content.length) throw new Error(`recipe ${r.how}: ${r.source} has a different size`);
  // The changed window [a, b): first and last differing byte.
  let a = 0;
  while (a < old.length && old[a] === content[a]) a++;
  let b = old.length;
  while (b > a && old[b - 1] === content[b - 1]) b--;
  const ops: TestOp[] = [];
  if (a > 0) ops.push({ op: 'copy', size: a });
  if (b > a) {
    if (r.how === 'add') {
      const d = Buffer.alloc(b - a);
      for (let i = a; i < b; i++) d[i - a] = (content[i]! - old[i]!) & 0xff;
      ops.push({ op: 'add', data: d });
    } else {
      ops.push({ op: 'data', data: content.subarray(a, b) }, { op: 'seek', offset: b });
    }
  }
  if (old.length > b) ops.push({ op: 'copy', size: old.length - b });
  return ops;
}

// ---------------------------------------------------------------- merged old rootfs (spec §3.1)

export interface MergedFile {
  content: Buffer;
  mode: number;
}

/** Regular files of the merged view of `layerTars` (whiteouts applied; hardlinks as extra names). */
export async function mergedFiles(layerTars: Buffer[]): Promise<Map<string, MergedFile>> {
  const files = new Map<string, MergedFile>();
  const norm = (n: string) =>
    path.posix
      .normalize(n)
      .replace(/^(\.\/|\/)+/, '')
      .replace(/\/$/, '');
  const drop = (p: string) => {
    for (const k of [...files.keys()]) if (k === p || k.startsWith(`${p}/`)) files.delete(k);
  };
  for (const tar of layerTars) {
    const ex = tarStream.extract();
    const done = (async () => {
      for await (const entry of ex) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        const h = entry.header;
        const name = norm(h.name);
        const base = path.posix.basename(name);
        const dir = path.posix.dirname(name);
        if (base === '.wh..wh..opq') {
          const d = dir === '.' ? '' : dir;
          for (const k of [...files.keys()]) if (d === '' || k.startsWith(`${d}/`)) files.delete(k);
        } else if (base.startsWith('.wh.')) {
          drop(dir === '.' ? base.slice(4) : `${dir}/${base.slice(4)}`);
        } else if (h.type === 'file') {
          files.set(name, { content: Buffer.concat(chunks), mode: h.mode ?? 0o644 });
        } else if (h.type === 'link') {
          const t = files.get(norm(h.linkname ?? ''));
          if (t) files.set(name, t);
        } else {
          drop(name);
        }
      }
    })();
    ex.end(tar);
    await done;
  }
  return files;
}

/** Writes merged files as a directory (the `--source-dir` layout of spec §3.2). */
export async function writeSourceDir(dir: string, files: Map<string, MergedFile>): Promise<void> {
  for (const [name, f] of files) {
    const p = path.join(dir, name);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, f.content);
    await chmod(p, f.mode & 0o7777);
  }
}

/** Uncompressed layer tars of a built image, in manifest order. */
export async function layerTars(img: BuiltImage): Promise<Buffer[]> {
  return Promise.all(img.layers.map((l) => readFile(l.tarPath)));
}

// ---------------------------------------------------------------- the artifact (spec §1)

/** What the delta carries for one target layer. */
export type LayerPlan =
  | { kind: 'reused' }
  | { kind: 'tar-diff'; tarDiff: Buffer }
  /** The new image's own compressed blob, stored as upstream does (mediaType always tar+gzip). */
  | { kind: 'original' }
  /** Any blob with any media type (hostile cases). */
  | { kind: 'blob'; mediaType: string; blob: Buffer };

export interface DeltaSpec {
  old: BuiltImage;
  new: BuiltImage;
  /** One plan per new-image layer. */
  layers: LayerPlan[];
  /** `org.opencontainers.image.ref.name` of the index entry. */
  refName?: string;
  /** Edits the delta manifest object before it is serialized (key order is kept). */
  editManifest?: (m: Record<string, unknown>) => void;
  /** Replaces the delta manifest bytes after serialization. */
  manifestBytes?: (b: Buffer) => Buffer;
  /** Replaces index.json bytes. */
  indexBytes?: (b: Buffer) => Buffer;
  /** Replaces (Buffer) or omits (null) the stored bytes of blobs, keyed by their digest. */
  blobs?: Map<string, Buffer | null>;
  /** Replaces the embedded target manifest / config bytes (stored under their new digest). */
  targetManifestBytes?: Buffer;
  targetConfigBytes?: Buffer;
}

export interface AssembledDelta {
  /** Archive entries in upstream's order (spec §1.1). */
  entries: Array<{ name: string; data: Buffer }>;
  manifestDigest: string;
  manifestBytes: Buffer;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function assembleDelta(spec: DeltaSpec): AssembledDelta {
  const tManifest = spec.targetManifestBytes ?? spec.new.manifestBytes;
  const tConfig = spec.targetConfigBytes ?? spec.new.configBytes;
  const target = JSON.parse(tManifest.toString('utf8')) as { layers: Array<{ digest: string }> };
  const blobs: Array<[string, Buffer]> = [];
  const add = (b: Buffer) => {
    const d = sha256(b);
    if (!blobs.some(([x]) => x === d)) blobs.push([d, b]);
    return d;
  };
  const emb = (content: string, mediaType: string, b: Buffer) => ({
    mediaType,
    digest: add(b),
    size: b.length,
    annotations: { [`${A}content`]: content },
  });
  const layers: unknown[] = [
    emb('image-manifest', 'application/vnd.oci.image.manifest.v1+json', tManifest),
    emb('image-config', 'application/vnd.oci.image.config.v1+json', tConfig),
  ];
  const reused: string[] = [];
  const reusedDiffIds: string[] = [];
  spec.layers.forEach((plan, i) => {
    const to = target.layers[i]?.digest ?? spec.new.layers[i]!.digest;
    let mediaType: string;
    let blob: Buffer;
    switch (plan.kind) {
      case 'reused':
        reused.push(to);
        reusedDiffIds.push(spec.new.diffIds[i]!);
        return;
      case 'tar-diff':
        [mediaType, blob] = [TAR_DIFF_MEDIA_TYPE, plan.tarDiff];
        break;
      case 'original':
        // Upstream labels copied originals tar+gzip whatever they are (spec §1.4).
        mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
        blob = readLayerBlob(spec.new, i);
        break;
      case 'blob':
        [mediaType, blob] = [plan.mediaType, plan.blob];
        break;
    }
    layers.push({
      mediaType,
      digest: add(blob),
      size: blob.length,
      annotations: { [`${A}content`]: 'image-layer', [`${A}to`]: to },
    });
  });
  const annotations: Record<string, string> = {};
  if (reused.length) {
    annotations[`${A}reused`] = JSON.stringify(reused);
    annotations[`${A}reused-diff-id`] = JSON.stringify(reusedDiffIds);
  }
  annotations[`${A}source`] = spec.old.manifestDigest;
  annotations[`${A}source-config`] = spec.old.configDigest;
  annotations[`${A}target`] = sha256(tManifest);
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    artifactType: DELTA_ARTIFACT_TYPE,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_CONFIG_DIGEST, size: 2 },
    layers,
    subject: {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha256(tManifest),
      size: tManifest.length,
    },
    annotations,
  };
  spec.editManifest?.(manifest);
  let manifestBytes: Buffer = Buffer.from(JSON.stringify(manifest));
  if (spec.manifestBytes) manifestBytes = spec.manifestBytes(manifestBytes);
  const manifestDigest = sha256(manifestBytes);
  const idxEntry: Record<string, unknown> = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: manifestDigest,
    size: manifestBytes.length,
  };
  if (spec.refName) idxEntry.annotations = { 'org.opencontainers.image.ref.name': spec.refName };
  let indexBytes: Buffer = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [idxEntry],
    }),
  );
  if (spec.indexBytes) indexBytes = spec.indexBytes(indexBytes);

  const entries: AssembledDelta['entries'] = [
    { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
  ];
  const put = (digest: string, data: Buffer) => {
    const o = spec.blobs?.get(digest);
    if (o === null) return;
    entries.push({ name: `blobs/sha256/${digest.slice(7)}`, data: o ?? data });
  };
  for (const [d, b] of blobs) put(d, b);
  put(EMPTY_CONFIG_DIGEST, Buffer.from('{}'));
  put(manifestDigest, manifestBytes);
  entries.push({ name: 'index.json', data: indexBytes });
  return { entries, manifestDigest, manifestBytes };
}

function readLayerBlob(img: BuiltImage, i: number): Buffer {
  // The image's layout directory holds the compressed blob under its digest.
  const hex = img.layers[i]!.digest.slice(7);
  return readFileSync(path.join(img.layoutDir, 'blobs', 'sha256', hex));
}

/**
 * Writes entries as an oci-archive the way Go `archive/tar` does for upstream (spec §4.1 "Output
 * tar"): `blobs/` and `blobs/sha256/` directory entries just before the first blob, mode 0644 files,
 * uid/gid 0, mtime 0.
 */
export async function writeOciArchive(file: string, entries: AssembledDelta['entries']): Promise<void> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  const put = (h: Partial<tarStream.Header> & { name: string }, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pack.entry(h, body, cb);
      else pack.entry(h, cb);
    });
  const base = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
  let dirs = false;
  for (const e of entries) {
    if (!dirs && e.name.startsWith('blobs/')) {
      dirs = true;
      await put({ ...base, name: 'blobs/', type: 'directory', mode: 0o755 });
      await put({ ...base, name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
    }
    await put({ ...base, name: e.name, type: 'file', mode: 0o644, size: e.data.length }, e.data);
  }
  pack.finalize();
  await collected;
  await writeFile(file, Buffer.concat(chunks));
}

/** Writes the same entries as an `oci:` layout directory. */
export async function writeOciDir(dir: string, entries: AssembledDelta['entries']): Promise<void> {
  for (const e of entries) {
    const p = path.join(dir, e.name);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, e.data);
  }
}

/** assembleDelta + writeOciArchive; returns the assembled parts. */
export async function buildDeltaArchive(file: string, spec: DeltaSpec): Promise<AssembledDelta> {
  const d = assembleDelta(spec);
  await writeOciArchive(file, d.entries);
  return d;
}
