#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import {
  benignExit,
  classify,
  commandFromArgv,
  configureProgram,
  guardStdout,
  isClosedStdout,
  report,
  wantsJson,
} from '../src/cli/contract.js';
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

/** The version in package.json (dist/bin/odh.js → the package root). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

guardStdout();
let current: Command | undefined;
const program = new Command();
program
  .name('odh')
  .description(
    'oci-delta conformance harness: apply, create and inspect oci-delta artifacts; build composefs images',
  )
  .version(packageVersion());
configureProgram(program, (cmd) => (current = cmd));

// Reliability (issue 13): one cancellation path for every command, and what killed runs left
// in $TMPDIR (and, through their journals, beside outputs and in the fixture cache) is swept first.
installSignalHandlers();
await sweepStale();

try {
  const wanted = process.argv[2];
  // Own names only: `odh constructor` is an unknown command, not Object.prototype's.
  const own = wanted !== undefined && Object.hasOwn(COMMANDS, wanted) ? COMMANDS[wanted] : undefined;
  // `--version` needs no command; any other run without a known command (help, errors) lists them all.
  const versionOnly = wanted === '--version' || wanted === '-V';
  const loaders = own !== undefined ? [own] : versionOnly ? [] : Object.values(COMMANDS);
  for (const load of loaders) (await load()).register(program);
  await program.parseAsync(process.argv);
} catch (e: unknown) {
  const benign = benignExit(e);
  if (benign !== undefined) process.exitCode = benign;
  else if (isClosedStdout(e)) {
    // the reader of stdout went away (`odh … | head`): nothing to report
  } else report(classify(e, current ?? commandFromArgv(program, process.argv)), wantsJson(process.argv));
}
