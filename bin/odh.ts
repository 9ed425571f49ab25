#!/usr/bin/env node
import { Command } from 'commander';
import { isOdhError } from '../src/util/errors.js';
import { register as registerTarPatch } from '../src/cli/tar-patch.js';
import { register as registerApply } from '../src/cli/apply.js';
import { register as registerInspect } from '../src/cli/inspect.js';
import { register as registerComposefs } from '../src/cli/composefs.js';
import { register as registerTarDiff } from '../src/cli/tar-diff.js';
import { register as registerCreate } from '../src/cli/create.js';
import { register as registerFixtures } from '../harness/cli/fixtures.js';
import { register as registerConformance } from '../harness/cli/conformance.js';
import { register as registerUpstream } from '../harness/cli/upstream.js';

const program = new Command();
program
  .name('odh')
  .description(
    'oci-delta conformance harness: apply, create and inspect oci-delta artifacts; build composefs images',
  )
  .version('0.1.0')
  .showHelpAfterError();

registerTarPatch(program);
registerApply(program);
registerInspect(program);
registerComposefs(program);
registerCreate(program);
registerTarDiff(program);
registerFixtures(program);
registerConformance(program);
registerUpstream(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = isOdhError(e) ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`odh: error: ${msg}\n`);
  process.exitCode = 1;
});
