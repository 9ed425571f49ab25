/**
 * Foreign reference implementations ("oracles") the harness runs beside our own code: C composefs
 * 1.0.8 (`mkcomposefs`, `composefs-info`, `composefs-dump`) and Go containers/tar-diff v0.1.2
 * (`tar-diff`, `tar-patch`). `npm run oracles` builds them into `.oracles/` (scripts/oracles.ts).
 *
 * Where a tool is looked for, in order: `$ODH_ORACLES/bin` (when set), the repository's
 * `.oracles/bin`, then PATH. Versions come from `VERSIONS.json` written by the build, or from the
 * tool itself when it can say (tar-diff `-version`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTool, pathDirs } from './tool-path.js';

export const ORACLE_NAMES = [
  'mkcomposefs',
  'composefs-info',
  'composefs-dump',
  'tar-diff',
  'tar-patch',
] as const;
export type OracleName = (typeof ORACLE_NAMES)[number];

/** Upstream versions the build pins (scripts/oracles.ts builds exactly these). */
export const ORACLE_PINS = {
  composefs: { repo: 'https://github.com/composefs/composefs', tag: 'v1.0.8', version: '1.0.8' },
  'tar-diff': {
    repo: 'https://github.com/containers/tar-diff',
    tag: 'v0.1.2',
    commit: 'f08980f',
    version: '0.1.2',
  },
} as const;

const PROJECT: Record<OracleName, keyof typeof ORACLE_PINS> = {
  mkcomposefs: 'composefs',
  'composefs-info': 'composefs',
  'composefs-dump': 'composefs',
  'tar-diff': 'tar-diff',
  'tar-patch': 'tar-diff',
};

export type Oracle =
  | { name: OracleName; available: true; path: string; version: string }
  | { name: OracleName; available: false; reason: string };

/** Repository root: the first ancestor of this module holding package.json (works from dist/ too). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('oracles: repository root (package.json) not found');
    dir = up;
  }
}

/** Default output folder of `npm run oracles`. */
export function defaultOraclesDir(): string {
  return path.join(repoRoot(), '.oracles');
}

/** Folders searched for oracle binaries, most specific first. */
export function oracleBinDirs(): string[] {
  const dirs: string[] = [];
  if (process.env.ODH_ORACLES) dirs.push(path.join(path.resolve(process.env.ODH_ORACLES), 'bin'));
  dirs.push(path.join(defaultOraclesDir(), 'bin'));
  return dirs;
}

/** Versions recorded by the build beside `bin/` (VERSIONS.json: project → version string). */
function recordedVersion(binPath: string, name: OracleName): string | undefined {
  const file = path.join(path.dirname(path.dirname(binPath)), 'VERSIONS.json');
  try {
    const v = (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>)[PROJECT[name]];
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** What the tool says of itself; only the Go tools can tell (`-version`). */
function selfReportedVersion(binPath: string, name: OracleName): string | undefined {
  if (PROJECT[name] !== 'tar-diff') return undefined;
  const r = spawnSync(binPath, ['-version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /v?(\d+\.\d+\.\d+\S*)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return m ? m[1] : undefined;
}

const cache = new Map<OracleName, Oracle>();

/** Finds one oracle (memoised per process). */
export function findOracle(name: OracleName): Oracle {
  const hit = cache.get(name);
  if (hit) return hit;
  const found = findTool(name, [...oracleBinDirs(), ...pathDirs()]);
  const oracle: Oracle = found
    ? {
        name,
        available: true,
        path: found,
        version: recordedVersion(found, name) ?? selfReportedVersion(found, name) ?? 'unknown version',
      }
    : {
        name,
        available: false,
        reason: `${name} not found in ${oracleBinDirs().join(', ')} or on PATH (build it with: npm run oracles)`,
      };
  cache.set(name, oracle);
  return oracle;
}

/** Every oracle, in a fixed order, for reports and `--require`. */
export function allOracles(): Oracle[] {
  return ORACLE_NAMES.map(findOracle);
}
