/**
 * `odh conformance` as a library call: resolve the upstream binary (never throws: unavailable has a
 * reason), assemble the implementations, select fixtures, implementations and flavours, run the
 * matrix. The CLI (src/cli/conformance.ts) only parses flags and prints.
 */
import { selectFixtures } from '../../fixtures/catalog.js';
import type { FsVerityAlgorithm } from '../../src/composefs/format/fsverity.js';
import type { ComposefsFormat } from '../../src/composefs/oci/image-id.js';
import type { Progress } from '../../src/util/progress.js';
import { faultyApplier, faultyCreator, type Fault } from '../implementations/fault.js';
import { allImplementations, pick } from '../implementations/index.js';
import { OdhError } from '../../src/util/errors.js';
import { findOracle } from '../oracles.js';
import { resolveUpstream } from '../upstream/fetch.js';
import type { UpstreamResolution } from '../upstream/types.js';
import { runMatrix } from './matrix.js';
import { CHECKER_NAME } from './mkcomposefs.js';
import {
  DEFAULT_FLAVOURS,
  type ConformanceResult,
  type Flavour,
  type ImplementationStatus,
} from './types.js';

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
  /** Test-only: corrupt every applier's output (and every Go tar-diff) this way. */
  injectFault?: Fault;
  /**
   * Implementations that must be available (names or prefixes, as for creators/appliers, plus the
   * checker `mkcomposefs`): the run stops with UNAVAILABLE before any work otherwise.
   */
  require?: string[];
  /** Check V1-sha256 IDs with C mkcomposefs (default: when it is available). */
  mkcomposefs?: boolean;
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

/** The composefs checker's own status line (an oracle, not a delta creator/applier). */
export function checkerStatus(): ImplementationStatus {
  const m = findOracle('mkcomposefs');
  return m.available
    ? {
        role: 'checker',
        name: CHECKER_NAME,
        available: true,
        foreign: true,
        version: m.version,
        path: m.path,
      }
    : { role: 'checker', name: CHECKER_NAME, available: false, foreign: true, reason: m.reason };
}

type Named = { name: string; available(): Promise<{ ok: boolean; reason?: string }> };

/** `--require`: every named implementation is selected and available, or one line saying which is not. */
async function checkRequired(
  names: string[],
  selected: Named[],
  known: string[],
  checker: ImplementationStatus,
): Promise<void> {
  const matches = (n: string, name: string) => name === n || name.startsWith(`${n}-`);
  for (const n of names) {
    if (n === CHECKER_NAME) {
      if (!checker.available)
        throw new OdhError('UNAVAILABLE', `required ${n} is unavailable: ${checker.reason}`);
      continue;
    }
    if (!known.some((k) => matches(n, k))) {
      throw new OdhError(
        'USAGE',
        `--require: unknown implementation ${n}; known: ${known.join(', ')}, ${CHECKER_NAME}`,
      );
    }
    const hit = selected.filter((i) => matches(n, i.name));
    if (hit.length === 0)
      throw new OdhError('USAGE', `--require: ${n} is not selected by --creators/--appliers`);
    for (const i of hit) {
      const a = await i.available().catch((e: unknown) => ({ ok: false, reason: String(e) }));
      if (!a.ok) throw new OdhError('UNAVAILABLE', `required ${i.name} is unavailable: ${a.reason}`);
    }
  }
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
  let creators = pick(all.creators, o.creators, 'creator');
  let appliers = pick(all.appliers, o.appliers, 'applier');
  const checker = checkerStatus();
  if (o.require) {
    const known = [...all.creators, ...all.appliers].map((i) => i.name);
    await checkRequired(o.require, [...creators, ...appliers], known, checker);
  }
  if (o.injectFault) {
    appliers = appliers.map((a) => faultyApplier(a, o.injectFault!));
    creators = creators.map((c) => faultyCreator(c, o.injectFault!, o.jobs));
  }
  const result = await runMatrix({
    fixtures,
    creators,
    appliers,
    flavours: selectFlavours(o.format, o.hash),
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
    ...(o.tempParent !== undefined ? { tempParent: o.tempParent } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
    mkcomposefs: o.mkcomposefs ?? checker.available,
  });
  result.implementations.push(checker);
  return result;
}
