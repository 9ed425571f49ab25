import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openImage, type OpenedImage } from '../oci/image.js';
import { parseRef } from '../oci/ref.js';
import { MEDIA_TYPE_LAYER_TAR_GZIP, MEDIA_TYPE_TAR_DIFF, type Descriptor } from '../oci/types.js';
import { createLayoutWriter, type OciLayoutWriter } from '../oci/writer.js';
import { indexOldImage, type OpHistogram, type OldImageIndex } from '../tardiff/create/index.js';
import { OdhError } from '../util/errors.js';
import { finishDeltaArtifact, type DeltaLayerBlob, type ReusedLayer } from './artifact-write.js';
import { processNewLayer, type BinaryDiff, type LayerOutcome, type TarDiffWriter } from './create-layer.js';
import { runOrdered } from '../util/pool.js';
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
}

/** spec §5.1 step 2: which target layers are reused and which are diffed. */
interface LayerPlan {
  oldDiffIds: Set<string>;
  reused: ReusedLayer[];
  /** New-only layers, each digest once, in target order. */
  pending: Pending[];
}

/** One create run: its inputs, its output writer, its private temp directory. */
interface CreateRun {
  opts: CreateDeltaOptions;
  emit: (e: CreateEvent) => void;
  warn: (message: string) => void;
  oldImg: OpenedImage;
  newImg: OpenedImage;
  plan: LayerPlan;
  writer: OciLayoutWriter;
  work: string;
  /** The old layers analysed once (absent when no layer needs a diff). */
  oldIndex?: OldImageIndex;
  signal: AbortSignal;
}

export async function createDelta(opts: CreateDeltaOptions): Promise<CreateDeltaResult> {
  const jobs = opts.jobs ?? os.availableParallelism();
  if (!Number.isSafeInteger(jobs) || jobs < 1) throw new OdhError('USAGE', `invalid jobs ${jobs}`);
  const outRef = parseRef(opts.output, { output: true });
  opts.signal?.throwIfAborted();
  const scope = new CreateScope(opts);
  try {
    const { run, target, signatures } = await startRun(scope, outRef);
    const written = await diffNewLayers(run, jobs);
    const artifact = await finishArtifact(run, { target, written, signatures });
    const created = new Map(written.map((x) => [x.created.digest, x.created]));
    const stats = statsOf(run.oldImg, run.newImg, run.plan, [...created.values()]);
    if (!opts.statistics) scope.emit({ type: 'info', message: formatCompleteLine(stats) });
    scope.emit({ type: 'info', message: `Delta written to ${outRef.path}` });
    return {
      output: path.resolve(outRef.path),
      manifestDigest: artifact.digest,
      manifestSize: artifact.size,
      stats,
      layers: createdLayers(run.newImg, run.plan, created),
      deltaBytes: await outputBytes(path.resolve(outRef.path)),
      signatures: signatures.map((s) => ({ from: s.from, digest: s.manifestDigest })),
      warnings: scope.warnings,
    };
  } catch (e) {
    await scope.fail(e);
    throw e;
  } finally {
    await scope.close();
  }
}

/**
 * What a create run holds open (images, output, old-layer analysis, temp directory) and its abort
 * signal: on failure the output is aborted, and at the end everything is closed and removed.
 */
class CreateScope {
  oldImg?: OpenedImage;
  newImg?: OpenedImage;
  writer?: OciLayoutWriter;
  oldIndex?: OldImageIndex;
  work?: string;
  readonly warnings: string[] = [];
  readonly emit: (e: CreateEvent) => void;
  private readonly stop = new AbortController();
  private readonly onAbort = () => this.stop.abort(this.opts.signal!.reason);

  constructor(readonly opts: CreateDeltaOptions) {
    this.emit = opts.onProgress ?? (() => {});
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.emit({ type: 'warning', message });
  }

  async fail(e: unknown): Promise<void> {
    this.stop.abort(e);
    await this.writer?.abort();
  }

  async close(): Promise<void> {
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    await this.oldIndex?.dispose().catch(() => {});
    if (this.work) await releaseTemp(this.work, { remove: true });
    await this.newImg?.reader.close();
    await this.oldImg?.reader.close();
  }
}

/**
 * Everything before the layer jobs: both images opened and paired, the layer plan, the signatures,
 * the output started with the target manifest and config, the old layers analysed.
 */
async function startRun(
  scope: CreateScope,
  outRef: ReturnType<typeof parseRef>,
): Promise<{ run: CreateRun; target: TargetBlobs; signatures: SignatureArtifact[] }> {
  const { opts, emit } = scope;
  const oldImg = (scope.oldImg = await openImage(opts.old));
  const newImg = (scope.newImg = await openImage(opts.new));
  checkPairing(oldImg, 'old image');
  checkPairing(newImg, 'new image');
  const plan = planLayers(oldImg, newImg);
  emit({
    type: 'info',
    message: `Found ${plan.pending.length} layer(s) to diff, ${plan.reused.length} layer(s) unchanged`,
  });
  const signatures = await loadSignatures(opts, newImg, emit);

  // The output first: an existing destination fails before any heavy work.
  const writer = (scope.writer = await createLayoutWriter({
    kind: outRef.transport === 'oci' ? 'dir' : 'archive',
    path: outRef.path,
    ...(outRef.name !== undefined ? { refName: outRef.name } : {}),
    overwrite: opts.force,
  }));
  const target = await writeTargetBlobs(writer, newImg);

  const work = (scope.work = (await runTempDir('create', opts.tempDir)).dir);
  // spec §5.1 step 3: one source analysis over all old layers, shared by every layer job.
  if (plan.pending.length > 0) scope.oldIndex = await buildOldImageIndex(oldImg, work, emit);
  emit({ type: 'info', message: 'Processing layers...' });
  if (plan.reused.length > 0) {
    emit({ type: 'info', message: `   Skipped ${plan.reused.length} layer(s) with existing content` });
  }
  const run: CreateRun = {
    opts,
    emit,
    warn: (m) => scope.warn(m),
    oldImg,
    newImg,
    plan,
    writer,
    work,
    ...(scope.oldIndex ? { oldIndex: scope.oldIndex } : {}),
    signal: scope.signal,
  };
  return { run, target, signatures };
}

/** spec §1.1 entry order: target manifest, target config, changed layers, `{}`, delta manifest, index. */
async function writeTargetBlobs(w: OciLayoutWriter, newImg: OpenedImage): Promise<TargetBlobs> {
  const manifest = await w.addJsonBlob(newImg.manifestRaw);
  const config = await w.addJsonBlob(newImg.configRaw);
  return { manifest, config };
}

type TargetBlobs = Record<'manifest' | 'config', Awaited<ReturnType<OciLayoutWriter['addJsonBlob']>>>;

/** spec §1.1: after the layer blobs, the signatures, then `{}`, the delta manifest and the index. */
async function finishArtifact(
  run: CreateRun,
  parts: { target: TargetBlobs; written: WrittenLayer[]; signatures: SignatureArtifact[] },
): Promise<{ digest: string; size: number }> {
  const w = run.writer;
  for (const sig of parts.signatures) {
    await w.addBlob(sig.manifestBytes, { expectedDigest: sig.manifestDigest });
    for (const b of sig.blobs) await w.addBlob(b.bytes, { expectedDigest: b.desc.digest });
  }
  return finishDeltaArtifact(w, {
    targetManifest: parts.target.manifest,
    targetConfig: parts.target.config,
    layers: parts.written.map((x) => x.blob),
    reused: run.plan.reused,
    sourceManifest: run.oldImg.manifestDescriptor.digest,
    sourceConfig: run.oldImg.manifest.config.digest,
    signatures: parts.signatures.flatMap(signatureDescriptors),
  });
}

/** spec §5.1 step 2: reused iff the diff_id occurs among ALL old diff_ids. */
function planLayers(oldImg: OpenedImage, newImg: OpenedImage): LayerPlan {
  const oldDiffIds = new Set(oldImg.config.rootfs.diff_ids);
  const newDiffIds = newImg.config.rootfs.diff_ids;
  const reused: ReusedLayer[] = [];
  const pending: Pending[] = [];
  const seen = new Set<string>();
  newImg.manifest.layers.forEach((desc, index) => {
    const diffId = newDiffIds[index]!;
    if (oldDiffIds.has(diffId)) reused.push({ digest: desc.digest, diffId });
    else if (!seen.has(desc.digest)) {
      pending.push({ index, desc, diffId, ordinal: pending.length + 1 });
      seen.add(desc.digest);
    }
  });
  return { oldDiffIds, reused, pending };
}

/** spec §5.1 step 3: the source analysis of every old layer, once. */
function buildOldImageIndex(
  oldImg: OpenedImage,
  tempDir: string,
  emit: (e: CreateEvent) => void,
): Promise<OldImageIndex> {
  const oldLayers = oldImg.manifest.layers;
  return indexOldImage(
    oldLayers.map((d) => () => oldImg.reader.openBlob(d)),
    {
      tempDir,
      layerNames: oldLayers.map((d) => d.digest),
      onProgress: (p) => emit({ type: 'analyze', layer: p.layer, layers: p.layers }),
    },
  );
}

/**
 * Diffs the new-only layers, `jobs` at once, through the ordered pool. Layer blobs are written in
 * target order as soon as all earlier ones are done, so a kept tar-diff waits on disk only for
 * slower layers before it.
 */
function diffNewLayers(run: CreateRun, jobs: number): Promise<WrittenLayer[]> {
  return runOrdered({
    items: run.plan.pending,
    concurrency: jobs,
    signal: run.signal,
    work: (p, _i, signal) => diffLayer(run, p, signal),
    commit: async (outcome, i) => {
      const written = await writeLayerBlob(run, run.plan.pending[i]!, outcome);
      await outcome.release();
      return written;
    },
  });
}

/** spec §5.1 steps 4–5: one new layer's tar-diff, or the reason to store it as it is. */
async function diffLayer(run: CreateRun, p: Pending, signal: AbortSignal): Promise<LayerOutcome> {
  const { opts, emit } = run;
  const layers = run.plan.pending.length;
  emit({ type: 'info', message: `   Computing diff for layer ${p.ordinal}/${layers}` });
  const outcome = await processNewLayer({
    index: p.index,
    desc: p.desc,
    diffId: p.diffId,
    reader: run.newImg.reader,
    oldIndex: run.oldIndex!,
    mode: opts.binaryDiff ?? 'bsdiff',
    workDir: run.work,
    compressionLevel: opts.compressionLevel,
    maxZstdDictSize: opts.maxZstdDiffSize,
    ...(opts.tarDiffWriter ? { tarDiffWriter: opts.tarDiffWriter } : {}),
    maxBsdiffSize: opts.maxBsdiffSize,
    // spec §5.1: the patch level defaults to the outer level when one is given
    zstdDiffLevel: opts.zstdDiffLevel ?? opts.compressionLevel,
    zstdDiffWindow: opts.zstdDiffWindow,
    signal,
    onPhase: (ph) =>
      emit({
        type: 'layer',
        layer: p.ordinal,
        layers,
        digest: p.desc.digest,
        phase: ph.phase,
        done: ph.done,
        total: ph.total,
      }),
  });
  if (outcome.kind === 'original' && outcome.failure !== undefined) {
    run.warn(`tar-diff failed for layer ${p.desc.digest}, storing the original: ${outcome.failure}`);
  }
  return outcome;
}

/** Every target layer in manifest order: reused ones, and the created ones at each position. */
function createdLayers(
  newImg: OpenedImage,
  plan: LayerPlan,
  created: Map<string, CreatedLayer>,
): CreatedLayer[] {
  const newDiffIds = newImg.config.rootfs.diff_ids;
  return newImg.manifest.layers.map((desc, index) => {
    const diffId = newDiffIds[index]!;
    const c = created.get(desc.digest);
    if (!c || plan.oldDiffIds.has(diffId)) {
      return { index, kind: 'reused', digest: desc.digest, diffId, size: 0, originalSize: desc.size };
    }
    return { ...c, index };
  });
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

/** A new layer's blob as written into the artifact, and how it is reported. */
interface WrittenLayer {
  blob: DeltaLayerBlob;
  created: CreatedLayer;
}

/** Copies one layer's chosen blob into the artifact and records it (spec §1.4). */
async function writeLayerBlob(run: CreateRun, p: Pending, o: LayerOutcome): Promise<WrittenLayer> {
  const w = run.writer;
  const base = { index: p.index, digest: p.desc.digest, diffId: p.diffId, originalSize: p.desc.size };
  if (o.kind === 'tar-diff') {
    const b = await w.addBlob(createReadStream(o.file), { expectedSize: o.bytes });
    return {
      blob: { mediaType: MEDIA_TYPE_TAR_DIFF, digest: b.digest, size: b.size, to: p.desc.digest },
      created: {
        ...base,
        kind: 'tar-diff',
        size: b.size,
        blobDigest: b.digest,
        mediaType: MEDIA_TYPE_TAR_DIFF,
        version: o.version,
        ops: o.ops,
      },
    };
  }
  // spec §1.4: upstream labels a stored original tar+gzip whatever its compression.
  const mediaType = run.opts.originalMediaType === 'target' ? p.desc.mediaType : MEDIA_TYPE_LAYER_TAR_GZIP;
  const b = await w.addBlob(await run.newImg.reader.openBlob(p.desc), {
    expectedDigest: p.desc.digest,
    expectedSize: p.desc.size,
  });
  const c: CreatedLayer = { ...base, kind: 'original', size: b.size, blobDigest: b.digest, mediaType };
  if (o.tarDiffBytes !== undefined) c.tarDiffBytes = o.tarDiffBytes;
  return { blob: { mediaType, digest: b.digest, size: b.size, to: p.desc.digest }, created: c };
}

/** spec §5.1 step 7. */
function statsOf(
  oldImg: OpenedImage,
  newImg: OpenedImage,
  plan: LayerPlan,
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
    processedLayers: plan.pending.length,
    skippedLayers: plan.reused.length,
    processedLayerBytes,
    tarDiffLayerBytes,
    originalLayerBytes,
    bytesSaved: processedLayerBytes - tarDiffLayerBytes - originalLayerBytes,
  };
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
