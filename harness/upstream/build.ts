/**
 * `odh upstream build`: upstream oci-delta publishes no binaries (its releases carry source and
 * vendor tarballs; users get RPMs), so the harness builds one from source: a tag cloned from
 * containers/oci-delta (`--version vX.Y.Z`) or a local source tree (`--source DIR`), compiled with
 * `CGO_ENABLED=0 go build -trimpath` (static; the `no_ostree` tag replaces the cgo/libostree data
 * source, spec oci-delta §3.2). A `go` older than the module's `go` directive is refused up front.
 * The binary is cached like `fetch` does ($XDG_CACHE_HOME/oci-delta-harness/upstream/build/…) and
 * recorded in the manifest: version, source commit, Go version, sha256, size.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OdhError } from '../../src/util/errors.js';
import { builtBinaryPath, defaultCacheRoot, sha256File } from './cache.js';
import { hostArch, readManifest, writeManifest } from './manifest.js';
import { UPSTREAM_REPOSITORY } from './manifest.js';
import type { UpstreamArch, UpstreamBuild } from './types.js';
import { runTempDir } from '../../src/util/run.js';

/**
 * Tags for a cgo-free build: `no_ostree` swaps upstream's libostree data source for its stub (spec
 * oci-delta §3.2); the others are the containers/image and containers/storage switches that avoid
 * gpgme and the btrfs/devicemapper drivers, which need cgo (harmless where unused).
 */
export const DEFAULT_BUILD_TAGS =
  'no_ostree,containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper';

export interface BuildOptions {
  /** A release tag to clone (`vX.Y.Z`); exclusive with `source`. */
  version?: string;
  /** A local Go source tree (its go.mod, if any, decides the Go check). */
  source?: string;
  /** Go package to build, relative to the source (default `.`, where upstream's main package is). */
  pkg?: string;
  /** Output binary name (default `oci-delta`). */
  binary?: string;
  /** Build tags (default DEFAULT_BUILD_TAGS). */
  tags?: string;
  /** Git URL for `version` (default https://github.com/containers/oci-delta). */
  repoUrl?: string;
  cacheRoot?: string;
  manifestPath?: string;
  /** The `go` command (default `go` on PATH). */
  go?: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface BuildResult extends UpstreamBuild {
  path: string;
  /** True when the recorded build of the same clean commit, Go and flags was reused from the cache. */
  cached: boolean;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  spawnError?: string;
}

async function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-16384)));
  try {
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout, stderr };
  } catch (e) {
    return { code: null, stdout, stderr, spawnError: (e as Error).message };
  }
}

const lastLine = (s: string) =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .pop() ?? '';

/** `go1.22.3` / `go 1.22` / `1.22rc1` → [1, 22, 3]. */
export function parseGoVersion(v: string): number[] | null {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

export function goOlderThan(have: number[], want: number[]): boolean {
  for (let i = 0; i < 3; i++) if ((have[i] ?? 0) !== (want[i] ?? 0)) return (have[i] ?? 0) < (want[i] ?? 0);
  return false;
}

/** The `go` directive of DIR/go.mod, or null without a go.mod (GOPATH-mode trees). */
export async function goDirective(dir: string): Promise<string | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, 'go.mod'), 'utf8');
  } catch {
    return null;
  }
  const m = /^go\s+(\S+)\s*$/m.exec(text);
  return m ? m[1]! : null;
}

function checkVersion(v: string): string {
  if (!/^v\d+\.\d+\.\d+[\w.+-]*$/.test(v))
    throw new OdhError('USAGE', `--version ${JSON.stringify(v)} is not a tag like v0.6.0`);
  return v;
}

async function goVersion(go: string, env: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(go, ['env', 'GOVERSION'], os.tmpdir(), env);
  if (r.code !== 0 || !parseGoVersion(r.stdout)) {
    throw new OdhError(
      'UNAVAILABLE',
      `cannot run ${go}: ${r.spawnError ?? lastLine(r.stderr) ?? 'no version'}`,
    );
  }
  return r.stdout.trim();
}

/** Source commit (git HEAD) and the version it describes, when the tree is a git checkout. */
async function gitFacts(dir: string, env: NodeJS.ProcessEnv): Promise<{ commit: string; describe?: string }> {
  const head = await run('git', ['-C', dir, 'rev-parse', 'HEAD'], dir, env);
  if (head.code !== 0) return { commit: 'unknown (not a git checkout)' };
  const d = await run('git', ['-C', dir, 'describe', '--tags', '--always', '--dirty'], dir, env);
  return { commit: head.stdout.trim(), ...(d.code === 0 ? { describe: d.stdout.trim() } : {}) };
}

export async function buildUpstream(o: BuildOptions): Promise<BuildResult> {
  if ((o.version === undefined) === (o.source === undefined)) {
    throw new OdhError('USAGE', 'odh upstream build needs exactly one of --version vX.Y.Z or --source DIR');
  }
  const env = { ...(o.env ?? process.env) };
  const go = o.go ?? 'go';
  const log = o.log ?? (() => {});
  const arch: UpstreamArch | null = hostArch();
  if (arch === null) throw new OdhError('UNSUPPORTED', `no build target for architecture ${process.arch}`);
  const { dir: work, cleanup } = await runTempDir('upstream-build');
  try {
    let src: string;
    if (o.version !== undefined) {
      const tag = checkVersion(o.version);
      src = path.join(work, 'src');
      const url = o.repoUrl ?? `https://github.com/${UPSTREAM_REPOSITORY}`;
      log(`cloning ${url} ${tag}`);
      const c = await run('git', ['clone', '--quiet', '--depth', '1', '--branch', tag, url, src], work, env);
      if (c.code !== 0)
        throw new OdhError('UNAVAILABLE', `git clone ${url} ${tag}: ${c.spawnError ?? lastLine(c.stderr)}`);
    } else {
      src = path.resolve(o.source!);
      const st = await fs.stat(src).catch(() => null);
      if (!st?.isDirectory()) throw new OdhError('NOT_FOUND', `--source ${src} is not a directory`);
    }
    const goVer = await goVersion(go, env);
    const directive = await goDirective(src);
    if (directive !== null) {
      const want = parseGoVersion(directive);
      if (want && goOlderThan(parseGoVersion(goVer)!, want)) {
        throw new OdhError(
          'UNSUPPORTED',
          `${goVer} is older than go.mod's "go ${directive}" (${path.join(src, 'go.mod')}): install Go ${directive} or newer`,
        );
      }
    }
    const facts = await gitFacts(src, env);
    const version = (o.version ?? facts.describe ?? 'unknown').replace(/^v/, '');
    const binary = o.binary ?? 'oci-delta';
    const tags = o.tags ?? DEFAULT_BUILD_TAGS;
    const pkg = o.pkg ?? '.';
    const cacheRoot = o.cacheRoot ?? defaultCacheRoot(env);
    const manifest = await readManifest(o.manifestPath);
    const reused = await reuseCached(manifest.builds?.[arch], cacheRoot, arch, {
      version,
      commit: facts.commit,
      clean: facts.describe !== undefined && !facts.describe.endsWith('-dirty'),
      go: goVer,
      binary,
      package: pkg,
      tags,
    });
    if (reused) {
      log(`cached: ${reused.path} (same commit, Go and flags; sha256 checked)`);
      return reused;
    }
    const out = path.join(work, binary);
    const args = ['build', '-trimpath', ...(tags ? ['-tags', tags] : []), '-o', out, pkg];
    log(`${goVer}: CGO_ENABLED=0 go ${args.join(' ')} (in ${src})`);
    const b = await run(go, args, src, { ...env, CGO_ENABLED: '0' });
    if (b.code !== 0) {
      throw new OdhError('UPSTREAM_FAILED', `go build failed: ${b.spawnError ?? lastLine(b.stderr)}`, {
        file: src,
      });
    }
    const { size, sha256 } = await sha256File(out);
    const dest = builtBinaryPath(cacheRoot, { version, binary }, arch);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.copyFile(out, `${dest}.tmp`);
    await fs.chmod(`${dest}.tmp`, 0o755);
    await fs.rename(`${dest}.tmp`, dest);
    const entry: UpstreamBuild = {
      version,
      commit: facts.commit,
      go: goVer,
      binary,
      package: pkg,
      tags,
      sha256,
      size,
    };
    manifest.builds = { ...manifest.builds, [arch]: entry };
    await writeManifest(manifest, o.manifestPath);
    return { ...entry, path: dest, cached: false };
  } finally {
    await cleanup();
  }
}

/** The recorded build, when it is of the same clean commit with the same Go and flags and its file still matches. */
async function reuseCached(
  b: UpstreamBuild | undefined,
  cacheRoot: string,
  arch: UpstreamArch,
  want: Omit<UpstreamBuild, 'sha256' | 'size'> & { clean: boolean },
): Promise<BuildResult | undefined> {
  if (!b || !want.clean) return undefined;
  const same = (['version', 'commit', 'go', 'binary', 'package', 'tags'] as const).every(
    (k) => b[k] === want[k],
  );
  if (!same) return undefined;
  const file = builtBinaryPath(cacheRoot, b, arch);
  const got = await sha256File(file).catch(() => null);
  if (!got || got.sha256 !== b.sha256 || got.size !== b.size) return undefined;
  return { ...b, path: file, cached: true };
}
