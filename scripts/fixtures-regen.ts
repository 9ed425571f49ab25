/**
 * Regenerates fixtures/expected.json (run with `npm run fixtures:regen [-- --quick] [-- NAME…]`):
 * rebuilds the catalog pairs from scratch (big ones too unless --quick), computes their composefs
 * image IDs and rewrites the pins file with sorted keys. Pairs not rebuilt keep their old pins;
 * pairs never pinned are written as null; pairs gone from the catalog are dropped.
 *
 * Byte-identical builds assume the same codec libraries (zlib for gzip, libzstd for zstd): the
 * header field records the versions used, so a pin change after a dependency bump is explained.
 */
import { writeFile } from 'node:fs/promises';
import binding from 'zstd-napi/binding.js';
import { buildFixture, BUILDER_VERSION, defaultCacheDir } from '../fixtures/build.js';
import { listFixtures, selectFixtures } from '../fixtures/catalog.js';
import {
  composefsPins,
  expectedPath,
  formatExpected,
  loadExpected,
  type ExpectedFile,
  type ImagePins,
  type PairPins,
} from '../fixtures/expected.js';
import type { BuiltImage } from '../fixtures/image.js';
import { regenerateUpstreamDeltas } from './fixtures-upstream.js';

function usage(): never {
  process.stderr.write('usage: fixtures-regen [--quick] [--with-upstream] [--cache DIR] [NAME...]\n');
  process.exit(2);
}

function parseArgs(argv: string[]): {
  quick: boolean;
  withUpstream: boolean;
  cache: string;
  names: string[];
} {
  const out = { quick: false, withUpstream: false, cache: defaultCacheDir(), names: [] as string[] };
  const args = argv.values();
  for (const a of args) {
    if (a === '--quick') out.quick = true;
    else if (a === '--with-upstream') out.withUpstream = true;
    else if (a === '--cache') out.cache = args.next().value ?? usage();
    else if (a.startsWith('-')) usage();
    else out.names.push(a);
  }
  return out;
}

async function imagePins(img: BuiltImage): Promise<ImagePins> {
  return {
    manifestDigest: img.manifestDigest,
    configDigest: img.configDigest,
    diffIds: img.diffIds,
    composefs: await composefsPins(img.ref),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // --quick here means "skip big pairs", not the quick set: every small pair is always pinned.
  const selected = selectFixtures({ names: args.names, big: !args.quick });
  const previous = loadExpected();
  const fresh = new Map<string, PairPins>();
  for (const f of selected) {
    const t0 = Date.now();
    process.stderr.write(`fixtures-regen: ${f.name}: building…`);
    const b = await buildFixture(f.name, args.cache, { force: true });
    process.stderr.write(` composefs IDs…`);
    fresh.set(f.name, { old: await imagePins(b.old), new: await imagePins(b.new) });
    process.stderr.write(` ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const fixtures: ExpectedFile['fixtures'] = {};
  for (const f of listFixtures()) fixtures[f.name] = fresh.get(f.name) ?? previous.fixtures[f.name] ?? null;
  const out: ExpectedFile = {
    generatedBy:
      `npm run fixtures:regen (scripts/fixtures-regen.ts), fixture builder v${BUILDER_VERSION}; ` +
      `gzip by node zlib ${process.versions.zlib}, zstd by libzstd ${binding.versionString()}; ` +
      'composefs IDs by src/composefs/oci/image-id.ts (v1-sha512 = cfsctl default, v1-sha256 = C mkcomposefs, ' +
      'v2-sha512 = composefs-rs V2); null = not pinned yet',
    fixtures,
  };
  await writeFile(expectedPath(), formatExpected(out));
  process.stderr.write(`fixtures-regen: wrote ${expectedPath()} (${fresh.size} pair(s) rebuilt)\n`);
  if (args.withUpstream) {
    // Deltas made by the upstream binary for the quick set, applied by the test suite on every run.
    const n = await regenerateUpstreamDeltas({ cacheDir: args.cache });
    process.stderr.write(`fixtures-regen: stored ${n} upstream-made delta(s) in fixtures/upstream/\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`\nfixtures-regen: error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
