import { promises as fs, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { makeTempDir } from '../../src/util/atomic.js';
import { REPO_ROOT, vectorPath } from '../helpers/shared.js';

/** The built CLI (`npm test` runs `tsc` first; run `npx tsc -p .` before running this file alone). */
const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const v = (name: string, ...rest: string[]) => vectorPath('tardiff', name, ...rest);

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  tmp = await makeTempDir('odh-tarpatch-');
});
afterAll(async () => {
  await tmp.cleanup();
});

const odh = (args: string[], input?: Buffer) =>
  execa('node', [ODH, 'tar-patch', ...args], { reject: false, encoding: 'buffer', input, cwd: tmp.dir });

async function leftovers(): Promise<string[]> {
  return (await fs.readdir(tmp.dir)).filter((n) => n.startsWith('.odh-tmp-'));
}

describe('odh tar-patch DELTA SRCDIR OUTPUT', () => {
  it('writes the rebuilt bytes to a file', async () => {
    const out = path.join(tmp.dir, 'out-32k.bin');
    const r = await odh([v('v2-zstddict-32k', 'delta.tardiff'), v('v2-zstddict-32k', 'source'), out]);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(out).equals(readFileSync(v('v2-zstddict-32k', 'expected.bin')))).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  it('- writes to stdout and reads the delta from stdin', async () => {
    const r = await odh(['-q', v('v1-two-files', 'delta.tardiff'), v('v1-two-files', 'source'), '-']);
    expect(r.exitCode).toBe(0);
    expect(Buffer.from(r.stdout).equals(readFileSync(v('v1-two-files', 'expected.bin')))).toBe(true);
    expect(r.stderr.length).toBe(0);
    const s = await odh(
      ['-q', '-', v('v1-copy-seek-add', 'source'), '-'],
      readFileSync(v('v1-copy-seek-add', 'delta.tardiff')),
    );
    expect(s.exitCode).toBe(0);
    expect([...s.stdout]).toEqual([10, 20, 4, 1, 70, 20, 30]);
  });

  it('on error: exit 1, one-line message, no output file left', async () => {
    for (const name of ['missing-source', 'copy-past-eof', 'truncated-data', 'window-too-large']) {
      const out = path.join(tmp.dir, `${name}.out`);
      const src = existsSync(v(name, 'source')) ? v(name, 'source') : v('v1-two-files', 'source');
      const r = await odh(['-q', v(name, 'delta.tardiff'), src, out]);
      expect(r.exitCode).toBe(1);
      const err = Buffer.from(r.stderr).toString();
      expect(err).toMatch(/^odh: error: [^\n]+$/); // one line (execa strips the final newline)
      expect(err.toLowerCase()).toContain(readFileSync(v(name, 'error.txt'), 'utf8').trim().toLowerCase());
      expect(existsSync(out)).toBe(false);
    }
    expect(await leftovers()).toEqual([]);
  });

  it('refuses an existing output unless --force, and a missing delta or source dir', async () => {
    const out = path.join(tmp.dir, 'exists.bin');
    await fs.writeFile(out, 'old');
    const args = [v('v1-data-only', 'delta.tardiff'), v('v1-two-files', 'source'), out];
    const r = await odh(['-q', ...args]);
    expect(r.exitCode).toBe(1);
    expect(readFileSync(out, 'utf8')).toBe('old');
    const f = await odh(['-q', '--force', ...args]);
    expect(f.exitCode).toBe(0);
    expect(readFileSync(out).equals(readFileSync(v('v1-data-only', 'expected.bin')))).toBe(true);
    const nd = await odh(['-q', path.join(tmp.dir, 'none.tardiff'), v('v1-two-files', 'source'), '-']);
    expect(nd.exitCode).toBe(1);
    expect(Buffer.from(nd.stderr).toString()).toMatch(/tar-diff file not found/);
    const ns = await odh(['-q', v('v1-data-only', 'delta.tardiff'), path.join(tmp.dir, 'nodir'), '-']);
    expect(ns.exitCode).toBe(1);
    expect(Buffer.from(ns.stderr).toString()).toMatch(/source directory/);
  });

  it('a symlink escaping the source dir is refused (UNSAFE_PATH), no output left', async () => {
    const root = path.join(tmp.dir, 'rootfs');
    await fs.mkdir(root);
    await fs.writeFile(path.join(tmp.dir, 'secret.txt'), 'SECRET');
    await fs.symlink('../secret.txt', path.join(root, 'secret.txt'));
    const out = path.join(tmp.dir, 'escape.out');
    // v1-traversal-cleaned opens '../secret.txt' → 'secret.txt', here a symlink pointing outside
    const r = await odh(['-q', v('v1-traversal-cleaned', 'delta.tardiff'), root, out]);
    expect(r.exitCode).toBe(1);
    expect(Buffer.from(r.stderr).toString()).toMatch(/escapes the source directory/);
    expect(existsSync(out)).toBe(false);
  });
});
