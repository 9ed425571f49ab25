import type { Command } from 'commander';
import { buildFixture, defaultCacheDir, type BuiltFixture } from '../../fixtures/build.js';
import { listFixtures, selectFixtures } from '../../fixtures/catalog.js';
import { contentSize } from '../../fixtures/content.js';
import type { ImageSpec } from '../../fixtures/image.js';
import { registerMirror } from './fixtures-mirror.js';

function specSummary(s: ImageSpec): { layers: number; entries: number; bytes: number } {
  let entries = 0;
  let bytes = 0;
  for (const l of s.layers)
    for (const e of l.entries) {
      entries++;
      if (e.type === 'file') bytes += contentSize(e.content);
    }
  return { layers: s.layers.length, entries, bytes };
}

/** Registers `odh fixtures list|build`: the declarative fixture catalog (fixtures/catalog.ts). */
export function register(program: Command): void {
  const fixtures = program
    .command('fixtures')
    .description('the fixture catalog: deterministic old/new OCI image pairs for delta and composefs tests');

  fixtures
    .command('list')
    .description('list the catalog: name, quick/big marks, layers and content size, what each pair exercises')
    .option('--json', 'print one JSON array')
    .action((flags: { json?: boolean }) => {
      const rows = listFixtures().map((f) => ({
        name: f.name,
        quick: f.quick,
        big: f.big ?? false,
        description: f.description,
        old: specSummary(f.old),
        new: specSummary(f.new),
      }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(rows)}\n`);
        return;
      }
      for (const r of rows) {
        const mark = r.big ? 'big  ' : r.quick ? 'quick' : '     ';
        const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
        process.stdout.write(
          `${r.name.padEnd(20)} ${mark} old ${r.old.layers} layer(s) ${mib(r.old.bytes)}, new ${r.new.layers} layer(s) ${mib(r.new.bytes)}\n` +
            `${''.padEnd(27)}${r.description}\n`,
        );
      }
    });

  fixtures
    .command('build')
    .description(
      'build pairs into the cache as <cache>/<name>/{old,new}.oci-archive (reused when current); ' +
        'no NAME: every pair except big ones',
    )
    .argument('[NAME...]', 'pairs to build (see `odh fixtures list`)')
    .option('--cache <DIR>', 'cache directory', defaultCacheDir())
    .option('--quick', 'build the quick set only')
    .option('--big', 'also build big pairs (≥ 160 MiB)')
    .option('--force', 'rebuild even when the cache is current')
    .option('--json', 'print one JSON array of built pairs')
    .action(
      async (
        names: string[],
        flags: { cache: string; quick?: boolean; big?: boolean; force?: boolean; json?: boolean },
      ) => {
        const selected = selectFixtures({ names, quick: flags.quick, big: flags.big });
        const built: BuiltFixture[] = [];
        for (const f of selected) {
          const b = await buildFixture(f.name, flags.cache, { force: flags.force });
          built.push(b);
          if (!flags.json) {
            process.stdout.write(
              `${b.name.padEnd(20)} ${b.rebuilt ? 'built ' : 'cached'} pins ${b.pins.padEnd(8)} ` +
                `old ${b.old.manifestDigest.slice(0, 19)}… new ${b.new.manifestDigest.slice(0, 19)}… ${b.dir}\n`,
            );
          }
        }
        if (flags.json) process.stdout.write(`${JSON.stringify(built)}\n`);
        const bad = built.filter((b) => b.pins === 'mismatch').map((b) => b.name);
        if (bad.length) {
          process.stderr.write(
            `odh: error: built digests differ from fixtures/expected.json for: ${bad.join(', ')}\n`,
          );
          process.exitCode = 1;
        }
      },
    );

  registerMirror(fixtures);
}
