/**
 * One OCI layer blob streamed into a tree sink (spec composefs-v2 §3.1): decompressed by sniffing its
 * magic (gzip, zstd or none), parsed as tar, applied entry by entry, and checked against its config
 * diff_id. Runs on the calling thread (image-tree.ts) or in a layer worker (layer-worker.ts).
 */
import { Readable, pipeline } from 'node:stream';
import {
  blockingDecoder,
  decompressStream,
  sniffCompression,
  sniffStream,
  type Compression,
} from '../../oci/compression.js';
import { DigestHasher, parseDiffId } from '../../oci/digest.js';
import type { Descriptor } from '../../oci/types.js';
import { readTar, readTarBlocking } from '../../tar/reader.js';
import { OdhError, isOdhError, type ErrorContext } from '../../util/errors.js';
import type { FsVerityAlgorithm } from '../format/fsverity.js';
import { applyLayerEntries, applyLayerEntriesBlocking, type OciEntrySink } from './layer.js';

/** A layout the layer workers open themselves (positional reads; registries stay on one thread). */
export interface LayerWorkerLayout {
  transport: 'oci' | 'oci-archive';
  path: string;
}

export interface OciTreeProgress {
  /** 0-based layer index and count. */
  layer: number;
  layers: number;
  digest: string;
  /** Compressed bytes of this layer read so far, and its size. */
  blobBytes: number;
  blobSize: number;
}

/** What streaming one layer needs besides its blob. */
export interface LayerStreamOptions {
  /** Repository fs-verity algorithm: external file object IDs (spec composefs-v2 §1.4). */
  hash: FsVerityAlgorithm;
  onProgress?: (p: OciTreeProgress) => void;
  /** Cancels the stream: fails with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * zlib options of the shared gzip decoder (oci/compression.ts, which types its errors: TRUNCATED at
 * a cut, FORMAT otherwise, with the offset). Inflate runs on the libuv pool while tar parsing and
 * hashing run here: larger output chunks and an 8 MiB read-ahead of output let it work in parallel
 * instead of ping-ponging (about a third less CPU here). Its input side queues only a little
 * compressed data: an 8 MiB input queue as well (what `highWaterMark` alone sets) only added to
 * peak memory. zstd has its own decoder there (the 2^27 window cap).
 */
const GUNZIP_OPTIONS = {
  chunkSize: 256 << 10,
  readableHighWaterMark: 8 << 20,
  writableHighWaterMark: 256 << 10,
};

/** The blob's bytes, decompressed according to its first bytes; the decoders' errors are typed. */
async function* decompressed(blob: AsyncIterable<Buffer>, ctx: ErrorContext): AsyncGenerator<Buffer> {
  const { kind, bytes } = await sniffStream(blob);
  if (kind === 'none') {
    yield* bytes;
    return;
  }
  const codec = decompressStream(kind, ctx, GUNZIP_OPTIONS);
  let failure: unknown = null;
  // The iterable feeds the codec directly (pipeline awaits its drain): no object-mode queue between.
  const out = pipeline(bytes, codec, (e) => {
    if (e) failure = e;
  });
  try {
    for await (const chunk of out) yield chunk as Buffer;
  } catch (e) {
    throw codecError(failure ?? e, kind, ctx);
  }
  if (failure) throw codecError(failure, kind, ctx);
}

/** The decoders' errors are typed already; anything else (a bug) still leaves as one FORMAT line. */
function codecError(e: unknown, kind: Compression, ctx: ErrorContext): OdhError {
  if (isOdhError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new OdhError('FORMAT', `corrupt ${kind} layer data: ${msg}`, ctx);
}

/**
 * An iterable over `src` that hashes every chunk pulled and whose early `return()` (the tar reader
 * stops at the end-of-archive blocks) leaves `src` open, so the rest can be drained into the hash.
 */
class HashingTap implements AsyncIterable<Buffer> {
  private readonly it: AsyncIterator<Buffer>;
  constructor(
    src: AsyncIterable<Buffer>,
    readonly hasher: DigestHasher,
  ) {
    this.it = src[Symbol.asyncIterator]();
  }
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return {
      next: async () => {
        const r = await this.it.next();
        if (!r.done) this.hasher.update(r.value);
        return r;
      },
      return: async () => ({ done: true, value: undefined }),
    };
  }
  /** Stops the source early (after an error), letting its generators clean up. */
  async close(): Promise<void> {
    await this.it.return?.();
  }
  /** Reads what the tar reader left (zero padding after the end-of-archive blocks). */
  async drain(): Promise<void> {
    while (true) {
      const r = await this.it.next();
      if (r.done) return;
      this.hasher.update(r.value);
    }
  }
}

/** One layer to stream: its descriptor, its config diff_id and its position in the image. */
export interface OciLayerTask {
  desc: Descriptor;
  diffId: string;
  /** 0-based layer index and count (progress only). */
  index: number;
  layers: number;
}

/**
 * Streams one layer blob into `sink`: decompress, tar, tree items; then the diff_id check (spec
 * composefs-v2 §3.1). Runs on the main thread or in a layer worker (layer-worker.ts).
 */
export async function streamLayer(
  sink: OciEntrySink,
  blob: AsyncIterable<Buffer> | Readable,
  task: OciLayerTask,
  opts: LayerStreamOptions,
): Promise<void> {
  const { desc, diffId } = task;
  const ctx: ErrorContext = { layer: desc.digest };
  const progress = progressOf(task, opts);
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const c of blob as AsyncIterable<Buffer>) {
      progress(c);
      yield c;
    }
  };
  const tap = new HashingTap(
    decompressed(counted(), ctx),
    new DigestHasher(parseDiffId(diffId, 'diff_id', ctx).algorithm),
  );
  try {
    await applyLayerEntries(sink, readTar(tap, { where: ctx }), { hash: opts.hash, layer: desc.digest });
    await tap.drain();
  } catch (e) {
    await tap.close().catch(() => {});
    throw e;
  } finally {
    if (blob instanceof Readable) blob.destroy();
  }
  checkDiffId(tap.hasher, diffId, ctx);
}

function checkDiffId(hasher: DigestHasher, diffId: string, ctx: ErrorContext): void {
  const got = hasher.digest();
  if (got !== diffId) {
    throw new OdhError(
      'DIFF_ID_MISMATCH',
      `layer diff_id mismatch: config says ${diffId}, content is ${got}`,
      ctx,
    );
  }
}

/** Reports (and counts) the compressed bytes read; throws once `opts.signal` is aborted. */
function progressOf(task: OciLayerTask, opts: LayerStreamOptions): (chunk: Buffer) => void {
  let blobBytes = 0;
  return (c) => {
    opts.signal?.throwIfAborted();
    blobBytes += c.length;
    opts.onProgress?.({
      layer: task.index,
      layers: task.layers,
      digest: task.desc.digest,
      blobBytes,
      blobSize: task.desc.size,
    });
  };
}

/**
 * `streamLayer` without waiting, for a thread whose only job is this layer (a layer worker): the
 * blob is read, decompressed, parsed and hashed on the spot (blockingDecoder, readTarBlocking), so
 * no chunk goes through the thread pool or a promise. The same checks and errors as `streamLayer`.
 */
export function streamLayerBlocking(
  sink: OciEntrySink,
  blob: Iterable<Buffer>,
  task: OciLayerTask,
  opts: LayerStreamOptions,
): void {
  const ctx: ErrorContext = { layer: task.desc.digest };
  const progress = progressOf(task, opts);
  const diff = new DigestHasher(parseDiffId(task.diffId, 'diff_id', ctx).algorithm);
  const plain = decompressedBlocking(
    (function* () {
      for (const c of blob) {
        progress(c);
        yield c;
      }
    })(),
    ctx,
  );
  try {
    // The tar reader may stop at the end-of-archive blocks: it gets an iterator without return(),
    // so what follows them is still read into the diff_id below.
    const hashed = {
      [Symbol.iterator]: () => ({
        next: (): IteratorResult<Buffer> => {
          const r = plain.next();
          if (r.done !== true) diff.update(r.value);
          return r;
        },
      }),
    };
    applyLayerEntriesBlocking(sink, readTarBlocking(hashed, { where: ctx }), {
      hash: opts.hash,
      layer: task.desc.digest,
    });
    for (const c of plain) diff.update(c);
  } finally {
    plain.return(undefined);
  }
  checkDiffId(diff, task.diffId, ctx);
}

/**
 * The blob's bytes decompressed on this thread, according to its first bytes; errors typed. Each
 * piece is valid until the next is pulled (see BlockingDecoder), and so may each blob chunk be.
 */
function* decompressedBlocking(
  blob: Iterator<Buffer>,
  ctx: ErrorContext,
): Generator<Buffer, void, undefined> {
  const head: Buffer[] = [];
  let headLength = 0;
  let ended = false;
  while (headLength < 4 && !ended) {
    const r = blob.next();
    if (r.done === true) ended = true;
    else {
      // Copied: the blob's next chunk may be read into the same buffer.
      head.push(Buffer.from(r.value));
      headLength += r.value.length;
    }
  }
  const kind = sniffCompression(Buffer.concat(head, headLength));
  const decoder = blockingDecoder(kind, ctx);
  // Layer workers stream this way only when every kind can be (haveBlockingDecoders).
  if (decoder === null) throw new Error(`internal: no blocking ${kind} decoder`);
  try {
    for (const c of head) yield* decoder.decode(c);
    for (let r = ended ? null : blob.next(); r !== null && r.done !== true; r = blob.next()) {
      yield* decoder.decode(r.value);
    }
    yield* decoder.end();
  } catch (e) {
    throw codecError(e, kind, ctx);
  } finally {
    decoder.close();
    blob.return?.();
  }
}
