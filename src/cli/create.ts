import { Option, type Command } from 'commander';
import { createDelta, type CreateDeltaResult, type CreateEvent } from '../delta/create.js';
import { formatStatistics } from '../delta/create-stats.js';
import { OdhError } from '../util/errors.js';
import { createProgress, type Progress } from '../util/progress.js';
import { parseJobs } from './jobs.js';

interface CreateFlags {
  binaryDiff: 'zstd' | 'copy';
  jobs?: string;
  statistics?: boolean;
  json?: boolean;
  compressionLevel?: number;
  maxZstdDiffSize?: number;
  originalMediaType: 'upstream' | 'target';
  tmpDir?: string;
  quiet?: boolean;
}

function intArg(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n < min || n > max) {
      throw new OdhError('USAGE', `invalid ${name} ${JSON.stringify(v)} (want an integer ${min}..${max})`);
    }
    return n;
  };
}

/** Registers `odh create`: make an oci-delta artifact from OLD to NEW (spec oci-delta §5.1, §6). */
export function register(program: Command): void {
  program
    .command('create')
    .description('create an oci-delta artifact that rebuilds NEW from OLD (like upstream oci-delta create)')
    .argument('<OLD>', 'old image: oci-archive:PATH[:NAME|:@N], oci:DIR[:NAME|:@N] or a bare archive path')
    .argument('<NEW>', 'new image, same forms')
    .argument('<OUTPUT>', 'delta artifact: oci-archive:PATH[:NAME], oci:DIR[:NAME] or a bare archive path')
    .addOption(
      new Option('--binary-diff <method>', 'zstd: tardf2 with ZstdDict patches; copy: tardf1, copies only')
        .choices(['zstd', 'copy'])
        .default('zstd'),
    )
    .option('-j, --jobs <N>', 'new layers diffed in parallel (0 or absent: CPU count)')
    .option('-s, --statistics', 'print delta creation statistics on stdout (like upstream -s)')
    .option('--json', 'print the result as one JSON object on stdout')
    .option(
      '--compression-level <n>',
      'outer zstd level of the tar-diffs',
      intArg('--compression-level', 1, 22),
    )
    .option(
      '--max-zstd-diff-size <MiB>',
      'largest file diffed with ZstdDict (default 128)',
      intArg('--max-zstd-diff-size', 1, 512),
    )
    .addOption(
      new Option(
        '--original-media-type <how>',
        'media type of a layer stored verbatim: upstream (always tar+gzip) or target (its own)',
      )
        .choices(['upstream', 'target'])
        .default('upstream'),
    )
    .option('--tmp-dir <DIR>', 'directory for temporary files (default: the OS temp dir)')
    .option('-q, --quiet', 'no progress or info lines on stderr')
    .action(async (oldRef: string, newRef: string, output: string, flags: CreateFlags) => {
      const jobs = parseJobs(flags.jobs);
      const controller = new AbortController();
      const onSignal = (sig: NodeJS.Signals) =>
        controller.abort(new OdhError('IO', `interrupted by ${sig}; nothing was written`));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const progress = createProgress({ quiet: flags.quiet === true });
      try {
        const result = await createDelta({
          old: oldRef,
          new: newRef,
          output,
          binaryDiff: flags.binaryDiff,
          jobs,
          statistics: flags.statistics === true,
          compressionLevel: flags.compressionLevel,
          maxZstdDiffSize: flags.maxZstdDiffSize !== undefined ? flags.maxZstdDiffSize << 20 : undefined,
          originalMediaType: flags.originalMediaType,
          tempDir: flags.tmpDir,
          signal: controller.signal,
          onProgress: reporter(progress, flags.quiet === true),
        });
        progress.done();
        if (flags.json) process.stdout.write(`${JSON.stringify(jsonResult(result))}\n`);
        else if (flags.statistics) process.stdout.write(formatStatistics(result.stats));
      } finally {
        progress.done();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

/** Info and warning lines as upstream logs them (spec §6), progress bars for the long phases. */
function reporter(progress: Progress, quiet: boolean): (e: CreateEvent) => void {
  let label = '';
  return (e) => {
    if (e.type === 'warning') {
      process.stderr.write(`WARNING: ${e.message}\n`);
      return;
    }
    if (quiet) return;
    switch (e.type) {
      case 'info':
        progress.done();
        process.stderr.write(`${e.message}\n`);
        label = '';
        break;
      case 'analyze':
        progress.step((label = `Analysed old layer ${e.layer}/${e.layers}`));
        break;
      case 'layer': {
        const l = `layer ${e.layer}/${e.layers} ${e.digest.slice(0, 19)}…: ${e.phase}`;
        if (l !== label) progress.step((label = l));
        if (e.phase === 'stage') progress.bytes(e.done, e.total);
        break;
      }
    }
  };
}

function jsonResult(r: CreateDeltaResult) {
  return {
    output: r.output,
    manifestDigest: r.manifestDigest,
    manifestSize: r.manifestSize,
    deltaBytes: r.deltaBytes,
    stats: r.stats,
    layers: r.layers,
    warnings: r.warnings,
  };
}
