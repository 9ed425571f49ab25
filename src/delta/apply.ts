import { setMaxListeners } from 'node:events';
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
import type { DataSource } from '../tardiff/source.js';
import type { OpName } from '../tardiff/ops.js';
import { DirectorySource } from '../source/directory.js';
import { OdhError, type ErrorContext } from '../util/errors.js';
import type { Progress } from '../util/progress.js';
import { parseDeltaArtifact, type DeltaArtifact, type TargetLayer } from './artifact.js';
import {
  checkTarDiffBlobs,
  createApplyOutput,
  fetchEachBlobOnce,
  openImage,
  openImageSourceFor,
  type ImageReader,
} from './io.js';
import {
  copyOriginal,
  rebuildFromTarDiff,
  type OutputCompression,
  type StagedBlob,
  type TarPatcher,
} from './layer.js';
import { serializeManifest } from './manifest-json.js';
import { loadVerifyKey, verifyDeltaSignatures, type VerifiedSignature } from './signature-verify.js';

export type { OutputCompression, TarPatcher } from './layer.js';

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
  const compress = opts.compress ?? 'gzip';
  const progress = opts.progress;
  // One controller for the whole run: the caller's signal (SIGINT/SIGTERM) or the first failing
  // layer stops every layer in flight.
  const stop = new AbortController();
  const signal = stop.signal;
  // Each layer in flight listens to it a few times (stream pipelines, turns): with --jobs 64 that
  // is hundreds of listeners by design, not a leak, so no MaxListenersExceededWarning.
  setMaxListeners(0, signal);
  const onAbort = () => stop.abort(opts.signal!.reason);
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const out = await createApplyOutput(opts.output, { overwrite: opts.force });
    cleanups.push(() => out.close());
    progress?.step(`reading delta ${opts.delta}`);
    const opened = await openImage(opts.delta, 'delta');
    cleanups.push(() => opened.close());
    let delta = opened;
    const artifact = await parseDeltaArtifact(delta.manifestBytes, delta);
    // spec oci-delta §4.1 step 4: signatures are checked before anything else is done
    const verified = opts.verifyKey
      ? await verifyDeltaSignatures(artifact, delta, await loadVerifyKey(opts.verifyKey))
      : undefined;

    let sourceImage: ImageReader | undefined;
    let sourceMatched = true;
    let sourceLayers: Map<string, Descriptor> | undefined;
    if (opts.source.kind === 'image') {
      // A remote source image may be read twice (config; layers for the source scan and again for
      // --complete): each blob is fetched once and later reads come from the run's temp space.
      const remoteOrLocal = await openImage(opts.source.ref, 'source image');
      try {
        sourceImage = await fetchEachBlobOnce(remoteOrLocal, signal);
      } catch (e) {
        await remoteOrLocal.close();
        throw e;
      }
      cleanups.push(() => sourceImage!.close());
      const sm = parseManifest(sourceImage.manifestBytes, 'source image manifest');
      if (sm.config.digest !== artifact.sourceConfig) {
        const msg = `source image config ${sm.config.digest} is not the delta's source-config ${artifact.sourceConfig}`;
        if (!opts.forceSource) {
          throw new OdhError('SOURCE_MISMATCH', `${msg} (use --force-source to apply anyway)`);
        }
        sourceMatched = false;
        opts.warn?.(`${msg}; applying anyway because of --force-source: diff_id checks may fail`);
      }
      if (opts.complete) {
        const sc = parseImageConfig(await sourceImage.readBlob(sm.config), 'source image config');
        sourceLayers = new Map();
        sc.rootfs.diff_ids.forEach((id, i) => {
          if (sm.layers[i] && !sourceLayers!.has(id)) sourceLayers!.set(id, sm.layers[i]!);
        });
      }
    }
    if (opts.complete) checkCompletable(artifact, sourceLayers);

    // Every tar-diff blob is digest-checked before it is parsed; a remote one is fetched only once.
    const tarDiffs = artifact.layers.filter((l) => l.delta?.mediaType === MEDIA_TYPE_TAR_DIFF);
    if (tarDiffs.length > 0) {
      delta = await checkTarDiffBlobs(opened, tarDiffs, signal);
      if (delta !== opened) cleanups.push(() => delta.close());
    }

    // The data source: a directory as it is, or an image materialising just the named files.
    let source: DataSource | undefined;
    if (opts.source.kind === 'dir') {
      source = await DirectorySource.create(opts.source.path);
    } else if (tarDiffs.length > 0) {
      progress?.step('collecting the source files the tar-diffs read');
      const opened = await openImageSourceFor(sourceImage!, delta, tarDiffs, signal);
      cleanups.push(() => opened.cleanup());
      source = opened;
    }

    // spec oci-delta §4.1 step 6: the config verbatim first, then layers, then the manifest.
    await out.writer.addBlob(artifact.targetConfigBytes, {
      expectedDigest: artifact.targetConfigDescriptor.digest,
      expectedSize: artifact.targetConfigDescriptor.size,
    });
    const staging = out.stagingDir;
    const turns = new LayerTurns(artifact.layers.length, signal);
    const layerBytes = new Map<number, bigint>(); // tar bytes rebuilt so far, per layer in flight
    const results = await runLayers(artifact.layers, jobs, stop, async (l) => {
      const ctx: ErrorContext = { layer: l.target.digest };
      const label = `layer ${l.index + 1}/${artifact.layers.length} ${l.target.digest.slice(0, 19)}`;
      const file = path.join(staging, `layer-${l.index}`);
      let staged: StagedBlob | undefined;
      let kind: AppliedKind;
      if (!l.delta) {
        const filled = sourceLayers?.get(l.diffId);
        if (!opts.complete || !filled) {
          await turns.take(l.index);
          turns.done(l.index);
          return reusedLayer(l);
        }
        progress?.step(`${label}: copying reused layer from the source image`);
        staged = await copyOriginal(
          await sourceImage!.openBlob(filled, ctx),
          filled,
          l.diffId,
          file,
          ctx,
          signal,
        );
        kind = 'filled';
      } else if (l.delta.mediaType === MEDIA_TYPE_TAR_DIFF) {
        progress?.step(`${label}: tar-diff`);
        staged = await rebuildFromTarDiff(
          await delta.openBlob(l.delta, ctx),
          source!,
          l.diffId,
          compress,
          file,
          ctx,
          signal,
          (done) => {
            layerBytes.set(l.index, done);
            progress?.bytes([...layerBytes.values()].reduce((a, b) => a + b, 0n));
          },
          opts.tarPatcher,
        );
        kind = 'tar-diff';
      } else {
        progress?.step(`${label}: original blob`);
        staged = await copyOriginal(await delta.openBlob(l.delta, ctx), l.delta, l.diffId, file, ctx, signal);
        kind = 'original';
      }
      // Blobs enter the output in layer order (deterministic archive); a finished layer waits for
      // the ones before it, so at most `jobs` staged layers exist at once.
      await turns.take(l.index);
      await out.writer.addBlob(createReadStream(staged.file), {
        expectedDigest: staged.digest,
        expectedSize: staged.size,
      });
      await fs.rm(staged.file, { force: true });
      turns.done(l.index);
      const r: AppliedLayer = {
        index: l.index,
        kind,
        digest: staged.digest,
        size: staged.size,
        mediaType: staged.mediaType,
        diffId: l.diffId,
      };
      if (staged.ops) r.ops = staged.ops;
      return r;
    });

    // spec oci-delta §4.1 step 6d: the manifest re-serialized with the new layer descriptors.
    const manifest = {
      ...artifact.targetManifest,
      layers: artifact.targetManifest.layers.map((d, i) => {
        const r = results[i]!;
        return r.kind === 'reused' ? d : { ...d, mediaType: r.mediaType, digest: r.digest, size: r.size };
      }),
    };
    const manifestBytes = serializeManifest(manifest);
    const { digest: manifestDigest } = await out.writer.addJsonBlob(manifestBytes);
    progress?.step('committing output');
    await out.writer.finish({
      mediaType: MEDIA_TYPE_IMAGE_MANIFEST,
      digest: manifestDigest,
      size: manifestBytes.length,
    });
    progress?.done();
    return {
      output: out.finalPath,
      manifestDigest,
      manifestSize: manifestBytes.length,
      configDigest: artifact.targetConfigDescriptor.digest,
      sourceConfig: artifact.sourceConfig,
      sourceMatched,
      ...(verified ? { verified } : {}),
      complete: results.every((r) => r.kind !== 'reused'),
      layers: results,
    };
  } catch (e) {
    progress?.done();
    throw opts.signal?.aborted && opts.signal.reason instanceof Error ? opts.signal.reason : e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await cleanup();
  }
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

/**
 * Runs `work` over the layers with at most `jobs` in flight (so temp disk holds at most `jobs` staged
 * layers besides the output). The first failure stops new work; results come back in layer order.
 */
async function runLayers<T>(
  layers: TargetLayer[],
  jobs: number,
  stop: AbortController,
  work: (l: TargetLayer) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(layers.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < layers.length) {
      if (stop.signal.aborted) throw stop.signal.reason;
      const l = layers[next++]!;
      try {
        results[l.index] = await work(l);
      } catch (e) {
        if (failed === undefined) {
          failed = e;
          stop.abort(e);
        }
        throw e;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(jobs, layers.length) }, worker));
  if (failed !== undefined) throw failed;
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  return results;
}

/** Hands out the output's "next blob" slot in layer order; an abort releases every waiter. */
class LayerTurns {
  private readonly finished: Array<{ promise: Promise<void>; resolve: () => void }>;
  private readonly aborted: Promise<never>;

  constructor(count: number, signal: AbortSignal) {
    this.finished = Array.from({ length: count }, () => {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      return { promise, resolve };
    });
    this.aborted = new Promise<never>((_r, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    this.aborted.catch(() => {});
  }

  /** Resolves when every layer before `index` has been written. */
  async take(index: number): Promise<void> {
    if (index > 0) await Promise.race([this.finished[index - 1]!.promise, this.aborted]);
  }

  done(index: number): void {
    this.finished[index]!.resolve();
  }
}
