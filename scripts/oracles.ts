/**
 * `npm run oracles [-- --force]`: builds the foreign reference implementations into `.oracles/`
 * (or `$ODH_ORACLES`): C composefs 1.0.8 and Go containers/tar-diff v0.1.2 (harness/oracles.ts).
 *
 * Sources, in order: `$ODH_ORACLE_SRC`, else `../shared/oracles` beside the checkout (unmodified
 * upstream snapshots with their own `build.sh`, offline), else a clone of the upstream repositories
 * at the pinned tags (needs network; built here with meson/ninja and `go build`).
 * A build whose recorded source equals the requested one is kept unless `--force`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { $ } from 'zx';
import { ORACLE_NAMES, ORACLE_PINS, repoRoot } from '../harness/oracles.js';

$.verbose = false;

interface Stamp {
  source: string;
  composefs: string;
  'tar-diff': string;
}

function say(line: string): void {
  process.stderr.write(`oracles: ${line}\n`);
}

function fail(line: string): never {
  say(line);
  process.exit(1);
}

async function readStamp(out: string): Promise<Stamp | undefined> {
  try {
    return JSON.parse(await readFile(path.join(out, 'VERSIONS.json'), 'utf8')) as Stamp;
  } catch {
    return undefined;
  }
}

function complete(out: string): boolean {
  return ORACLE_NAMES.every((t) => existsSync(path.join(out, 'bin', t)));
}

/** Builds from a folder laid out like ../shared/oracles (its own build.sh next to the sources). */
async function buildFromSourceDir(src: string, out: string): Promise<void> {
  const script = path.join(src, 'build.sh');
  if (!existsSync(script)) fail(`${src} has no build.sh (expected the layout of ../shared/oracles)`);
  const r = await $`bash ${script} ${out}`.nothrow();
  if (r.exitCode !== 0) fail(`build.sh failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
}

/** Clones the pinned upstream tags and builds them (network needed: git and the Go module proxy). */
async function buildFromUpstream(out: string): Promise<void> {
  const work = path.join(out, 'work');
  await rm(work, { recursive: true, force: true });
  await mkdir(path.join(out, 'bin'), { recursive: true });
  await mkdir(path.join(out, 'lib'), { recursive: true });
  const cfs = path.join(work, 'composefs');
  const td = path.join(work, 'tar-diff');
  const clone = async (repo: string, tag: string, dir: string) => {
    const r = await $`git clone --quiet --depth 1 --branch ${tag} ${repo} ${dir}`.nothrow();
    if (r.exitCode !== 0) {
      fail(
        `cannot clone ${repo} at ${tag} (${r.stderr.trim().split('\n').pop() ?? ''}); offline, give the ` +
          'sources with ODH_ORACLE_SRC=DIR (the layout of ../shared/oracles); tests also find tools built ' +
          'elsewhere through ODH_ORACLES=DIR or PATH',
      );
    }
  };
  await clone(ORACLE_PINS.composefs.repo, ORACLE_PINS.composefs.tag, cfs);
  await clone(ORACLE_PINS['tar-diff'].repo, ORACLE_PINS['tar-diff'].tag, td);
  const head = (await $`git -C ${td} rev-parse HEAD`).stdout.trim();
  if (!head.startsWith(ORACLE_PINS['tar-diff'].commit)) {
    fail(`tar-diff ${ORACLE_PINS['tar-diff'].tag} is ${head}, expected ${ORACLE_PINS['tar-diff'].commit}`);
  }
  // composefs: the library and tools only (its test suite needs assets that are not in the tag).
  const meson =
    await $`meson setup ${path.join(cfs, 'build')} ${cfs} -Dfuse=disabled -Dman=disabled ${'-Dc_link_args=-Wl,-rpath,$ORIGIN/../lib'}`.nothrow();
  if (meson.exitCode !== 0) fail(`meson setup failed: ${meson.stderr.trim().split('\n').pop() ?? ''}`);
  const ninja = await $`ninja -C ${path.join(cfs, 'build')}`.nothrow();
  if (ninja.exitCode !== 0) fail(`ninja failed: ${ninja.stdout.trim().split('\n').pop() ?? ''}`);
  await $`sh -c ${'cp -P "$1"/libcomposefs/libcomposefs.so* "$2"/'} sh ${path.join(cfs, 'build')} ${path.join(out, 'lib')}`;
  for (const t of ['mkcomposefs', 'composefs-info', 'composefs-dump']) {
    await $`cp ${path.join(cfs, 'build', 'tools', t)} ${path.join(out, 'bin', t)}`;
  }
  for (const t of ['tar-diff', 'tar-patch']) {
    const r = await $({
      cwd: td,
      env: { ...process.env, CGO_ENABLED: '0' },
    })`go build -trimpath -o ${path.join(out, 'bin', t)} ./cmd/${t}`.nothrow();
    if (r.exitCode !== 0) fail(`go build ${t} failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  }
  await rm(work, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  const out = path.resolve(process.env.ODH_ORACLES ?? path.join(repoRoot(), '.oracles'));
  const shared = path.resolve(repoRoot(), '..', 'shared', 'oracles');
  const srcDir = process.env.ODH_ORACLE_SRC
    ? path.resolve(process.env.ODH_ORACLE_SRC)
    : existsSync(shared)
      ? shared
      : undefined;
  const source = srcDir ?? `upstream git (${ORACLE_PINS.composefs.tag}, ${ORACLE_PINS['tar-diff'].tag})`;

  const stamp = await readStamp(out);
  if (!force && stamp?.source === source && complete(out)) {
    say(`up to date in ${out} (from ${source}; --force rebuilds)`);
  } else {
    say(`building into ${out} from ${source}`);
    await mkdir(out, { recursive: true });
    if (srcDir) await buildFromSourceDir(srcDir, out);
    else await buildFromUpstream(out);
    if (!complete(out)) fail(`build finished but ${out}/bin lacks some of ${ORACLE_NAMES.join(', ')}`);
    const versions: Stamp = {
      source,
      composefs: ORACLE_PINS.composefs.version,
      'tar-diff': `${ORACLE_PINS['tar-diff'].version} (${ORACLE_PINS['tar-diff'].commit})`,
    };
    await writeFile(path.join(out, 'VERSIONS.json'), `${JSON.stringify(versions, null, 2)}\n`);
  }
  for (const t of ORACLE_NAMES) process.stdout.write(`${t} ${path.join(out, 'bin', t)}\n`);
}

await main();
