/**
 * Packaging facts: the library has an `exports` entry with type declarations, the package carries no
 * tests, runtime dependencies are the ones src/, harness/, fixtures/ and bin/ import (tar-stream is a
 * test-only devDependency), zx is used by the project's scripts, and `odh --version` is package.json's.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/shared.js';

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, { types: string; default: string } | string>;
  types: string;
  files: string[];
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Bare package names imported by the .ts files under `dirs`. */
function imported(dirs: string[]): Set<string> {
  const names = new Set<string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(/\bfrom '([^'.][^']*)'|import\('([^'.][^']*)'\)/g)) {
          const spec = (m[1] ?? m[2])!;
          if (spec.startsWith('node:') || spec === 'oci-delta-harness') continue; // itself, in a doc comment
          names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
    }
  };
  for (const d of dirs) walk(path.join(REPO_ROOT, d));
  return names;
}

describe('package', () => {
  it('exports the library with type declarations (after the build)', async () => {
    const root = pkg.exports['.'] as { types: string; default: string };
    expect(pkg.types).toBe(root.types);
    expect(existsSync(path.join(REPO_ROOT, root.types)), root.types).toBe(true);
    const lib = (await import(path.join(REPO_ROOT, root.default))) as Record<string, unknown>;
    for (const name of [
      'applyDelta',
      'createDelta',
      'inspectDelta',
      'composefsImageId',
      'writeErofs',
      'parseRef',
      'OdhError',
    ])
      expect(typeof lib[name], name).toBe('function');
    expect(readFileSync(path.join(REPO_ROOT, root.types), 'utf8')).toMatch(/applyDelta/);
  });

  it('ships no tests and no scripts', () => {
    for (const f of pkg.files) expect(f).not.toMatch(/^dist\/?$|^dist\/(test|scripts)/);
    expect(pkg.files).toContain('dist/bin');
  });

  it('runtime dependencies are exactly what the shipped code imports', () => {
    const runtime = imported(['src', 'harness', 'fixtures', 'bin']);
    expect(Object.keys(pkg.dependencies).sort()).toEqual([...runtime].sort());
    expect(pkg.devDependencies['tar-stream']).toBeDefined();
    expect(imported(['test']).has('tar-stream')).toBe(true);
    // zx is a devDependency because the project's scripts use it.
    expect(pkg.devDependencies.zx).toBeDefined();
    expect(imported(['scripts']).has('zx')).toBe(true);
  });

  it("odh --version prints package.json's version", async () => {
    const r = await execa('node', [path.join(REPO_ROOT, 'dist', 'bin', 'odh.js'), '--version']);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});
