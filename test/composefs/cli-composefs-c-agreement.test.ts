/**
 * `odh composefs` against C mkcomposefs 1.0.8, fsck.erofs and fsverity (foreign tools) on the inputs
 * where they used to disagree (issue 11, issue 13 items 6–7; docs/composefs-decisions.md):
 * - a V1 dumpfile of an OCI image with PAX fractional mtimes, xattrs of every namespace and hardlinks
 *   into /run, fed to C `mkcomposefs --min-version=1 --max-version=1`, gives `composefs id`;
 * - the xattr allowlist of composefs-rs 0.9.0 applies to both formats by default;
 * - `mkfs` reads a pipe (`/dev/fd/3`), SHA-512 digests with `--hash sha512`, lenient by default;
 * - SIZE that overflows C's chunk count is refused (C's image fails fsck.erofs); a 5 MiB line and a
 *   tree 5000 levels deep are accepted, byte-identical to C, and `dump` reads the deep image back.
 * Needs the built CLI (`npx tsc -p .`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../src/util/atomic.js';
import { hasOracle, oraclePath } from '../helpers/oracles.js';
import { hasTool } from '../helpers/tools.js';
import { REPO_ROOT, vectorPath } from '../helpers/shared.js';
import { gnuHeader, writeOciLayout } from './oci-layout-fixture.js';
import { must, nth } from '../helpers/must.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const HAVE_C = hasOracle('mkcomposefs');

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  tmp = await makeTempDir('odh-cfs-c-');
});
afterAll(async () => {
  await tmp.cleanup();
});

const odh = (args: string[], input?: Buffer) =>
  execa('node', [ODH, 'composefs', ...args], {
    reject: false,
    encoding: 'buffer',
    stripFinalNewline: false,
    input,
    cwd: tmp.dir,
  });
const text = (b: unknown) => Buffer.from(b as Uint8Array).toString();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const at = (name: string) => path.join(tmp.dir, name);

/** C mkcomposefs on a dumpfile; returns its exit code and the image (if written). */
async function cMkfs(dump: Buffer, args: string[], name: string) {
  const input = at(`${name}.dump`);
  const img = at(`${name}.c.img`);
  writeFileSync(input, dump);
  const r = await execa(oraclePath('mkcomposefs'), [...args, '--from-file', input, img], { reject: false });
  return { exitCode: r.exitCode, img: existsSync(img) ? readFileSync(img) : null, file: img };
}

/** `fsverity digest` (fsverity-utils) of a file: a foreign fs-verity implementation. */
async function fsverityOf(file: string, alg: 'sha256' | 'sha512'): Promise<string> {
  const r = await execa('fsverity', ['digest', `--hash-alg=${alg}`, file]);
  // `sha256:HEX FILE`
  const hex = /^sha(?:256|512):([0-9a-f]+)\s/.exec(r.stdout)?.[1];
  return must(hex, `a digest in fsverity output ${JSON.stringify(r.stdout)}`);
}

// ------------------------------------------------------------------------- a PAX layer, by hand

/** One PAX extended-header record `LEN key=value\n` (LEN counts itself). */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

const pad512 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

interface PaxEntry {
  name: string;
  typeflag: '0' | '1' | '5';
  mode: number;
  pax: [string, Buffer][];
  content?: Buffer;
  linkname?: string;
}

function paxTar(entries: PaxEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax.length > 0) {
      const records = Buffer.concat(e.pax.map(([k, v]) => paxRecord(k, v)));
      const h = gnuHeader({ name: 'PaxHeaders/x', typeflag: '0', mode: 0o644, mtime: 0, content: records });
      h[156] = 0x78; // 'x'
      h.write('ustar\x0000', 257, 'latin1');
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
      parts.push(h, pad512(records));
    }
    const h = gnuHeader({
      name: e.name,
      typeflag: e.typeflag,
      mode: e.mode,
      mtime: 1690000000,
      content: e.content,
    });
    parts.push(h);
    if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
    // Header checksum again (linkname changed it).
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    if (e.content && e.content.length > 0) parts.push(pad512(e.content));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const X = (k: string, v: string | Buffer): [string, Buffer] => [
  `SCHILY.xattr.${k}`,
  typeof v === 'string' ? Buffer.from(v) : v,
];
const MTIME = (m: string): [string, Buffer] => ['mtime', Buffer.from(m)];
const BIG = Buffer.alloc(5000, 'composefs ');

/** Every xattr namespace, fractional PAX mtimes, an external and an inline file, links into /run. */
function agreementLayer(): Buffer {
  return paxTar([
    { name: 'usr/', typeflag: '5', mode: 0o755, pax: [MTIME('1690000000.1234567'), X('user.dir', 'd')] },
    {
      name: 'usr/big',
      typeflag: '0',
      mode: 0o644,
      content: BIG,
      pax: [
        MTIME('1690000001.999999999'),
        X('security.selinux', 'system_u:object_r:usr_t:s0'),
        X(
          'security.capability',
          Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ),
        X('user.comment', 'hello'),
        X('trusted.overlay.opaque', 'y'),
        X('trusted.other', 'x'),
        X('system.posix_acl_access', Buffer.from([2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff])),
      ],
    },
    { name: 'usr/small', typeflag: '0', mode: 0o600, content: Buffer.from('tiny\n'), pax: [MTIME('5.5')] },
    { name: 'usr/big-link', typeflag: '1', mode: 0o644, linkname: 'usr/big', pax: [] },
    { name: 'run/', typeflag: '5', mode: 0o755, pax: [MTIME('1700000000.25')] },
    { name: 'run/small-link', typeflag: '1', mode: 0o600, linkname: 'usr/small', pax: [] },
    { name: 'run/big-link', typeflag: '1', mode: 0o644, linkname: 'usr/big', pax: [] },
  ]);
}

describe('composefs dumpfile → C mkcomposefs reproduces composefs id (V1, sha256)', () => {
  let ref = '';
  beforeAll(async () => {
    const l = await writeOciLayout(at('agree'), [agreementLayer()], { compression: 'gzip' });
    ref = `oci:${l.dir}`;
  });

  it('prints nanosecond mtimes, the allowlisted xattrs and nlink after /run is emptied', async () => {
    const d = await odh(['dumpfile', '-q', '--format', 'v1', '--hash', 'sha256', ref]);
    expect(text(d.stderr)).toBe('');
    const lines = text(d.stdout).trimEnd().split('\n');
    const field = (p: string, i: number) => lines.find((l) => l.startsWith(`${p} `))!.split(' ')[i];
    // The root copies /usr (fraction read as 9 digits: spec composefs-v1 §14.3).
    expect(field('/', 7)).toBe('1690000000.123456700');
    expect(field('/usr/big', 7)).toBe('1690000001.999999999');
    expect(field('/usr/small', 7)).toBe('5.500000000');
    // /run keeps only /usr's mtime; its entries are gone, so /usr/small is linked once and /usr/big
    // twice (composefs-rs 0.9.0 transform_for_oci: canonicalize_run, then compact()).
    expect(lines.filter((l) => l.startsWith('/run'))).toEqual([
      expect.stringMatching(/^\/run 0 40755 2 0 0 0 1690000000\.123456700 /),
    ]);
    expect(field('/usr/small', 3)).toBe('1');
    expect(field('/usr/big', 3)).toBe('2');
    // composefs-rs 0.9.0 AllowlistOnly: security.capability only, on both formats.
    const big = lines.find((l) => l.startsWith('/usr/big '))!;
    expect(
      big
        .split(' ')
        .slice(11)
        .map((x) => x.split('=')[0]),
    ).toEqual(['security.capability']);
    expect(field('/usr', 11)).toBeUndefined();
  });

  for (const policy of [[], ['--xattrs', 'all'], ['--xattrs', 'capability+user']]) {
    it.skipIf(!HAVE_C)(
      `C mkcomposefs of our dumpfile gives our image ID (${policy.join(' ') || 'default'})`,
      async () => {
        const d = await odh(['dumpfile', '-q', '--format', 'v1', '--hash', 'sha256', ...policy, ref]);
        expect(d.exitCode).toBe(0);
        const c = await cMkfs(
          Buffer.from(d.stdout as Uint8Array),
          ['--min-version=1', '--max-version=1'],
          `agree${policy.length}`,
        );
        expect(c.exitCode).toBe(0);
        const id = await odh(['id', '-q', '--format', 'v1', '--hash', 'sha256', ...policy, ref]);
        expect(text(id.stdout)).toBe(`${await fsverityOf(c.file, 'sha256')}\n`);
      },
    );
  }

  it('V2 also filters by default: default = capability ≠ all', async () => {
    const id = async (extra: string[]) =>
      text((await odh(['id', '-q', '--format', 'v2', '--hash', 'sha512', ...extra, ref])).stdout);
    const dflt = await id([]);
    expect(dflt).toMatch(/^[0-9a-f]{128}\n$/);
    expect(await id(['--xattrs', 'capability'])).toBe(dflt);
    expect(await id(['--xattrs', 'all'])).not.toBe(dflt);
    const help = text((await odh(['id', '--help'])).stdout);
    expect(help).toMatch(/composefs-rs 0\.9\.0/);
    expect(help).toMatch(/≤0\.7\.0/);
  });

  it.skipIf(!hasTool('fsverity', 'fsverity'))(
    'mkfs --hash sha512 reads 64-byte digests: the image carries fsverity sha512 of the content',
    async () => {
      const d = await odh(['dumpfile', '-q', '--format', 'v1', '--hash', 'sha512', ref]);
      const dump = Buffer.from(d.stdout as Uint8Array);
      writeFileSync(at('big.bin'), BIG);
      const want = await fsverityOf(at('big.bin'), 'sha512');
      expect(text(dump)).toContain(want);
      const img = at('sha512.img');
      const m = await odh(
        ['mkfs', '--min-version', '1', '--max-version', '1', '--hash', 'sha512', '--from-file', '-', img],
        dump,
      );
      expect(text(m.stderr)).toBe('');
      expect(m.exitCode).toBe(0);
      expect(readFileSync(img).includes(Buffer.from(want, 'hex'))).toBe(true);
      const id = await odh(['id', '-q', '--format', 'v1', '--hash', 'sha512', ref]);
      expect(text(id.stdout)).toBe(`${await fsverityOf(img, 'sha512')}\n`);
    },
  );
});

describe('composefs mkfs input handling like mkcomposefs --from-file', () => {
  const C = (name: string) => vectorPath('composefs-c', name);
  const pinned = (name: string) =>
    readFileSync(C(`${name}.sha256`), 'utf8')
      .trim()
      .split(/\s+/)[0];

  it('reads the dumpfile from a shell pipe (FIFO) given as /dev/fd/3', async () => {
    const img = at('fifo.img');
    const r = await execa(
      'bash',
      [
        '-c',
        'node "$0" composefs mkfs --from-file /dev/fd/3 "$1" 3< <(cat "$2")',
        ODH,
        img,
        C('bigfile.dump'),
      ],
      { reject: false },
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(sha256(readFileSync(img))).toBe(pinned('bigfile.dump'));
  });

  it("reads the dumpfile from a parent's stdio pipe (a socket) given as /dev/fd/3", async () => {
    const img = at('fd3.img');
    const child = execa('node', [ODH, 'composefs', 'mkfs', '--from-file', '/dev/fd/3', img], {
      reject: false,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const fd3 = child.stdio[3] as unknown as NodeJS.WritableStream;
    fd3.end(readFileSync(C('bigfile.dump')));
    const r = await child;
    expect(String(r.stderr)).toBe('');
    expect(r.exitCode).toBe(0);
    expect(sha256(readFileSync(img))).toBe(pinned('bigfile.dump'));
  });

  it("accepts C's lenient assets by default and refuses them with --strict", async () => {
    for (const name of ['longlink.dump', 'no-newline.dump', 'honggfuzz-longlink-unterminated.dump']) {
      const img = at(`${name}.img`);
      const r = await odh(['mkfs', '--from-file', C(name), img]);
      expect(text(r.stderr)).toBe('');
      expect(sha256(readFileSync(img))).toBe(pinned(name));
      const s = await odh(['mkfs', '--strict', '--from-file', C(name), at(`${name}.strict.img`)]);
      expect(s.exitCode).toBe(1);
      expect(text(s.stderr).trimEnd().split('\n')).toHaveLength(1);
      expect(existsSync(at(`${name}.strict.img`))).toBe(false);
    }
  });

  it('refuses a directory as input with one line', async () => {
    const r = await odh(['mkfs', '--from-file', tmp.dir, at('dir.img')]);
    expect(r.exitCode).not.toBe(0);
    expect(text(r.stderr)).toMatch(/directory/);
  });
});

const DIGEST = '0123456789abcdef'.repeat(4);
const ROOT = '/ 0 40755 2 0 0 0 0.0 - - -\n';

describe('accept/reject decisions against C (docs/composefs-decisions.md)', () => {
  it.skipIf(!HAVE_C || !hasTool('fsck.erofs', 'erofs-utils'))(
    'a SIZE that wraps C chunk count (≥ 2^64 − 2^43 + 1): C writes a broken image, we refuse',
    async () => {
      for (const size of ['-1', String((1n << 64n) - (1n << 43n) + 1n), String((1n << 64n) - (1n << 33n))]) {
        const dump = Buffer.from(`${ROOT}/f ${size} 100644 1 0 0 0 0.0 ab/cd - ${DIGEST}\n`);
        const c = await cMkfs(dump, [], 'size');
        if (size !== '-1') {
          // C exits 0 with an image fsck.erofs rejects (for -1 fsck.erofs loops: not run here).
          expect(c.exitCode).toBe(0);
          const f = await execa('fsck.erofs', [c.file], { reject: false, timeout: 20_000 });
          expect(f.exitCode).not.toBe(0);
        }
        const img = at('size.img');
        const r = await odh(['mkfs', '--from-file', '-', img], dump);
        expect(r.exitCode).toBe(1);
        expect(text(r.stderr)).toMatch(/overflows the chunk count.*composefs-decisions/);
        expect(existsSync(img)).toBe(false);
      }
    },
  );

  it.skipIf(!HAVE_C)('a 5 MiB line (long DIGEST field) is accepted, image identical to C', async () => {
    const dump = Buffer.from(`${ROOT}/f 4097 100644 1 0 0 0 0.0 ab/cd - ${DIGEST}${'f'.repeat(5 << 20)}\n`);
    const c = await cMkfs(dump, [], 'long');
    expect(c.exitCode).toBe(0);
    const r = await odh(['mkfs', '--from-file', '-', at('long.img')], dump);
    expect(text(r.stderr)).toBe('');
    expect(readFileSync(at('long.img')).equals(c.img!)).toBe(true);
  });

  it.skipIf(!HAVE_C)('names sorting before `.` and between `.` and `..`: image identical to C', async () => {
    const names = ['-', '.-', '+x', '.+', 'a'];
    const dump = Buffer.from(
      ROOT +
        '/d 0 40755 2 0 0 0 0.0 - - -\n' +
        names.map((n) => `/${n} 0 100644 1 0 0 0 0.0 - - -\n/d/${n} 0 100644 1 0 0 0 0.0 - - -\n`).join(''),
    );
    const c = await cMkfs(dump, [], 'dots');
    expect(c.exitCode).toBe(0);
    const r = await odh(['mkfs', '--from-file', '-', at('dots.img')], dump);
    expect(text(r.stderr)).toBe('');
    expect(readFileSync(at('dots.img')).equals(c.img!)).toBe(true);
  });

  it.skipIf(!HAVE_C)('a tree 5000 levels deep: image identical to C, and dump reads it back', async () => {
    let p = '';
    const lines = [ROOT.trimEnd()];
    for (let i = 0; i < 5000; i++) {
      p += '/d';
      lines.push(`${p} 0 40755 2 0 0 0 0.0 - - -`);
    }
    const dump = Buffer.from(lines.join('\n') + '\n');
    const c = await cMkfs(dump, [], 'deep');
    expect(c.exitCode).toBe(0);
    const r = await odh(['mkfs', '--from-file', '-', at('deep.img')], dump);
    expect(text(r.stderr)).toBe('');
    expect(readFileSync(at('deep.img')).equals(c.img!)).toBe(true);
    const d = await odh(['dump', at('deep.img')]);
    expect(text(d.stderr)).toBe('');
    const out = text(d.stdout).trimEnd().split('\n');
    expect(out).toHaveLength(5001);
    expect(nth(out, 5000).split(' ')[0]).toBe(p);
  });
});
