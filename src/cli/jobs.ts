import os from 'node:os';
import { OdhError } from '../util/errors.js';

/**
 * The one meaning of `--jobs N` in every command: an integer from 0 to 1024, where 0 (like absent)
 * means the CPU count (upstream oci-delta's -j, spec oci-delta §6).
 */
export function parseJobs(v: string | undefined): number {
  if (v === undefined) return os.availableParallelism();
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n > 1024) {
    throw new OdhError(
      'USAGE',
      `invalid --jobs ${JSON.stringify(v)} (want an integer from 0 to 1024; 0 = CPU count)`,
    );
  }
  return n === 0 ? os.availableParallelism() : n;
}
