import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openImage, type OpenedImage } from '../oci/image.js';
import { parseRef } from '../oci/ref.js';
import { MEDIA_TYPE_LAYER_TAR_GZIP, MEDIA_TYPE_TAR_DIFF, type Descriptor } from '../oci/types.js';
import { createLayoutWriter, type OciLayoutWriter } from '../oci/writer.js';
import { analyzeSources, type OpHistogram, type SourceSet } from '../tardiff/create/index.js';
import { OdhError } from '../util/errors.js';
import { finishDeltaArtifact, type DeltaLayerBlob, type ReusedLayer } from './artifact-write.js';
import { processNewLayer, type BinaryDiff, type LayerOutcome, type TarDiffWriter } from './create-layer.js';
import { releaseTemp, runTempDir } from '../util/run.js';
import { formatCompleteLine, type CreateStats } from './create-stats.js';
import {
  findImageSignature,
  loadSignatureArtifact,
  signatureDescriptors,
  type SignatureArtifact,
} from './signature.js';

export type { BinaryDiff, TarDiffWriter } from './create-layer.js';
export type { CreateStats } from './create-stats.js';

/**
 * `oci-delta create` (spec oci-delta §5.1): reuse target layers by diff_id, tar-diff the others
 * against all old layers (analysed once), keep each tar-diff only if smaller than the original
 * blob, and write the artifact exactly like upstream (§1.1–1.5). The output appears only when
 * complete; temp files live in one private directory removed at the end, also on failure.
 */

export type CreateEvent =
  /** An upstream-style info line (spec §6 "Found …", "Computing diff for layer …", …). */
  | { type: 'info'; message: string }
  | { type: 'warning'; message: string }
  | { type: 'analyze'; layer: number; layers: number }
  /** `layer` counts new-only layers from 1; `phase` as the tar-diff creator reports it. */
  | {
      type: 'layer';
      layer: number;
      layers: number;
      digest: string;
      phase: 'stage' | 'analyze' | 'scan' | 'extract' | 'diff';
      done: number;
      total?: number;
    };

export interface CreateDeltaOptions {
  /** Old (source) image: `oci-archive:PATH[:NAME|:@N]`, `oci:DIR[…]` or a bare archive path. */
  old: string;
  new: string;
  /** Output: `oci-archive:PATH[:NAME]`, `oci:DIR[:NAME]` or a bare archive path; must not exist. */
  output: string;
  /**
   * Per-file binary diff (spec §5.4): `bsdiff` (default, like upstream; tardf1), `zstd` (tardf2 with
   * ZstdDict patches), `auto` (upstream's rule: ZstdDict within the zstd cap, else bsdiff; tardf2),
   * `copy` (ours: tardf1 with copies only).
   */
  binaryDiff?: BinaryDiff;
  /** New-only layers diffed at once (default: CPU count). */
  jobs?: number;
  /** Upstream logs the "Delta complete" info line only without `-s`. */
  statistics?: boolean;
  /** Outer zstd level of tar-diffs (default 3). */
  compressionLevel?: number;
  /** ZstdDict only for files below this, bytes (default 128 MiB; 0 = up to the 512 MiB window). */
  maxZstdDiffSize?: number;
  /** bsdiff only for files below this, bytes (default 192 MiB; 0 = no limit). */
  maxBsdiffSize?: number;
  /** zstd level of ZstdDict patches (default: `compressionLevel` when given, else by file size). */
  zstdDiffLevel?: number;
  /** ZstdDict window in bytes, a power of two ≤ 512 MiB (default: from the file sizes). */
  zstdDiffWindow?: number;
  /** Signature OCI artifacts to embed (`--signature`, repeatable; spec §1.6). */
  signatures?: string[];
  /**
   * Also embed the new image's own cosign signature, found under the cosign tag `sha256-<hex>.sig`
   * in its layout or repository (default true; ours, see `findImageSignature`).
   */
  imageSignatures?: boolean;
  /**
   * Media type of an original layer stored verbatim. `upstream` (default): always tar+gzip, as
   * upstream writes it even for zstd/plain layers (spec §1.4 edge case); `target`: the target
   * layer's own media type (readable by appliers that trust the media type).
   */
  originalMediaType?: 'upstream' | 'target';
  /** Parent of the private temp directory (default: the OS temp dir). */
  tempDir?: string;
  /** Test harness only: a foreign per-layer tar-diff writer replacing ours (`binaryDiff` is then unused). */
  tarDiffWriter?: TarDiffWriter;
  /** Replace an existing output file (`--force`); default: an existing output is refused. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: CreateEvent) => void;
}

export type CreatedLayerKind = 'reused' | 'tar-diff' | 'original';

export interface CreatedLayer {
  /** Target manifest position. */
  index: number;
  kind: CreatedLayerKind;
  /** The target layer's digest (`delta.to`). */
  digest: string;
  diffId: string;
  /** Bytes the delta stores for it (0 when reused). */
  size: number;
  /** The target layer's compressed size. */
  originalSize: number;
  /** The stored blob (absent when reused). */
  blobDigest?: string;
  mediaType?: string;
  /** tar-diff version and op histogram (kind tar-diff). */
  version?: 1 | 2;
  ops?: OpHistogram;
  /** Size of a tar-diff that was made but not kept (kind original). */
  tarDiffBytes?: number;
}

export interface CreateDeltaResult {
  output: string;
  manifestDigest: string;
  manifestSize: number;
  stats: CreateStats;
  layers: CreatedLayer[];
  /** Size of the written artifact (archive file, or all files of the layout directory). */
  deltaBytes: number;
  /** Embedded signature manifests: where each came from and its digest. */
  signatures: Array<{ from: string; digest: string }>;
  warnings: string[];
}

interface Pending {
  index: number;
  desc: Descriptor;
  diffId: string;
  /** Position among new-only layers, from 1. */
  ordinal: number;
  outcome?: LayerOutcome;
}

export async function createDelta(opts: CreateDeltaOptions): Promise<CreateDeltaResult> {
  const mode = opts.binaryDiff ?? 'bsdiff';
  const jobs = opts.jobs ?? os.availableParallelism();
  if (!Number.isSafeInteger(jobs) || jobs < 1) throw new OdhError('USAGE', `invalid jobs ${jobs}`);
  const emit = opts.onProgress ?? (() => {});
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    emit({ type: 'warning', message });
  };
  const outRef = parseRef(opts.output, { output: true });
  opts.signal?.throwIfAborted();

  const oldImg = await openImage(opts.old);
  let newImg: OpenedImage | undefined;
  let writer: OciLayoutWriter | undefined;
  let sources: SourceSet | undefined;
  let work: string | undefined;
  const stop = new AbortController();
  const onAbort = () => stop.abort(opts.signal!.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    newImg = await openImage(opts.new);
    const ni = newImg;
    checkPairing(oldImg, 'old image');
    checkPairing(ni, 'new image');

    // spec §5.1 step 2: reused iff the diff_id occurs among ALL old diff_ids.
    const oldDiffIds = new Set(oldImg.config.rootfs.diff_ids);
    const newDiffIds = ni.config.rootfs.diff_ids;
    const reused: ReusedLayer[] = [];
    const pending: Pending[] = [];
    const byDigest = new Map<string, Pending>();
    ni.manifest.layers.forEach((desc, index) => {
      const diffId = newDiffIds[index]!;
      if (oldDiffIds.has(diffId)) reused.push({ digest: desc.digest, diffId });
      else if (!byDigest.has(desc.digest)) {
        const p: Pending = { index, desc, diffId, ordinal: pending.length + 1 };
        pending.push(p);
        byDigest.set(desc.digest, p);
      }
    });
    emit({
      type: 'info',
      message: `Found ${pending.length} layer(s) to diff, ${reused.length} layer(s) unchanged`,
    });
    const signatures = await loadSignatures(opts, ni, emit);

    // The output first: an existing destination fails before any heavy work.
    writer = await createLayoutWriter({
      kind: outRef.transport === 'oci' ? 'dir' : 'archive',
      path: outRef.path,
      ...(outRef.name !== undefined ? { refName: outRef.name } : {}),
      overwrite: opts.force,
    });
    const w = writer;
    // spec §1.1 entry order: target manifest, target config, changed layers, `{}`, delta manifest, index.
    const targetManifest = await w.addJsonBlob(ni.manifestRaw);
    const targetConfig = await w.addJsonBlob(ni.configRaw);

    work = (await runTempDir('create', opts.tempDir)).dir;
    if (pending.length > 0) {
      // spec §5.1 step 3: one source analysis over all old layers, shared by every layer job.
      const oldLayers = oldImg.manifest.layers;
      sources = await analyzeSources(
        oldLayers.map((d) => () => oldImg.reader.openBlob(d)),
        {
          tempDir: work,
          layerNames: oldLayers.map((d) => d.digest),
          onProgress: (p) => emit({ type: 'analyze', layer: p.layer, layers: p.layers }),
        },
      );
    }
    emit({ type: 'info', message: 'Processing layers...' });
    if (reused.length > 0) {
      emit({ type: 'info', message: `   Skipped ${reused.length} layer(s) with existing content` });
    }

    // Layer blobs are written in target order as soon as all earlier ones are done, so a kept
    // tar-diff waits on disk only for slower layers before it.
    const blobs: DeltaLayerBlob[] = [];
    const created = new Map<string, CreatedLayer>();
    let nextToWrite = 0;
    let writing: Promise<void> = Promise.resolve();
    const flush = () => {
      writing = writing.then(async () => {
        while (nextToWrite < pending.length && pending[nextToWrite]!.outcome) {
          const p = pending[nextToWrite]!;
          created.set(p.desc.digest, await writeLayerBlob(w, ni, p, opts, blobs));
          await p.outcome!.release();
          nextToWrite++;
        }
      });
      return writing;
    };
    const sourceSet = sources;
    await runPool(pending.length, jobs, stop, async (i) => {
      const p = pending[i]!;
      emit({ type: 'info', message: `   Computing diff for layer ${p.ordinal}/${pending.length}` });
      p.outcome = await processNewLayer({
        index: p.index,
        desc: p.desc,
        diffId: p.diffId,
        reader: ni.reader,
        sources: sourceSet!,
        mode,
        workDir: work!,
        compressionLevel: opts.compressionLevel,
        maxZstdDictSize: opts.maxZstdDiffSize,
        ...(opts.tarDiffWriter ? { tarDiffWriter: opts.tarDiffWriter } : {}),
        maxBsdiffSize: opts.maxBsdiffSize,
        // spec §5.1: the patch level defaults to the outer level when one is given
        zstdDiffLevel: opts.zstdDiffLevel ?? opts.compressionLevel,
        zstdDiffWindow: opts.zstdDiffWindow,
        signal: stop.signal,
        onPhase: (ph) =>
          emit({
            type: 'layer',
            layer: p.ordinal,
            layers: pending.length,
            digest: p.desc.digest,
            phase: ph.phase,
            done: ph.done,
            total: ph.total,
          }),
      });
      if (p.outcome.kind === 'original' && p.outcome.failure !== undefined) {
        warn(`tar-diff failed for layer ${p.desc.digest}, storing the original: ${p.outcome.failure}`);
      }
      await flush();
    });
    await flush();

    // spec §1.1: signature manifests and their blobs follow the layer blobs
    for (const sig of signatures) {
      await w.addBlob(sig.manifestBytes, { expectedDigest: sig.manifestDigest });
      for (const b of sig.blobs) await w.addBlob(b.bytes, { expectedDigest: b.desc.digest });
    }
    const written = await finishDeltaArtifact(w, {
      targetManifest,
      targetConfig,
      layers: blobs,
      reused,
      sourceManifest: oldImg.manifestDescriptor.digest,
      sourceConfig: oldImg.manifest.config.digest,
      signatures: signatures.flatMap(signatureDescriptors),
    });

    const layers: CreatedLayer[] = ni.manifest.layers.map((desc, index) => {
      const diffId = newDiffIds[index]!;
      const c = created.get(desc.digest);
      if (!c || oldDiffIds.has(diffId)) {
        return { index, kind: 'reused', digest: desc.digest, diffId, size: 0, originalSize: desc.size };
      }
      return { ...c, index };
    });
    const stats = statsOf(oldImg, ni, pending.length, reused.length, [...created.values()]);
    if (!opts.statistics) emit({ type: 'info', message: formatCompleteLine(stats) });
    emit({ type: 'info', message: `Delta written to ${outRef.path}` });
    return {
      output: path.resolve(outRef.path),
      manifestDigest: written.digest,
      manifestSize: written.size,
      stats,
      layers,
      deltaBytes: await outputBytes(path.resolve(outRef.path)),
      signatures: signatures.map((s) => ({ from: s.from, digest: s.manifestDigest })),
      warnings,
    };
  } catch (e) {
    stop.abort(e);
    await writer?.abort();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await sources?.dispose().catch(() => {});
    if (work) await releaseTemp(work, { remove: true });
    await newImg?.reader.close();
    await oldImg.reader.close();
  }
}

/**
 * The signatures to embed (spec §1.6): the new image's own cosign signature, then each
 * `--signature` artifact, in the order given; the same manifest only once.
 */
async function loadSignatures(
  opts: CreateDeltaOptions,
  img: OpenedImage,
  emit: (e: CreateEvent) => void,
): Promise<SignatureArtifact[]> {
  const out: SignatureArtifact[] = [];
  if (opts.imageSignatures !== false) {
    const own = await findImageSignature(opts.new, img.manifestDescriptor.digest);
    if (own) out.push(own);
  }
  const given = opts.signatures ?? [];
  if (given.length > 0) emit({ type: 'info', message: `Embedding ${given.length} signature(s)` });
  for (const ref of given) out.push(await loadSignatureArtifact(ref));
  const seen = new Set<string>();
  return out.filter((s) => !seen.has(s.manifestDigest) && seen.add(s.manifestDigest));
}

/** spec §5.1 step 1: layer i ↔ diff_ids[i]. */
function checkPairing(img: OpenedImage, what: string): void {
  const n = img.config.rootfs.diff_ids.length;
  if (n !== img.manifest.layers.length) {
    throw new OdhError(
      'FORMAT',
      `${what} config has ${n} diff_ids but its manifest has ${img.manifest.layers.length} layers`,
      { file: img.reader.where },
    );
  }
}

/** Copies one layer's chosen blob into the artifact and records it (spec §1.4). */
async function writeLayerBlob(
  w: OciLayoutWriter,
  img: OpenedImage,
  p: Pending,
  opts: CreateDeltaOptions,
  blobs: DeltaLayerBlob[],
): Promise<CreatedLayer> {
  const o = p.outcome!;
  const base = { index: p.index, digest: p.desc.digest, diffId: p.diffId, originalSize: p.desc.size };
  if (o.kind === 'tar-diff') {
    const b = await w.addBlob(createReadStream(o.file), { expectedSize: o.bytes });
    blobs.push({ mediaType: MEDIA_TYPE_TAR_DIFF, digest: b.digest, size: b.size, to: p.desc.digest });
    return {
      ...base,
      kind: 'tar-diff',
      size: b.size,
      blobDigest: b.digest,
      mediaType: MEDIA_TYPE_TAR_DIFF,
      version: o.version,
      ops: o.ops,
    };
  }
  // spec §1.4: upstream labels a stored original tar+gzip whatever its compression.
  const mediaType = opts.originalMediaType === 'target' ? p.desc.mediaType : MEDIA_TYPE_LAYER_TAR_GZIP;
  const b = await w.addBlob(await img.reader.openBlob(p.desc), {
    expectedDigest: p.desc.digest,
    expectedSize: p.desc.size,
  });
  blobs.push({ mediaType, digest: b.digest, size: b.size, to: p.desc.digest });
  const c: CreatedLayer = { ...base, kind: 'original', size: b.size, blobDigest: b.digest, mediaType };
  if (o.tarDiffBytes !== undefined) c.tarDiffBytes = o.tarDiffBytes;
  return c;
}

/** spec §5.1 step 7. */
function statsOf(
  oldImg: OpenedImage,
  newImg: OpenedImage,
  processed: number,
  skipped: number,
  created: CreatedLayer[],
): CreateStats {
  const sum = (k: CreatedLayerKind, f: (c: CreatedLayer) => number) =>
    created.filter((c) => c.kind === k).reduce((n, c) => n + f(c), 0);
  const processedLayerBytes = created.reduce((n, c) => n + c.originalSize, 0);
  const tarDiffLayerBytes = sum('tar-diff', (c) => c.size);
  const originalLayerBytes = sum('original', (c) => c.size);
  return {
    oldLayers: oldImg.manifest.layers.length,
    newLayers: newImg.manifest.layers.length,
    processedLayers: processed,
    skippedLayers: skipped,
    processedLayerBytes,
    tarDiffLayerBytes,
    originalLayerBytes,
    bytesSaved: processedLayerBytes - tarDiffLayerBytes - originalLayerBytes,
  };
}

/**
 * Runs `task(0..count-1)` with at most `width` at once. The first failure aborts `stop` (no new task
 * starts) and is rethrown once every started task has settled, so no task outlives the call.
 */
async function runPool(
  count: number,
  width: number,
  stop: AbortController,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < count && !stop.signal.aborted) {
      const i = next++;
      try {
        await task(i);
      } catch (e) {
        failure ??= { error: e };
        stop.abort(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
  if (failure) throw failure.error;
  stop.signal.throwIfAborted();
}

async function outputBytes(p: string): Promise<number> {
  const st = await fs.stat(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of await fs.readdir(p, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await fs.stat(path.join(e.parentPath, e.name))).size;
  }
  return n;
}
