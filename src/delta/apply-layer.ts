import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { compressStream, decompressStream, sniffCompression, type Compression } from '../oci/compression.js';
import { DigestStream } from '../oci/digest.js';
import {
  MEDIA_TYPE_LAYER_TAR,
  MEDIA_TYPE_LAYER_TAR_GZIP,
  MEDIA_TYPE_LAYER_TAR_ZSTD,
  type Descriptor,
} from '../oci/types.js';
import { applyTarDiff, type TarDiffInput } from '../tardiff/apply.js';
import type { DataSource } from '../tardiff/data-source.js';
import type { OpName } from '../tardiff/ops.js';
import { OdhError, type ErrorContext } from '../util/errors.js';
import { flow } from './flow.js';

/**
 * One target layer of an apply (spec oci-delta §4.1 step 6): rebuilt from its tar-diff against the
 * old-image data source, or copied from the delta's original blob, hashed for its diff_id on the way
 * and compressed into a staged blob. `create-layer.ts` is the other direction (one new layer of a
 * create).
 */

/** Compression of reconstructed layers in the output (the CLI's --compress). */
export type OutputCompression = Compression;

const MEDIA_TYPE_FOR: Record<Compression, string> = {
  gzip: MEDIA_TYPE_LAYER_TAR_GZIP,
  zstd: MEDIA_TYPE_LAYER_TAR_ZSTD,
  none: MEDIA_TYPE_LAYER_TAR,
};

export function layerMediaType(c: Compression): string {
  return MEDIA_TYPE_FOR[c];
}

/**
 * A foreign tar-patch (the conformance matrix plugs the Go `tar-patch` in here): reads the tar-diff
 * and writes the reconstructed tar into `sink` without ending it. Resolving Open names is its own
 * business; the diff_id check, compression and output stay ours.
 */
export type TarPatcher = (tarDiff: TarDiffInput, sink: Writable, ctx: ErrorContext) => Promise<void>;

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

export interface RebuildOptions {
  tarDiff: TarDiffInput;
  source: DataSource;
  /** The layer's diff_id from the target config: the rebuilt tar must hash to it. */
  diffId: string;
  compress: OutputCompression;
  /** The staged blob's path. */
  file: string;
  ctx: ErrorContext;
  signal?: AbortSignal;
  /** Uncompressed bytes produced so far (for progress). */
  onBytes?: (bytesOut: bigint) => void;
  /** Test harness only: a foreign tar-patch instead of ours. */
  patcher?: TarPatcher;
}

/**
 * Rebuilds one layer from its tar-diff (spec oci-delta §4.1 step 6c): tar-patch → diff_id hash →
 * compressor → blob hash → `file`. Throws DIFF_ID_MISMATCH naming the layer when the result is wrong.
 */
export async function rebuildFromTarDiff(opts: RebuildOptions): Promise<StagedBlob> {
  const { tarDiff, source, diffId, compress, file, ctx, signal, onBytes, patcher } = opts;
  const { alg, hash } = diffIdHash(diffId, ctx);
  const tap = new HashTap(hash);
  const blobHash = new DigestStream('sha256');
  const written = flow([tap, compressStream(compress), blobHash, createWriteStream(file)], signal);
  // If the write side fails first, stop the applier by failing its sink.
  written.catch(() => {});
  let applied;
  try {
    if (patcher) await patcher(tarDiff, tap, ctx);
    else
      applied = await applyTarDiff(tarDiff, source, tap, {
        ...(ctx.layer !== undefined ? { where: ctx.layer } : {}),
        ...(onBytes ? { onProgress: (p: { bytesOut: bigint }) => onBytes(p.bytesOut) } : {}),
      });
  } catch (e) {
    tap.destroy(); // stops the compressor and closes the temp file
    throw e;
  }
  tap.end();
  await written;
  checkDiffId(diffId, `${alg}:${hash.digest('hex')}`, ctx);
  return {
    file,
    digest: blobHash.digest(),
    size: blobHash.size,
    mediaType: MEDIA_TYPE_FOR[compress],
    diffId,
    ...(applied ? { ops: applied.ops } : {}),
  };
}

export interface CopyOriginalOptions {
  /** The blob as stored; its reader checks digest and size. */
  blob: Readable;
  desc: Descriptor;
  /** The layer's diff_id from the target config: the decompressed copy must hash to it. */
  diffId: string;
  /** The staged blob's path. */
  file: string;
  ctx: ErrorContext;
  signal?: AbortSignal;
}

/**
 * Copies an original layer blob from the delta (spec oci-delta §4.1 step 6c "any other mediaType"):
 * `blob` is digest-verified by its reader while copying; then the copy is decompressed (by its
 * magic) to check its diff_id too, which upstream Go skips.
 */
export async function copyOriginal(opts: CopyOriginalOptions): Promise<StagedBlob> {
  const { blob, desc, diffId, file, ctx, signal } = opts;
  const blobHash = new DigestStream('sha256');
  let head: Buffer | undefined;
  const sniff = new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (head === undefined || head.length < 4)
        head = Buffer.concat([head ?? Buffer.alloc(0), chunk]).subarray(0, 4);
      cb(null, chunk);
    },
  });
  await flow([blob, sniff, blobHash, createWriteStream(file)], signal);
  if (blobHash.digest() !== desc.digest || blobHash.size !== desc.size) {
    throw new OdhError(
      'DIGEST_MISMATCH',
      `blob digest mismatch: expected ${desc.digest}, got ${blobHash.digest()}`,
      ctx,
    );
  }
  const c = sniffCompression(head ?? Buffer.alloc(0));
  const got = await uncompressedDigest(file, c, { diffId, ctx, signal });
  checkDiffId(diffId, got, ctx);
  return { file, digest: desc.digest, size: desc.size, mediaType: MEDIA_TYPE_FOR[c], diffId };
}

/** Digest (in `diffId`'s algorithm) of the uncompressed content of a staged blob. */
export async function uncompressedDigest(
  file: string,
  c: Compression,
  opts: { diffId: string; ctx: ErrorContext; signal?: AbortSignal | undefined },
): Promise<string> {
  const { diffId, ctx, signal } = opts;
  const { alg, hash } = diffIdHash(diffId, ctx);
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb();
    },
  });
  // The decoders refuse zstd windows above 2^27 and throw typed errors naming the layer.
  await flow([createReadStream(file), decompressStream(c, ctx), sink], signal);
  return `${alg}:${hash.digest('hex')}`;
}
