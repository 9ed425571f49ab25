/**
 * The composefs image ID of an OCI image (spec composefs-v2 §5): the fs-verity digest of the whole
 * EROFS image built from the image's tree, as `cfsctl oci compute-id` of composefs-rs 0.9.0 prints it
 * (bare hex).
 *
 * Formats (spec composefs-v1 §14): V1 is composefs-rs `FormatVersion::V1`, i.e. the C-compatible
 * layout written as C `mkcomposefs --min-version=1` (cfs-version always 1); V2 is the legacy
 * composefs-rs writer. The tree does not depend on the format (§14.3) except for the xattr policy:
 * composefs-rs ≥0.8 keeps only `security.capability` for both formats (the default here); the V2
 * spec's snapshot (≤0.7) keeps every xattr (`xattrs: 'all'`). Known composefs-rs V1 vs C divergences (§14.4 items 3–5: a user
 * whiteout stub look-alike at the root, ACL flag on near-ACL names, negative mtimes) are not
 * modelled: the C behaviour is written.
 */
import type { OpenedImage } from '../../oci/image.js';
import type { Progress } from '../../util/progress.js';
import { streamErofsV1, writeErofs, type WriteErofsOptions } from '../format/erofs/write.js';
import { FsVerityHasher, fsverityDigest, type FsVerityAlgorithm } from '../format/fsverity.js';
import type { OciTreeBuilder, OciXattrPolicy } from './merge.js';
import type { OciImageLayers } from './image-tree.js';
import type { Inode } from '../format/tree.js';

export type ComposefsFormat = 'v1' | 'v2';

/** Current cfsctl for a new repository: V1 format, SHA-512 (spec composefs-v1 §14.2, v2 §1.4). */
export const DEFAULT_FORMAT: ComposefsFormat = 'v1';
export const DEFAULT_HASH: FsVerityAlgorithm = 'sha512';

/**
 * The composefs-rs release whose `transform_for_oci` the defaults follow: v0.9.0 (commit 90f30e8,
 * crates/composefs/src/generic_tree.rs) applies the xattr allowlist to the tree whatever the EROFS
 * format, then `compact()`s the leaf table (which changes no byte: spec composefs-v2 §3.5 item 3).
 */
export const COMPOSEFS_RS_RELEASE = '0.9.0';

/**
 * The default xattr policy, for both formats: composefs-rs 0.9.0 `XattrFiltering::AllowlistOnly`
 * (`security.capability` only). `all` is composefs-rs ≤ 0.7.0 (the V2 spec's snapshot).
 */
export function defaultXattrPolicy(_format?: ComposefsFormat): OciXattrPolicy {
  return 'capability';
}

/** Writer options of a format: composefs-rs V1 = C `--min-version=1 --max-version=1` (spec v1 §0.2). */
export function erofsOptionsFor(format: ComposefsFormat, hash: FsVerityAlgorithm): WriteErofsOptions {
  return format === 'v1' ? { format: 'v1', minVersion: 1, maxVersion: 1, hash } : { format: 'v2', hash };
}

export interface ComposefsImageOptions {
  format?: ComposefsFormat;
  hash?: FsVerityAlgorithm;
  /** Default: `defaultXattrPolicy(format)`. */
  xattrs?: OciXattrPolicy;
  /** Progress on stderr (layer by layer, compressed bytes). */
  progress?: Progress;
  /** Layer worker threads (default: the available parallelism; below 2: one thread). */
  workers?: number;
  /** Cancels the build (the CLI passes the run's signal). */
  signal?: AbortSignal;
}

export interface ComposefsImage {
  tree: Inode;
  /** The EROFS image bytes (metadata only: file contents stay external objects). */
  image: Buffer;
  /** Bare lowercase hex image ID. */
  id: string;
}

/** The image's layers as the tree builder reads them. */
export function ociImageLayers(opened: OpenedImage): OciImageLayers {
  return {
    where: opened.reader.where,
    manifest: opened.manifest,
    config: opened.config,
    openBlob: (desc) => opened.reader.openBlob(desc),
    // Directories and archives can be opened again by layer workers; registry blobs cannot.
    ...(opened.ref.transport !== 'docker'
      ? { layout: { transport: opened.ref.transport, path: opened.ref.path } }
      : {}),
  };
}

/** The composefs tree of an OCI image reference (oci:DIR…, oci-archive:FILE…, docker://…). */
export async function composefsTree(imageRef: string, opts: ComposefsImageOptions = {}): Promise<Inode> {
  return (await ociLayersApplied(imageRef, opts)).finish(xattrPolicyOf(opts));
}

function xattrPolicyOf(opts: ComposefsImageOptions): OciXattrPolicy {
  return opts.xattrs ?? defaultXattrPolicy(opts.format ?? DEFAULT_FORMAT);
}

/** The layers of an OCI image reference applied to a tree builder, not yet finished. */
async function ociLayersApplied(imageRef: string, opts: ComposefsImageOptions): Promise<OciTreeBuilder> {
  const progress = opts.progress;
  // Loaded on use: this module's defaults are read by every `odh composefs` command at start-up,
  // and the OCI reader (registries, tar, zstd) is only for image commands.
  const [{ openImage }, { applyOciLayers }] = await Promise.all([
    import('../../oci/image.js'),
    import('./image-tree.js'),
  ]);
  const opened = await openImage(imageRef);
  try {
    let current = -1;
    return await applyOciLayers(ociImageLayers(opened), {
      hash: opts.hash ?? DEFAULT_HASH,
      ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
      onProgress: progress
        ? (p) => {
            if (p.layer !== current) {
              current = p.layer;
              progress.step(`layer ${p.layer + 1}/${p.layers} ${p.digest.slice(0, 19)}…`);
            }
            progress.bytes(p.blobBytes, p.blobSize);
          }
        : undefined,
    });
  } finally {
    await opened.reader.close();
  }
}

/** Builds the tree, the EROFS image and its ID of an OCI image reference (oci:DIR…, oci-archive:FILE…). */
export async function composefsImage(
  imageRef: string,
  opts: ComposefsImageOptions = {},
): Promise<ComposefsImage> {
  const format = opts.format ?? DEFAULT_FORMAT;
  const hash = opts.hash ?? DEFAULT_HASH;
  const tree = await composefsTree(imageRef, opts);
  opts.progress?.step(`writing ${format} EROFS image`);
  const image = writeErofs(tree, erofsOptionsFor(format, hash));
  return { tree, image, id: fsverityDigest(image, hash).toString('hex') };
}

/**
 * `cfsctl oci compute-id` (without --bootable): the bare hex image ID. A V1 image streams from the
 * writer into the fs-verity hash and is never whole in memory; its tree is built flat, without an
 * object tree in between.
 */
export async function composefsImageId(imageRef: string, opts: ComposefsImageOptions = {}): Promise<string> {
  const format = opts.format ?? DEFAULT_FORMAT;
  const hash = opts.hash ?? DEFAULT_HASH;
  if (format === 'v2') {
    const image = writeErofs(await composefsTree(imageRef, opts), erofsOptionsFor(format, hash));
    return fsverityDigest(image, hash).toString('hex');
  }
  const flat = (await ociLayersApplied(imageRef, opts)).finishFlat(xattrPolicyOf(opts));
  opts.progress?.step(`writing ${format} EROFS image`);
  const hasher = new FsVerityHasher(hash);
  streamErofsV1(flat, erofsOptionsFor(format, hash), (chunk) => hasher.update(chunk));
  return hasher.digest().toString('hex');
}
