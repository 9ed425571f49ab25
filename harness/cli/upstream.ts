import type { Command } from 'commander';
import { buildUpstream, DEFAULT_BUILD_TAGS } from '../upstream/build.js';
import { resolveUpstream } from '../upstream/fetch.js';
import { readManifest } from '../upstream/manifest.js';
import { DEFAULT_GITHUB_API, pinUpstream } from '../upstream/pin.js';
import { UPSTREAM_ARCHES, type UpstreamArch, type UpstreamResolution } from '../upstream/types.js';
import { OdhError } from '../../src/util/errors.js';

function parseArch(v: string): UpstreamArch {
  if (!(UPSTREAM_ARCHES as readonly string[]).includes(v)) {
    throw new OdhError('USAGE', `invalid --arch ${JSON.stringify(v)} (want ${UPSTREAM_ARCHES.join(' or ')})`);
  }
  return v as UpstreamArch;
}

function describe(r: UpstreamResolution): string {
  if (r.status === 'unavailable') return `upstream unavailable: ${r.reason}`;
  return (
    `oci-delta ${r.version} (${r.source}) ${r.path}` +
    ` binary-diff: ${r.capabilities.binaryDiff ? 'yes' : 'no (older than 0.6.0)'}`
  );
}

interface ResolveFlags {
  manifest?: string;
  cache?: string;
  arch?: UpstreamArch;
  offline?: boolean;
  ociDelta?: string;
  json?: boolean;
  ifPinned?: boolean;
}

function addResolveFlags(c: Command): Command {
  return c
    .option('--manifest <FILE>', 'pinned manifest (default harness/upstream/manifest.json)')
    .option('--cache <DIR>', 'cache root (default $XDG_CACHE_HOME/oci-delta-harness/upstream)')
    .option('--arch <ARCH>', 'architecture to fetch (x86_64|aarch64; default this machine)', parseArch)
    .option('--offline', 'never download; use the verified cache only')
    .option('--oci-delta <PATH>', 'use this local binary instead (also $ODH_OCI_DELTA); not verified')
    .option('--json', 'print one JSON object');
}

async function resolveFrom(flags: ResolveFlags): Promise<UpstreamResolution> {
  const progress = (attempt: number, reason: string) =>
    process.stderr.write(`odh upstream: retry ${attempt} after: ${reason}\n`);
  return resolveUpstream({
    manifestPath: flags.manifest,
    cacheRoot: flags.cache,
    arch: flags.arch,
    offline: flags.offline,
    localBinary: flags.ociDelta,
    http: { onRetry: progress },
  });
}

interface BuildFlags {
  version?: string;
  source?: string;
  package?: string;
  binary?: string;
  tags?: string;
  manifest?: string;
  cache?: string;
  json?: boolean;
}

/** Registers `odh upstream pin|fetch|build|status`: the upstream oci-delta binary (harness/upstream). */
export function register(program: Command): void {
  const upstream = program
    .command('upstream')
    .description(
      'the upstream oci-delta binary: pin a release, fetch and verify it, build it from source, show what is usable',
    );

  upstream
    .command('pin')
    .description(
      'ask the GitHub releases API for a release and pin its binaries (url, sha256, size) in the manifest',
    )
    .option('--version <X>', 'release version (tag v<X>); default the latest release')
    .option('--api-url <URL>', 'GitHub API base URL', DEFAULT_GITHUB_API)
    .option('--manifest <FILE>', 'manifest to rewrite (default harness/upstream/manifest.json)')
    .option('--json', 'print the pinned version, tag and assets as one JSON object')
    .action(async (flags: { version?: string; apiUrl: string; manifest?: string; json?: boolean }) => {
      const m = await pinUpstream({
        version: flags.version,
        apiUrl: flags.apiUrl,
        manifestPath: flags.manifest,
        log: (line) => process.stderr.write(`odh upstream pin: ${line}\n`),
      });
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ version: m.version, tag: m.tag ?? null, assets: m.assets })}\n`,
        );
        return;
      }
      const arches = Object.keys(m.assets).join(', ');
      process.stdout.write(`pinned oci-delta ${m.version} (${m.tag ?? ''}) for ${arches}\n`);
    });

  addResolveFlags(
    upstream
      .command('fetch')
      .description(
        'download the pinned binary into the cache (size and sha256 checked); exit 1 when unavailable',
      )
      .option(
        '--if-pinned',
        'an unpinned manifest is not an error: say so and exit 0 (CI before the first pin)',
      ),
  ).action(async (flags: ResolveFlags) => {
    const local = flags.ociDelta ?? (process.env.ODH_OCI_DELTA || undefined);
    if (flags.ifPinned && local === undefined && (await readManifest(flags.manifest)).version === null) {
      const r = {
        status: 'unavailable',
        reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
      } as const;
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : `${describe(r)}: nothing to fetch\n`);
      return;
    }
    const r = await resolveFrom(flags);
    if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    if (r.status === 'unavailable') throw new OdhError('UNAVAILABLE', `upstream unavailable: ${r.reason}`);
    if (!flags.json) process.stdout.write(`${describe(r)}\n`);
  });

  upstream
    .command('build')
    .description(
      'build oci-delta from source (upstream publishes no binaries): CGO_ENABLED=0 go build -trimpath of a ' +
        'cloned tag or a local tree; refuses a go older than go.mod; caches the binary and records ' +
        'version, source commit, Go version and sha256 in the manifest',
    )
    .option('--version <vX.Y.Z>', 'clone this tag of https://github.com/containers/oci-delta')
    .option('--source <DIR>', 'build this local source tree instead')
    .option('--package <PKG>', 'Go package to build, relative to the source', '.')
    .option('--binary <NAME>', 'binary name', 'oci-delta')
    .option('--tags <TAGS>', 'Go build tags, comma-separated (cgo-free defaults)', DEFAULT_BUILD_TAGS)
    .option('--manifest <FILE>', 'manifest to record the build in (default harness/upstream/manifest.json)')
    .option('--cache <DIR>', 'cache root (default $XDG_CACHE_HOME/oci-delta-harness/upstream)')
    .option('--json', 'print one JSON object')
    .action(async (flags: BuildFlags) => {
      const r = await buildUpstream({
        ...(flags.version !== undefined ? { version: flags.version } : {}),
        ...(flags.source !== undefined ? { source: flags.source } : {}),
        ...(flags.package !== undefined ? { pkg: flags.package } : {}),
        ...(flags.binary !== undefined ? { binary: flags.binary } : {}),
        ...(flags.tags !== undefined ? { tags: flags.tags } : {}),
        ...(flags.manifest !== undefined ? { manifestPath: flags.manifest } : {}),
        ...(flags.cache !== undefined ? { cacheRoot: flags.cache } : {}),
        log: (line) => process.stderr.write(`odh upstream build: ${line}\n`),
      });
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(r)}\n`
          : `built ${r.binary} ${r.version} (${r.commit.slice(0, 12)}, ${r.go}) sha256 ${r.sha256} ${r.path}\n`,
      );
    });

  addResolveFlags(
    upstream
      .command('status')
      .description('say whether an upstream binary is usable and why not (exit 0 either way)'),
  ).action(async (flags: ResolveFlags) => {
    const r = await resolveFrom(flags);
    process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : `${describe(r)}\n`);
  });
}
