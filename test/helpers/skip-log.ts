import { appendFileSync } from 'node:fs';

/**
 * Why tests of a file are skipped, for the run's closing list (test/reporters/summary-line.ts):
 * `it.skipIf(cond)` carries no reason, so the helper that decides (hasTool, hasOracle, a missing
 * Docker engine) records one here, against the test file that asked. The reporter sets
 * ODH_SKIP_LOG to a file of JSON lines; without it (a single file run by hand) nothing is recorded.
 */
export function recordSkip(reason: string): void {
  const log = process.env.ODH_SKIP_LOG;
  if (!log) return;
  const frame = (new Error().stack ?? '').split('\n').find((l) => /\.test\.ts\b/.test(l));
  const file = /((?:file:\/\/)?\/[^\s():]+\.test\.ts)/.exec(frame ?? '')?.[1]?.replace(/^file:\/\//, '');
  try {
    appendFileSync(log, `${JSON.stringify({ file: file ?? '', reason })}\n`);
  } catch {
    // the list is a courtesy; a failure to record must not change a test's outcome
  }
}
