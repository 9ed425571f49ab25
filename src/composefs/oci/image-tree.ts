/**
 * OCI image → composefs tree (spec composefs-v2 §3, composefs-v1 §14.3): the layers are streamed
 * once each, lowest first (config `rootfs.diff_ids` order = manifest layer order, §3.1), on this
 * thread or in layer workers (layer-pool.ts), each by layer-stream.ts.
 */
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import type { Descriptor, ImageConfig, ImageManifest } from '../../oci/types.js';
import { OdhError } from '../../util/errors.js';
import type { Inode } from '../format/tree.js';
import {
  streamLayer,
  type LayerStreamOptions,
  type LayerWorkerLayout,
  type OciLayerTask,
} from './layer-stream.js';
import { OciTreeBuilder, type OciXattrPolicy } from './merge.js';

/** What the tree builder needs of an image: its manifest, its config and a way to stream a blob. */
export interface OciImageLayers {
  /** Names the image in messages. */
  where: string;
  manifest: ImageManifest;
  config: ImageConfig;
  /** Streams a blob, digest-verified by the reader (fails at the end when the bytes are wrong). */
  openBlob(desc: Descriptor): Promise<AsyncIterable<Buffer> | Readable>;
  /**
   * The layout these layers come from, when layer workers may open it themselves (directories and
   * archives: positional reads). Absent: every layer is streamed through `openBlob` on this thread.
   */
  layout?: LayerWorkerLayout;
}

export interface ApplyLayersOptions extends LayerStreamOptions {
  /**
   * Layer worker threads when the image has a `layout`. Default: the available parallelism, used
   * only when two or more layers are large enough to pay for a worker (WORKER_MIN_LAYER_BYTES).
   * Below two (or with one layer) every layer is streamed on the calling thread.
   */
  workers?: number;
}

export interface TreeFromOciOptions extends ApplyLayersOptions {
  /**
   * Which xattrs the tree keeps (see OciXattrPolicy). No default here: the one default, composefs-rs
   * as released, is image-id.ts's `defaultXattrPolicy`.
   */
  xattrs: OciXattrPolicy;
}

/**
 * Compressed size from which a layer is worth a worker thread. A worker costs a fixed amount of
 * CPU (its own module load, JIT warm-up and heap: about 0.3–0.6 s measured on the bench image), and
 * only layers streamed side by side gain: on the 128 MiB / 4-layer bench image (16 MiB layers) one
 * thread took 1.4 s against 1.9 s with two workers, on the 1 GiB one (130 MiB layers) two workers
 * were as fast or faster on a shared machine and use the second core when it is free.
 */
export const WORKER_MIN_LAYER_BYTES = 32 << 20;

function defaultWorkers(layers: Descriptor[]): number {
  const big = layers.filter((d) => d.size >= WORKER_MIN_LAYER_BYTES).length;
  return big >= 2 ? Math.min(availableParallelism(), big) : 1;
}

/** The i-th config diff_id belongs to the i-th manifest layer (spec composefs-v2 §3.1); both lists agree. */
function layerTasks(image: OciImageLayers): OciLayerTask[] {
  const layers = image.manifest.layers;
  const diffIds = image.config.rootfs.diff_ids;
  const mismatch = () =>
    new OdhError(
      'FORMAT',
      `image has ${layers.length} layers but its config lists ${diffIds.length} diff_ids`,
      {
        file: image.where,
      },
    );
  if (diffIds.length !== layers.length) throw mismatch();
  return layers.map((desc, index) => {
    const diffId = diffIds[index];
    if (diffId === undefined) throw mismatch();
    return { desc, diffId, index, layers: layers.length };
  });
}

/** Builds the composefs tree of an OCI image (spec composefs-v2 §3.1–§3.5). */
export async function treeFromOciImage(image: OciImageLayers, opts: TreeFromOciOptions): Promise<Inode> {
  return (await applyOciLayers(image, opts)).finish(opts.xattrs);
}

/**
 * Every layer applied, lowest first (spec composefs-v2 §3.1–§3.4); the caller finishes the tree
 * (§3.5) as objects (`finish`) or flat for the V1 writer (`finishFlat`).
 */
export async function applyOciLayers(
  image: OciImageLayers,
  opts: ApplyLayersOptions,
): Promise<OciTreeBuilder> {
  const layers = image.manifest.layers;
  const builder = new OciTreeBuilder();
  const tasks = layerTasks(image);
  const workers = Math.min(opts.workers ?? defaultWorkers(layers), tasks.length);
  if (image.layout !== undefined && workers >= 2) {
    // Loaded on use: the one-thread path (and its callers) never pay for it.
    const { applyLayersInWorkers } = await import('./layer-pool.js');
    await applyLayersInWorkers(builder, tasks, {
      layout: image.layout,
      hash: opts.hash,
      workers,
      onProgress: opts.onProgress,
      signal: opts.signal,
    });
  } else {
    for (const task of tasks) await streamLayer(builder, await image.openBlob(task.desc), task, opts);
  }
  return builder;
}
