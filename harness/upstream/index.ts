/** The upstream oci-delta binary, as adapters see it (spec oci-delta §6, §7). */
export type {
  UpstreamArch,
  UpstreamAsset,
  UpstreamAvailable,
  UpstreamBuild,
  UpstreamCapabilities,
  UpstreamManifest,
  UpstreamResolution,
  UpstreamRunResult,
  UpstreamSource,
  UpstreamUnavailable,
} from './types.js';
export { resolveUpstream, fetchUpstream, type ResolveOptions } from './fetch.js';
export { defaultCacheRoot, cachedBinaryPath } from './cache.js';
export { probeBinary, type ProbeResult } from './probe.js';
export {
  upstreamCreate,
  upstreamApply,
  createArgv,
  applyArgv,
  type UpstreamBinaryDiff,
  type UpstreamCreateOptions,
  type UpstreamApplyOptions,
} from './run.js';
export { pinUpstream } from './pin.js';
export { buildUpstream, type BuildOptions, type BuildResult } from './build.js';
