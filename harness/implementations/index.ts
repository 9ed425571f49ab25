/**
 * Every creator and applier the matrix knows, by name, in report order. Unavailable ones are still
 * listed (their `available()` says why) so a run states plainly what it did not cover.
 */
import { OdhError } from '../../src/util/errors.js';
import type { UpstreamResolution } from '../upstream/types.js';
import { cfsctlApplier } from './cfsctl.js';
import { goTarDiffCreator, goTarPatchApplier } from './go-tardiff.js';
import { tsCreator, tsDirApplier, tsImageApplier, type TsOptions } from './ts.js';
import type { DeltaApplier, DeltaCreator } from './types.js';
import { upstreamApplier, upstreamCreators } from './upstream.js';

export type { Availability, ApplyRun, CreateRun, DeltaApplier, DeltaCreator, FlavourKey } from './types.js';

export interface Implementations {
  creators: DeltaCreator[];
  appliers: DeltaApplier[];
}

export interface ImplementationOptions extends TsOptions {
  upstream: UpstreamResolution;
  /** cfsctl binary; default: `cfsctl` found on PATH (unavailable otherwise). */
  cfsctl?: string;
}

export function allImplementations(o: ImplementationOptions): Implementations {
  const ts = { ...(o.jobs !== undefined ? { jobs: o.jobs } : {}) };
  return {
    creators: [
      // bsdiff first: upstream oci-delta's default mode (tardf1), what deployed appliers read.
      tsCreator('bsdiff', ts),
      tsCreator('zstd', ts),
      tsCreator('auto', ts),
      tsCreator('copy', ts),
      goTarDiffCreator(ts),
      ...upstreamCreators(o.upstream),
    ],
    appliers: [
      tsImageApplier(ts),
      tsDirApplier(ts),
      goTarPatchApplier(ts),
      upstreamApplier(o.upstream),
      cfsctlApplier(o.cfsctl),
    ],
  };
}

/**
 * Keeps the implementations named in `names` (all when undefined). A name matches exactly, or as
 * a prefix before `-` (`upstream` selects upstream-bsdiff|zstd|auto). Unknown names are listed.
 */
export function pick<T extends { name: string }>(all: T[], names: string[] | undefined, role: string): T[] {
  if (!names) return all;
  const matches = (n: string, impl: T) => impl.name === n || impl.name.startsWith(`${n}-`);
  const unknown = names.filter((n) => !all.some((i) => matches(n, i)));
  if (unknown.length) {
    throw new OdhError(
      'USAGE',
      `unknown ${role}(s) ${unknown.join(', ')}; known: ${all.map((i) => i.name).join(', ')}`,
    );
  }
  return all.filter((i) => names.some((n) => matches(n, i)));
}
