import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { MAX_CONFIG_BYTES, openManifest } from '../oci/image.js';
import { parseRef } from '../oci/ref.js';
import type { Descriptor } from '../oci/types.js';
import { OdhError, type ErrorContext } from '../util/errors.js';
import type { DeltaBlobReader, TargetLayer } from './artifact.js';
import { flow } from './flow.js';
import { runTempDir } from '../util/run.js';

/**
 * The images the delta code reads (the delta itself and a source image): a reference opened with
 * `oci/image.ts` and seen as digest-verified blob reads, plus spooling so a remote blob is fetched
 * once (spec oci-delta §4.1 inputs, §1.2 manifest selection). The output side is `apply-output.ts`,
 * the old-image data source an apply reads from is `apply-source.ts`.
 */

export interface ImageReader extends DeltaBlobReader {
  readonly manifestDescriptor: Descriptor;
  readonly manifestBytes: Buffer;
  /** Blobs come over the network (`docker://`): read each at most once. */
  readonly remote: boolean;
  /** A stream of the blob that fails at its end if digest or size differ. */
  openBlob(desc: Descriptor, ctx?: ErrorContext): Promise<Readable>;
  close(): Promise<void>;
}

/** Opens an image (or delta) layout reference and its selected manifest (spec oci-delta §1.2). */
export async function openImageReader(refText: string, what: string): Promise<ImageReader> {
  const ref = parseRef(refText);
  if (ref.transport !== 'docker') {
    const st = await fs.stat(ref.path).catch(() => null);
    if (!st) throw new OdhError('NOT_FOUND', `${what} does not exist`, { path: ref.path });
    if (ref.transport === 'oci-archive' && !st.isFile()) {
      const hint = st.isDirectory() ? ` (a layout directory is oci:${ref.path})` : '';
      throw new OdhError('USAGE', `${what} is not a regular file, so not an oci-archive${hint}`, {
        path: ref.path,
      });
    }
  }
  const m = await openManifest(ref);
  return {
    manifestDescriptor: m.manifestDescriptor,
    manifestBytes: m.manifestRaw,
    remote: ref.transport === 'docker',
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
  await flow([await img.openBlob(d, ctx), sink], signal);
  return head;
}

/**
 * Digest-checks every tar-diff blob before anything parses it (upstream does the same, so a corrupt
 * blob is reported as such rather than as a tar-diff format error). A remote delta's tar-diff blobs
 * are fetched once: spooled into the run's temp space while hashed, and every later read (source
 * names, rebuild) is served from that file. Returns the reader to use from here on (closing it
 * removes the spool).
 */
export async function checkTarDiffBlobs(
  img: ImageReader,
  tarDiffs: TargetLayer[],
  signal?: AbortSignal,
): Promise<ImageReader> {
  if (!img.remote) {
    for (const l of tarDiffs) await verifyBlob(img, l.delta!, { layer: l.target.digest }, signal);
    return img;
  }
  const spool = await runTempDir('delta');
  const files = new Map<string, string>();
  try {
    for (const l of tarDiffs) {
      const d = l.delta!;
      if (files.has(d.digest)) continue;
      const file = path.join(spool.dir, d.digest.replace(':', '-'));
      await flow(
        [await img.openBlob(d, { layer: l.target.digest }), createWriteStream(file, { flags: 'wx' })],
        signal,
      );
      files.set(d.digest, file);
    }
  } catch (e) {
    await spool.cleanup();
    throw e;
  }
  return {
    ...img,
    remote: false,
    openBlob: async (d, ctx) => {
      const file = files.get(d.digest);
      return file !== undefined ? createReadStream(file, { highWaterMark: 1 << 20 }) : img.openBlob(d, ctx);
    },
    // Removes the spool; `img` stays open (its owner closes it).
    close: () => spool.cleanup(),
  };
}

/**
 * A remote image whose every blob is fetched at most once: the first read of a blob streams it into
 * the run's temp space (digest and size checked by `img` while it streams; `flow` fails otherwise),
 * and every read after that, e.g. the config read again by the source scan, or a source layer read
 * again for `--complete`, is served from that file. Concurrent first reads share one fetch. Memory
 * stays bounded (files, not buffers); temp disk holds the blobs read. A local image is returned as
 * it is. Closing the result removes the spool and closes `img`.
 */
export async function fetchEachBlobOnce(img: ImageReader, signal?: AbortSignal): Promise<ImageReader> {
  if (!img.remote) return img;
  const spool = await runTempDir('image');
  const files = new Map<string, Promise<string>>();
  const spooled = (d: Descriptor, ctx?: ErrorContext): Promise<string> => {
    let file = files.get(d.digest);
    if (file === undefined) {
      const at = path.join(spool.dir, d.digest.replace(':', '-'));
      file = (async () => {
        await flow([await img.openBlob(d, ctx), createWriteStream(at, { flags: 'wx', mode: 0o600 })], signal);
        return at;
      })();
      // A failed fetch stays failed (the apply fails with it); no second fetch, no half file read.
      files.set(d.digest, file);
    }
    return file;
  };
  return {
    ...img,
    remote: false,
    // Oversized "configs" go to `img`, which refuses them before fetching.
    readBlob: async (d) => (d.size > MAX_CONFIG_BYTES ? img.readBlob(d) : fs.readFile(await spooled(d))),
    openBlob: async (d, ctx) => createReadStream(await spooled(d, ctx), { highWaterMark: 1 << 20 }),
    close: async () => {
      await spool.cleanup();
      await img.close();
    },
  };
}
