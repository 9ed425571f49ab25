#!/usr/bin/env node
import { Command } from 'commander';
import { isOdhError } from '../src/util/errors.js';
import { installSignalHandlers, sweepStale } from '../src/util/run.js';

type Registrar = () => Promise<{ register(program: Command): void }>;

/**
 * Every command, loaded on demand: a run of one command loads only that command's modules, so
 * start-up stays short (it counts in every timing the harness takes of `odh`).
 */
const COMMANDS: Record<string, Registrar> = {
  'tar-patch': () => import('../src/cli/tar-patch.js'),
  apply: () => import('../src/cli/apply.js'),
  inspect: () => import('../src/cli/inspect.js'),
  composefs: () => import('../src/cli/composefs.js'),
  create: () => import('../src/cli/create.js'),
  'tar-diff': () => import('../src/cli/tar-diff.js'),
  fixtures: () => import('../harness/cli/fixtures.js'),
  conformance: () => import('../harness/cli/conformance.js'),
  upstream: () => import('../harness/cli/upstream.js'),
};

const program = new Command();
program
  .name('odh')
  .description(
    'oci-delta conformance harness: apply, create and inspect oci-delta artifacts; build composefs images',
  )
  .version('0.1.0')
  // Program options only before the command: `odh upstream pin|build --version vX` is the command's.
  .enablePositionalOptions()
  .showHelpAfterError();

// Reliability (issue 13): one cancellation path for every command, and what killed runs left
// in $TMPDIR (and, through their journals, beside outputs and in the fixture cache) is swept first.
installSignalHandlers();
await sweepStale();

try {
  const wanted = process.argv[2];
  const loaders = wanted !== undefined && wanted in COMMANDS ? [COMMANDS[wanted]] : Object.values(COMMANDS);
  for (const load of loaders) (await load()).register(program);
  await program.parseAsync(process.argv);
} catch (e: unknown) {
  const msg = isOdhError(e) ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`odh: error: ${msg}\n`);
  process.exitCode = 1;
}
