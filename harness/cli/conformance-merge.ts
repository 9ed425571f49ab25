import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { exitCodeOf } from '../conformance/summary.js';
import { mergeResults, parseResults } from '../conformance/shard.js';
import { writeHtmlReport } from '../report/html.js';
import { writeJunit } from '../report/junit.js';
import { appendStepSummary } from '../report/markdown.js';
import { renderTerminal } from '../report/terminal.js';
import { OdhError } from '../../src/util/errors.js';

interface MergeFlags {
  json?: boolean;
  report?: string;
  junit?: string;
}

/**
 * Registers `odh conformance merge RESULTS.json…`: the shard results of `odh conformance --shard I/N
 * --json` combined into one verdict and one report, equal cell for cell to an unsharded run.
 */
export function registerMerge(conformance: Command): void {
  // `merge --json/--report/--junit` are merge's own, not the matrix run's options of the same names
  // (bin/odh.ts makes options positional from the root down).
  conformance.enablePositionalOptions();
  conformance
    .command('merge')
    .description('combine the --json results of every shard (--shard I/N) into one verdict and report')
    .argument(
      '<RESULTS...>',
      'results files written by odh conformance --shard I/N --json (every shard once)',
    )
    .option('--json', 'print the merged result as one JSON object on stdout')
    .option('--report <DIR>', 'write a self-contained HTML report to DIR/index.html')
    .option('--junit <FILE>', 'write JUnit XML: a testsuite per fixture, a testcase per cell')
    .action(async (files: string[], flags: MergeFlags) => {
      const parts = [];
      for (const f of files) {
        const text = await fs.readFile(f, 'utf8').catch((e: NodeJS.ErrnoException) => {
          throw new OdhError(
            e.code === 'ENOENT' ? 'NOT_FOUND' : 'IO',
            `cannot read results: ${e.code ?? e.message}`,
            {
              file: f,
            },
          );
        });
        parts.push(parseResults(text, f));
      }
      const result = mergeResults(parts, files);
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : renderTerminal(result));
      if (flags.report) {
        process.stderr.write(
          `odh conformance merge: HTML report ${await writeHtmlReport(result, flags.report)}\n`,
        );
      }
      if (flags.junit) {
        process.stderr.write(`odh conformance merge: JUnit XML ${await writeJunit(result, flags.junit)}\n`);
      }
      if (await appendStepSummary(result))
        process.stderr.write('odh conformance merge: appended to $GITHUB_STEP_SUMMARY\n');
      process.exitCode = exitCodeOf(result.summary);
    });
}
