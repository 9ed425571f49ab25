#!/usr/bin/env node
import { Command } from 'commander';
import { isOdhError } from '../util/errors.js';
import { register as registerTarPatch } from './tar-patch.js';
import { register as registerApply } from './apply.js';
import { register as registerInspect } from './inspect.js';
import { register as registerComposefs } from './composefs.js';
import { register as registerDemo } from './demo.js';
import { register as registerTarDiff } from './tar-diff.js';
import { register as registerCreate } from './create.js';
import { register as registerFixtures } from './fixtures.js';
import { register as registerConformance } from './conformance.js';
import { register as registerUpstream } from './upstream.js';

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
registerDemo(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = isOdhError(e) ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`odh: error: ${msg}\n`);
  process.exitCode = 1;
});
