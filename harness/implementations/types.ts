/**
 * The two roles the conformance matrix plugs implementations into: a delta creator (old + new image
 * → oci-delta artifact) and a delta applier (delta + old image → a complete OCI image). Adapters wrap
 * our TypeScript library, the upstream `oci-delta` binary and composefs-rs `cfsctl` behind them.
 * Images and deltas are oci-archive file paths; an applier's output is an image reference.
 */

/** Whether an implementation can run here; `reason` is one line saying why not. */
export type Availability = { ok: true; version?: string; path?: string } | { ok: false; reason: string };

export interface CreateRun {
  seconds: number;
  /** Peak resident set size of an external process, KiB (in-process adapters leave it out). */
  peakRssKiB?: number;
}

export interface DeltaCreator {
  readonly name: string;
  /** Not this project's code (upstream, Go tar-diff, cfsctl): its cells count as foreign. */
  readonly foreign?: boolean;
  /** tar-diff format versions the creator may write (spec oci-delta §2.1: tardf1 copy-only, tardf2 ZstdDict). */
  readonly tarDiffVersions: readonly (1 | 2)[];
  available(): Promise<Availability>;
  /** Writes the delta to `outDelta` (an oci-archive path that does not exist yet). */
  create(oldArchive: string, newArchive: string, outDelta: string): Promise<CreateRun>;
}

/** A composefs image ID flavour: format and fs-verity hash (spec composefs-v2 §5), e.g. `v1-sha512`. */
export type FlavourKey = `${'v1' | 'v2'}-${'sha256' | 'sha512'}`;

export interface ApplyRun {
  /**
   * An image reference (`oci-archive:PATH` or `oci:DIR`) holding every layer blob of the target.
   * Absent for appliers that produce no OCI image (cfsctl stores into a composefs repository).
   */
  outputImage?: string;
  /** composefs image IDs the applier computed itself (bare hex), by flavour. */
  composefsIds?: Partial<Record<FlavourKey, string>>;
  seconds: number;
  peakRssKiB?: number;
}

export interface DeltaApplier {
  readonly name: string;
  readonly foreign?: boolean;
  /** Why a tar-diff version it cannot read is skipped (default: a generic line). */
  readonly unreadableReason?: string;
  /** tar-diff versions it reads; undefined until `available()` has run (upstream: by capability). */
  readsTarDiff(version: 1 | 2): boolean;
  available(): Promise<Availability>;
  /**
   * Reconstructs the target of `delta` from `oldArchive`. `outDir` is an empty directory for the
   * output image, `workDir` an empty private directory for anything else (extracted rootfs, …).
   */
  apply(delta: string, oldArchive: string, outDir: string, workDir: string): Promise<ApplyRun>;
}

/** Seconds elapsed since `start` (process.hrtime.bigint()). */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}
