import os from 'node:os';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import {
  MEDIA_TYPE_IMAGE_MANIFEST,
  MEDIA_TYPE_TAR_DIFF,
  parseImageConfig,
  parseManifest,
  type Descriptor,
} from '../oci/types.js';
import type { DataSource } from '../tardiff/data-source.js';
import type { OpName } from '../tardiff/ops.js';
import { DirectorySource } from '../image-source/directory.js';
import { OdhError, type ErrorContext } from '../util/errors.js';
import type { Progress } from '../util/progress.js';
import { runOrdered } from '../util/pool.js';
import { parseDeltaArtifact, type DeltaArtifact, type TargetLayer } from './artifact.js';
import { createApplyOutput, type ApplyOutput } from './apply-output.js';
import { openImageSourceFor } from './apply-source.js';
import { checkTarDiffBlobs, fetchEachBlobOnce, openImageReader, type ImageReader } from './image-reader.js';
import {
  copyOriginal,
  rebuildFromTarDiff,
  type OutputCompression,
  type StagedBlob,
  type TarPatcher,
} from './apply-layer.js';
import { serializeManifest } from './manifest-json.js';
import { loadVerifyKey, verifyDeltaSignatures, type VerifiedSignature } from './signature-verify.js';

export type { OutputCompression, TarPatcher } from './apply-layer.js';

export type ApplySource = { kind: 'image'; ref: string } | { kind: 'dir'; path: string };

export interface ApplyOptions {
  /** Delta reference: `oci-archive:PATH[:NAME|:@N]`, `oci:DIR[…]` or a bare archive path. */
  delta: string;
  source: ApplySource;
  /** Output reference: `oci-archive:PATH[:NAME]`, `oci:DIR[:NAME]` or a bare archive path. */
  output: string;
  /** Fill reused layers from the source image so the output is a standard, self-contained image. */
  complete?: boolean;
  compress?: OutputCompression;
  /** Layers reconstructed at once (≥ 1; default: the CPU count). */
  jobs?: number;
  /** Apply even if the source image's config digest is not `delta.source-config` (warns). */
  forceSource?: boolean;
  /** Replace an existing output file (`--force`); default: an existing output is refused. */
  force?: boolean;
  progress?: Progress;
  signal?: AbortSignal;
  /** Loud warnings (stderr in the CLI). */
  warn?: (message: string) => void;
  /** Test harness only: a foreign tar-patch rebuilding each tar-diff layer instead of ours. */
  tarPatcher?: TarPatcher;
  /** PEM public key file: an embedded cosign signature must verify before anything is written (§1.6). */
  verifyKey?: string;
}

export type AppliedKind = 'reused' | 'tar-diff' | 'original' | 'filled';

export interface AppliedLayer {
  index: number;
  kind: AppliedKind;
  /** The output descriptor's digest, size and media type. */
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  /** tar-diff op histogram. */
  ops?: Record<OpName, number>;
}

export interface ApplyResult {
  output: string;
  manifestDigest: string;
  manifestSize: number;
  configDigest: string;
  sourceConfig: string;
  /** False only when --force-source let a mismatching source through. */
  sourceMatched: boolean;
  /** With --verify-key: the signature that verified. */
  verified?: VerifiedSignature;
  complete: boolean;
  layers: AppliedLayer[];
}

/**
 * Reconstructs the target image of a delta (spec oci-delta §4.1, with the checks of §4.3): every
 * blob is digest-checked, every rebuilt or copied layer diff_id-checked, and the output appears at
 * its final path only when all of that succeeded; on any failure nothing is left behind.
 */
export async function applyDelta(opts: ApplyOptions): Promise<ApplyResult> {
  const jobs = opts.jobs ?? os.availableParallelism();
  if (!Number.isSafeInteger(jobs) || jobs < 1) throw new OdhError('USAGE', `invalid jobs ${jobs}`);
  const progress = opts.progress;
  const run = new RunScope(opts.signal);
  try {
    const out = await createApplyOutput(opts.output, { overwrite: opts.force });
    run.defer(() => out.close());
    const inputs = await openInputs(opts, run);
    const { artifact } = inputs;
    // spec oci-delta §4.1 step 6: the config verbatim first, then layers, then the manifest.
    await out.writer.addBlob(artifact.targetConfigBytes, {
      expectedDigest: artifact.targetConfigDescriptor.digest,
      expectedSize: artifact.targetConfigDescriptor.size,
    });
    const layers = await reconstructLayers({ opts, inputs, out, jobs }, run.signal);
    const manifest = await commitManifest(out, artifact, layers, progress);
    progress?.done();
    return {
      output: out.finalPath,
      manifestDigest: manifest.digest,
      manifestSize: manifest.size,
      configDigest: artifact.targetConfigDescriptor.digest,
      sourceConfig: artifact.sourceConfig,
      sourceMatched: inputs.sourceMatched,
      ...(inputs.verified ? { verified: inputs.verified } : {}),
      complete: layers.every((r) => r.kind !== 'reused'),
      layers,
    };
  } catch (e) {
    progress?.done();
    throw opts.signal?.aborted && opts.signal.reason instanceof Error ? opts.signal.reason : e;
  } finally {
    await run.close();
  }
}

/**
 * One apply run's abort signal and clean-ups. The caller's signal (SIGINT/SIGTERM) stops every
 * step; clean-ups run in reverse order at the end, also on failure.
 */
class RunScope {
  private readonly stop = new AbortController();
  private readonly cleanups: Array<() => Promise<void>> = [];
  private readonly onAbort = () => this.stop.abort(this.caller!.reason);

  constructor(private readonly caller: AbortSignal | undefined) {
    if (caller?.aborted) this.onAbort();
    caller?.addEventListener('abort', this.onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  defer(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    this.caller?.removeEventListener('abort', this.onAbort);
    for (const c of this.cleanups.reverse()) await c().catch(() => {});
  }
}

/** Everything the layers are rebuilt from, opened and checked before any layer work starts. */
interface ApplyInputs {
  artifact: DeltaArtifact;
  /** The delta, its tar-diff blobs digest-checked (and fetched once when remote). */
  delta: ImageReader;
  verified?: VerifiedSignature;
  /** Only with a source image (`--source-image`). */
  sourceImage?: ImageReader;
  /** False only when --force-source let a mismatching source through. */
  sourceMatched: boolean;
  /** With --complete: the source image's layers by diff_id. */
  sourceLayers?: Map<string, Descriptor>;
  /** What tar-diffs read old files from; absent when no layer is a tar-diff and there is no directory. */
  source?: DataSource;
}

async function openInputs(opts: ApplyOptions, run: RunScope): Promise<ApplyInputs> {
  opts.progress?.step(`reading delta ${opts.delta}`);
  const opened = await openImageReader(opts.delta, 'delta');
  run.defer(() => opened.close());
  const artifact = await parseDeltaArtifact(opened.manifestBytes, opened);
  // spec oci-delta §4.1 step 4: signatures are checked before anything else is done
  const verified = opts.verifyKey
    ? await verifyDeltaSignatures(artifact, opened, await loadVerifyKey(opts.verifyKey))
    : undefined;
  const src =
    opts.source.kind === 'image'
      ? await openSourceImage(opts, opts.source.ref, artifact, run)
      : { sourceMatched: true };
  if (opts.complete) checkCompletable(artifact, src.sourceLayers);

  // Every tar-diff blob is digest-checked before it is parsed; a remote one is fetched only once.
  let delta = opened;
  const tarDiffs = artifact.layers.filter((l) => l.delta?.mediaType === MEDIA_TYPE_TAR_DIFF);
  if (tarDiffs.length > 0) {
    delta = await checkTarDiffBlobs(opened, tarDiffs, run.signal);
    if (delta !== opened) run.defer(() => delta.close());
  }

  // The data source: a directory as it is, or an image materialising just the named files.
  let source: DataSource | undefined;
  if (opts.source.kind === 'dir') {
    source = await DirectorySource.create(opts.source.path);
  } else if (tarDiffs.length > 0) {
    opts.progress?.step('collecting the source files the tar-diffs read');
    const imageSource = await openImageSourceFor(src.sourceImage!, delta, tarDiffs, run.signal);
    run.defer(() => imageSource.cleanup());
    source = imageSource;
  }
  return { artifact, delta, ...(verified ? { verified } : {}), ...src, ...(source ? { source } : {}) };
}

/** Opens the source image and checks it is the delta's source (spec oci-delta §4.3). */
async function openSourceImage(
  opts: ApplyOptions,
  ref: string,
  artifact: DeltaArtifact,
  run: RunScope,
): Promise<Pick<ApplyInputs, 'sourceImage' | 'sourceMatched' | 'sourceLayers'>> {
  // A remote source image may be read twice (config; layers for the source scan and again for
  // --complete): each blob is fetched once and later reads come from the run's temp space.
  const remoteOrLocal = await openImageReader(ref, 'source image');
  let sourceImage: ImageReader;
  try {
    sourceImage = await fetchEachBlobOnce(remoteOrLocal, run.signal);
  } catch (e) {
    await remoteOrLocal.close();
    throw e;
  }
  run.defer(() => sourceImage.close());
  const sm = parseManifest(sourceImage.manifestBytes, 'source image manifest');
  let sourceMatched = true;
  if (sm.config.digest !== artifact.sourceConfig) {
    const msg = `source image config ${sm.config.digest} is not the delta's source-config ${artifact.sourceConfig}`;
    if (!opts.forceSource) {
      throw new OdhError('SOURCE_MISMATCH', `${msg} (use --force-source to apply anyway)`);
    }
    sourceMatched = false;
    opts.warn?.(`${msg}; applying anyway because of --force-source: diff_id checks may fail`);
  }
  if (!opts.complete) return { sourceImage, sourceMatched };
  const sc = parseImageConfig(await sourceImage.readBlob(sm.config), 'source image config');
  const sourceLayers = new Map<string, Descriptor>();
  sc.rootfs.diff_ids.forEach((id, i) => {
    const d = sm.layers[i];
    if (d && !sourceLayers.has(id)) sourceLayers.set(id, d);
  });
  return { sourceImage, sourceMatched, sourceLayers };
}

/** One layer's blob staged in the output's staging directory, or nothing to write (reused). */
type StagedLayer = { kind: 'reused' } | { kind: Exclude<AppliedKind, 'reused'>; staged: StagedBlob };

/** What every layer job reads: the inputs, the options, and the run-wide progress tally. */
interface LayerJob {
  opts: ApplyOptions;
  inputs: ApplyInputs;
  stagingDir: string;
  /** Tar bytes rebuilt so far, per layer in flight. */
  layerBytes: Map<number, bigint>;
}

/**
 * Rebuilds the layers, `--jobs` at once, through the ordered pool: blobs enter the output in layer
 * order (a deterministic archive), and a finished layer holds its pool slot until the ones before
 * it are written, so at most `jobs` staged layers exist at once besides the output.
 */
async function reconstructLayers(
  job: { opts: ApplyOptions; inputs: ApplyInputs; out: ApplyOutput; jobs: number },
  signal: AbortSignal,
): Promise<AppliedLayer[]> {
  const { opts, inputs, out } = job;
  const layerJob: LayerJob = { opts, inputs, stagingDir: out.stagingDir, layerBytes: new Map() };
  return runOrdered({
    items: inputs.artifact.layers,
    concurrency: job.jobs,
    signal,
    work: (l, _i, layerSignal) => stageLayer(layerJob, l, layerSignal),
    commit: (staged, i) => commitLayer(out, inputs.artifact.layers[i]!, staged),
  });
}

/** spec oci-delta §4.1 step 6c: one layer rebuilt, copied from the delta or filled from the source. */
async function stageLayer(job: LayerJob, l: TargetLayer, signal: AbortSignal): Promise<StagedLayer> {
  const { opts, inputs } = job;
  const progress = opts.progress;
  const ctx: ErrorContext = { layer: l.target.digest };
  const label = `layer ${l.index + 1}/${inputs.artifact.layers.length} ${l.target.digest.slice(0, 19)}`;
  const file = path.join(job.stagingDir, `layer-${l.index}`);
  const target = { diffId: l.diffId, file, ctx, signal };
  if (!l.delta) {
    const filled = inputs.sourceLayers?.get(l.diffId);
    if (!opts.complete || !filled) return { kind: 'reused' };
    progress?.step(`${label}: copying reused layer from the source image`);
    const blob = await inputs.sourceImage!.openBlob(filled, ctx);
    return { kind: 'filled', staged: await copyOriginal({ ...target, blob, desc: filled }) };
  }
  if (l.delta.mediaType === MEDIA_TYPE_TAR_DIFF) {
    progress?.step(`${label}: tar-diff`);
    const staged = await rebuildFromTarDiff({
      ...target,
      tarDiff: await inputs.delta.openBlob(l.delta, ctx),
      source: inputs.source!,
      compress: opts.compress ?? 'gzip',
      onBytes: (done) => {
        job.layerBytes.set(l.index, done);
        progress?.bytes([...job.layerBytes.values()].reduce((a, b) => a + b, 0n));
      },
      ...(opts.tarPatcher ? { patcher: opts.tarPatcher } : {}),
    });
    return { kind: 'tar-diff', staged };
  }
  progress?.step(`${label}: original blob`);
  const blob = await inputs.delta.openBlob(l.delta, ctx);
  return { kind: 'original', staged: await copyOriginal({ ...target, blob, desc: l.delta }) };
}

/** Moves a staged layer blob into the output (in layer order) and describes it. */
async function commitLayer(out: ApplyOutput, l: TargetLayer, s: StagedLayer): Promise<AppliedLayer> {
  if (s.kind === 'reused') return reusedLayer(l);
  const { staged } = s;
  await out.writer.addBlob(createReadStream(staged.file), {
    expectedDigest: staged.digest,
    expectedSize: staged.size,
  });
  await fs.rm(staged.file, { force: true });
  const r: AppliedLayer = {
    index: l.index,
    kind: s.kind,
    digest: staged.digest,
    size: staged.size,
    mediaType: staged.mediaType,
    diffId: l.diffId,
  };
  if (staged.ops) r.ops = staged.ops;
  return r;
}

/** spec oci-delta §4.1 step 6d: the manifest re-serialized with the new layer descriptors. */
async function commitManifest(
  out: ApplyOutput,
  artifact: DeltaArtifact,
  layers: AppliedLayer[],
  progress: Progress | undefined,
): Promise<{ digest: string; size: number }> {
  const manifest = {
    ...artifact.targetManifest,
    layers: artifact.targetManifest.layers.map((d, i) => {
      const r = layers[i]!;
      return r.kind === 'reused' ? d : { ...d, mediaType: r.mediaType, digest: r.digest, size: r.size };
    }),
  };
  const manifestBytes = serializeManifest(manifest);
  const { digest } = await out.writer.addJsonBlob(manifestBytes);
  progress?.step('committing output');
  await out.writer.finish({ mediaType: MEDIA_TYPE_IMAGE_MANIFEST, digest, size: manifestBytes.length });
  return { digest, size: manifestBytes.length };
}

function reusedLayer(l: TargetLayer): AppliedLayer {
  return {
    index: l.index,
    kind: 'reused',
    digest: l.target.digest,
    size: l.target.size,
    mediaType: l.target.mediaType,
    diffId: l.diffId,
  };
}

/** `--complete` needs every reused layer in the source image (matched by diff_id, spec §1.5). */
function checkCompletable(a: DeltaArtifact, sourceLayers: Map<string, Descriptor> | undefined): void {
  for (const l of a.layers) {
    if (l.delta) continue;
    if (!sourceLayers) {
      throw new OdhError(
        'USAGE',
        `--complete needs --source-image: reused layer ${l.target.digest} can only be copied from the source image`,
      );
    }
    if (!sourceLayers.has(l.diffId)) {
      throw new OdhError('NOT_FOUND', `reused layer diff_id ${l.diffId} is not in the source image`, {
        layer: l.target.digest,
      });
    }
  }
}
