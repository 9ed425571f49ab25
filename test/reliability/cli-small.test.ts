/**
 * The smaller reliability items of issue 13 and the one output policy of issue 12 (refuse an existing
 * output unless --force), each through the real CLI.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vectorPath } from '../helpers/shared.js';
import { debris, errorLines, removeTree, runOdh, startOdh, tempRoot } from './run.js';

let root: string;
let tmp: string;
const v = (name: string, ...rest: string[]) => vectorPath('tardiff', name, ...rest);

beforeAll(() => {
  root = tempRoot('odh-test-clismall-');
  tmp = path.join(root, 'tmp');
  mkdirSync(tmp);
});
afterAll(() => removeTree(root));

const odh = (args: string[]) => runOdh(args, { TMPDIR: tmp });

/** One error line; `code` 2 where the input itself is of the wrong kind (a usage error, the CLI contract). */
function oneError(r: { code: number | null; stderr: string }, code = 1): string {
  expect(r.code, r.stderr).toBe(code);
  const lines = errorLines(r.stderr);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('inputs of the wrong kind are named', () => {
  it('a directory given as the delta of apply', async () => {
    const d = path.join(root, 'adir');
    mkdirSync(d);
    const r = await odh(['apply', '--source-dir', root, d, path.join(root, 'o.tar')]);
    const line = oneError(r, 2);
    expect(line).toContain(JSON.stringify(d));
    expect(line).toMatch(/not a regular file.*oci:/);
  });

  it('a directory given as the delta of tar-patch', async () => {
    const r = await odh(['tar-patch', '-q', root, v('v1-two-files', 'source'), path.join(root, 't.out')]);
    expect(oneError(r, 2)).toMatch(/tar-diff is a directory.*path/);
  });

  it('a FIFO delta is read like stdin by tar-patch', async () => {
    const fifo = path.join(root, 'd.fifo');
    execFileSync('mkfifo', [fifo]);
    const out = path.join(root, 'fifo.out');
    const r = startOdh(['tar-patch', '-q', fifo, v('v1-two-files', 'source'), out], { TMPDIR: tmp });
    await fs.writeFile(fifo, readFileSync(v('v1-two-files', 'delta.tardiff')));
    const e = await r.exited;
    expect(e.code, r.stderr()).toBe(0);
    expect(readFileSync(out).equals(readFileSync(v('v1-two-files', 'expected.bin')))).toBe(true);
  });
});

describe('one output policy: an existing output is refused unless --force', () => {
  it('composefs mkfs', async () => {
    const dump = path.join(root, 'tiny.dump');
    writeFileSync(dump, '/ 0 40755 2 0 0 0 0.0 - - -\n');
    const out = path.join(root, 'tiny.img');
    writeFileSync(out, 'keep');
    expect(oneError(await odh(['composefs', 'mkfs', '--from-file', dump, out]))).toMatch(
      /output path already exists.*--force/,
    );
    expect(readFileSync(out, 'utf8')).toBe('keep');
    const f = await odh(['composefs', 'mkfs', '--force', '--from-file', dump, out]);
    expect(f.code, f.stderr).toBe(0);
    expect(readFileSync(out).length).toBeGreaterThan(4);
    expect(debris(root)).toEqual([]);
  });

  it('tar-patch', async () => {
    const out = path.join(root, 'tp.out');
    writeFileSync(out, 'keep');
    const args = [v('v1-two-files', 'delta.tardiff'), v('v1-two-files', 'source'), out];
    expect(oneError(await odh(['tar-patch', '-q', ...args]))).toMatch(/already exists/);
    expect(readFileSync(out, 'utf8')).toBe('keep');
    expect((await odh(['tar-patch', '-q', '--force', ...args])).code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(v('v1-two-files', 'expected.bin')))).toBe(true);
  });

  it('apply and create document --force', async () => {
    for (const cmd of ['apply', 'create']) {
      expect((await odh([cmd, '--help'])).stdout).toMatch(/--force\s+replace an existing output file/);
    }
  });
});

describe('composefs id and dumpfile read docker:// references', () => {
  it('--help names docker:// and --tls-verify, --timeout; --tls-verify is accepted', async () => {
    for (const cmd of ['id', 'dumpfile']) {
      const h = await odh(['composefs', cmd, '--help']);
      expect(h.stdout).toContain('docker://HOST/REPO');
      expect(h.stdout).toContain('--tls-verify');
      expect(h.stdout).toContain('--timeout');
    }
    const r = await odh(['composefs', 'id', '--tls-verify', 'false', path.join(root, 'missing.tar')]);
    expect(oneError(r)).not.toMatch(/unknown option/);
  });
});

/** A read-only tmpfs needs root and mount(2); elsewhere this skips loudly. */
function mountReadOnly(dir: string): boolean {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir]).status === 0;
}

describe('fixtures build on a read-only file system', () => {
  it('says so in one line', async (ctx) => {
    const ro = path.join(root, 'ro');
    if (!mountReadOnly(ro)) {
      console.warn('SKIP: cannot mount a read-only tmpfs (needs root and mount(2))');
      ctx.skip();
    }
    try {
      const r = await odh(['fixtures', 'build', '--cache', path.join(ro, 'cache'), 'small-files-edges']);
      expect(oneError(r)).toMatch(/cannot write the fixture cache: read-only file system/);
    } finally {
      spawnSync('umount', [ro]);
    }
    expect(existsSync(path.join(ro, 'cache'))).toBe(false);
  });
});
