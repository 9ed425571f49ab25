import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestOf } from '../oci/digest.js';
import { MAX_CONFIG_BYTES, openManifest } from '../oci/image.js';
import { parseRef } from '../oci/ref.js';
import { ANNOTATION_REF_NAME, OCI_LAYOUT_FILE, type Descriptor } from '../oci/types.js';
import { BLOCK_SIZE, encodeUstarHeader } from '../tar/header.js';
import { OdhError, type ErrorContext } from '../util/errors.js';
import { AtomicOutput } from '../util/atomic.js';
import type { DeltaBlobReader, TargetLayer } from './artifact.js';
import type { DataSource } from '../tardiff/source.js';
import { inspectTarDiff } from '../tardiff/inspect.js';
import { serializeIndex } from './manifest-json.js';

/**
 * The OCI-layout edge of the delta code: opening `oci:`/`oci-archive:` references with
 * digest-verified blob reads, and an output image staged beside its destination that appears only
 * on commit (spec oci-delta §4.1 inputs/outputs, §1.2 manifest selection).
 */

export interface ImageReader extends DeltaBlobReader {
  readonly manifestDescriptor: Descriptor;
  readonly manifestBytes: Buffer;
  /** A stream of the blob that fails at its end if digest or size differ. */
  openBlob(desc: Descriptor, ctx?: ErrorContext): Promise<Readable>;
  close(): Promise<void>;
}

/** Opens an image (or delta) layout reference and its selected manifest (spec oci-delta §1.2). */
export async function openImage(refText: string, what: string): Promise<ImageReader> {
  const ref = parseRef(refText);
  const st = await fs.stat(ref.path).catch(() => null);
  if (!st) throw new OdhError('NOT_FOUND', `${what} does not exist`, { path: ref.path });
  const m = await openManifest(ref);
  return {
    manifestDescriptor: m.manifestDescriptor,
    manifestBytes: m.manifestRaw,
    readBlob: (d) => m.reader.readBlobBytes(d, MAX_CONFIG_BYTES),
    openBlob: (d) => m.reader.openBlob(d),
    close: () => m.reader.close(),
  };
}

/** Reads a blob through once, checking digest and size; returns its first 4 bytes (for magic sniffing). */
export async function verifyBlob(
  img: ImageReader,
  d: Descriptor,
  ctx: ErrorContext,
  signal?: AbortSignal,
): Promise<Buffer> {
  let head = Buffer.alloc(0);
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      if (head.length < 4) head = Buffer.concat([head, c]).subarray(0, 4);
      cb();
    },
  });
  await pipeline(await img.openBlob(d, ctx), sink, { signal });
  return head;
}

export interface ImageOutput {
  readonly finalPath: string;
  /** A private directory beside the output for staged layer files (removed on commit/abort). */
  readonly stagingDir: string;
  /** Moves a checked staged file into the output as `blobs/sha256/<hex>`. */
  addBlobFile(file: string, digest: string): Promise<void>;
  /** Writes a small blob; returns its digest (checked against `expected` when given). */
  addBlob(bytes: Buffer, expected?: string): Promise<string>;
  /** Writes index.json (and, for an archive, the tar in `order`), then renames into place. */
  commit(manifest: Descriptor, order: string[]): Promise<void>;
  /** Removes everything written so far. Safe to call after commit (no-op). */
  abort(): Promise<void>;
}

/**
 * Starts an output image under a hidden `.odh-tmp-*` name beside the destination (util/atomic).
 * The destination must not exist (file or directory).
 */
export async function createImageOutput(refText: string): Promise<ImageOutput> {
  const ref = parseRef(refText, { output: true });
  const atomic = await AtomicOutput.create(ref.path);
  const root = atomic.tempPath; // a directory holding the layout (oci) or the staged blobs (archive)
  const blobDir = path.join(root, 'blobs', 'sha256');
  const stagingDir = path.join(root, '.staging');
  await fs.mkdir(stagingDir, { recursive: true });
  await fs.mkdir(blobDir, { recursive: true });
  let tarTemp: string | undefined;
  let settled = false;
  const out: ImageOutput = {
    finalPath: atomic.finalPath,
    stagingDir,
    async addBlobFile(file, digest) {
      await fs.rename(file, path.join(blobDir, digest.slice(7)));
    },
    async addBlob(bytes, expected) {
      const digest = digestOf(bytes);
      if (expected !== undefined && expected !== digest) {
        throw new OdhError('DIGEST_MISMATCH', `blob digest mismatch: expected ${expected}, got ${digest}`);
      }
      await fs.writeFile(path.join(blobDir, digest.slice(7)), bytes);
      return digest;
    },
    async commit(manifest, order) {
      const desc: Descriptor = { ...manifest };
      if (ref.name !== undefined) desc.annotations = { [ANNOTATION_REF_NAME]: ref.name };
      const indexBytes = serializeIndex(desc);
      await fs.rm(stagingDir, { recursive: true, force: true });
      if (ref.transport === 'oci') {
        await fs.writeFile(path.join(root, 'oci-layout'), OCI_LAYOUT_FILE);
        await fs.writeFile(path.join(root, 'index.json'), indexBytes);
        await atomic.commit();
      } else {
        tarTemp = `${root}.tar`;
        await writeArchive(tarTemp, blobDir, order, indexBytes);
        await fs.rename(tarTemp, atomic.finalPath);
        tarTemp = undefined;
        await atomic.abort(); // the staged layout directory is no longer needed
      }
      settled = true;
    },
    async abort() {
      if (settled) return;
      settled = true;
      if (tarTemp) await fs.rm(tarTemp, { force: true });
      await atomic.abort();
    },
  };
  return out;
}

/**
 * The oci-archive tar as upstream Go writes it (spec oci-delta §4.1 "Output tar"): `oci-layout`, the
 * `blobs/` and `blobs/sha256/` directories, blobs in `order`, `index.json`; USTAR, mtime 0, uid/gid 0,
 * dirs 0755, files 0644, two zero blocks at the end.
 */
async function writeArchive(
  file: string,
  blobDir: string,
  order: string[],
  indexBytes: Buffer,
): Promise<void> {
  const ws = createWriteStream(file, { flags: 'wx' });
  const done = new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('close', resolve);
  });
  const write = async (b: Buffer) => {
    if (!ws.write(b)) await new Promise<void>((r) => ws.once('drain', r));
  };
  const pad = (n: number) => (n % BLOCK_SIZE === 0 ? 0 : BLOCK_SIZE - (n % BLOCK_SIZE));
  const small = async (name: string, data: Buffer) => {
    await write(encodeUstarHeader({ name, mode: 0o644, size: data.length, typeflag: '0' }));
    await write(data);
    await write(Buffer.alloc(pad(data.length)));
  };
  try {
    await small('oci-layout', OCI_LAYOUT_FILE);
    await write(encodeUstarHeader({ name: 'blobs/', mode: 0o755, size: 0, typeflag: '5' }));
    await write(encodeUstarHeader({ name: 'blobs/sha256/', mode: 0o755, size: 0, typeflag: '5' }));
    for (const digest of new Set(order)) {
      const src = path.join(blobDir, digest.slice(7));
      const { size } = await fs.stat(src);
      await write(
        encodeUstarHeader({ name: `blobs/sha256/${digest.slice(7)}`, mode: 0o644, size, typeflag: '0' }),
      );
      for await (const chunk of createReadStream(src)) await write(chunk as Buffer);
      await write(Buffer.alloc(pad(size)));
    }
    await small('index.json', indexBytes);
    await write(Buffer.alloc(2 * BLOCK_SIZE));
  } finally {
    ws.end();
    await done;
  }
}

/**
 * The data source over a source image: collects every Open name of the tar-diff layers first (each
 * blob digest-checked while inspected), then materialises only those files.
 */
export async function openImageSourceFor(
  image: ImageReader,
  delta: ImageReader,
  tarDiffs: TargetLayer[],
  _signal?: AbortSignal,
): Promise<{ source: DataSource; cleanup: () => Promise<void> }> {
  const names = new Set<string>();
  for (const l of tarDiffs) {
    const s = await inspectTarDiff(await delta.openBlob(l.delta!), {
      where: l.target.digest,
    });
    s.sources.forEach((n) => names.add(n));
  }
  void image;
  throw new OdhError(
    'UNAVAILABLE',
    `--source-image is not available yet (needs ${names.size} files from the image)`,
  );
}
