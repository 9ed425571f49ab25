import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { buildFixture, defaultCacheDir } from '../../fixtures/build.js';
import { getFixture, quickFixtures } from '../../fixtures/catalog.js';
import { repoRoot } from '../../fixtures/expected.js';
import { createDelta } from '../../src/delta/create.js';
import { RegistryClient } from '../../src/oci/registry/client.js';
import { mirrorPair, parseRegistryTarget, type MirroredPair } from '../../src/oci/registry/mirror.js';
import { makeTempDir } from '../../src/util/atomic.js';
import { OdhError } from '../../src/util/errors.js';

/** fixtures/mirror.txt: one fixture name per line, `#` comments, blank lines ignored. */
export function parseMirrorList(text: string, file = 'fixtures/mirror.txt'): string[] {
  const names: string[] = [];
  text.split('\n').forEach((line, i) => {
    const name = line.replace(/#.*$/, '').trim();
    if (name === '') return;
    if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(name)) {
      throw new OdhError('FORMAT', `not a fixture name: ${JSON.stringify(name)}`, { file, line: i + 1 });
    }
    if (names.includes(name))
      throw new OdhError('FORMAT', `fixture ${name} listed twice`, { file, line: i + 1 });
    getFixture(name);
    names.push(name);
  });
  return names;
}

export function mirrorListPath(): string {
  return path.join(repoRoot(), 'fixtures', 'mirror.txt');
}

export interface MirrorOptions {
  /** `HOST[:PORT]/PREFIX`. */
  registry: string;
  names: string[];
  tlsVerify?: boolean;
  cacheDir?: string;
  /** Client options (tests: fast backoff, request counting). */
  client?: RegistryClient;
  log?: (line: string) => void;
}

export interface MirrorReport {
  registry: string;
  pairs: MirroredPair[];
  blobsUploaded: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesUploaded: number;
  manifestsPushed: number;
  requests: number;
  retries: number;
}

/**
 * Builds each named fixture pair, creates its TS delta (`--binary-diff zstd`) and publishes old,
 * new and delta under `PREFIX/<name>` (spec oci-delta §1.7), then verifies what the registry serves.
 */
export async function mirrorFixtures(opts: MirrorOptions): Promise<MirrorReport> {
  const { host, prefix } = parseRegistryTarget(opts.registry);
  const client = opts.client ?? new RegistryClient(host, { tlsVerify: opts.tlsVerify ?? true });
  const pairs: MirroredPair[] = [];
  for (const name of opts.names) {
    const built = await buildFixture(name, opts.cacheDir ?? defaultCacheDir());
    const tmp = await makeTempDir('odh-mirror-');
    try {
      const deltaPath = path.join(tmp.dir, 'delta.oci-archive');
      await createDelta({ old: built.old.ref, new: built.new.ref, output: deltaPath, binaryDiff: 'zstd' });
      const repository = prefix ? `${prefix}/${name}` : name;
      const p = await mirrorPair(client, {
        name,
        repository,
        old: built.old.ref,
        new: built.new.ref,
        delta: deltaPath,
      });
      pairs.push(p);
      opts.log?.(
        `${name.padEnd(20)} ${host}/${repository} old ${p.old.digest.slice(0, 19)}… new ${p.new.digest.slice(0, 19)}… delta ${p.delta.digest.slice(0, 19)}… (${p.delta.referrers})`,
      );
    } finally {
      await tmp.cleanup();
    }
  }
  const s = client.stats;
  return {
    registry: opts.registry,
    pairs,
    blobsUploaded: s.blobsUploaded,
    blobsSkipped: s.blobsSkipped,
    blobsMounted: s.blobsMounted,
    bytesUploaded: s.bytesUploaded,
    manifestsPushed: s.manifestsPushed,
    requests: s.requests,
    retries: s.retries,
  };
}

/** Adds `odh fixtures mirror` to the `fixtures` command (src/cli/fixtures.ts calls this). */
export function registerMirror(fixtures: Command): void {
  fixtures
    .command('mirror')
    .description(
      'publish the pairs of fixtures/mirror.txt to a registry: PREFIX/<name>:old, :new and :delta-zstd ' +
        '(delta subject = :new, for referrers); idempotent, verified by pulling back',
    )
    .requiredOption(
      '--registry <HOST/PREFIX>',
      'registry and repository prefix, e.g. ghcr.io/org/odh-fixtures',
    )
    .option('--quick', 'only the listed pairs that are in the quick set')
    .option('--tls-verify <BOOL>', 'false: plain HTTP (loopback test registries)', 'true')
    .option('--cache <DIR>', 'fixture cache directory', defaultCacheDir())
    .option('--list <FILE>', 'the mirror list', mirrorListPath())
    .option('--json', 'print one JSON report {blobsUploaded, blobsSkipped, manifestsPushed, pairs, …}')
    .action(
      async (flags: {
        registry: string;
        quick?: boolean;
        tlsVerify: string;
        cache: string;
        list: string;
        json?: boolean;
      }) => {
        if (flags.tlsVerify !== 'true' && flags.tlsVerify !== 'false') {
          throw new OdhError(
            'USAGE',
            `invalid --tls-verify ${JSON.stringify(flags.tlsVerify)} (want true or false)`,
          );
        }
        let names = parseMirrorList(readFileSync(flags.list, 'utf8'), flags.list);
        if (flags.quick) names = names.filter((n) => quickFixtures().includes(n));
        const report = await mirrorFixtures({
          registry: flags.registry,
          names,
          tlsVerify: flags.tlsVerify === 'true',
          cacheDir: flags.cache,
          log: flags.json ? undefined : (l) => process.stdout.write(`${l}\n`),
        });
        if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else
          process.stdout.write(
            `${report.pairs.length} pair(s): ${report.blobsUploaded} blob(s) uploaded, ${report.blobsSkipped} already present, ` +
              `${report.manifestsPushed} manifest(s) pushed\n`,
          );
      },
    );
}
