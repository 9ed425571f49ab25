/**
 * `odh conformance` as a library call: resolve the upstream binary (never throws: unavailable has a
 * reason), assemble the implementations, select fixtures, implementations and flavours, run the
 * matrix. The CLI (src/cli/conformance.ts) only parses flags and prints.
 */
import { selectFixtures } from '../../fixtures/catalog.js';
import type { FsVerityAlgorithm } from '../../src/composefs/fsverity.js';
import type { ComposefsFormat } from '../../src/composefs/image-id.js';
import type { Progress } from '../../src/util/progress.js';
import { faultyApplier, type Fault } from '../implementations/fault.js';
import { allImplementations, pick } from '../implementations/index.js';
import { resolveUpstream } from '../upstream/fetch.js';
import type { UpstreamResolution } from '../upstream/types.js';
import { runMatrix } from './matrix.js';
import { DEFAULT_FLAVOURS, type ConformanceResult, type Flavour } from './types.js';

export { exitCodeOf } from './summary.js';
export { runMatrix, type MatrixOptions } from './matrix.js';
export * from './types.js';

export interface ConformanceOptions {
  /** Fixture names; default: the quick set with `quick`, else every non-big pair. */
  fixtures?: string[];
  quick?: boolean;
  /** Implementation names (or prefixes like `upstream`); default: all. */
  creators?: string[];
  appliers?: string[];
  format?: ComposefsFormat;
  hash?: FsVerityAlgorithm;
  cacheDir?: string;
  /** A local upstream `oci-delta` to use instead of the pinned download. */
  ociDelta?: string;
  /** Never download the upstream binary: use the verified cache only. */
  offline?: boolean;
  /** Already resolved upstream (tests); skips resolution. */
  upstream?: UpstreamResolution;
  cfsctl?: string;
  jobs?: number;
  /** Test-only: corrupt every applier's output this way. */
  injectFault?: Fault;
  progress?: Progress;
  /** Parent of the private temp directory (default: the OS temp dir). */
  tempParent?: string;
}

/** The composefs flavours to check: the three defaults, narrowed by --format/--hash. */
export function selectFlavours(format?: ComposefsFormat, hash?: FsVerityAlgorithm): Flavour[] {
  if (format && hash) return [{ format, hash }];
  const some = DEFAULT_FLAVOURS.filter((f) => (!format || f.format === format) && (!hash || f.hash === hash));
  if (some.length) return some;
  return [{ format: format ?? 'v1', hash: hash ?? 'sha512' }];
}

export async function conformance(o: ConformanceOptions = {}): Promise<ConformanceResult> {
  // An empty list (a shard with no fixtures) selects nothing; absent selects the defaults.
  const fixtures =
    o.fixtures?.length === 0 ? [] : selectFixtures({ names: o.fixtures, quick: o.quick }).map((f) => f.name);
  const upstream =
    o.upstream ??
    (await resolveUpstream({
      ...(o.ociDelta ? { localBinary: o.ociDelta } : {}),
      ...(o.offline ? { offline: true } : {}),
    }));
  const all = allImplementations({
    upstream,
    ...(o.cfsctl !== undefined ? { cfsctl: o.cfsctl } : {}),
    ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
  });
  const creators = pick(all.creators, o.creators, 'creator');
  let appliers = pick(all.appliers, o.appliers, 'applier');
  if (o.injectFault) appliers = appliers.map((a) => faultyApplier(a, o.injectFault!));
  return runMatrix({
    fixtures,
    creators,
    appliers,
    flavours: selectFlavours(o.format, o.hash),
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
    ...(o.tempParent !== undefined ? { tempParent: o.tempParent } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  });
}
