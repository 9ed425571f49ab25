import { OdhError } from '../util/errors.js';
import type { TarDiffMode } from '../tardiff/create/index.js';

/**
 * The diff flags `create` and `tar-diff` share with upstream (spec oci-delta §6): parsed as integers
 * like Go's flag packages, then validated with upstream's messages.
 */

export interface DiffFlagValues {
  binaryDiff?: string;
  compressionLevel?: string;
  zstdDiffLevel?: string;
  zstdDiffWindow?: string;
  maxZstdDiffSize?: string;
  maxBsdiffSize?: string;
}

export interface DiffSettings {
  mode: TarDiffMode;
  /** undefined = our default (upstream's `0 = tar-diff default`). */
  compressionLevel?: number;
  zstdDiffLevel?: number;
  /** Bytes; undefined = auto. */
  zstdDiffWindow?: number;
  /** Bytes; 0 = no extra cap / no limit. */
  maxZstdDiffSize: number;
  maxBsdiffSize: number;
}

const MAX_WINDOW_MIB = 512;

/** A Go `int` flag value: optional sign and decimal digits. */
export function intFlag(name: string, v: string): number {
  if (!/^[-+]?[0-9]{1,15}$/.test(v)) {
    throw new OdhError('USAGE', `invalid ${name} ${JSON.stringify(v)} (not an integer)`);
  }
  return Number(v);
}

/** `--binary-diff`: upstream's three methods plus our `copy`. */
export function parseBinaryDiff(v: string): TarDiffMode {
  if (v === 'bsdiff' || v === 'zstd' || v === 'auto' || v === 'copy') return v;
  throw new OdhError(
    'USAGE',
    `invalid --binary-diff ${JSON.stringify(v)} (want bsdiff, zstd, or auto; or copy)`,
  );
}

export function parseDiffFlags(f: DiffFlagValues): DiffSettings {
  const mode = parseBinaryDiff(f.binaryDiff ?? 'bsdiff');
  const level = intFlag('--compression-level', f.compressionLevel ?? '0');
  if (level < 0 || level > 22)
    throw new OdhError('USAGE', `invalid --compression-level ${level} (want 0..22)`);
  const zLevel = intFlag('--zstd-diff-level', f.zstdDiffLevel ?? '-1');
  if (zLevel !== -1 && (zLevel < 1 || zLevel > 22)) {
    throw new OdhError('USAGE', `invalid --zstd-diff-level ${zLevel} (want -1 or 1..22)`);
  }
  // spec oci-delta §6 validation messages (upstream cmd tests)
  const win = intFlag('--zstd-diff-window', f.zstdDiffWindow ?? '0');
  if (win < 0) throw new OdhError('USAGE', `invalid --zstd-diff-window ${win}`);
  if (win > MAX_WINDOW_MIB)
    throw new OdhError('USAGE', `invalid --zstd-diff-window ${win} (max ${MAX_WINDOW_MIB})`);
  if ((win & (win - 1)) !== 0) {
    throw new OdhError('USAGE', `invalid --zstd-diff-window ${win} (must be 0 or a power of two)`);
  }
  const maxZstd = intFlag('--max-zstd-diff-size', f.maxZstdDiffSize ?? '128');
  if (maxZstd < 0) throw new OdhError('USAGE', `invalid --max-zstd-diff-size ${maxZstd}`);
  const maxBsdiff = intFlag('--max-bsdiff-size', f.maxBsdiffSize ?? '192');
  if (maxBsdiff < 0) throw new OdhError('USAGE', `invalid --max-bsdiff-size ${maxBsdiff}`);
  const s: DiffSettings = {
    mode,
    maxZstdDiffSize: Math.min(maxZstd, MAX_WINDOW_MIB) * 1024 * 1024,
    maxBsdiffSize: Math.min(maxBsdiff, 1 << 20) * 1024 * 1024,
  };
  if (level > 0) s.compressionLevel = level;
  if (zLevel > 0) s.zstdDiffLevel = zLevel;
  if (win > 0) s.zstdDiffWindow = win * 1024 * 1024;
  return s;
}

/** Repeatable string option collector. */
export function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}
