import { promises as fs, constants as fsc } from 'node:fs';
import { OdhError } from '../../src/util/errors.js';
import { lastLine, runChild } from './child.js';
import type { UpstreamRunResult } from './types.js';

/** spec oci-delta §6: `--binary-diff bsdiff|zstd|auto` (0.6.0+ only). */
export type UpstreamBinaryDiff = 'bsdiff' | 'zstd' | 'auto';

export interface UpstreamRunOptions {
  /** Hard limit; the child's process group is killed after it. Default 30 min. */
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface UpstreamCreateOptions extends UpstreamRunOptions {
  /** Omitted: no flag at all (works with every version; upstream's default is bsdiff). */
  binaryDiff?: UpstreamBinaryDiff;
  /** `-j/--jobs N` (0 = CPUs). Omitted: no flag. */
  jobs?: number;
  /** `-s/--statistics`: the statistics block is printed on stdout (kept in the result). */
  statistics?: boolean;
}

export interface UpstreamApplyOptions extends UpstreamRunOptions {
  /** `--directory PATH`: the old image's extracted (merged) rootfs (spec oci-delta §3.2, §6). */
  directory: string;
}

const DEFAULT_TIMEOUT_MS = 30 * 60_000;

/**
 * Argument vector of `oci-delta create [--binary-diff X] [-j N] [-s] OLD NEW OUT` (spec oci-delta §6).
 * Flags go before the positionals, the order cobra documents. Bare paths are oci-archives (§5.1).
 */
export function createArgv(
  oldImage: string,
  newImage: string,
  out: string,
  o: UpstreamCreateOptions = {},
): string[] {
  const argv = ['create'];
  if (o.binaryDiff !== undefined) {
    if (!['bsdiff', 'zstd', 'auto'].includes(o.binaryDiff)) {
      throw new OdhError(
        'USAGE',
        `invalid binary-diff ${JSON.stringify(o.binaryDiff)} (want bsdiff, zstd or auto)`,
      );
    }
    argv.push('--binary-diff', o.binaryDiff);
  }
  if (o.jobs !== undefined) {
    if (!Number.isSafeInteger(o.jobs) || o.jobs < 0) throw new OdhError('USAGE', `invalid jobs ${o.jobs}`);
    argv.push('--jobs', String(o.jobs));
  }
  if (o.statistics) argv.push('--statistics');
  argv.push(oldImage, newImage, out);
  return argv;
}

/** Argument vector of `oci-delta apply --directory DIR DELTA OUT` (spec oci-delta §4.1, §6). */
export function applyArgv(delta: string, out: string, o: UpstreamApplyOptions): string[] {
  if (!o.directory) throw new OdhError('USAGE', 'upstream apply needs a --directory source');
  return ['apply', '--directory', o.directory, delta, out];
}

/**
 * Runs `bin argv…` with peak-RSS measurement. Exit-code contract (spec oci-delta §6: 0 success, 1 any
 * error): exit 0 → the result; a binary that cannot be started → OdhError UNAVAILABLE; non-zero
 * exit, a signal or the timeout → OdhError UPSTREAM_FAILED quoting the last stderr line.
 */
export async function runUpstream(
  bin: string,
  argv: string[],
  o: UpstreamRunOptions = {},
): Promise<UpstreamRunResult> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const what = `oci-delta ${argv[0] ?? ''}`.trim();
  // Checked here because GNU time in front of the program would turn ENOENT/EACCES into exit 127/126.
  const runnable = await fs.access(bin, fsc.X_OK).then(
    () => true,
    (e: NodeJS.ErrnoException) => e.code ?? 'not executable',
  );
  if (runnable !== true) {
    throw new OdhError('UNAVAILABLE', `${what}: cannot execute upstream binary (${runnable})`, { file: bin });
  }
  const r = await runChild(bin, argv, { timeoutMs, measureRss: true, cwd: o.cwd, env: o.env });
  if (r.spawnError) {
    throw new OdhError('UNAVAILABLE', `${what}: cannot execute upstream binary (${r.spawnError})`, {
      file: bin,
    });
  }
  const tail = lastLine(r.stderr);
  const quoted = tail ? `: ${tail}` : '';
  if (r.timedOut) {
    throw new OdhError('UPSTREAM_FAILED', `${what} timed out after ${timeoutMs / 1000} s${quoted}`, {
      file: bin,
    });
  }
  if (r.signal)
    throw new OdhError('UPSTREAM_FAILED', `${what} killed by ${r.signal}${quoted}`, { file: bin });
  if (r.exitCode !== 0) {
    throw new OdhError('UPSTREAM_FAILED', `${what} failed with exit status ${r.exitCode}${quoted}`, {
      file: bin,
    });
  }
  return {
    argv,
    exitCode: 0,
    seconds: r.seconds,
    ...(r.peakRssKiB !== undefined ? { peakRssKiB: r.peakRssKiB } : {}),
    stdout: r.stdout,
    stderr: r.stderr,
  };
}

/** `oci-delta create`: OLD/NEW are oci-archive paths or `oci:`/`oci-archive:` refs; OUT the delta. */
export async function upstreamCreate(
  bin: string,
  images: { old: string; new: string; out: string },
  o: UpstreamCreateOptions = {},
): Promise<UpstreamRunResult> {
  return runUpstream(bin, createArgv(images.old, images.new, images.out, o), o);
}

/** `oci-delta apply --directory DIR`: the output omits reused layers' blobs (spec oci-delta §4.1 c). */
export async function upstreamApply(
  bin: string,
  delta: string,
  out: string,
  o: UpstreamApplyOptions,
): Promise<UpstreamRunResult> {
  return runUpstream(bin, applyArgv(delta, out, o), o);
}
