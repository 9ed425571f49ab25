/**
 * Shared types of the upstream `oci-delta` binary handling: the pinned manifest (what to download),
 * the capability probe (what a binary can do) and the resolution result adapters consume.
 * spec oci-delta §6 (CLI surface), §7 (releases).
 */

/** Machine architectures upstream builds for (spec oci-delta §7: Copr x86_64 + aarch64). */
export type UpstreamArch = 'x86_64' | 'aarch64';

export const UPSTREAM_ARCHES: readonly UpstreamArch[] = ['x86_64', 'aarch64'];

/** One pinned release asset: fetched only when its size and sha256 match. */
export interface UpstreamAsset {
  /** The asset's release name (informational, e.g. `oci-delta-x86_64-static`). */
  name?: string;
  url: string;
  /** Lowercase hex sha256 of the asset bytes. */
  sha256: string;
  size: number;
}

/** A binary built from source by `odh upstream build` (upstream publishes none). */
export interface UpstreamBuild {
  /** Version without `v` (the tag built, or `git describe` of the source tree). */
  version: string;
  /** Source commit (git HEAD), or a note saying there was none. */
  commit: string;
  /** `go env GOVERSION` of the toolchain, e.g. `go1.26.0`. */
  go: string;
  /** Binary name and the Go package built (relative to the source root), with its build tags. */
  binary: string;
  package: string;
  tags: string;
  sha256: string;
  size: number;
}

/**
 * harness/upstream/manifest.json. `version: null` means not pinned yet (no network where it was
 * committed): every resolution then reports "not built or pinned (run odh upstream build; upstream publishes no binaries)".
 */
export interface UpstreamManifest {
  repository: string;
  /** Release version without the `v` of its tag (spec oci-delta §7: tags are `v{version}`). */
  version: string | null;
  /** The release tag the assets came from (normally `v{version}`). */
  tag?: string;
  assets: Partial<Record<UpstreamArch, UpstreamAsset>>;
  /** Binaries built from source, per architecture (used when no release asset is pinned). */
  builds?: Partial<Record<UpstreamArch, UpstreamBuild>>;
  note?: string;
}

/** What a probed binary can do. */
export interface UpstreamCapabilities {
  /** `create --help` mentions `--binary-diff` (0.6.0+; composefs-rs gates on exactly this, spec §6). */
  binaryDiff: boolean;
}

/** Where a usable binary came from: the verified cache, a fresh verified download, or a local path. */
export type UpstreamSource = 'cache' | 'download' | 'local' | 'build';

export interface UpstreamAvailable {
  status: 'available';
  /** Absolute path of an executable `oci-delta`. */
  path: string;
  /** Version printed by `oci-delta --version` (or the pinned version when the output had none). */
  version: string;
  source: UpstreamSource;
  capabilities: UpstreamCapabilities;
}

export interface UpstreamUnavailable {
  status: 'unavailable';
  /** One line, starts with why (e.g. "not built or pinned (run odh upstream build; upstream publishes no binaries)"). */
  reason: string;
}

export type UpstreamResolution = UpstreamAvailable | UpstreamUnavailable;

/** Result of one upstream child process (create/apply). */
export interface UpstreamRunResult {
  argv: string[];
  exitCode: number;
  seconds: number;
  /** Peak resident set size of the child in KiB, when it could be measured. */
  peakRssKiB?: number;
  stdout: string;
  stderr: string;
}
