/**
 * Hostile inputs through the CLI (issue #2 item 6): each gives exit 1, exactly one `odh: error: …`
 * line naming what is wrong, nothing at the destination and no temp leftovers — neither beside the
 * output nor in the per-test TMPDIR.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDeltaArchive,
  encodeTarDiff,
  type DeltaSpec,
  type LayerPlan,
} from '../helpers/delta-builder.js';
import { buildScenario, leftovers, odh, removeTree, tempRoot, type Scenario } from './fixture.js';
import { xorByte } from '../helpers/must.js';

let root: string;
let sc: Scenario;
let goodDelta: string;

beforeAll(async () => {
  root = tempRoot('odh-test-hostile-');
  sc = await buildScenario(path.join(root, 'images'));
  goodDelta = path.join(root, 'good-delta.tar');
  await buildDeltaArchive(goodDelta, sc.spec);
});
afterAll(() => removeTree(root));

let caseNo = 0;

interface Case {
  /** Delta archive to use (default: the good one). */
  delta?: string;
  /** Extra/replacement CLI args before DELTA OUTPUT; default `--source-dir <rootfs>`. */
  args?: string[];
  /** Output path inside the case dir (default out.tar); created beforehand when `preexisting`. */
  output?: (dir: string) => string;
  expectError: RegExp;
  /** 2 for usage errors (the CLI contract), else 1. */
  exitCode?: number;
}

/** Runs one hostile case in its own directory with its own TMPDIR and checks the failure contract. */
async function expectFailure(c: Case): Promise<void> {
  const dir = path.join(root, `case-${caseNo++}`);
  const tmp = path.join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const out = c.output ? c.output(dir) : path.join(dir, 'out.tar');
  const before = existsSync(out) ? statSync(out) : undefined;
  const args = ['apply', ...(c.args ?? ['--source-dir', sc.sourceDir]), c.delta ?? goodDelta, out];
  const r = await odh(args, tmp);
  expect(r.exitCode, r.stderr).toBe(c.exitCode ?? 1);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('odh: error:'));
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0]).toMatch(c.expectError);
  expect(r.stdout).toBe('');
  // Nothing new at the destination: absent, or exactly what was there before.
  if (before) {
    expect(statSync(out).mtimeMs).toBe(before.mtimeMs);
  } else {
    expect(existsSync(out)).toBe(false);
  }
  expect(leftovers(dir)).toEqual([]);
  expect(leftovers(path.dirname(out))).toEqual([]);
  expect(leftovers(tmp)).toEqual([]);
}

/** A delta made from the scenario with some parts bent. */
async function deltaWith(edit: Partial<DeltaSpec>, layers?: LayerPlan[]): Promise<string> {
  const file = path.join(root, `delta-${caseNo}-${Math.random().toString(36).slice(2)}.tar`);
  await buildDeltaArchive(file, { ...sc.spec, ...edit, layers: layers ?? sc.plans });
  return file;
}

/** The scenario's plans with layer 1's tar-diff replaced by `ops`. */
function withTarDiff(blob: Buffer): LayerPlan[] {
  const p = [...sc.plans];
  p[1] = { kind: 'tar-diff', tarDiff: blob };
  return p;
}

describe('odh apply: hostile input', () => {
  it('symlink escaping the source dir', async () => {
    const rootfs = path.join(root, 'rootfs-escape');
    cpSync(sc.sourceDir, rootfs, { recursive: true });
    const p = path.join(rootfs, 'usr', 'lib64', 'libc.so.6');
    rmSync(p);
    symlinkSync('../../../../../../etc/passwd', p);
    await expectFailure({
      args: ['--source-dir', rootfs],
      expectError: /source path escapes the source directory.*usr\/lib64\/libc\.so\.6/,
    });
  });

  it('source dir that does not exist', async () => {
    await expectFailure({
      args: ['--source-dir', path.join(root, 'no-such-dir')],
      expectError: /source directory does not exist/,
    });
  });

  it('wrong blob digest (tar-diff bytes changed, same size)', async () => {
    const tarDiff = (sc.plans[1] as { tarDiff: Buffer }).tarDiff;
    const bad = Buffer.from(tarDiff);
    xorByte(bad, bad.length - 1, 0xff);
    const { createHash } = await import('node:crypto');
    const digest = `sha256:${createHash('sha256').update(tarDiff).digest('hex')}`;
    await expectFailure({
      delta: await deltaWith({ blobs: new Map([[digest, bad]]) }),
      expectError: /blob digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/,
    });
  });

  it('missing blob', async () => {
    const { createHash } = await import('node:crypto');
    const tarDiff = (sc.plans[2] as { tarDiff: Buffer }).tarDiff;
    const digest = `sha256:${createHash('sha256').update(tarDiff).digest('hex')}`;
    await expectFailure({
      delta: await deltaWith({ blobs: new Map([[digest, null]]) }),
      expectError: new RegExp(`blob ${digest} not found`),
    });
  });

  it('diff_id mismatch (tar-diff yields one byte too many)', async () => {
    const tar = readFileSync(sc.new.layers[1]!.tarPath);
    const blob = encodeTarDiff([{ op: 'data', data: Buffer.concat([tar, Buffer.from('x')]) }]);
    await expectFailure({
      delta: await deltaWith({}, withTarDiff(blob)),
      expectError: new RegExp(
        `diff_id mismatch: expected ${sc.new.diffIds[1]}, got sha256:[0-9a-f]{64} \\(layer ${sc.new.layers[1]!.digest}\\)`,
      ),
    });
  });

  it('diff_id mismatch in an original layer', async () => {
    const p = [...sc.plans];
    p[3] = {
      kind: 'blob',
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob: gzipSync(Buffer.alloc(1024)),
    };
    await expectFailure({ delta: await deltaWith({}, p), expectError: /diff_id mismatch: expected/ });
  });

  it('truncated delta archive', async () => {
    const file = path.join(root, 'truncated.tar');
    cpSync(goodDelta, file);
    truncateSync(file, Math.floor(statSync(file).size / 2));
    await expectFailure({ delta: file, expectError: /index\.json not found|truncat/ });
  });

  it('bad JSON in index.json', async () => {
    await expectFailure({
      delta: await deltaWith({ indexBytes: () => Buffer.from('{"schemaVersion":2,') }),
      expectError: /index\.json.*invalid JSON/,
    });
  });

  it('bad JSON in the delta manifest', async () => {
    await expectFailure({
      delta: await deltaWith({ manifestBytes: () => Buffer.from('{not json') }),
      expectError: /manifest.*invalid JSON/,
    });
  });

  it('bad JSON in the embedded config', async () => {
    await expectFailure({
      delta: await deltaWith({ targetConfigBytes: Buffer.from('{"rootfs":') }),
      expectError: /embedded image config.*invalid JSON/,
    });
  });

  it('wrong artifactType', async () => {
    await expectFailure({
      delta: await deltaWith({ editManifest: (m) => (m.artifactType = 'application/vnd.example.thing') }),
      expectError: /not a delta artifact \(artifactType: "application\/vnd\.example\.thing"\)/,
    });
  });

  it('a normal image given as the delta', async () => {
    await expectFailure({
      delta: sc.new.archivePath,
      expectError: /not a delta artifact \(artifactType: none\)/,
    });
  });

  it('missing annotations', async () => {
    await expectFailure({
      delta: await deltaWith({ editManifest: (m) => delete m.annotations }),
      expectError: /has no annotations/,
    });
  });

  it('missing source-config', async () => {
    await expectFailure({
      delta: await deltaWith({
        editManifest: (m) =>
          delete (m.annotations as Record<string, string>)['io.github.containers.delta.source-config'],
      }),
      expectError: /missing source config digest/,
    });
  });

  it('missing embedded manifest', async () => {
    await expectFailure({
      delta: await deltaWith({ editManifest: (m) => (m.layers as unknown[]).splice(0, 1) }),
      expectError: /no embedded image manifest/,
    });
  });

  it('missing embedded config', async () => {
    await expectFailure({
      delta: await deltaWith({ editManifest: (m) => (m.layers as unknown[]).splice(1, 1) }),
      expectError: /no embedded image config/,
    });
  });

  it('unparseable delta.to names the layer', async () => {
    await expectFailure({
      delta: await deltaWith({
        editManifest: (m) => {
          const l = (m.layers as Array<{ annotations: Record<string, string> }>)[2]!;
          l.annotations['io.github.containers.delta.to'] = 'sha256:xyz';
        },
      }),
      expectError: /layers\[2\] \(sha256:[0-9a-f]{64}\).*delta\.to/,
    });
  });

  it('diff_ids count differs from layers count', async () => {
    const cfg = JSON.parse(sc.new.configBytes.toString());
    cfg.rootfs.diff_ids.push(sc.new.diffIds[0]);
    const configBytes = Buffer.from(JSON.stringify(cfg));
    const { createHash } = await import('node:crypto');
    const m = JSON.parse(sc.new.manifestBytes.toString());
    m.config.digest = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
    m.config.size = configBytes.length;
    await expectFailure({
      delta: await deltaWith({
        targetConfigBytes: configBytes,
        targetManifestBytes: Buffer.from(JSON.stringify(m)),
      }),
      expectError: /5 diff_ids but the target manifest has 4 layers/,
    });
  });

  it('tar-diff with a bad magic', async () => {
    const blob = Buffer.concat([Buffer.from('tardf9\n\0'), encodeTarDiff([]).subarray(8)]);
    await expectFailure({
      delta: await deltaWith({}, withTarDiff(blob)),
      expectError: /invalid tar-diff header.*offset 0/,
    });
  });

  it('tar-diff op past the end of the source file', async () => {
    const blob = encodeTarDiff([
      { op: 'open', name: 'usr/lib64/libz.so.1' },
      { op: 'seek', offset: 5000 },
      { op: 'copy', size: 1000 },
    ]);
    await expectFailure({
      delta: await deltaWith({}, withTarDiff(blob)),
      expectError: /unexpected EOF in source file.*op #2, offset 5000/,
    });
  });

  it('tar-diff unknown op', async () => {
    const blob = encodeTarDiff([
      { op: 'data', data: 'x' },
      { op: 'raw', code: 99, size: 0 },
    ]);
    await expectFailure({
      delta: await deltaWith({}, withTarDiff(blob)),
      expectError: /unexpected tar-diff op 99 .*op #1/,
    });
  });

  it('tar-diff ZstdDict under a v1 header', async () => {
    const blob = encodeTarDiff([
      { op: 'open', name: 'usr/lib64/libz.so.1' },
      { op: 'zstd-dict', frame: Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00]) },
    ]);
    await expectFailure({ delta: await deltaWith({}, withTarDiff(blob)), expectError: /tardf2/ });
  });

  it('Open of a name not in the source', async () => {
    const blob = encodeTarDiff([
      { op: 'open', name: 'usr/lib64/no-such-lib.so' },
      { op: 'copy', size: 1 },
    ]);
    await expectFailure({
      delta: await deltaWith({}, withTarDiff(blob)),
      expectError: /source file not found \(path "usr\/lib64\/no-such-lib\.so"\).*op #0/,
    });
  });

  it('zstd window bomb in an original layer (window log 31 > 27)', async () => {
    // Frame header: magic, FHD 0x00 (window descriptor present), window descriptor exponent 21 →
    // window log 31, then a raw last block of 1 byte.
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x09, 0x00, 0x00, 0x41]);
    const p = [...sc.plans];
    p[3] = { kind: 'blob', mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', blob: frame };
    await expectFailure({
      delta: await deltaWith({}, p),
      expectError: /zstd window 2147483648 bytes \(2\^31\) exceeds the 2\^27-byte limit \(layer sha256:/,
    });
  });

  it('gzip-corrupt original layer', async () => {
    const good = gzipSync(readFileSync(sc.new.layers[3]!.tarPath));
    const bad = Buffer.from(good);
    bad.fill(0x55, 12, 40);
    const p = [...sc.plans];
    p[3] = { kind: 'blob', mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', blob: bad };
    await expectFailure({
      delta: await deltaWith({}, p),
      expectError: /gzip: invalid distance too far back \(layer sha256:[0-9a-f]{64}/,
    });
  });

  it('source image whose config is not the source-config', async () => {
    await expectFailure({
      args: ['--source-image', sc.new.archiveRef],
      expectError: new RegExp(
        `source image config ${sc.new.configDigest} is not the delta's source-config ${sc.old.configDigest}`,
      ),
    });
  });

  it('output path is an existing directory', async () => {
    await expectFailure({
      output: (d) => {
        mkdirSync(path.join(d, 'outdir'), { recursive: true });
        return path.join(d, 'outdir');
      },
      expectError: /output path is an existing directory/,
    });
  });

  it('output already exists', async () => {
    await expectFailure({
      output: (d) => {
        mkdirSync(d, { recursive: true });
        writeFileSync(path.join(d, 'exists.tar'), 'keep me');
        return path.join(d, 'exists.tar');
      },
      expectError: /output path already exists/,
    });
  });

  it('manifest name not in the delta index', async () => {
    await expectFailure({ delta: `oci-archive:${goodDelta}:nope`, expectError: /no manifest named "nope"/ });
  });

  it('--complete with --source-dir and a reused layer', async () => {
    await expectFailure({
      args: ['--complete', '--source-dir', sc.sourceDir],
      expectError: /--complete needs --source-image/,
      exitCode: 2,
    });
  });

  it('usage: --jobs 1025', async () => {
    await expectFailure({
      args: ['--jobs', '1025', '--source-dir', sc.sourceDir],
      expectError: /invalid --jobs "1025"/,
      exitCode: 2,
    });
  });

  it('usage: bad --compress value', async () => {
    await expectFailure({
      args: ['--compress', 'lz4', '--source-dir', sc.sourceDir],
      expectError: /invalid --compress "lz4" \(want gzip, zstd or none\)/,
      exitCode: 2,
    });
  });

  it('usage: both --source-image and --source-dir', async () => {
    await expectFailure({
      args: ['--source-image', sc.old.archiveRef, '--source-dir', sc.sourceDir],
      expectError: /exactly one of --source-image REF and --source-dir DIR/,
      exitCode: 2,
    });
  });

  it('usage: neither --source-image nor --source-dir', async () => {
    await expectFailure({
      args: [],
      expectError: /exactly one of --source-image REF and --source-dir DIR/,
      exitCode: 2,
    });
  });

  it('a delta that does not exist', async () => {
    await expectFailure({ delta: path.join(root, 'nope.tar'), expectError: /delta does not exist/ });
  });
});

describe('odh apply --source-image: hostile tar-diffs also clean up the source store', () => {
  const cases: Array<[string, () => Buffer, RegExp]> = [
    [
      'op past the end of the source file',
      () =>
        encodeTarDiff([
          { op: 'open', name: 'usr/lib64/libz.so.1' },
          { op: 'seek', offset: 5000 },
          { op: 'copy', size: 1000 },
        ]),
      /unexpected EOF in source file.*op #2, offset 5000/,
    ],
    [
      'unknown op',
      () =>
        encodeTarDiff([
          { op: 'data', data: 'x' },
          { op: 'raw', code: 99, size: 0 },
        ]),
      /unexpected tar-diff op 99 .*op #1/,
    ],
    [
      'Open of a name not in the source',
      () =>
        encodeTarDiff([
          { op: 'open', name: 'usr/lib64/no-such-lib.so' },
          { op: 'copy', size: 1 },
        ]),
      /source file not in the old image's merged root filesystem \(path "usr\/lib64\/no-such-lib\.so"\)/,
    ],
    [
      'Open of an ostree object path (excluded from sources, spec §3.1)',
      () =>
        encodeTarDiff([
          { op: 'open', name: 'sysroot/ostree/repo/objects/00/x.file' },
          { op: 'copy', size: 1 },
        ]),
      /sysroot\/ostree\/repo\/objects\/00\/x\.file/,
    ],
    [
      'diff_id mismatch',
      () =>
        encodeTarDiff([
          { op: 'open', name: 'usr/lib64/libz.so.1' },
          { op: 'copy', size: 10 },
        ]),
      /diff_id mismatch: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/,
    ],
  ];
  for (const [name, blob, re] of cases) {
    it(name, async () => {
      await expectFailure({
        args: ['--jobs', '4', '--source-image', sc.old.archiveRef],
        delta: await deltaWith({}, withTarDiff(blob())),
        expectError: re,
      });
    });
  }
});
