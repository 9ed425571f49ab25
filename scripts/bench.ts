/**
 * `npm run bench`: figures for the issue goals, each printed with the floor measured in the same run.
 * Set BENCH_QUICK=1 for a smaller, faster run (same code paths).
 */
import os from 'node:os';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { benchCopyThroughput, benchPeakRss, benchZstdDict } from './bench/tardiff.js';

async function main(): Promise<void> {
  const quick = process.env.BENCH_QUICK === '1';
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-bench-'));
  try {
    process.stdout.write(
      `# oci-delta-harness bench (${quick ? 'quick' : 'full'}), ${os.cpus().length} CPUs\n`,
    );
    await benchCopyThroughput(work, quick ? 128 << 20 : 512 << 20);
    await benchZstdDict(work, quick ? 2 : 4, quick ? 8 << 20 : 32 << 20);
    if (!quick) await benchPeakRss(work);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
