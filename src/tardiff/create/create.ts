import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { displayName } from '../path.js';
import { DICT_SOURCE_MAX } from '../zstd.js';
import { OdhError, isOdhError, type ErrorContext } from '../../util/errors.js';
import type { LayerStreamFactory } from './layer-stream.js';
import { matchTarget } from './match.js';
import { materializeNewLayer, WindowedReader } from './new-layer-file.js';
import { OpStreamWriter, type OpHistogram } from './op-writer.js';
import { matchRollsum, RollsumSplitter } from './rollsum.js';
import { indexOldImage, type OldFile, type OldImageIndex } from './old-image-index.js';
import { scanNewLayer, type NewFile } from './target.js';
import { hasDictMagic, ZstdDictEncoder } from './zstd-patch.js';
import { bsdiff } from './bsdiff.js';

/**
 * The tar-diff creator (spec oci-delta §5.2–5.7). Two passes over the new layer: a scan that hashes
 * each qualifying file and picks a source for it, then op generation that walks the tar front to back
 * and emits every byte as Data except the contents it can rebuild from the old image (exact Copy,
 * bsdiff triples, ZstdDict patch, or rollsum block copies). The output reproduces the new tar byte
 * for byte.
 */

/**
 * Per-file binary diff (spec oci-delta §5.4). `bsdiff` (upstream's default): tardf1, bsdiff triples
 * for similar files. `zstd`: tardf2, ZstdDict patches. `auto`: tardf2, ZstdDict for files within the
 * zstd cap, bsdiff for the larger ones (upstream's rule). `copy` (ours): tardf1 with Copy and
 * rollsum block reuse only, no binary diff.
 */
export type TarDiffMode = 'bsdiff' | 'zstd' | 'auto' | 'copy';
export const TAR_DIFF_MODES: readonly TarDiffMode[] = ['bsdiff', 'zstd', 'auto', 'copy'];

/** spec oci-delta §5.1: tar-diff's default cap for ZstdDict files (both sizes). */
export const DEFAULT_MAX_ZSTD_DICT = 128 * 1024 * 1024;
/** spec oci-delta §5.1: tar-diff's default cap for bsdiff files (both sizes). */
export const DEFAULT_MAX_BSDIFF = 192 * 1024 * 1024;
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
  /** A source analysis made once with `indexOldImage` and shared by several diffs (not disposed here). */
  oldIndex?: OldImageIndex;
  /** The new layer: an uncompressed (or compressed: sniffed) tar file path, or its byte stream. */
  newLayer: string | AsyncIterable<Buffer>;
  mode: TarDiffMode;
  /** Where temp files go (source store, spooled new layer). */
  tempDir: string;
  /** A file path (created or truncated; removed on failure) or a Writable (not ended). */
  out: Writable | string;
  /** Outer zstd level (default: by the literal bytes expected, see `outerLevelFor`). */
  compressionLevel?: number;
  /**
   * ZstdDict only for files (old and new) smaller than this; default 128 MiB; 0 = no cap beyond the
   * 512 MiB a ZstdDict source may have (spec oci-delta §5.4 rule 3).
   */
  maxZstdDictSize?: number;
  /** bsdiff only for files (old and new) smaller than this; default 192 MiB; 0 = no limit (§5.4 rule 4). */
  maxBsdiffSize?: number;
  /** zstd level of ZstdDict patches (default: by target size, see `defaultPatchLevel`). */
  zstdDiffLevel?: number;
  /** Window of ZstdDict patches in bytes, a power of two ≤ 512 MiB (default: from the sizes). */
  zstdDiffWindow?: number;
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

type Plan = { how: 'copy' | 'zstd' | 'bsdiff' | 'rollsum'; file: NewFile; source: OldFile };

/** The size limits of spec oci-delta §5.4 rules 3 and 4, in bytes. */
interface Limits {
  maxZstd: number;
  maxBsdiff: number;
}

export async function createTarDiff(opts: CreateTarDiffOptions): Promise<CreateTarDiffResult> {
  const ctx: ErrorContext = {
    layer: opts.where ?? (typeof opts.newLayer === 'string' ? opts.newLayer : 'new layer'),
  };
  if (!TAR_DIFF_MODES.includes(opts.mode)) {
    throw new OdhError(
      'USAGE',
      `invalid --binary-diff ${JSON.stringify(opts.mode)} (want bsdiff, zstd, or auto; or copy)`,
      ctx,
    );
  }
  const limits: Limits = {
    maxZstd: opts.maxZstdDictSize ?? DEFAULT_MAX_ZSTD_DICT,
    maxBsdiff: opts.maxBsdiffSize ?? DEFAULT_MAX_BSDIFF,
  };
  let oldIndex = opts.oldIndex;
  const ownIndex = !oldIndex;
  if (!oldIndex) {
    if (!opts.oldLayers) throw new OdhError('USAGE', 'createTarDiff needs oldLayers or oldIndex', ctx);
    const total = opts.oldLayers.length;
    oldIndex = await indexOldImage(opts.oldLayers, {
      tempDir: opts.tempDir,
      onProgress: (p) => opts.onProgress?.({ phase: 'analyze', done: p.layer, total }),
    });
  }
  try {
    const layer = await materializeNewLayer(opts.newLayer, opts.tempDir, ctx);
    try {
      opts.onProgress?.({ phase: 'scan', done: 0, total: layer.size });
      const scan = await scanNewLayer(layer.path, layer.size, ctx);
      const plans = planTargets(scan.files, oldIndex, opts.mode, limits);
      const needed = plans.filter((p) => p.how !== 'copy').map((p) => p.source);
      opts.onProgress?.({ phase: 'extract', done: 0, total: needed.length });
      await oldIndex.store.ensure(needed);
      return await writeDiff({ tar: layer, plans, oldIndex, opts, ctx });
    } finally {
      await layer.release();
    }
  } finally {
    if (ownIndex) await oldIndex.dispose();
  }
}

/** spec oci-delta §5.4 rule 3 (upstream `zstdFitsLimits`): both sizes within the window and the cap. */
export function zstdFits(fileSize: number, sourceSize: number, maxZstd: number): boolean {
  if (fileSize > DICT_SOURCE_MAX || sourceSize > DICT_SOURCE_MAX) return false;
  return maxZstd === 0 || (fileSize < maxZstd && sourceSize < maxZstd);
}

/** spec oci-delta §5.4 rule 4: both sizes below the cap (0 = no limit). */
export function bsdiffFits(fileSize: number, sourceSize: number, maxBsdiff: number): boolean {
  return maxBsdiff === 0 || (fileSize < maxBsdiff && sourceSize < maxBsdiff);
}

/** spec oci-delta §5.4 priorities 1–6: what to do with each matched new file. */
function planTargets(files: NewFile[], oldIndex: OldImageIndex, mode: TarDiffMode, limits: Limits): Plan[] {
  const plans: Plan[] = [];
  const zstd = mode === 'zstd' || mode === 'auto';
  const bsd = mode === 'bsdiff' || mode === 'auto';
  for (const file of files) {
    const m = matchTarget(file, oldIndex);
    if (!m) continue;
    const source = m.source;
    // spec §5.4 rule 1 (upstream leaves contents up to len(name)+4 bytes literal) is not applied:
    // the Open name repeats the tar header just before it, so the outer zstd stores it in a few
    // bytes, and on the many-small-files fixture the rule made the diff 4.7% larger (114,532 vs
    // 109,358 B at level 9); Go tar-diff 0.1.2 has no such rule either.
    let how: Plan['how'];
    if (m.kind === 'exact') how = 'copy';
    // a source starting with the zstd dictionary magic cannot be loaded as raw content here (spec
    // §2.2 TS notes): such a file takes the next rule, as if over the zstd cap
    else if (zstd && zstdFits(file.size, source.size, limits.maxZstd) && !hasDictMagic(source.head))
      how = 'zstd';
    else if (bsd && bsdiffFits(file.size, source.size, limits.maxBsdiff)) how = 'bsdiff';
    else how = 'rollsum';
    plans.push({ how, file, source });
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

/** One new layer's tar-diff to write: the uncompressed new tar, the plan for each file, the old-image index. */
interface DiffJob {
  tar: { path: string; size: number };
  plans: Plan[];
  oldIndex: OldImageIndex;
  opts: CreateTarDiffOptions;
  ctx: ErrorContext;
}

/** Where the tar-diff bytes go: a file (removed again on failure) or the caller's stream. */
interface DiffSink {
  write: (chunk: Buffer) => Promise<void>;
  /** Closes a file output (no-op for a stream). */
  close(): Promise<void>;
  /** Closes and removes a file output after a failure (no-op for a stream). */
  discard(): Promise<void>;
}

async function openDiffSink(out: string | Writable): Promise<DiffSink> {
  if (typeof out !== 'string') {
    return {
      write: (chunk) =>
        new Promise<void>((resolve, reject) => {
          out.write(chunk, (e) => (e ? reject(e) : resolve()));
        }),
      close: async () => {},
      discard: async () => {},
    };
  }
  let fh: FileHandle | null;
  try {
    fh = await open(out, 'w', 0o644);
  } catch (e) {
    throw new OdhError('IO', `cannot create tar-diff: ${(e as Error).message}`, { file: out });
  }
  const file = fh;
  return {
    write: async (chunk) => {
      await file.write(chunk);
    },
    async close() {
      if (fh) await fh.close();
      fh = null;
    },
    async discard() {
      if (!fh) return;
      await fh.close().catch(() => {});
      fh = null;
      await rm(out, { force: true });
    },
  };
}

async function writeDiff(job: DiffJob): Promise<CreateTarDiffResult> {
  const { tar: tarFile, plans, opts, ctx } = job;
  // spec oci-delta §2.1: zstd and auto always write tardf2, bsdiff and copy tardf1
  const version = opts.mode === 'zstd' || opts.mode === 'auto' ? 2 : 1;
  const sink = await openDiffSink(opts.out);
  // bsdiff triples carry about a file's worth of (mostly zero) AddData bytes through the outer stream
  const literal = tarFile.size - plans.reduce((n, p) => n + (p.how === 'bsdiff' ? 0 : p.file.size), 0);
  const writer = new OpStreamWriter(
    sink.write,
    version,
    opts.compressionLevel ?? (plans.length > 0 ? outerLevelFor(literal) : UPSTREAM_LEVEL),
    literal,
  );
  const tar = await open(tarFile.path, 'r');
  try {
    const reader = new WindowedReader(tar, tarFile.size, ctx);
    const emit: PlanEmitter = {
      reader,
      writer,
      oldIndex: job.oldIndex,
      patcher: new ZstdDictEncoder(opts.zstdDiffLevel, opts.zstdDiffWindow),
      dataRange: async (from: number, to: number) => {
        for (let p = from; p < to; p += READ_CHUNK)
          await writer.data(await reader.read(p, Math.min(READ_CHUNK, to - p)));
      },
    };
    let pos = 0;
    for (const [i, plan] of plans.entries()) {
      await emit.dataRange(pos, plan.file.dataOffset);
      await emitPlan(plan, emit);
      pos = plan.file.dataOffset + plan.file.size;
      opts.onProgress?.({ phase: 'diff', done: i + 1, total: plans.length });
    }
    await emit.dataRange(pos, tarFile.size);
    await writer.finish();
    await sink.close();
  } catch (e) {
    await sink.discard();
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
    newLayerBytes: tarFile.size,
  };
}

/** What emitting one file's plan needs; made once per tar-diff. */
interface PlanEmitter {
  reader: WindowedReader;
  writer: OpStreamWriter;
  oldIndex: OldImageIndex;
  patcher: ZstdDictEncoder;
  /** Literal Data of the new tar's bytes [from, to). */
  dataRange: (from: number, to: number) => Promise<void>;
}

async function emitPlan(plan: Plan, e: PlanEmitter): Promise<void> {
  const { reader, writer, oldIndex, patcher, dataRange } = e;
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
      const old = await oldIndex.store.readAll(source);
      const target = await reader.readDirect(start, file.size);
      const patch = patcher.encode(old, target);
      if (patch.length >= file.size) return writer.data(target);
      await writer.open(source.openName);
      await writer.zstdDict(patch, source.size);
      return;
    }
    case 'bsdiff': {
      // 4. bsdiff triples against the whole old file, from its start
      const old = await oldIndex.store.readAll(source);
      const target = await reader.readDirect(start, file.size);
      await writer.open(source.openName);
      await writer.seek(0);
      await bsdiff(old, target, {
        add: (newAt, oldAt, length) => writer.addDiff(target, old, { newAt, oldAt, length }),
        extra: (from, to) => (to > from ? writer.data(target.subarray(from, to)) : Promise.resolve()),
        seekBy: (delta) => writer.seekAlways(writer.sourcePosition + delta),
      });
      return;
    }
    case 'rollsum': {
      // 5. block reuse when more than 20% of the new file's blobs occur in the old one
      const split = new RollsumSplitter();
      for (let p = start; p < end; p += READ_CHUNK)
        split.push(await reader.read(p, Math.min(READ_CHUNK, end - p)));
      const { matches, ratio } = matchRollsum(split.finish(), await oldIndex.store.rollsum(source));
      if (ratio <= ROLLSUM_MIN_RATIO) return dataRange(start, end);
      let cur = 0;
      const old = Buffer.allocUnsafe(32768);
      for (const m of matches) {
        if (m.targetOffset > cur) await dataRange(start + cur, start + m.targetOffset);
        await oldIndex.store.read(source, old, m.size, m.sourceOffset);
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
