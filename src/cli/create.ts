import { Option, type Command } from 'commander';
import { createDelta, type CreateDeltaResult, type CreateEvent } from '../delta/create.js';
import { formatStatistics } from '../delta/create-stats.js';
import { OdhError } from '../util/errors.js';
import { createProgress, type Progress } from '../util/progress.js';
import { runSignal } from '../util/run.js';
import { collect, parseDiffFlags, type DiffFlagValues } from './create-flags.js';
import { parseJobs } from './jobs.js';

interface CreateFlags extends DiffFlagValues {
  jobs?: string;
  statistics?: boolean;
  verbose?: boolean;
  signature?: string[];
  logLevel?: string;
  debug?: boolean;
  quiet?: boolean;
  force?: boolean;
  json?: boolean;
  originalMediaType: 'upstream' | 'target';
  imageSignature?: boolean;
  tmpDir?: string;
}

const OURS = ' [odh extra]';
const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/**
 * Registers `odh create`: make an oci-delta artifact from OLD to NEW (spec oci-delta §5.1, §6). The
 * flags are upstream `oci-delta create`'s, with its defaults and validation messages; our extras
 * say so in --help.
 */
export function register(program: Command): void {
  program
    .command('create')
    .description(
      'create an oci-delta artifact that rebuilds NEW from OLD (like upstream oci-delta create; ' +
        'default --binary-diff bsdiff, as upstream)',
    )
    .argument('<OLD>', 'old image: oci-archive:PATH[:NAME|:@N], oci:DIR[:NAME|:@N] or a bare archive path')
    .argument('<NEW>', 'new image, same forms (also docker://HOST/REPO[:TAG|@DIGEST])')
    .argument('<OUTPUT>', 'delta artifact: oci-archive:PATH[:NAME], oci:DIR[:NAME] or a bare archive path')
    .option('-s, --statistics', 'show statistics after creation (upstream block on stdout)')
    .addOption(new Option('-v, --verbose', 'deprecated alias of --statistics').hideHelp())
    .option('-j, --jobs <N>', 'max parallel tar-diff workers (default 0 = number of CPUs)')
    .option(
      '--binary-diff <method>',
      'per-file binary diff method: bsdiff (default, tardf1), zstd (tardf2), or auto (tardf2: zstd ' +
        'up to --max-zstd-diff-size, bsdiff above); also copy' +
        OURS +
        ': tardf1 without binary diff',
      'bsdiff',
    )
    .option('--compression-level <N>', 'outer tar-diff zstd level (0 = tar-diff default)', '0')
    .option(
      '--zstd-diff-level <N>',
      'zstd level for dictionary patches (-1 = use compression-level/default)',
      '-1',
    )
    .option(
      '--zstd-diff-window <MiB>',
      'zstd window size in MiB for dictionary patches (0 = auto, max 512)',
      '0',
    )
    .option(
      '--max-zstd-diff-size <MiB>',
      'max file size in MiB for zstd dictionary patches (0 = no extra cap)',
      '128',
    )
    .option('--max-bsdiff-size <MiB>', 'max file size in MiB for bsdiff (0 = no limit)', '192')
    .option('--signature <REF>', 'signature OCI artifact to embed (can be specified multiple times)', collect)
    .option('--log-level <level>', 'log level: error, warn, info or debug', 'info')
    .option('--debug', 'same as --log-level debug')
    .option('-q, --quiet', 'same as --log-level error')
    .option('--json', `print the result as one JSON object on stdout${OURS}`)
    .addOption(
      new Option(
        '--original-media-type <how>',
        `media type of a layer stored verbatim: upstream (always tar+gzip) or target (its own)${OURS}`,
      )
        .choices(['upstream', 'target'])
        .default('upstream'),
    )
    .option(
      '--no-image-signature',
      `do not embed the cosign signature found under the tag sha256-<hex>.sig next to NEW${OURS}`,
    )
    .option('-f, --force', `replace an existing output file${OURS}`)
    .option('--tmp-dir <DIR>', `directory for temporary files (default: the OS temp dir)${OURS}`)
    .action(async (oldRef: string, newRef: string, output: string, flags: CreateFlags) => {
      const diff = parseDiffFlags(flags);
      const jobs = parseJobs(flags.jobs);
      const level = logLevel(flags);
      const quiet = level === 'error' || level === 'warn';
      const progress = createProgress({ quiet });
      const statistics = flags.statistics === true || flags.verbose === true;
      try {
        const result = await createDelta({
          old: oldRef,
          new: newRef,
          output,
          binaryDiff: diff.mode,
          jobs,
          statistics,
          compressionLevel: diff.compressionLevel,
          zstdDiffLevel: diff.zstdDiffLevel,
          zstdDiffWindow: diff.zstdDiffWindow,
          maxZstdDiffSize: diff.maxZstdDiffSize,
          maxBsdiffSize: diff.maxBsdiffSize,
          signatures: flags.signature ?? [],
          imageSignatures: flags.imageSignature !== false,
          originalMediaType: flags.originalMediaType,
          tempDir: flags.tmpDir,
          force: flags.force === true,
          signal: runSignal(),
          onProgress: reporter(progress, level),
        });
        progress.done();
        if (flags.json) process.stdout.write(`${JSON.stringify(jsonResult(result))}\n`);
        else if (statistics) process.stdout.write(formatStatistics(result.stats));
      } finally {
        progress.done();
      }
    });
}

type LogLevel = (typeof LOG_LEVELS)[number];

/** spec oci-delta §6 log flags: --log-level (case-insensitive), --debug, -q. */
function logLevel(f: CreateFlags): LogLevel {
  if (f.quiet) return 'error';
  if (f.debug) return 'debug';
  const l = (f.logLevel ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(l)) {
    throw new OdhError(
      'USAGE',
      `invalid --log-level ${JSON.stringify(f.logLevel)} (want error, warn, info or debug)`,
    );
  }
  return l as LogLevel;
}

/** Info and warning lines as upstream logs them (spec §6), progress bars for the long phases. */
function reporter(progress: Progress, level: LogLevel): (e: CreateEvent) => void {
  let label = '';
  return (e) => {
    if (e.type === 'warning') {
      if (level !== 'error') process.stderr.write(`WARNING: ${e.message}\n`);
      return;
    }
    if (level === 'error' || level === 'warn') return;
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
    signatures: r.signatures,
    layers: r.layers,
    warnings: r.warnings,
  };
}
