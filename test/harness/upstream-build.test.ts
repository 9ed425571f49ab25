/**
 * `odh upstream build` end to end on a real Go module, offline: a copy of containers/tar-diff
 * v0.1.2 (../shared/oracles) built by the same code path as oci-delta, in GOPATH mode against
 * Debian's Go libraries (no module download is possible here). Cloning `--version vX.Y.Z` needs
 * network and is exercised only by .github/workflows/conformance.yml.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUpstream } from '../../harness/upstream/fetch.js';
import { readManifest, writeManifest } from '../../harness/upstream/manifest.js';
import { hasTool } from '../helpers/tools.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { standinBinaryScript } from './upstream-standin.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const TAR_DIFF_SRC = path.join(
  process.env.ODH_ORACLE_SRC
    ? path.resolve(process.env.ODH_ORACLE_SRC)
    : path.resolve(REPO_ROOT, '..', 'shared', 'oracles'),
  'tar-diff-0.1.2',
);
const GOCODE = '/usr/share/gocode';
function canBuildHere(): boolean {
  if (!hasTool('go', 'golang-go')) return false;
  const missing = [TAR_DIFF_SRC, path.join(GOCODE, 'src/github.com/klauspost/compress')].filter(
    (p) => !existsSync(p),
  );
  if (missing.length) {
    process.stderr.write(`\n*** SKIPPING odh upstream build tests: missing ${missing.join(', ')} ***\n\n`);
    return false;
  }
  return true;
}
const canBuild = canBuildHere();

let work: string;
let src: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  if (!canBuild) return; // skipped loudly above (a clone without ../shared has no Go module source)
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-upstream-build-test-'));
  const gopath = path.join(work, 'gopath');
  src = path.join(gopath, 'src', 'github.com', 'containers', 'tar-diff');
  await fs.mkdir(path.dirname(src), { recursive: true });
  await fs.cp(TAR_DIFF_SRC, src, { recursive: true });
  await execa('chmod', ['-R', 'u+w', work]);
  const git = (...a: string[]) =>
    execa('git', ['-c', 'user.email=t@example.org', '-c', 'user.name=t', ...a], { cwd: src });
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-qm', 'tar-diff 0.1.2 snapshot');
  await git('tag', 'v0.1.2');
  await fs.copyFile(path.join(REPO_ROOT, 'harness', 'upstream', 'manifest.json'), path.join(work, 'm.json'));
  env = {
    PATH: process.env.PATH,
    HOME: work,
    GO111MODULE: 'off',
    GOPATH: `${gopath}:${GOCODE}`,
    GOFLAGS: '',
    // A cache shared between runs keeps this test at seconds once warm.
    GOCACHE: path.join(os.tmpdir(), 'odh-test-gocache'),
  };
}, 60_000);

afterAll(() => (work ? fs.rm(work, { recursive: true, force: true }) : undefined));

const build = (source: string, extra: string[] = []) =>
  execa(
    'node',
    [
      ODH,
      'upstream',
      'build',
      '--source',
      source,
      '--package',
      './cmd/tar-diff',
      '--binary',
      'tar-diff',
      '--tags',
      '',
      '--manifest',
      path.join(work, 'm.json'),
      '--cache',
      path.join(work, 'cache'),
      ...extra,
    ],
    { reject: false, env, extendEnv: false },
  );

describe.skipIf(!canBuild)('odh upstream build --source (real Go module, offline)', () => {
  it('builds a static binary, caches it and records version, commit, Go version and sha256', async () => {
    const r = await build(src, ['--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, string | number>;
    const bin = out.path as string;
    expect(bin).toBe(path.join(work, 'cache', 'build', '0.1.2', 'x86_64', 'tar-diff'));
    const bytes = await fs.readFile(bin);
    expect(out.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    // Static: `file` says so, and the ELF has no PT_INTERP (no dynamic loader).
    expect((await execa('file', [bin])).stdout).toMatch(/statically linked/);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    // It is the real tool.
    expect((await execa(bin, ['-version'])).stdout).toMatch(/^tar-diff /);
    const head = (await execa('git', ['rev-parse', 'HEAD'], { cwd: src })).stdout.trim();
    const goVer = (await execa('go', ['env', 'GOVERSION'], { env, extendEnv: false })).stdout.trim();
    const m = await readManifest(path.join(work, 'm.json'));
    expect(m.builds?.x86_64).toEqual({
      version: '0.1.2',
      commit: head,
      go: goVer,
      binary: 'tar-diff',
      package: './cmd/tar-diff',
      tags: '',
      sha256: out.sha256,
      size: bytes.length,
    });
    expect(r.stderr).toMatch(/CGO_ENABLED=0 go build -trimpath/);
    expect(out.cached).toBe(false);
    // Like fetch, the cache is reused only while it verifies: same clean commit, Go and flags.
    const again = await build(src, ['--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ cached: true, sha256: out.sha256, path: bin });
    await fs.appendFile(bin, 'x');
    const rebuilt = await build(src, ['--json']);
    expect(JSON.parse(rebuilt.stdout)).toMatchObject({ cached: false, sha256: out.sha256 });
  }, 600_000);

  it("a go older than go.mod's go directive: one line, exit 1, nothing recorded", async () => {
    const old = path.join(work, 'too-new');
    await fs.cp(src, old, { recursive: true });
    const gomod = path.join(old, 'go.mod');
    await fs.writeFile(gomod, (await fs.readFile(gomod, 'utf8')).replace(/^go .*$/m, 'go 1.99'));
    const before = await fs.readFile(path.join(work, 'm.json'), 'utf8');
    const r = await build(old);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('odh upstream build: '));
    expect(lines).toEqual([
      expect.stringMatching(
        /^odh: error: go1\.\d+\S* is older than go\.mod's "go 1\.99" \(.*go\.mod\): install Go 1\.99 or newer$/,
      ),
    ]);
    expect(await fs.readFile(path.join(work, 'm.json'), 'utf8')).toBe(before);
  });

  it('neither or both of --version/--source is a usage error; a bad tag is refused before cloning', async () => {
    const none = await execa('node', [ODH, 'upstream', 'build'], { reject: false, env, extendEnv: false });
    expect(none.exitCode).not.toBe(0);
    expect(none.stderr).toMatch(/exactly one of --version vX\.Y\.Z or --source DIR/);
    const bad = await execa('node', [ODH, 'upstream', 'build', '--version', 'main; rm -rf /'], {
      reject: false,
      env,
      extendEnv: false,
    });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/is not a tag like v0\.6\.0/);
  });
});

describe('a built binary in the manifest resolves as the upstream implementation', () => {
  it('available (source build) when the cached file matches; unavailable when it does not', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-upstream-built-'));
    try {
      const script = Buffer.from(standinBinaryScript({ version: 'oci-delta version 0.6.0' }));
      const file = path.join(dir, 'cache', 'build', '0.6.0', 'x86_64', 'oci-delta');
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, script, { mode: 0o755 });
      const manifestPath = path.join(dir, 'm.json');
      await writeManifest(
        {
          repository: 'containers/oci-delta',
          version: null,
          assets: {},
          builds: {
            x86_64: {
              version: '0.6.0',
              commit: 'c'.repeat(40),
              go: 'go1.26.0',
              binary: 'oci-delta',
              package: '.',
              tags: 'no_ostree',
              sha256: createHash('sha256').update(script).digest('hex'),
              size: script.length,
            },
          },
        },
        manifestPath,
      );
      const ok = await resolveUpstream({
        manifestPath,
        cacheRoot: path.join(dir, 'cache'),
        arch: 'x86_64',
        env: {},
      });
      expect(ok).toMatchObject({ status: 'available', source: 'build', version: '0.6.0', path: file });
      await fs.appendFile(file, '\n# edited\n');
      const bad = await resolveUpstream({
        manifestPath,
        cacheRoot: path.join(dir, 'cache'),
        arch: 'x86_64',
        env: {},
      });
      expect(bad).toMatchObject({ status: 'unavailable' });
      expect((bad as { reason: string }).reason).toMatch(
        /differs from the manifest \(run odh upstream build\)/,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
