import { createHash } from 'node:crypto';
import { MergedRootfs, OSTREE_PREFIX, nameKey, type SourceEntry } from '../merged-rootfs.js';
import type { ErrorContext } from '../../util/errors.js';
import { OPEN_NAME_MAX } from '../op-rules.js';
import { ContentStore } from './content-store.js';
import { forEachLayerEntry, type LayerStreamFactory } from './layer-stream.js';
import { basenameOf, fuzzyPrefixOf, isDeltaCandidate } from './basenames.js';
import { SKETCH_MIN_FILE, SKETCH_SIZE, Sketcher } from './sketch.js';

/** A sketch value held by more files than this says nothing about any of them (zero runs, ELF headers). */
const SKETCH_BUCKET_MAX = 64;
/** Shared sketch values (of `SKETCH_SIZE`) for a content match: a substantial overlap. */
const SKETCH_MIN_SHARED = SKETCH_SIZE / 4;

/**
 * The old-image index the creator builds (spec oci-delta §5.2 source analysis, upstream
 * `AnalyzeSources` with whiteouts on and ignore-prefix `sysroot/ostree/`). The merged-rootfs rules (which files qualify, which names
 * survive, the Open name) are `MergedRootfs`'s; this module adds what matching needs: the SHA-1 of
 * each qualifying file's content, computed while streaming, and lookup tables by content, path and
 * basename. Content itself is not kept: the `ContentStore` extracts only the sources a diff uses.
 */

/** A usable old file: it has an Open name in the merged root filesystem. */
export interface OldFile {
  readonly entry: SourceEntry;
  /** Position in source order (old layer, then tar order). */
  readonly order: number;
  /** spec oci-delta §3.1: the name Open uses. */
  readonly openName: Buffer;
  readonly size: number;
  readonly sha1: Buffer;
  /** First (up to) 4 content bytes: a ZstdDict source must not start with the dictionary magic. */
  readonly head: Buffer;
  /** Basenames of all its recorded paths (spec oci-delta §5.2), for fuzzy matching. */
  readonly basenames: Buffer[];
  /** spec oci-delta §5.3: no basename ends in `.xz` or `.bz2`. */
  readonly deltaCandidate: boolean;
  /** Content sketch (files of at least `SKETCH_MIN_FILE` bytes), for the similarity fallback. */
  readonly sketch?: Int32Array;
}

export interface OldImageIndexProgress {
  layer: number;
  layers: number;
  files: number;
}

export interface OldImageIndexOptions {
  /** Directory for the extracted-content store (created lazily, removed by `dispose`). */
  tempDir: string;
  /** Names under these prefixes are never Open names (default `sysroot/ostree/`). */
  ignorePrefixes?: string[];
  /** Names the layers in error messages (default `old layer #i`). */
  layerNames?: string[];
  onProgress?: (p: OldImageIndexProgress) => void;
}

/** Everything a tar-diff creator needs to know about the old layers; reusable for many new layers. */
export class OldImageIndex {
  /** Usable files in source order. */
  readonly files: readonly OldFile[];
  readonly store: ContentStore;
  private readonly byContent = new Map<string, OldFile>();
  private readonly byEntry = new Map<SourceEntry, OldFile>();
  private readonly byBase = new Map<string, OldFile[]>();
  private readonly byPrefix = new Map<string, OldFile[]>();
  private readonly bySketch = new Map<number, OldFile[]>();

  constructor(
    readonly rootfs: MergedRootfs,
    files: OldFile[],
    store: ContentStore,
  ) {
    this.files = files;
    this.store = store;
    for (const f of files) {
      // spec oci-delta §5.2: by SHA-1, the last writer wins
      this.byContent.set(contentKey(f.sha1, f.size), f);
      this.byEntry.set(f.entry, f);
      // only delta candidates can be chosen by the fuzzy passes (spec oci-delta §5.3)
      if (!f.deltaCandidate) continue;
      for (const v of f.sketch ?? []) {
        const l = this.bySketch.get(v);
        if (!l) this.bySketch.set(v, [f]);
        else if (l.length <= SKETCH_BUCKET_MAX) l.push(f); // one past the cap marks it uninformative
      }
      const bases = new Set(f.basenames.map(nameKey));
      for (const b of bases) push(this.byBase, b, f);
      const prefixes = new Set<string>();
      for (const b of f.basenames) {
        const p = fuzzyPrefixOf(b);
        if (p) prefixes.add(nameKey(p));
      }
      for (const p of prefixes) push(this.byPrefix, p, f);
    }
    // size-sorted buckets (source order within a size) let matching find the nearest size quickly
    for (const m of [this.byBase, this.byPrefix]) {
      for (const l of m.values()) l.sort((a, b) => a.size - b.size || a.order - b.order);
    }
  }

  /** A usable file with exactly this content. */
  withContent(sha1: Buffer, size: number): OldFile | undefined {
    return this.byContent.get(contentKey(sha1, size));
  }

  /** The usable file a merged-rootfs name (any of its surviving, allowed names) maps to. */
  atPath(name: Buffer): OldFile | undefined {
    const e = this.rootfs.lookup(name);
    return e ? this.byEntry.get(e) : undefined;
  }

  /** Delta-candidate files having `base` as one of their basenames, by size, then source order. */
  withBasename(base: Buffer): readonly OldFile[] {
    return this.byBase.get(nameKey(base)) ?? [];
  }

  /** Delta-candidate files with a basename of this fuzzy prefix (up to the first `.`), by size, then source order. */
  withFuzzyPrefix(prefix: Buffer): readonly OldFile[] {
    return this.byPrefix.get(nameKey(prefix)) ?? [];
  }

  /**
   * The delta-candidate file sharing the most sketch values with `sketch`, if it shares at least a
   * quarter of them; ties go to the nearest size, then the later source.
   */
  similarByContent(sketch: Int32Array, size: number): OldFile | undefined {
    const counts = new Map<OldFile, number>();
    for (const v of sketch) {
      const l = this.bySketch.get(v);
      if (!l || l.length > SKETCH_BUCKET_MAX) continue;
      for (const f of l) counts.set(f, (counts.get(f) ?? 0) + 1);
    }
    let best: OldFile | undefined;
    let bestShared = SKETCH_MIN_SHARED - 1;
    for (const [f, shared] of counts) {
      const d = Math.abs(f.size - size);
      const bd = best ? Math.abs(best.size - size) : 0;
      if (
        shared > bestShared ||
        (best && shared === bestShared && (d < bd || (d === bd && f.order > best.order)))
      ) {
        best = f;
        bestShared = shared;
      }
    }
    return best;
  }

  /** Removes the extracted-content store. */
  async dispose(): Promise<void> {
    await this.store.dispose();
  }
}

function push(m: Map<string, OldFile[]>, k: string, f: OldFile): void {
  const l = m.get(k);
  if (l) l.push(f);
  else m.set(k, [f]);
}

function contentKey(sha1: Buffer, size: number): string {
  return `${sha1.toString('hex')}:${size}`;
}

/**
 * Streams every old layer once, in manifest order, and returns the usable sources. Memory: one SHA-1
 * and a few bytes per qualifying file; content is hashed as it streams by.
 */
export async function indexOldImage(
  oldLayers: readonly LayerStreamFactory[],
  opts: OldImageIndexOptions,
): Promise<OldImageIndex> {
  const rootfs = new MergedRootfs({ ignorePrefixes: opts.ignorePrefixes ?? [OSTREE_PREFIX] });
  // `${layer}:${ordinal}`
  const hashes = new Map<string, { sha1: Buffer; head: Buffer; sketch?: Int32Array }>();
  const layerNames = oldLayers.map((_, i) => opts.layerNames?.[i] ?? `old layer #${i}`);
  let files = 0;
  for (let i = 0; i < oldLayers.length; i++) {
    const scan = rootfs.beginLayer();
    const ctx: ErrorContext = { layer: layerNames[i] };
    await forEachLayerEntry(oldLayers[i]!, ctx, async ({ entry, body }) => {
      if (scan.add(entry) !== 'candidate') return;
      const h = createHash('sha1');
      const sk = entry.size >= BigInt(SKETCH_MIN_FILE) ? new Sketcher() : undefined;
      const head: Buffer[] = [];
      let headLen = 0;
      for await (const c of body) {
        h.update(c);
        sk?.push(c);
        if (headLen < 4) {
          head.push(c.subarray(0, 4 - headLen));
          headLen += head[head.length - 1]!.length;
        }
      }
      hashes.set(`${i}:${scan.count - 1}`, {
        sha1: h.digest(),
        head: Buffer.concat(head),
        sketch: sk?.finish(),
      });
      files++;
    });
    scan.finish();
    opts.onProgress?.({ layer: i + 1, layers: oldLayers.length, files });
  }
  const usable: OldFile[] = [];
  const entries = [...rootfs.openNames().values()].sort((a, b) => a.layer - b.layer || a.ordinal - b.ordinal);
  for (const entry of entries) {
    const openName = rootfs.openNameOf(entry)!;
    // spec oci-delta §5.7: appliers refuse longer Open names, so such a file is no source
    if (openName.length > OPEN_NAME_MAX) continue;
    const h = hashes.get(`${entry.layer}:${entry.ordinal}`)!;
    const basenames = entry.paths.map(basenameOf);
    usable.push({
      entry,
      order: usable.length,
      openName,
      size: Number(entry.size),
      sha1: h.sha1,
      head: h.head,
      basenames,
      deltaCandidate: isDeltaCandidate(basenames),
      sketch: h.sketch,
    });
  }
  const store = new ContentStore(oldLayers, layerNames, opts.tempDir);
  return new OldImageIndex(rootfs, usable, store);
}
