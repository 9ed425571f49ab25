import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { decompressSniffed } from '../oci/compression.js';
import type { OciLayoutReader } from '../oci/layout.js';
import type { Descriptor } from '../oci/types.js';
import {
  createTarDiff,
  type CreateProgress,
  type OpHistogram,
  type OldImageIndex,
  type TarDiffMode,
} from '../tardiff/create/index.js';
import { OdhError, isOdhError, type ErrorContext } from '../util/errors.js';
import { flow } from './flow.js';

/**
 * One new-only layer of `create` (spec oci-delta §5.1 step 4): its uncompressed tar is staged in a
 * private directory (blob digest and diff_id checked on the way), a tar-diff is made against the
 * old-image index, and the tar-diff is kept only when smaller than the original compressed blob.
 * The uncompressed tar is removed as soon as the diff is made; the directory (holding the kept
 * tar-diff) is removed by `release` once the blob has been copied into the artifact.
 */

export type BinaryDiff = TarDiffMode;

/**
 * A foreign per-layer tar-diff writer (the conformance matrix plugs the Go `tar-diff` in here):
 * given the staged uncompressed new layer tar, writes a tar-diff to `out`. Everything around it —
 * staging, diff_id check, keep-original rule, artifact assembly — stays ours.
 */
export type TarDiffWriter = (job: {
  newLayerTar: string;
  out: string;
  tempDir: string;
  where: string;
  signal: AbortSignal;
}) => Promise<{ bytes: number; version: 1 | 2; ops: OpHistogram }>;

export interface LayerJob {
  /** Target manifest position. */
  index: number;
  desc: Descriptor;
  diffId: string;
  reader: OciLayoutReader;
  oldIndex: OldImageIndex;
  mode: BinaryDiff;
  /** Parent directory for this job's private directory. */
  workDir: string;
  compressionLevel?: number;
  maxZstdDictSize?: number;
  /** Replaces our tar-diff creator for this layer (see TarDiffWriter). */
  tarDiffWriter?: TarDiffWriter;
  maxBsdiffSize?: number;
  zstdDiffLevel?: number;
  zstdDiffWindow?: number;
  signal: AbortSignal;
  onPhase?: (p: CreateProgress | { phase: 'stage'; done: number; total?: number }) => void;
}

export type LayerOutcome =
  | {
      kind: 'tar-diff';
      /** The kept tar-diff file (inside the job directory). */
      file: string;
      bytes: number;
      version: 1 | 2;
      ops: OpHistogram;
      release(): Promise<void>;
    }
  | {
      kind: 'original';
      /** Size of the discarded tar-diff (undefined when making it failed). */
      tarDiffBytes?: number;
      /** Why the tar-diff was not used, when it failed (upstream warns and keeps the original). */
      failure?: string;
      release(): Promise<void>;
    };

/** Hashes with the diff_id's own algorithm (sha256/sha384/sha512, spec oci-delta §4.3). */
class DiffIdTap extends Transform {
  private readonly hash: Hash;
  constructor(readonly algorithm: string) {
    super();
    this.hash = createHash(algorithm);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** Decompresses the layer blob into `file`, checking blob digest (by the reader) and diff_id. */
async function stageUncompressed(job: LayerJob, file: string, ctx: ErrorContext): Promise<void> {
  const alg = job.diffId.slice(0, job.diffId.indexOf(':'));
  if (alg !== 'sha256' && alg !== 'sha384' && alg !== 'sha512') {
    throw new OdhError('UNSUPPORTED', `unsupported diff_id algorithm ${JSON.stringify(alg)}`, ctx);
  }
  const tap = new DiffIdTap(alg);
  let done = 0;
  const blob = await job.reader.openBlob(job.desc);
  blob.on('data', (c: Buffer) => {
    done += c.length;
    job.onPhase?.({ phase: 'stage', done, total: job.desc.size });
  });
  try {
    await flow(
      [blob, decompressSniffed(ctx), tap, createWriteStream(file, { flags: 'wx', mode: 0o600 })],
      job.signal,
    );
  } catch (e) {
    if (isOdhError(e)) throw e;
    throw new OdhError('IO', `cannot stage new layer: ${(e as Error).message}`, { ...ctx, file });
  }
  const got = tap.digest();
  if (got !== job.diffId) {
    throw new OdhError('DIFF_ID_MISMATCH', `diff_id mismatch: expected ${job.diffId}, got ${got}`, ctx);
  }
}

export async function processNewLayer(job: LayerJob): Promise<LayerOutcome> {
  const ctx: ErrorContext = { layer: job.desc.digest };
  const dir = await fs.mkdtemp(path.join(job.workDir, `layer-${job.index}-`));
  const release = () => fs.rm(dir, { recursive: true, force: true });
  try {
    const tar = path.join(dir, 'layer.tar');
    await stageUncompressed(job, tar, ctx);
    job.signal.throwIfAborted();
    const out = path.join(dir, 'layer.tar-diff');
    let made;
    try {
      made = job.tarDiffWriter
        ? await job.tarDiffWriter({
            newLayerTar: tar,
            out,
            tempDir: dir,
            where: job.desc.digest,
            signal: job.signal,
          })
        : await createTarDiff({
            oldIndex: job.oldIndex,
            newLayer: tar,
            mode: job.mode,
            tempDir: dir,
            out,
            compressionLevel: job.compressionLevel,
            maxZstdDictSize: job.maxZstdDictSize,
            maxBsdiffSize: job.maxBsdiffSize,
            zstdDiffLevel: job.zstdDiffLevel,
            zstdDiffWindow: job.zstdDiffWindow,
            where: job.desc.digest,
            onProgress: (p) => job.onPhase?.(p),
          });
    } catch (e) {
      job.signal.throwIfAborted();
      // spec oci-delta §5.1 step 4: a failing tar-diff is a warning; the original blob is stored.
      await release();
      return { kind: 'original', failure: (e as Error).message, release };
    } finally {
      await fs.rm(tar, { force: true });
    }
    // spec §5.1 step 4: the original wins unless the tar-diff is strictly smaller.
    if (made.bytes >= job.desc.size) {
      await release();
      return { kind: 'original', tarDiffBytes: made.bytes, release };
    }
    return { kind: 'tar-diff', file: out, bytes: made.bytes, version: made.version, ops: made.ops, release };
  } catch (e) {
    await release();
    throw e;
  }
}
