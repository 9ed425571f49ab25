#!/usr/bin/env node
import { Command } from 'commander';
import { isOdhError } from '../util/errors.js';

const program = new Command();
program
  .name('odh')
  .description('oci-delta conformance harness: apply, create and inspect oci-delta artifacts; build composefs images')
  .version('0.1.0');

// Subcommands register themselves here as they land.

program.parseAsync(process.argv).catch((e: unknown) => {
  const msg = isOdhError(e) ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`odh: error: ${msg}\n`);
  process.exit(1);
});
