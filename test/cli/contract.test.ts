/**
 * The one CLI contract (src/cli/contract.ts), case by case as a user meets it: every error case of
 * issue 12's "Why" list with its one-line message and exit status, run against the built `odh`.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildScenario, type Scenario } from '../delta/create-scenario.js';
import { buildOciImage, type BuiltImage } from '../helpers/images.js';
import { vectorPath } from '../helpers/shared.js';
import { ODH, leftovers, odh, removeTree, tempRoot, type RunResult } from './fixture.js';

let root: string;
let sc: Scenario;
let delta: string;
let image: string;
/** A plain image (many small files) for the composefs commands. */
let tree: BuiltImage;

beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  root = tempRoot('odh-contract-');
  sc = await buildScenario(path.join(root, 'images'));
  delta = path.join(root, 'delta.tar');
  const made = await odh(['create', sc.old.archiveRef, sc.new.ociRef, delta], root);
  expect(made.exitCode, made.stderr).toBe(0);
  const files = Array.from({ length: 3000 }, (_, i) => ({
    type: 'file' as const,
    path: `usr/share/f${i}`,
    content: `file ${i}\n`,
  }));
  tree = await buildOciImage(path.join(root, 'tree'), {
    layers: [
      {
        compression: 'gzip',
        entries: [{ type: 'dir', path: 'usr' }, { type: 'dir', path: 'usr/share' }, ...files],
      },
    ],
  });
  // A big composefs image: its dump is far larger than a pipe buffer.
  image = path.join(root, 'cs9.img');
  writeFileSync(image, gunzipSync(readFileSync(vectorPath('composefs-c', 'cs9-x86_64-minimal.dump.img.gz'))));
});
afterAll(() => removeTree(root));

/**
 * stderr lines that are messages or traces, not progress (progress lines like `layer 1/5 …` go to
 * stderr by design).
 */
function messageLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /^odh: |^\s+at |Error|Unhandled|^node:/.test(l));
}

/** stderr has exactly one message line `odh: error: …` matching `re`. */
function expectOneLine(r: RunResult, exitCode: number, re: RegExp): void {
  expect(r.exitCode, r.stderr).toBe(exitCode);
  const lines = messageLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^odh: error: /);
  expect(lines[0]).toMatch(re);
}

/** Runs `odh ARGS` through bash with a redirection/pipe; `status` is odh's own exit status. */
async function shell(args: string[], tail: string): Promise<RunResult> {
  const quoted = [ODH, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = await execa('bash', ['-c', `node ${quoted} ${tail}; echo "status=\${PIPESTATUS[0]}" >&3`], {
    reject: false,
    env: { TMPDIR: root },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  const fd3 = String((r.stdio as unknown[])[3] ?? '');
  const status = /status=(\d+)/.exec(fd3);
  return { exitCode: status ? Number(status[1]) : -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('usage errors: exit 2, one line naming the command help', () => {
  it('odh create OLD (missing arguments)', async () => {
    const r = await odh(['create', 'OLD'], root);
    expectOneLine(r, 2, /^odh: error: missing required argument 'NEW' \(odh create --help\)$/);
  });

  it('an unknown flag', async () => {
    const r = await odh(['create', '--bogus-flag', 'a', 'b', 'c'], root);
    expectOneLine(r, 2, /^odh: error: unknown option '--bogus-flag' \(odh create --help\)$/);
  });

  it('a bad --binary-diff value', async () => {
    const r = await odh(['create', '--binary-diff', 'nope', 'a', 'b', 'c'], root);
    expectOneLine(r, 2, /invalid --binary-diff "nope" \(want bsdiff, zstd, or auto.*\(odh create --help\)$/);
  });

  it('a subcommand usage error names the subcommand', async () => {
    const r = await odh(['composefs', 'dump', '--bogus'], root);
    expectOneLine(r, 2, /unknown option '--bogus' \(odh composefs dump --help\)$/);
  });

  it("an odh usage error (OdhError USAGE) from a command's own checks", async () => {
    const r = await odh(['apply', delta, path.join(root, 'x.tar')], root);
    expectOneLine(r, 2, /exactly one of --source-image REF and --source-dir DIR \(odh apply --help\)$/);
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'nosuch'])(
    'odh %s is an unknown command',
    async (name) => {
      const r = await odh([name], root);
      expectOneLine(r, 2, new RegExp(`^odh: error: unknown command '${name}'.* \\(odh --help\\)$`));
    },
  );

  it('odh alone prints the help on stderr with exit 2; --help and --version exit 0', async () => {
    const bare = await odh([], root);
    expect(bare.exitCode).toBe(2);
    expect(bare.stderr).toMatch(/^Usage: odh /);
    const help = await odh(['--help'], root);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/^Usage: odh /);
    const version = await odh(['--version'], root);
    expect(version.exitCode).toBe(0);
    const pkg = JSON.parse(readFileSync(path.join(path.dirname(ODH), '..', '..', 'package.json'), 'utf8'));
    expect(version.stdout.trim()).toBe(pkg.version);
  });
});

describe('one --jobs meaning (0 = CPU count) and named transports', () => {
  it('apply --jobs 0 is the CPU count (as create)', async () => {
    const out = path.join(root, 'jobs0.tar');
    const r = await odh(['apply', '--jobs', '0', '--source-image', sc.old.archiveRef, delta, out], root);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  it.each(['apply', 'create'])(
    '%s --jobs -1 / 1025 / x are usage errors with the same words',
    async (cmd) => {
      for (const bad of ['-1', '1025', 'x']) {
        const args =
          cmd === 'apply'
            ? ['apply', '--jobs', bad, '--source-image', sc.old.archiveRef, delta, path.join(root, 'j.tar')]
            : ['create', '--jobs', bad, sc.old.archiveRef, sc.new.ociRef, path.join(root, 'j.tar')];
        const r = await odh(args, root);
        expectOneLine(
          r,
          2,
          /(invalid --jobs ".*" \(want an integer from 0 to 1024; 0 = CPU count\)|argument missing)/,
        );
      }
    },
  );

  it('oci-archve:PATH (a typo) is an unknown transport, not a bare path', async () => {
    const r = await odh(['inspect', `oci-archve:${delta}`], root);
    expectOneLine(
      r,
      2,
      /^odh: error: unknown transport "oci-archve" in "oci-archve:.*" \(known: oci-archive:, oci:, docker:\/\/;/,
    );
    const ok = await odh(['inspect', `oci-archive:${delta}`], root);
    expect(ok.exitCode, ok.stderr).toBe(0);
  });

  it('--discover takes HOST/REPO:TAG as its help says (docker:// optional)', async () => {
    // Port 9 on loopback: nothing listens. Both spellings must fail to connect, not to parse.
    const out = path.join(root, 'disc.tar');
    for (const target of ['127.0.0.1:9/repo:new', 'docker://127.0.0.1:9/repo:new']) {
      const r = await odh(['apply', '--source-image', sc.old.archiveRef, '--discover', target, out], root);
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/not a docker:\/\/ reference/);
      expect(r.stderr).toMatch(/127\.0\.0\.1:9/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(existsSync(out)).toBe(false);
  });
});

describe('apply without --complete says what the output still needs', () => {
  it('names the reused layers on stderr; --complete does not', async () => {
    const partial = path.join(root, 'partial.tar');
    const r = await odh(['apply', '--source-image', sc.old.archiveRef, '--json', delta, partial], root);
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { layers: { index: number; kind: string; digest: string }[] };
    const reused = result.layers.filter((l) => l.kind === 'reused');
    expect(reused.length).toBeGreaterThan(0);
    const note = r.stderr.split('\n').find((l) => l.startsWith('odh: note: '));
    expect(note, r.stderr).toBeDefined();
    expect(note).toContain(`still needs ${reused.length} layer blob(s) from the source image`);
    for (const l of reused) expect(note).toContain(`#${l.index} ${l.digest}`);
    const full = await odh(
      ['apply', '--complete', '--source-image', sc.old.archiveRef, delta, path.join(root, 'full.tar')],
      root,
    );
    expect(full.exitCode, full.stderr).toBe(0);
    expect(full.stderr).not.toMatch(/odh: note:/);
  });
});

describe('--json failures print {"error":{code,message,context}} on stdout', () => {
  it('a runtime failure', async () => {
    const missing = path.join(root, 'missing.tar');
    const r = await odh(['inspect', '--json', missing], root);
    expectOneLine(r, 1, /does not exist/);
    const body = JSON.parse(r.stdout) as { error: { code: string; message: string; context: object } };
    expect(body.error.code).toBe('NOT_FOUND');
    expect(body.error.message).toMatch(/does not exist/);
    expect(body.error.context).toEqual({ path: missing });
  });

  it('a usage failure', async () => {
    const r = await odh(['create', '--json', '--jobs', 'x', 'a', 'b', 'c'], root);
    expect(r.exitCode).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      error: {
        code: 'USAGE',
        message: 'invalid --jobs "x" (want an integer from 0 to 1024; 0 = CPU count) (odh create --help)',
        context: {},
      },
    });
  });
});

describe('--json results: every command that prints a result prints it as one JSON object', () => {
  const json = (r: RunResult): Record<string, unknown> => {
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  it('composefs id --json: the same ID as the plain line, with the settings that made it', async () => {
    const plain = await odh(['composefs', 'id', '-q', tree.ociRef], root);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(json(await odh(['composefs', 'id', '-q', '--json', tree.ociRef], root))).toEqual({
      image: tree.ociRef,
      imageId: plain.stdout.trim(),
      format: 'v1',
      hash: 'sha512',
      xattrs: 'capability',
    });
    const v2 = json(
      await odh(['composefs', 'id', '-q', '--json', '--format', 'v2', '--hash', 'sha256', tree.ociRef], root),
    );
    expect(v2).toMatchObject({ format: 'v2', hash: 'sha256', xattrs: 'capability' });
    expect(v2.imageId).toMatch(/^[0-9a-f]{64}$/);
  });

  it("composefs mkfs --json: output, size of C's image, and the digest --print-digest prints", async () => {
    const dump = vectorPath('composefs-c', 'bigfile.dump');
    const cImage = gunzipSync(readFileSync(vectorPath('composefs-c', 'bigfile.dump.img.gz')));
    const out = path.join(root, 'json-mkfs.img');
    const made = json(await odh(['composefs', 'mkfs', '--json', '--from-file', dump, out], root));
    expect(made).toEqual({ output: out, format: 'v1', bytes: cImage.length });
    expect(readFileSync(out).equals(cImage)).toBe(true);
    const plain = await odh(['composefs', 'mkfs', '--print-digest-only', '--from-file', dump], root);
    expect(plain.exitCode, plain.stderr).toBe(0);
    const only = json(
      await odh(['composefs', 'mkfs', '--json', '--print-digest-only', '--from-file', dump], root),
    );
    expect(only).toEqual({
      output: null,
      format: 'v1',
      bytes: cImage.length,
      digest: plain.stdout.trim(),
      digestAlgorithm: 'sha256',
    });
  });

  it('tar-patch --json FILE: output, bytes and ops; with - it is a usage error (stdout is the tar)', async () => {
    const v = (f: string) => vectorPath('tardiff', 'v2-zstddict-32k', f);
    const out = path.join(root, 'json-patch.tar');
    const r = json(await odh(['tar-patch', '-q', '--json', v('delta.tardiff'), v('source'), out], root));
    const expected = readFileSync(v('expected.bin'));
    expect(readFileSync(out).equals(expected)).toBe(true);
    expect(r).toMatchObject({ output: out, bytes: expected.length });
    expect(Object.values(r.ops as Record<string, number>).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const bad = await odh(['tar-patch', '--json', v('delta.tardiff'), v('source'), '-'], root);
    expectOneLine(bad, 2, /--json cannot share stdout with the tar/);
    expect(JSON.parse(bad.stdout).error.code).toBe('USAGE');
  });

  it('tar-diff --json: output, format version, sizes and ops', async () => {
    const dir = path.join(root, 'json-tardiff');
    const tarOf = async (name: string, files: Record<string, string>) => {
      const src = path.join(dir, name);
      mkdirSync(src, { recursive: true });
      for (const [f, body] of Object.entries(files)) writeFileSync(path.join(src, f), body);
      await execa('tar', ['-cf', `${src}.tar`, '-C', src, '.']);
      return `${src}.tar`;
    };
    const body = Array.from({ length: 400 }, (_, i) => `line ${i}\n`).join('');
    const oldTar = await tarOf('old', { a: body, b: 'gone\n' });
    const newTar = await tarOf('new', { a: body.replace('line 7\n', 'line seven\n'), c: 'new\n' });
    const out = path.join(dir, 'out.tardiff');
    const r = json(await odh(['tar-diff', '-q', '--json', oldTar, newTar, out], root));
    expect(r).toMatchObject({
      output: out,
      version: 1,
      bytes: statSync(out).size,
      newTarBytes: statSync(newTar).size,
    });
    expect(Object.keys(r.ops as object).sort()).toEqual([
      'AddData',
      'Copy',
      'Data',
      'Open',
      'Seek',
      'ZstdDict',
    ]);
  });
});

describe('internal errors', () => {
  const script = (debug: boolean) =>
    execa(
      'node',
      [
        '--input-type=module',
        '-e',
        `const c = await import(${JSON.stringify(path.join(path.dirname(ODH), '..', 'src', 'cli', 'contract.js'))});` +
          `c.report(c.classify(new TypeError('x.register is not a function'), undefined), true);`,
      ],
      { reject: false, env: { ODH_DEBUG: debug ? '1' : '' } },
    );

  it('say "internal error", exit 1, stack only with ODH_DEBUG=1', async () => {
    const plain = await script(false);
    expect(plain.exitCode).toBe(1);
    expect(String(plain.stderr)).toBe(
      'odh: error: internal error: x.register is not a function (ODH_DEBUG=1 shows the stack)',
    );
    expect(JSON.parse(String(plain.stdout)).error.code).toBe('INTERNAL');
    const debug = await script(true);
    expect(debug.exitCode).toBe(1);
    expect(String(debug.stderr)).toMatch(
      /^odh: error: internal error: x\.register is not a function\nTypeError: .*\n\s+at /,
    );
  });

  it('system errors (ENOENT …) are failures, not internal errors', async () => {
    const r = await odh(['composefs', 'dump', path.join(root, 'nope.img')], root);
    expectOneLine(r, 1, /nope\.img/);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});

describe('stdout: a closed pipe ends quietly, a full device never undoes a committed output', () => {
  it.each([
    ['inspect', () => ['inspect', delta]],
    ['composefs dump', () => ['composefs', 'dump', image]],
    ['composefs dumpfile', () => ['composefs', 'dumpfile', tree.ociRef]],
  ])('%s | (closed pipe): no message, no trace, status 0', async (_name, args) => {
    const r = await shell(args(), '| true');
    expect(messageLines(r.stderr)).toEqual([]);
    expect(r.exitCode).toBe(0);
  });

  it('tar-patch DELTA SRC - | (closed pipe): a streaming writer ends quietly too', async () => {
    const v = (f: string) => vectorPath('tardiff', 'v2-zstddict-32k', f);
    const r = await shell(['tar-patch', v('delta.tardiff'), v('source'), '-'], '| true');
    expect(messageLines(r.stderr)).toEqual([]);
    expect(r.exitCode).toBe(0);
  });

  it("a closed pipe never changes the command's own verdict (a mismatch stays exit 1)", async () => {
    const results = path.join(root, 'mismatch.json');
    const cell = { fixture: 'a', creator: 'c', applier: 'x', format: 'v1', hash: 'sha512', fullBytes: 1 };
    writeFileSync(
      results,
      JSON.stringify({
        cells: [{ ...cell, status: 'mismatch', reason: 'layer 0 diff_id differs' }],
        implementations: [],
        fixtureProblems: [],
        summary: { seconds: 0 },
      }),
    );
    const r = await shell(['conformance', 'merge', results], '| true');
    expect(messageLines(r.stderr)).toEqual([]);
    expect(r.exitCode).toBe(1);
  });

  it('composefs dump | head -1: the first line, then quiet', async () => {
    const r = await shell(['composefs', 'dump', image], '| head -1');
    expect(r.stdout).toBe('/ 4096 40755 11 0 0 0 0.0 - - -');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it.each([
    ['inspect', () => ['inspect', delta]],
    ['inspect --json', () => ['inspect', '--json', delta]],
    ['composefs dump', () => ['composefs', 'dump', image]],
    ['composefs id', () => ['composefs', 'id', tree.ociRef]],
    ['fixtures list', () => ['fixtures', 'list']],
    ['--help', () => ['--help']],
  ])('%s > /dev/full: one line, exit 1', async (_name, args) => {
    const r = await shell(args(), '> /dev/full');
    expectOneLine(r, 1, /^odh: error: cannot write to stdout: ENOSPC$/);
  });

  it('apply --json > /dev/full: the output was committed, so exit 0 and a warning', async () => {
    const out = path.join(root, 'full-apply.tar');
    const r = await shell(
      ['apply', '--json', '--source-image', sc.old.archiveRef, delta, out],
      '> /dev/full',
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(r.stderr).toMatch(
      /^odh: warning: .*full-apply\.tar was written, but printing the result failed: ENOSPC$/m,
    );
    expect(r.stderr).not.toMatch(/Unhandled|at .*\.js/);
  });

  it('create --json > /dev/full: the output was committed, so exit 0 and a warning', async () => {
    const out = path.join(root, 'full-create.tar');
    const r = await shell(['create', '--json', sc.old.archiveRef, sc.new.ociRef, out], '> /dev/full');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(r.stderr).toMatch(
      /odh: warning: .*full-create\.tar was written, but printing the result failed: ENOSPC/,
    );
    expect(r.stderr).not.toMatch(/Unhandled|at .*\.js/);
    expect(leftovers(root)).toEqual([]);
  });
});
