import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DataSource, DataSourceFile } from '../tardiff/data-source.js';
import { displayName } from '../tardiff/path.js';
import { OdhError } from '../util/errors.js';
import { MergedRootfs, type SourceEntry } from '../tardiff/merged-rootfs.js';
import { releaseTemp, runTempDir } from '../util/run.js';
import { openOldImage, streamOldLayer, type OldImage, type OldImageInput } from './old-layers.js';

export { extractMergedRootfs } from './rootfs-extract.js';
export type { ImageBlobs, OldImageInput } from './old-layers.js';

/**
 * Old-image bytes read straight from an OCI image (spec oci-delta §3.1–3.2): the merged-rootfs index
 * is built by streaming each old layer, and only the files whose names the tar-diffs reference are
 * copied into a private temp store, so temp disk is bounded by the referenced bytes, not the image.
 * Store files are named by (layer, entry ordinal), never by a path from the image, so no hostile
 * member name can reach the file system.
 */

export interface OciImageSourceProgress {
  /** Layers scanned so far, of `layers`. */
  layer: number;
  layers: number;
  /** Files and bytes currently held in the store. */
  storedFiles: number;
  storedBytes: bigint;
}

export interface OciImageSourceOptions {
  /** Parent of the private temp store (default: the OS temp dir). */
  tempDir?: string;
  onProgress?: (p: OciImageSourceProgress) => void;
}

export interface OciImageSource extends DataSource {
  /** The old image's config digest (compare with the delta's `source-config`). */
  readonly configDigest: string;
  /** The store directory (for tests and messages). */
  readonly storeDir: string;
  /** Removes the store. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Which names must be served: display-form names as `inspectTarDiff` lists them, or all. */
export type NeededNames = Set<string> | 'all';

const keyOf = (s: Pick<SourceEntry, 'layer' | 'ordinal'>) => `L${s.layer}-E${s.ordinal}`;

/**
 * Opens an OCI image as a tar-diff data source serving the names in `needed` (and no others).
 * Every layer blob is digest-checked while streamed and its diff_id compared with the config.
 * A layer is streamed a second time only if a needed name is a hardlink whose content went by
 * before the name was known (bootc object + hardlink layers).
 */
export async function openOciImageSource(
  image: OldImageInput,
  needed: NeededNames,
  opts: OciImageSourceOptions = {},
): Promise<OciImageSource> {
  const storeDir = (await runTempDir('source', opts.tempDir)).dir;
  let old: OldImage | undefined;
  try {
    old = await openOldImage(image);
    const rootfs = new MergedRootfs();
    const wanted = (name: Buffer) =>
      rootfs.allowed(name) && (needed === 'all' || needed.has(displayName(name)));
    const stored = new Map<string, SourceEntry>(); // store key → the entry whose content it holds
    const layers = old.manifest.layers.length;
    for (let layer = 0; layer < layers; layer++) {
      const scan = rootfs.beginLayer();
      await streamOldLayer(old, layer, async ({ entry, body }) => {
        if (scan.add(entry) !== 'candidate') return;
        const file = scan.fileAt(scan.count - 1)!;
        if (wanted(file.paths[0]!)) await store(storeDir, stored, file, body);
      });
      const late = [...scan.wantedOrdinals(wanted)].filter((o) => !stored.has(keyOf({ layer, ordinal: o })));
      scan.finish();
      if (late.length > 0) {
        const want = new Set(late);
        let ordinal = 0;
        await streamOldLayer(old, layer, async ({ body }) => {
          if (want.has(ordinal)) await store(storeDir, stored, scan.fileAt(ordinal)!, body);
          ordinal++;
        });
      }
      await prune(storeDir, stored, rootfs, wanted);
      opts.onProgress?.({
        layer: layer + 1,
        layers,
        storedFiles: stored.size,
        storedBytes: [...stored.values()].reduce((a, f) => a + f.size, 0n),
      });
    }
    return new StoreSource(storeDir, old.configDigest, rootfs, stored);
  } catch (e) {
    await releaseTemp(storeDir, { remove: true });
    throw e;
  } finally {
    await old?.close();
  }
}

/** Copies one entry's content into the store. */
async function store(
  dir: string,
  stored: Map<string, SourceEntry>,
  file: SourceEntry,
  body: AsyncIterable<Buffer>,
): Promise<void> {
  const key = keyOf(file);
  // Plain positional writes: a stream per file costs far more than the small files it usually holds.
  const fh = await fs.open(path.join(dir, key), 'wx', 0o600);
  try {
    let at = 0;
    for await (const chunk of body) {
      for (let off = 0; off < chunk.length;) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, at);
        off += bytesWritten;
        at += bytesWritten;
      }
    }
  } finally {
    await fh.close();
  }
  stored.set(key, file);
}

/** Drops stored files no wanted surviving name maps to any more (a lost name is never regained). */
async function prune(
  dir: string,
  stored: Map<string, SourceEntry>,
  rootfs: MergedRootfs,
  wanted: (name: Buffer) => boolean,
): Promise<void> {
  for (const [key, file] of [...stored]) {
    if (!file.paths.some((p) => wanted(p) && rootfs.survives(file, p))) {
      await fs.rm(path.join(dir, key), { force: true });
      stored.delete(key);
    }
  }
}

class StoreSource implements OciImageSource {
  private removed = false;

  constructor(
    readonly storeDir: string,
    readonly configDigest: string,
    private readonly rootfs: MergedRootfs,
    private readonly stored: Map<string, SourceEntry>,
  ) {}

  async open(name: Buffer): Promise<DataSourceFile> {
    const shown = displayName(name);
    const s = this.rootfs.lookup(name);
    if (!s) {
      throw new OdhError('NOT_FOUND', `source file not in the old image's merged root filesystem`, {
        path: shown,
      });
    }
    if (!this.stored.has(keyOf(s))) {
      throw new OdhError(
        'NOT_FOUND',
        `source file was not collected from the old image (not a needed name)`,
        {
          path: shown,
        },
      );
    }
    if (this.removed)
      throw new OdhError('UNAVAILABLE', 'the OCI image source was cleaned up', { path: shown });
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(path.join(this.storeDir, keyOf(s)), 'r');
    } catch (e) {
      throw new OdhError('IO', `cannot open the stored copy: ${(e as Error).message}`, { path: shown });
    }
    return {
      name: shown,
      size: Number(s.size),
      readAt: async (buf, offset, length, position) =>
        (await fh.read(buf, offset, length, position)).bytesRead,
      close: () => fh.close(),
    };
  }

  async cleanup(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await releaseTemp(this.storeDir, { remove: true });
  }
}
