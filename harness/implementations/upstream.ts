/**
 * Adapters over the upstream Go `oci-delta` binary (harness/upstream resolves, verifies and probes
 * it). Creators: `upstream-bsdiff|zstd|auto` when the binary has `--binary-diff` (0.6.0+, spec
 * oci-delta §6), otherwise just `upstream` (its default, bsdiff, tardf1). Applier: `upstream`, i.e.
 * `oci-delta apply --directory` over the old image's merged rootfs extracted by our code (spec §3.2);
 * its output has no blobs for reused layers (§4.1 6c), so they are filled from the old image.
 */
import path from 'node:path';
import { OdhError } from '../../src/util/errors.js';
import { upstreamApply, upstreamCreate, type UpstreamBinaryDiff } from '../upstream/run.js';
import type { UpstreamResolution } from '../upstream/types.js';
import { extractOldRootfs, outputImageIn } from './applier-io.js';
import { completeFromOldImage } from './image-rewrite.js';
import type { Availability, DeltaApplier, DeltaCreator } from './types.js';

function availability(u: UpstreamResolution): Availability {
  return u.status === 'available'
    ? { ok: true, version: u.version, path: u.path }
    : { ok: false, reason: u.reason };
}

/** spec oci-delta §2.1: a creator writes tardf2 whenever its binary-diff mode is zstd or auto. */
function versionsFor(mode: UpstreamBinaryDiff | undefined): (1 | 2)[] {
  return mode === 'zstd' || mode === 'auto' ? [1, 2] : [1];
}

function upstreamCreator(u: UpstreamResolution, mode: UpstreamBinaryDiff | undefined): DeltaCreator {
  return {
    name: mode ? `upstream-${mode}` : 'upstream',
    foreign: true,
    tarDiffVersions: versionsFor(mode),
    available: async () => availability(u),
    async create(oldArchive, newArchive, outDelta) {
      if (u.status !== 'available') throw new OdhError('UNAVAILABLE', `upstream: ${u.reason}`);
      const r = await upstreamCreate(
        u.path,
        { old: oldArchive, new: newArchive, out: outDelta },
        {
          ...(mode ? { binaryDiff: mode } : {}),
        },
      );
      return { seconds: r.seconds, ...(r.peakRssKiB !== undefined ? { peakRssKiB: r.peakRssKiB } : {}) };
    },
  };
}

/** The upstream creators this binary supports (one unavailable `upstream` when there is none). */
export function upstreamCreators(u: UpstreamResolution): DeltaCreator[] {
  if (u.status === 'available' && u.capabilities.binaryDiff) {
    return (['bsdiff', 'zstd', 'auto'] as const).map((m) => upstreamCreator(u, m));
  }
  return [upstreamCreator(u, undefined)];
}

export function upstreamApplier(u: UpstreamResolution): DeltaApplier {
  return {
    name: 'upstream',
    foreign: true,
    // A binary without --binary-diff predates tardf2 (spec oci-delta §6 version history: 0.6.0).
    readsTarDiff: (v) => v === 1 || (u.status === 'available' && u.capabilities.binaryDiff),
    available: async () => availability(u),
    async apply(delta, oldArchive, outDir, workDir) {
      if (u.status !== 'available') throw new OdhError('UNAVAILABLE', `upstream: ${u.reason}`);
      const partial = path.join(workDir, 'partial.oci-archive');
      const outputImage = outputImageIn(outDir);
      const rootfs = await extractOldRootfs(oldArchive, workDir);
      const r = await upstreamApply(u.path, delta, partial, { directory: rootfs });
      await completeFromOldImage(`oci-archive:${partial}`, oldArchive, outputImage);
      return {
        outputImage,
        seconds: r.seconds,
        ...(r.peakRssKiB !== undefined ? { peakRssKiB: r.peakRssKiB } : {}),
      };
    },
  };
}
