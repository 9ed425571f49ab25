/**
 * `npm run bench`: figures for the issue goals, each printed with the floor measured in the same run.
 * Set BENCH_QUICK=1 for a smaller, faster run (same code paths). BENCH_ONLY=tardiff,create,composefs
 * picks sections.
 */
import os from 'node:os';
import { benchCopyThroughput, benchPeakRss, benchZstdDict } from './bench/tardiff.js';
import { benchCreate, benchCreateVsGo } from './bench/create.js';
import { report } from './bench/measure.js';
import { benchComposefs, formatComposefsBench } from './bench-composefs.js';
import { runTempDir } from '../src/util/run.js';

async function main(): Promise<void> {
  const quick = process.env.BENCH_QUICK === '1';
  const only = new Set((process.env.BENCH_ONLY ?? 'tardiff,create,composefs').split(','));
  const { dir: work, cleanup } = await runTempDir('bench');
  try {
    process.stdout.write(
      `# oci-delta-harness bench (${quick ? 'quick' : 'full'}), ${os.cpus().length} CPUs\n`,
    );
    if (only.has('tardiff')) {
      process.stdout.write('\n## tar-diff apply (issue 2)\n');
      await benchCopyThroughput(work, quick ? 128 << 20 : 512 << 20);
      await benchZstdDict(work, quick ? 2 : 4, quick ? 8 << 20 : 32 << 20);
      // The same at 4× the bytes: node's start-up (~0.08 s) weighs less beside the decoding.
      if (!quick) await benchZstdDict(work, 4, 128 << 20);
      if (!quick) await benchPeakRss(work);
    }
    if (only.has('create')) {
      process.stdout.write('\n## delta create (issue 4)\n');
      await benchCreate(work);
      process.stdout.write('\n## delta create vs Go tar-diff, per mode (issue 10)\n');
      await benchCreateVsGo(work);
    }
    if (only.has('composefs')) {
      process.stdout.write('\n## composefs (issue 3)\n');
      const r = await benchComposefs(quick ? { totalBytes: 128 << 20, files: 5000 } : {});
      for (const line of formatComposefsBench(r)) process.stdout.write(`${line}\n`);
      report('composefs id throughput vs gzip -dc|sha256sum', r.ociId.odh.wall, r.ociId.floor.wall, 1.0);
    }
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
