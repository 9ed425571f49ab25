/**
 * Adapters over this project's TypeScript library: creators `ts-zstd` / `ts-copy` (createDelta with
 * `--binary-diff zstd|copy`) and appliers `ts-image` (applyDelta over the old OCI image with
 * `--complete`) and `ts-dir` (applyDelta over the old image's extracted merged rootfs, spec oci-delta
 * §3.2 `--directory`; reused layers are then filled from the old image by diff_id).
 */
import path from 'node:path';
import { applyDelta } from '../../src/delta/apply.js';
import { createDelta, type BinaryDiff } from '../../src/delta/create.js';
import { extractOldRootfs, outputImageIn } from './applier-io.js';
import { completeFromOldImage } from './image-rewrite.js';
import { secondsSince, type DeltaApplier, type DeltaCreator } from './types.js';

/** Threads per create/apply: the matrix runs one cell at a time, so each may use every CPU. */
export interface TsOptions {
  jobs?: number;
}

export function tsCreator(mode: BinaryDiff, o: TsOptions = {}): DeltaCreator {
  return {
    name: `ts-${mode}`,
    // spec oci-delta §2.1: copy and bsdiff deltas are tardf1; ZstdDict (zstd, auto) needs tardf2.
    tarDiffVersions: mode === 'copy' || mode === 'bsdiff' ? [1] : [2],
    available: async () => ({ ok: true }),
    async create(oldArchive, newArchive, outDelta) {
      const t0 = process.hrtime.bigint();
      await createDelta({
        old: oldArchive,
        new: newArchive,
        output: outDelta,
        binaryDiff: mode,
        statistics: true,
        ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
      });
      return { seconds: secondsSince(t0) };
    },
  };
}

export function tsImageApplier(o: TsOptions = {}): DeltaApplier {
  return {
    name: 'ts-image',
    readsTarDiff: () => true,
    available: async () => ({ ok: true }),
    async apply(delta, oldArchive, outDir) {
      const outputImage = outputImageIn(outDir);
      const t0 = process.hrtime.bigint();
      await applyDelta({
        delta,
        source: { kind: 'image', ref: oldArchive },
        output: outputImage,
        complete: true,
        ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
      });
      return { outputImage, seconds: secondsSince(t0) };
    },
  };
}

export function tsDirApplier(o: TsOptions = {}): DeltaApplier {
  return {
    name: 'ts-dir',
    readsTarDiff: () => true,
    available: async () => ({ ok: true }),
    async apply(delta, oldArchive, outDir, workDir) {
      const partial = `oci-archive:${path.join(workDir, 'partial.oci-archive')}`;
      const outputImage = outputImageIn(outDir);
      const rootfs = await extractOldRootfs(oldArchive, workDir);
      const t0 = process.hrtime.bigint();
      await applyDelta({
        delta,
        source: { kind: 'dir', path: rootfs },
        output: partial,
        ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
      });
      const seconds = secondsSince(t0);
      await completeFromOldImage(partial, oldArchive, outputImage);
      return { outputImage, seconds };
    },
  };
}
