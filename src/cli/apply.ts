import type { Command } from 'commander';
import { applyDelta, type ApplyResult, type OutputCompression } from '../delta/apply.js';
import { discoverDeltaForSource } from '../oci/registry/discover.js';
import { setRegistryDefaults } from '../oci/registry/reader.js';
import { registryFlags, REGISTRY_TIMEOUT_HELP } from './registry-flags.js';
import { runSignal } from '../util/run.js';
import { OdhError } from '../util/errors.js';
import { createProgress } from '../util/progress.js';
import { parseJobs } from './jobs.js';

interface ApplyFlags {
  sourceImage?: string;
  sourceDir?: string;
  complete?: boolean;
  compress: string;
  jobs?: string;
  forceSource?: boolean;
  json?: boolean;
  discover?: string;
  tlsVerify?: string;
  timeout?: string;
  force?: boolean;
  verifyKey?: string;
}

const COMPRESSIONS: readonly OutputCompression[] = ['gzip', 'zstd', 'none'];

/** Registers `odh apply`: reconstruct the target image of a delta (spec oci-delta §4.1). */
export function register(program: Command): void {
  program
    .command('apply')
    .description('reconstruct the target image of an oci-delta artifact from the source image or its rootfs')
    .argument(
      '[DELTA]',
      'delta artifact: oci-archive:PATH[:NAME|:@N], oci:DIR[:NAME|:@N], docker://HOST/REPO[:TAG|@DIGEST] ' +
        'or a bare archive path (omit it with --discover)',
    )
    .argument('[OUTPUT]', 'output image: oci-archive:PATH[:NAME], oci:DIR[:NAME] or a bare archive path')
    .option(
      '--discover <TARGET>',
      'find the delta in a registry: the referrer of the target image TARGET (HOST/REPO[:TAG|@DIGEST], ' +
        'with or without docker://) whose source-config is --source-image',
    )
    .option('--tls-verify <BOOL>', 'false: plain HTTP to the registry (loopback registries default to it)')
    .option('--source-image <REF>', 'the source image (oci-archive:/oci: reference) the delta was made from')
    .option('--source-dir <DIR>', "the source image's merged root filesystem, extracted")
    .option('--complete', 'also copy reused layers from the source image, giving a standard image')
    .option('--compress <KIND>', 'compression of reconstructed layers: gzip, zstd or none', 'gzip')
    .option('--jobs <N>', 'layers reconstructed in parallel (0 or absent: CPU count)')
    .option(
      '--force-source',
      "apply even if the source image's config digest is not the delta's source-config",
    )
    .option('--timeout <SECONDS>', REGISTRY_TIMEOUT_HELP)
    .option('-f, --force', 'replace an existing output file')
    .option(
      '--verify-key <PEM>',
      'require an embedded cosign signature of the target image that verifies with this public key',
    )
    .option('--json', 'print the result as one JSON object')
    .action(async (arg1: string | undefined, arg2: string | undefined, flags: ApplyFlags) => {
      const opts = checkFlags(flags);
      setRegistryDefaults(registryFlags(flags));
      let delta: string;
      let output: string;
      if (flags.discover !== undefined) {
        if (flags.sourceImage === undefined || arg1 === undefined || arg2 !== undefined) {
          throw new OdhError('USAGE', 'with --discover TARGET give --source-image REF and only OUTPUT');
        }
        const target = flags.discover.startsWith('docker://') ? flags.discover : `docker://${flags.discover}`;
        const found = await discoverDeltaForSource(target, flags.sourceImage);
        process.stderr.write(`odh: discovered delta ${found.ref} (via ${found.via})\n`);
        delta = found.ref;
        output = arg1;
      } else {
        if (arg1 === undefined || arg2 === undefined) throw new OdhError('USAGE', 'give DELTA and OUTPUT');
        delta = arg1;
        output = arg2;
      }
      // A promise nobody can settle any more must not end the process with status 0 and no output.
      let finished = false;
      process.once('beforeExit', () => {
        if (finished) return;
        process.stderr.write(
          'odh: error: internal error: apply stopped before finishing (nothing was written)\n',
        );
        process.exitCode = 1;
      });
      try {
        const result = await applyDelta({
          delta,
          output,
          ...opts,
          progress: createProgress(),
          signal: runSignal(),
          warn: (msg) => process.stderr.write(`odh: WARNING: ${msg}\n`),
        });
        if (!result.complete) process.stderr.write(incompleteNote(result));
        process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : summary(result));
      } finally {
        finished = true;
      }
    });
}

function checkFlags(f: ApplyFlags) {
  if ((f.sourceImage === undefined) === (f.sourceDir === undefined)) {
    throw new OdhError('USAGE', 'give exactly one of --source-image REF and --source-dir DIR');
  }
  if (!COMPRESSIONS.includes(f.compress as OutputCompression)) {
    throw new OdhError('USAGE', `invalid --compress ${JSON.stringify(f.compress)} (want gzip, zstd or none)`);
  }
  const jobs = parseJobs(f.jobs);
  return {
    source:
      f.sourceImage !== undefined
        ? { kind: 'image' as const, ref: f.sourceImage }
        : { kind: 'dir' as const, path: f.sourceDir! },
    complete: f.complete === true,
    compress: f.compress as OutputCompression,
    jobs,
    forceSource: f.forceSource === true,
    force: f.force === true,
    ...(f.verifyKey !== undefined ? { verifyKey: f.verifyKey } : {}),
  };
}

/**
 * Without --complete the output's manifest lists reused layers whose blobs it does not hold (spec oci-delta
 * §1.5, §4.1: the consumer is expected to have them); skopeo and `composefs id` cannot read it alone.
 */
function incompleteNote(r: ApplyResult): string {
  const reused = r.layers.filter((l) => l.kind === 'reused');
  const list = reused.map((l) => `#${l.index} ${l.digest}`).join(', ');
  return (
    `odh: note: ${r.output} still needs ${reused.length} layer blob(s) from the source image: ${list} ` +
    `(--complete copies them in and gives a self-contained image)\n`
  );
}

function summary(r: ApplyResult): string {
  const count = (k: string) => r.layers.filter((l) => l.kind === k).length;
  const lines = [
    `wrote ${r.output}`,
    `  manifest ${r.manifestDigest} (${r.layers.length} layers: ${count('tar-diff')} tar-diff, ` +
      `${count('original')} original, ${count('reused')} reused, ${count('filled')} copied from the source)`,
    `  config   ${r.configDigest}`,
    ...(r.verified ? [`  signature ${r.verified.signature} verified`] : []),
  ];
  return `${lines.join('\n')}\n`;
}
