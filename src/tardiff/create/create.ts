import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { displayName } from '../path.js';
import { DICT_SOURCE_MAX } from '../zstd.js';
import { OdhError, isOdhError, type ErrorContext } from '../../util/errors.js';
import type { LayerStreamFactory } from './layers.js';
import { matchTarget } from './match.js';
import { materializeNewLayer, WindowedReader } from './new-layer.js';
import { OpStreamWriter, type OpHistogram } from './op-writer.js';
import { matchRollsum, RollsumSplitter } from './rollsum.js';
import { analyzeSources, type OldFile, type SourceSet } from './sources.js';
import { scanNewLayer, type NewFile } from './target.js';
import { hasDictMagic, ZstdDictEncoder } from './zstd-patch.js';

/**
 * The tar-diff creator (spec oci-delta §5.2–5.7). Two passes over the new layer: a scan that hashes
 * each qualifying file and picks a source for it, then op generation that walks the tar front to back
 * and emits every byte as Data except the contents it can rebuild from the old image (exact Copy,
 * ZstdDict patch, or rollsum block copies). The output reproduces the new tar byte for byte.
 */

/** `zstd`: tardf2, ZstdDict for similar files. `copy`: tardf1, Copy and rollsum block reuse only. */
export type TarDiffMode = 'zstd' | 'copy';

/** spec oci-delta §5.1: tar-diff's default cap for ZstdDict files (both sizes). */
export const DEFAULT_MAX_ZSTD_DICT = 128 * 1024 * 1024;
/** spec oci-delta §5.6: rollsum copying pays off above this match percentage. */
const ROLLSUM_MIN_RATIO = 20;
const READ_CHUNK = 4 << 20;

export interface CreateProgress {
  phase: 'analyze' | 'scan' | 'extract' | 'diff';
  done: number;
  total?: number;
}

export interface CreateTarDiffOptions {
  /** The old layers in manifest (extraction) order; ignored when `sources` is given. */
  oldLayers?: readonly LayerStreamFactory[];
  /** A source analysis made once with `analyzeSources` and shared by several diffs (not disposed here). */
  sources?: SourceSet;
  /** The new layer: an uncompressed (or compressed: sniffed) tar file path, or its byte stream. */
  newLayer: string | AsyncIterable<Buffer>;
  mode: TarDiffMode;
  /** Where temp files go (source store, spooled new layer). */
  tempDir: string;
  /** A file path (created or truncated; removed on failure) or a Writable (not ended). */
  out: Writable | string;
  /** Outer zstd level (default: by the literal bytes expected, see `outerLevelFor`). */
  compressionLevel?: number;
  /** Largest file (old or new) diffed with ZstdDict; default 128 MiB, at most 512 MiB. */
  maxZstdDictSize?: number;
  /** Names the new layer in error messages. */
  where?: string;
  onProgress?: (p: CreateProgress) => void;
}

export interface CreateTarDiffResult {
  /** Size of the tar-diff written. */
  bytes: number;
  version: 1 | 2;
  ops: OpHistogram;
  /** Open names used, in first-use order (display form). */
  sourcesUsed: string[];
  /** Size of the uncompressed new layer. */
  newLayerBytes: number;
}

type Plan =
  | { how: 'copy'; file: NewFile; source: OldFile }
  | { how: 'zstd'; file: NewFile; source: OldFile }
  | { how: 'rollsum'; file: NewFile; source: OldFile };

export async function createTarDiff(opts: CreateTarDiffOptions): Promise<CreateTarDiffResult> {
  const ctx: ErrorContext = {
    layer: opts.where ?? (typeof opts.newLayer === 'string' ? opts.newLayer : 'new layer'),
  };
  if (opts.mode !== 'zstd' && opts.mode !== 'copy') {
    throw new OdhError(
      'USAGE',
      `unknown tar-diff mode ${JSON.stringify(opts.mode)} (want zstd or copy)`,
      ctx,
    );
  }
  const maxZstd = Math.min(opts.maxZstdDictSize ?? DEFAULT_MAX_ZSTD_DICT, DICT_SOURCE_MAX);
  let sources = opts.sources;
  const ownSources = !sources;
  if (!sources) {
    if (!opts.oldLayers) throw new OdhError('USAGE', 'createTarDiff needs oldLayers or sources', ctx);
    const total = opts.oldLayers.length;
    sources = await analyzeSources(opts.oldLayers, {
      tempDir: opts.tempDir,
      onProgress: (p) => opts.onProgress?.({ phase: 'analyze', done: p.layer, total }),
    });
  }
  try {
    const layer = await materializeNewLayer(opts.newLayer, opts.tempDir, ctx);
    try {
      opts.onProgress?.({ phase: 'scan', done: 0, total: layer.size });
      const scan = await scanNewLayer(layer.path, layer.size, ctx);
      const plans = planTargets(scan.files, sources, opts.mode, maxZstd);
      const needed = plans.filter((p) => p.how !== 'copy').map((p) => p.source);
      opts.onProgress?.({ phase: 'extract', done: 0, total: needed.length });
      await sources.store.ensure(needed);
      return await writeDiff(layer.path, layer.size, plans, sources, opts, ctx);
    } finally {
      await layer.release();
    }
  } finally {
    if (ownSources) await sources.dispose();
  }
}

/** spec oci-delta §5.4 priorities 1–3 and 5 (no bsdiff): what to do with each matched new file. */
function planTargets(files: NewFile[], sources: SourceSet, mode: TarDiffMode, maxZstd: number): Plan[] {
  const plans: Plan[] = [];
  for (const file of files) {
    const m = matchTarget(file, sources);
    if (!m) continue;
    const source = m.source;
    // 1. tiny contents: an Open name would cost about as much as the bytes
    if (file.size <= source.entry.paths[0]!.length + 4) continue;
    if (m.kind === 'exact') plans.push({ how: 'copy', file, source });
    else if (
      mode === 'zstd' &&
      file.size <= maxZstd &&
      source.size <= maxZstd &&
      !hasDictMagic(source.head)
    ) {
      plans.push({ how: 'zstd', file, source });
    } else plans.push({ how: 'rollsum', file, source });
  }
  return plans.sort((a, b) => a.file.dataOffset - b.file.dataOffset);
}

/**
 * A diff that reuses nothing is only a recompressed layer, kept when smaller than the original blob:
 * upstream's level there keeps that choice upstream's (spec oci-delta §8.4: a tiny layer falls back
 * to the original).
 */
const UPSTREAM_LEVEL = 3;

/**
 * The outer zstd level when none is configured and the diff reuses old content, from the bytes expected to leave as Data (mostly tar
 * headers when matching went well): small literal streams get a high level, which costs little time
 * there and saved about 70 bytes per small bootc chunk layer (of ~850) over level 3.
 */
export function outerLevelFor(literalBytes: number): number {
  if (literalBytes <= 1 << 20) return 19;
  if (literalBytes <= 16 << 20) return 9;
  return 3;
}

async function writeDiff(
  tarPath: string,
  tarSize: number,
  plans: Plan[],
  sources: SourceSet,
  opts: CreateTarDiffOptions,
  ctx: ErrorContext,
): Promise<CreateTarDiffResult> {
  const version = opts.mode === 'zstd' ? 2 : 1;
  const outFile = typeof opts.out === 'string' ? opts.out : null;
  let outFh: FileHandle | null = null;
  let sink: (chunk: Buffer) => Promise<void>;
  if (outFile !== null) {
    try {
      outFh = await open(outFile, 'w', 0o644);
    } catch (e) {
      throw new OdhError('IO', `cannot create tar-diff: ${(e as Error).message}`, { file: outFile });
    }
    const fh = outFh;
    sink = async (chunk) => {
      await fh.write(chunk);
    };
  } else {
    const w = opts.out as Writable;
    sink = (chunk) =>
      new Promise<void>((resolve, reject) => {
        w.write(chunk, (e) => (e ? reject(e) : resolve()));
      });
  }
  const literal = tarSize - plans.reduce((n, p) => n + p.file.size, 0);
  const writer = new OpStreamWriter(
    sink,
    version,
    opts.compressionLevel ?? (plans.length > 0 ? outerLevelFor(literal) : UPSTREAM_LEVEL),
    literal,
  );
  const tar = await open(tarPath, 'r');
  try {
    const reader = new WindowedReader(tar, tarSize, ctx);
    const patcher = new ZstdDictEncoder();
    const dataRange = async (from: number, to: number) => {
      for (let p = from; p < to; p += READ_CHUNK)
        await writer.data(await reader.read(p, Math.min(READ_CHUNK, to - p)));
    };
    let pos = 0;
    for (const [i, plan] of plans.entries()) {
      await dataRange(pos, plan.file.dataOffset);
      await emitPlan(plan, reader, writer, sources, patcher, dataRange);
      pos = plan.file.dataOffset + plan.file.size;
      opts.onProgress?.({ phase: 'diff', done: i + 1, total: plans.length });
    }
    await dataRange(pos, tarSize);
    await writer.finish();
    if (outFh) {
      await outFh.close();
      outFh = null;
    }
  } catch (e) {
    if (outFh) {
      await outFh.close().catch(() => {});
      await rm(outFile!, { force: true });
    }
    if (isOdhError(e)) throw e;
    throw new OdhError('IO', `cannot write tar-diff: ${(e as Error).message}`, ctx, { cause: e });
  } finally {
    await tar.close();
  }
  return {
    bytes: writer.bytes,
    version,
    ops: writer.histogram,
    sourcesUsed: writer.opened.map(displayName),
    newLayerBytes: tarSize,
  };
}

async function emitPlan(
  plan: Plan,
  reader: WindowedReader,
  writer: OpStreamWriter,
  sources: SourceSet,
  patcher: ZstdDictEncoder,
  dataRange: (from: number, to: number) => Promise<void>,
): Promise<void> {
  const { file, source } = plan;
  const start = file.dataOffset;
  const end = start + file.size;
  switch (plan.how) {
    case 'copy':
      // 2. identical content
      await writer.open(source.openName);
      await writer.seek(0);
      await writer.copy(file.size);
      return;
    case 'zstd': {
      // 3. a patch against the whole old file; literal when the patch is not smaller (no fallback)
      const old = await sources.store.readAll(source);
      const target = await reader.readDirect(start, file.size);
      const patch = patcher.encode(old, target);
      if (patch.length >= file.size) return writer.data(target);
      await writer.open(source.openName);
      await writer.zstdDict(patch, source.size);
      return;
    }
    case 'rollsum': {
      // 5. block reuse when more than 20% of the new file's blobs occur in the old one
      const split = new RollsumSplitter();
      for (let p = start; p < end; p += READ_CHUNK)
        split.push(await reader.read(p, Math.min(READ_CHUNK, end - p)));
      const { matches, ratio } = matchRollsum(split.finish(), await sources.store.rollsum(source));
      if (ratio <= ROLLSUM_MIN_RATIO) return dataRange(start, end);
      let cur = 0;
      const old = Buffer.allocUnsafe(32768);
      for (const m of matches) {
        if (m.targetOffset > cur) await dataRange(start + cur, start + m.targetOffset);
        await sources.store.read(source, old, 0, m.size, m.sourceOffset);
        const want = await reader.read(start + m.targetOffset, m.size);
        if (old.subarray(0, m.size).equals(want)) {
          await writer.open(source.openName);
          await writer.seek(m.sourceOffset);
          await writer.copy(m.size);
        } else {
          await writer.data(want); // a CRC collision
        }
        cur = m.targetOffset + m.size;
      }
      await dataRange(start + cur, end);
      return;
    }
  }
}
