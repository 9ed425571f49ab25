import { Option, type Command } from 'commander';
import { defaultCacheDir } from '../../fixtures/build.js';
import { conformance } from '../conformance/index.js';
import { FAULTS, type Fault } from '../implementations/fault.js';
import { writeHtmlReport } from '../report/html.js';
import { writeJunit } from '../report/junit.js';
import { shardSelection, withShard } from '../conformance/shard.js';
import { registerMerge } from './conformance-merge.js';
import { appendStepSummary } from '../report/markdown.js';
import { renderTerminal } from '../report/terminal.js';
import type { FsVerityAlgorithm } from '../../src/composefs/format/fsverity.js';
import type { ComposefsFormat } from '../../src/composefs/oci/image-id.js';
import { createProgress } from '../../src/util/progress.js';

interface ConformanceFlags {
  fixtures?: string;
  creators?: string;
  appliers?: string;
  quick?: boolean;
  format?: ComposefsFormat;
  hash?: FsVerityAlgorithm;
  json?: boolean;
  report?: string;
  cache: string;
  ociDelta?: string;
  offline?: boolean;
  injectFault?: Fault;
  require?: string;
  quiet?: boolean;
  junit?: string;
  shard?: string;
}

const list = (v: string | undefined) => {
  const names = (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length ? names : undefined;
};

/** Registers `odh conformance`: creators × appliers × fixtures, proven by diff_ids and composefs IDs. */
export function register(program: Command): void {
  const cmd = program
    .command('conformance')
    .description(
      'create deltas with every creator, apply them with every applier, and prove each result equals the new ' +
        'image (layer diff_ids and composefs image IDs); exit 1 on any mismatch or error',
    )
    .option('--fixtures <A,B>', 'fixture pairs (default: every non-big pair; see `odh fixtures list`)')
    .option('--quick', 'the quick fixture set')
    .option(
      '--creators <A,B>',
      'creators: ts-bsdiff, ts-zstd, ts-auto, ts-copy, go-tardiff, upstream[-bsdiff|-zstd|-auto] (default: all)',
    )
    .option('--appliers <A,B>', 'appliers: ts-image, ts-dir, go-tarpatch, upstream, cfsctl (default: all)')
    .option(
      '--require <A,B>',
      'fail (exit 1) before any work unless these implementations are available: creator/applier ' +
        'names or prefixes, or the checker mkcomposefs (e.g. go-tardiff,go-tarpatch,mkcomposefs)',
    )
    .addOption(
      new Option('--format <F>', 'composefs format to check (default: v1 and v2)').choices(['v1', 'v2']),
    )
    .addOption(
      new Option('--hash <H>', 'composefs fs-verity hash to check (default: sha512 and sha256)').choices([
        'sha256',
        'sha512',
      ]),
    )
    .option('--json', 'print one JSON object {cells, implementations, fixtureProblems, summary} on stdout')
    .option('--report <DIR>', 'write a self-contained HTML report to DIR/index.html')
    .option('--junit <FILE>', 'write JUnit XML: a testsuite per fixture, a testcase per cell')
    .option(
      '--shard <I/N>',
      'run only slice I of N (whole fixtures, deterministic and balanced); combine with `odh conformance merge`',
    )
    .option('--cache <DIR>', 'fixture build cache', defaultCacheDir())
    .option('--oci-delta <PATH>', 'use this upstream oci-delta binary instead of the pinned download')
    .option('--offline', 'never download the upstream binary; use the verified cache only')
    .option('-q, --quiet', 'no progress on stderr')
    .addOption(
      new Option('--inject-fault <KIND>', 'test only: corrupt applier outputs')
        .choices([...FAULTS])
        .hideHelp(),
    )
    .action(async (flags: ConformanceFlags) => {
      const progress = createProgress({ quiet: flags.quiet });
      const sel = shardSelection(flags.shard, list(flags.fixtures), flags.quick);
      const whole = await conformance({
        fixtures: sel ? sel.mine : list(flags.fixtures),
        quick: flags.quick,
        creators: list(flags.creators),
        appliers: list(flags.appliers),
        format: flags.format,
        hash: flags.hash,
        cacheDir: flags.cache,
        ociDelta: flags.ociDelta,
        offline: flags.offline,
        injectFault: flags.injectFault,
        require: list(flags.require),
        progress,
      });
      const { result, exitCode } = withShard(whole, sel);
      for (const i of result.implementations.filter((x) => !x.available)) {
        process.stderr.write(`odh conformance: ${i.role} ${i.name}: unavailable: ${i.reason}\n`);
      }
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : renderTerminal(result));
      if (flags.report) {
        const file = await writeHtmlReport(result, flags.report);
        process.stderr.write(`odh conformance: HTML report ${file}\n`);
      }
      if (flags.junit)
        process.stderr.write(`odh conformance: JUnit XML ${await writeJunit(result, flags.junit)}\n`);
      if (await appendStepSummary(result))
        process.stderr.write('odh conformance: appended to $GITHUB_STEP_SUMMARY\n');
      process.exitCode = exitCode;
    });
  registerMerge(cmd);
}
