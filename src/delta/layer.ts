import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { CompressStream, DecompressStream } from 'zstd-napi';
import { DigestStream } from '../oci/digest.js';
import {
  MEDIA_TYPE_LAYER_TAR,
  MEDIA_TYPE_LAYER_TAR_GZIP,
  MEDIA_TYPE_LAYER_TAR_ZSTD,
  type Descriptor,
} from '../oci/types.js';
import { applyTarDiff, type TarDiffInput } from '../tardiff/apply.js';
import type { DataSource } from '../tardiff/source.js';
import type { OpName } from '../tardiff/ops.js';
import { OdhError, isOdhError, type ErrorContext } from '../util/errors.js';

/** Compression of reconstructed layers in the output (the CLI's --compress). */
export type OutputCompression = 'gzip' | 'zstd' | 'none';
/** What a blob's first bytes say it is (spec oci-delta §1.4: sniff, do not trust the media type). */
export type BlobCompression = 'gzip' | 'zstd' | 'none';

/** Window log accepted when decompressing a zstd layer: libzstd's default limit (128 MiB window). */
export const LAYER_ZSTD_WINDOW_LOG_MAX = 27;

const MEDIA_TYPE_FOR: Record<BlobCompression, string> = {
  gzip: MEDIA_TYPE_LAYER_TAR_GZIP,
  zstd: MEDIA_TYPE_LAYER_TAR_ZSTD,
  none: MEDIA_TYPE_LAYER_TAR,
};

export function layerMediaType(c: BlobCompression): string {
  return MEDIA_TYPE_FOR[c];
}

/** A layer blob written to a temp file, checked, ready to move into the output. */
export interface StagedBlob {
  file: string;
  digest: string;
  size: number;
  mediaType: string;
  /** The uncompressed digest computed while writing (the diff_id). */
  diffId: string;
  ops?: Record<OpName, number>;
}

/** sha256/sha384/sha512 of a diff_id (spec oci-delta §4.3: hash with the diff_id's own algorithm). */
function diffIdHash(expected: string, ctx: ErrorContext): { alg: string; hash: Hash } {
  const alg = expected.slice(0, expected.indexOf(':'));
  if (alg !== 'sha256' && alg !== 'sha384' && alg !== 'sha512') {
    throw new OdhError('UNSUPPORTED', `unsupported diff_id algorithm ${JSON.stringify(alg)}`, ctx);
  }
  return { alg, hash: createHash(alg) };
}

/** Pass-through that hashes the uncompressed tar on its way to the compressor. */
class HashTap extends Transform {
  constructor(private readonly hash: Hash) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

function checkDiffId(expected: string, got: string, ctx: ErrorContext): void {
  if (expected !== got) {
    throw new OdhError('DIFF_ID_MISMATCH', `diff_id mismatch: expected ${expected}, got ${got}`, ctx);
  }
}

function compressor(c: OutputCompression): Transform {
  // gzip level 6 like Go's DefaultCompression (spec oci-delta §4.1); zstd level 3 (zstd's default).
  if (c === 'gzip') return createGzip({ level: 6 });
  if (c === 'zstd') return new CompressStream({ compressionLevel: 3 });
  return new PassThrough();
}

/**
 * Rebuilds one layer from its tar-diff (spec oci-delta §4.1 step 6c): tar-patch → diff_id hash →
 * compressor → blob hash → `file`. Throws DIFF_ID_MISMATCH naming the layer when the result is wrong.
 */
export async function rebuildFromTarDiff(
  tarDiff: TarDiffInput,
  source: DataSource,
  diffId: string,
  compress: OutputCompression,
  file: string,
  ctx: ErrorContext,
  signal?: AbortSignal,
): Promise<StagedBlob> {
  const { alg, hash } = diffIdHash(diffId, ctx);
  const tap = new HashTap(hash);
  const blobHash = new DigestStream('sha256');
  const written = pipeline(tap, compressor(compress), blobHash, createWriteStream(file), { signal });
  // If the write side fails first, stop the applier by failing its sink.
  written.catch(() => {});
  const applied = await applyTarDiff(
    tarDiff,
    source,
    tap,
    ctx.layer !== undefined ? { where: ctx.layer } : {},
  );
  tap.end();
  await written;
  checkDiffId(diffId, `${alg}:${hash.digest('hex')}`, ctx);
  return {
    file,
    digest: blobHash.digest(),
    size: blobHash.size,
    mediaType: MEDIA_TYPE_FOR[compress],
    diffId,
    ops: applied.ops,
  };
}

/** Looks at a blob's magic (spec oci-delta §1.4): `1f 8b` gzip, `28 b5 2f fd` zstd, else tar. */
export function sniffCompression(head: Uint8Array): BlobCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return 'none';
}

function decompressor(c: BlobCompression): Transform {
  if (c === 'gzip') return createGunzip();
  if (c === 'zstd') return new DecompressStream({ windowLogMax: LAYER_ZSTD_WINDOW_LOG_MAX });
  return new PassThrough();
}

/** Turns codec errors into one-line OdhErrors naming the layer. */
function decodeError(e: unknown, c: BlobCompression, ctx: ErrorContext): OdhError {
  if (isOdhError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (c === 'zstd' && /too much memory/i.test(msg)) {
    return new OdhError(
      'LIMIT',
      `zstd layer needs a window larger than 2^${LAYER_ZSTD_WINDOW_LOG_MAX} bytes (refused)`,
      ctx,
    );
  }
  return new OdhError('FORMAT', `corrupt ${c} layer data: ${msg}`, ctx);
}

/**
 * Copies an original layer blob from the delta (spec oci-delta §4.1 step 6c "any other mediaType"):
 * `blob` is digest-verified by its reader while copying; then the copy is decompressed (by its
 * magic) to check its diff_id too, which upstream Go skips.
 */
export async function copyOriginal(
  blob: Readable,
  desc: Descriptor,
  diffId: string,
  file: string,
  ctx: ErrorContext,
  signal?: AbortSignal,
): Promise<StagedBlob> {
  const blobHash = new DigestStream('sha256');
  let head: Buffer | undefined;
  const sniff = new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (head === undefined || head.length < 4)
        head = Buffer.concat([head ?? Buffer.alloc(0), chunk]).subarray(0, 4);
      cb(null, chunk);
    },
  });
  await pipeline(blob, sniff, blobHash, createWriteStream(file), { signal });
  if (blobHash.digest() !== desc.digest || blobHash.size !== desc.size) {
    throw new OdhError(
      'DIGEST_MISMATCH',
      `blob digest mismatch: expected ${desc.digest}, got ${blobHash.digest()}`,
      ctx,
    );
  }
  const c = sniffCompression(head ?? Buffer.alloc(0));
  const got = await uncompressedDigest(file, c, diffId, ctx, signal);
  checkDiffId(diffId, got, ctx);
  return { file, digest: desc.digest, size: desc.size, mediaType: MEDIA_TYPE_FOR[c], diffId };
}

/** Digest (in `diffId`'s algorithm) of the uncompressed content of a staged blob. */
export async function uncompressedDigest(
  file: string,
  c: BlobCompression,
  diffId: string,
  ctx: ErrorContext,
  signal?: AbortSignal,
): Promise<string> {
  const { alg, hash } = diffIdHash(diffId, ctx);
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb();
    },
  });
  try {
    await pipeline(createReadStream(file), decompressor(c), sink, { signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw decodeError(e, c, ctx);
  }
  return `${alg}:${hash.digest('hex')}`;
}
