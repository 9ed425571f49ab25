/**
 * Stores upstream-made deltas of the quick fixture set in fixtures/upstream/ with their manifest
 * (run where the upstream binary is available: `node dist/scripts/fixtures-upstream.js [--cache DIR]
 * [--oci-delta PATH]`, or via `npm run fixtures:regen -- --with-upstream`). One delta per quick
 * pair and upstream creator mode; the manifest and files are replaced only when all succeeded.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixture, defaultCacheDir } from '../fixtures/build.js';
import { quickFixtures } from '../fixtures/catalog.js';
import {
  fileDigest,
  renderUpstreamDeltas,
  upstreamDeltaDir,
  type UpstreamDelta,
} from '../harness/conformance/upstream-deltas.js';
import { upstreamCreators } from '../harness/implementations/upstream.js';
import { resolveUpstream } from '../harness/upstream/fetch.js';
import { OdhError } from '../src/util/errors.js';
import { runTempDir } from '../src/util/run.js';

export interface UpstreamRegenOptions {
  cacheDir?: string;
  /** A local oci-delta binary instead of the pinned one. */
  ociDelta?: string;
  log?: (line: string) => void;
}

/** Regenerates fixtures/upstream/; UNAVAILABLE (with the reason) when there is no upstream binary. */
export async function regenerateUpstreamDeltas(o: UpstreamRegenOptions = {}): Promise<number> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const u = await resolveUpstream(o.ociDelta ? { localBinary: o.ociDelta } : {});
  if (u.status !== 'available') throw new OdhError('UNAVAILABLE', `upstream oci-delta: ${u.reason}`);
  const dir = upstreamDeltaDir();
  const { dir: stage, cleanup } = await runTempDir('upstream', dir);
  try {
    const deltas: UpstreamDelta[] = [];
    for (const fixture of quickFixtures()) {
      const b = await buildFixture(fixture, o.cacheDir ?? defaultCacheDir());
      for (const c of upstreamCreators(u)) {
        const file = `${fixture}.${c.name}.delta.oci-archive`;
        log(`fixtures-upstream: ${fixture}: ${c.name}`);
        await c.create(b.old.path, b.new.path, path.join(stage, file));
        deltas.push({ fixture, creator: c.name, file, digest: await fileDigest(path.join(stage, file)) });
      }
    }
    for (const old of await fs.readdir(dir))
      if (old.endsWith('.oci-archive')) await fs.rm(path.join(dir, old));
    for (const d of deltas) await fs.rename(path.join(stage, d.file), path.join(dir, d.file));
    await fs.writeFile(
      path.join(dir, 'manifest.json'),
      renderUpstreamDeltas({
        upstreamVersion: u.version,
        note: 'Made by scripts/fixtures-upstream.ts from the quick fixture set; applied by test/harness/upstream-deltas.test.ts.',
        deltas,
      }),
    );
    log(`fixtures-upstream: ${deltas.length} delta(s) by oci-delta ${u.version} in ${dir}`);
    return deltas.length;
  } finally {
    await cleanup();
  }
}

function parseArgs(argv: string[]): UpstreamRegenOptions {
  const o: UpstreamRegenOptions = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cache' && argv[i + 1]) o.cacheDir = argv[++i];
    else if (argv[i] === '--oci-delta' && argv[i + 1]) o.ociDelta = argv[++i];
    else throw new OdhError('USAGE', 'usage: fixtures-upstream [--cache DIR] [--oci-delta PATH]');
  }
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  regenerateUpstreamDeltas(parseArgs(process.argv.slice(2))).catch((e: unknown) => {
    process.stderr.write(`fixtures-upstream: error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
