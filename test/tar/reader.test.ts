import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexTarFile } from '../../src/tar/index.js';
import { readTar, readTarBlocking, type TarItem } from '../../src/tar/reader.js';
import type { TarEntry } from '../../src/tar/entry.js';
import { encodePaxRecords, encodeUstarHeader } from '../../src/tar/header.js';
import { hasTool, isRoot } from '../helpers/tools.js';
import { DigestStream } from '../../src/oci/digest.js';
import { nth, xorByte } from '../helpers/must.js';
import { outcomeOf, reusedBuffer, shown } from '../helpers/outcome.js';

// Fixture tars are made by GNU tar at test time; expected values come from the inputs we chose.
const haveTar = hasTool('tar', 'tar');
let tmp: string;
const D = 'd'.repeat(120); // directory name > 100 bytes
const F = 'f'.repeat(150); // file name; D/F is 273 bytes (> 255)
const LINK = 'x'.repeat(200); // symlink target > 100 bytes
const CONTENT = Buffer.from('hello, tar\n');

interface Read {
  entry: TarEntry;
  data: Buffer;
}

/**
 * Every entry (and body) of a tar, read by `readTar`; `readTarBlocking` must read the same chunks
 * to the same entries and bodies, or fail with the same error.
 */
async function readAll(
  src: AsyncIterable<Buffer> | NodeJS.ReadableStream,
  readBodies = true,
): Promise<Read[]> {
  const chunks: Buffer[] = [];
  for await (const c of src as AsyncIterable<Buffer>) chunks.push(c);
  const waiting = await outcomeOf(async () => {
    const out: Read[] = [];
    for await (const { entry, body } of readTar(Readable.from(chunks)) as AsyncGenerator<TarItem>) {
      const parts: Buffer[] = [];
      if (readBodies) for await (const c of body) parts.push(c);
      out.push({ entry, data: Buffer.concat(parts) });
    }
    return out;
  });
  const blocking = (input: Iterable<Buffer>) =>
    outcomeOf(async () => {
      const out: Read[] = [];
      for (const { entry, body } of readTarBlocking(input)) {
        const parts: Buffer[] = [];
        // Copied: a body chunk is valid until the next is read.
        if (readBodies) for (const c of body) parts.push(Buffer.from(c));
        out.push({ entry, data: Buffer.concat(parts) });
      }
      return out;
    });
  expect(shown(await blocking(chunks))).toEqual(shown(waiting));
  // A layer worker's decoder writes every chunk into one buffer: nothing the reader returns may
  // point into it. Small chunks make entries straddle many of them, larger ones hold whole headers.
  for (const size of [100, 4096]) {
    expect(shown(await blocking(reusedBuffer(chunks, size)))).toEqual(shown(waiting));
  }
  if (!waiting.ok) throw waiting.error;
  return waiting.value;
}

function tar(args: string[]): void {
  execFileSync('tar', args, { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
}

function byPath(rs: Read[], p: string): Read {
  const r = rs.find((x) => x.entry.path.equals(Buffer.from(p)));
  if (!r) throw new Error(`no entry ${p} in ${rs.map((x) => x.entry.path.toString()).join(', ')}`);
  return r;
}

/** Entries tile the archive: each entry starts where the previous one's padded content ends. */
function expectTiling(rs: Read[]): void {
  let prev: TarEntry | undefined;
  for (const { entry } of rs) {
    if (prev) expect(entry.headerOffset).toBe(prev.dataOffset + ((prev.size + 511n) / 512n) * 512n);
    prev = entry;
  }
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-tar-'));
  const src = path.join(tmp, 'src');
  await fs.mkdir(path.join(src, D), { recursive: true });
  await fs.writeFile(path.join(src, D, F), CONTENT);
  await fs.chmod(path.join(src, D, F), 0o640);
  await fs.symlink(LINK, path.join(src, 'sl'));
  await fs.link(path.join(src, D, F), path.join(src, 'hl'));
  execFileSync('mkfifo', [path.join(src, 'fifo')]);
  if (isRoot) execFileSync('mknod', [path.join(src, 'chr'), 'c', '1', '3']);
  if (isRoot) execFileSync('mknod', [path.join(src, 'blk'), 'b', '7', '300']);
});

afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!haveTar)('readTar on GNU tar archives', () => {
  it.each(['gnu', 'pax'])(
    '--format=%s: long names, long link, hardlink, symlink, fifo, devices',
    async (format) => {
      const file = path.join(tmp, `all-${format}.tar`);
      tar([
        `--format=${format}`,
        '--mtime=@1234567890',
        '--owner=1234',
        '--group=5678',
        '-cf',
        file,
        '-C',
        'src',
        '.',
      ]);
      const rs = await readAll(createReadStream(file));
      const long = `./${D}/${F}`;
      // GNU tar archives the first-seen path of the inode as the file; the other name is the hardlink.
      const fileEntry = rs.find((r) => r.entry.type === 'file')!;
      const linkEntry = rs.find((r) => r.entry.type === 'hardlink')!;
      expect([fileEntry.entry.path.toString(), linkEntry.entry.path.toString()].sort()).toEqual(
        [long, './hl'].sort(),
      );
      expect(linkEntry.entry.linkpath.toString()).toBe(fileEntry.entry.path.toString());
      expect(fileEntry.data.equals(CONTENT)).toBe(true);
      expect(fileEntry.entry.size).toBe(BigInt(CONTENT.length));
      expect(fileEntry.entry.mode & 0o7777).toBe(0o640);
      expect(fileEntry.entry.uid).toBe(1234);
      expect(fileEntry.entry.gid).toBe(5678);
      expect(fileEntry.entry.mtime).toBe(1234567890n);
      expect(byPath(rs, `./${D}/`).entry.type).toBe('dir');
      const sl = byPath(rs, './sl');
      expect(sl.entry.type).toBe('symlink');
      expect(sl.entry.typeflag).toBe('2');
      expect(sl.entry.linkpath.toString()).toBe(LINK);
      expect(byPath(rs, './fifo').entry.type).toBe('fifo');
      if (isRoot) {
        expect(byPath(rs, './chr').entry).toMatchObject({ type: 'chardev', devmajor: 1, devminor: 3 });
        expect(byPath(rs, './blk').entry).toMatchObject({ type: 'blockdev', devmajor: 7, devminor: 300 });
      }
      expect(rs.every((r) => !r.entry.sparse)).toBe(true);
      expectTiling(rs);
      // Skipping every body gives the same entries.
      const skipped = await readAll(createReadStream(file), false);
      expect(skipped.map((r) => r.entry)).toEqual(rs.map((r) => r.entry));
      // The positional indexer agrees, and dataOffset points at the content.
      const idx = await indexTarFile(file);
      expect(idx).toEqual(rs.map((r) => r.entry));
      const fh = await fs.open(file);
      const b = Buffer.alloc(CONTENT.length);
      await fh.read(b, 0, b.length, Number(fileEntry.entry.dataOffset));
      await fh.close();
      expect(b.equals(CONTENT)).toBe(true);
    },
  );

  it('--format=ustar joins prefix and name', async () => {
    const [P, R, Q] = ['p'.repeat(60), 'r'.repeat(60), 'q'.repeat(90)]; // P/R/Q is 212 bytes
    await fs.mkdir(path.join(tmp, 'usrc', P, R), { recursive: true });
    await fs.writeFile(path.join(tmp, 'usrc', P, R, Q), CONTENT);
    const file = path.join(tmp, 'ustar.tar');
    tar(['--format=ustar', '-cf', file, '-C', 'usrc', P]);
    const raw = await fs.readFile(file);
    expect(raw[345 + 1024]).not.toBe(0); // the third header really uses the prefix field
    const rs = await readAll(createReadStream(file));
    expect(rs.map((r) => r.entry.path.toString())).toEqual([`${P}/`, `${P}/${R}/`, `${P}/${R}/${Q}`]);
    expect(nth(rs, 2).data.equals(CONTENT)).toBe(true);
    expect(nth(rs, 2).entry.format).toBe('ustar');
    expect(nth(rs, 2).entry.pax.size).toBe(0);
  });

  it('PAX SCHILY.xattr records from tar --xattrs become xattrs', async (ctx) => {
    const x = path.join(tmp, 'xsrc');
    await fs.mkdir(x, { recursive: true });
    await fs.writeFile(path.join(x, 'f'), 'x');
    const userA = Buffer.from([0, 1, 2, 0xff]);
    const attrs: [string, Buffer][] = [
      ['user.b', Buffer.from('second')],
      ['user.a', userA],
    ];
    let ok = true;
    try {
      execFileSync('python3', [
        '-c',
        `import os,sys\nfor k,v in [('user.b',b'second'),('user.a',bytes([0,1,2,255]))]: os.setxattr(sys.argv[1],k,v)`,
        path.join(x, 'f'),
      ]);
    } catch {
      ok = false; // filesystem without user xattrs: covered by the hand-made PAX test below
    }
    if (!ok) ctx.skip();
    const file = path.join(tmp, 'xattr.tar');
    tar(['--format=pax', '--xattrs', '--xattrs-include=user.*', '-cf', file, '-C', 'xsrc', 'f']);
    const r = nth(await readAll(createReadStream(file)), 0);
    const got = new Map(r.entry.xattrs.map((a) => [a.key.toString(), a.value]));
    for (const [k, v] of attrs) expect(got.get(k)?.equals(v)).toBe(true);
    expect(r.entry.pax.get('SCHILY.xattr.user.a')?.equals(userA)).toBe(true);
  });

  it('GNU base-256 uid and negative mtime; PAX big uid and fractional mtime', async () => {
    await fs.writeFile(path.join(tmp, 'small'), 'abc');
    const g = path.join(tmp, 'b256.tar');
    tar(['--format=gnu', '--owner=3000000000', '--group=7', '--mtime=@-1000', '-cf', g, 'small']);
    const raw = await fs.readFile(g);
    expect(raw.readUInt8(108) & 0x80).toBe(0x80); // really base-256 in the uid field
    const r = nth(await readAll(createReadStream(g)), 0);
    expect(r.entry).toMatchObject({ uid: 3000000000, gid: 7, mtime: -1000n });
    const p = path.join(tmp, 'paxnum.tar');
    tar(['--format=pax', '--owner=3000000000', '--mtime=@1234567890.5', '-cf', p, 'small']);
    const q = nth(await readAll(createReadStream(p)), 0);
    expect(q.entry.uid).toBe(3000000000);
    expect(q.entry.mtime).toBe(1234567890n);
    expect(q.entry.pax.get('mtime')?.toString()).toBe('1234567890.5');
    expect(q.data.toString()).toBe('abc');
  });

  it.each(['gnu', 'pax'])(
    '--format=%s -S sparse files are flagged and the next entry still parses',
    async (fmt) => {
      const sp = path.join(tmp, 'sparse');
      const fh = await fs.open(sp, 'w');
      // Ten data segments: more than the four an old GNU header holds, so extension blocks follow.
      for (let i = 0; i < 10; i++) await fh.write(Buffer.from(`seg${i}`), 0, 4, i * 1_000_000);
      await fh.close();
      const file = path.join(tmp, `sparse-${fmt}.tar`);
      tar([`--format=${fmt}`, '-S', '-cf', file, 'sparse', 'small']);
      const rs = await readAll(createReadStream(file));
      expect(rs).toHaveLength(2);
      expect(nth(rs, 0).entry.sparse).toBe(true);
      if (fmt === 'gnu') expect(nth(rs, 0).entry.typeflag).toBe('S');
      expect(nth(rs, 1).entry.path.toString()).toBe('small');
      expect(nth(rs, 1).data.toString()).toBe('abc');
      expect(nth(rs, 1).entry.sparse).toBe(false);
    },
  );
});

describe.skipIf(!haveTar)('readTar on damaged input', () => {
  let good: Buffer;
  beforeAll(async () => {
    await fs.writeFile(path.join(tmp, 'big'), Buffer.alloc(5000, 0x61));
    const file = path.join(tmp, 'dmg.tar');
    tar(['--format=gnu', '-cf', file, 'big']);
    good = await fs.readFile(file);
  });

  it('cut inside content → TRUNCATED naming an offset', async () => {
    await expect(readAll(Readable.from([good.subarray(0, 3000)]))).rejects.toMatchObject({
      code: 'TRUNCATED',
      message: expect.stringMatching(/offset \d+/),
    });
  });
  it('cut inside content is TRUNCATED even when the body is not read', async () => {
    await expect(readAll(Readable.from([good.subarray(0, 3000)]), false)).rejects.toMatchObject({
      code: 'TRUNCATED',
    });
  });
  it('cut inside a header block → TRUNCATED at that block', async () => {
    await expect(readAll(Readable.from([good.subarray(0, 200)]))).rejects.toMatchObject({
      code: 'TRUNCATED',
      context: { offset: 0n },
    });
  });
  it('clean EOF at a block boundary without end blocks is accepted', async () => {
    const rs = await readAll(Readable.from([good.subarray(0, 512 + 5120)]));
    expect(rs).toHaveLength(1);
    expect(nth(rs, 0).data.equals(Buffer.alloc(5000, 0x61))).toBe(true);
  });
  it('corrupt checksum → FORMAT naming the header offset', async () => {
    const bad = Buffer.from(good);
    xorByte(bad, 0, 1);
    await expect(readAll(Readable.from([bad]))).rejects.toMatchObject({
      code: 'FORMAT',
      context: { offset: 0n },
    });
    await expect(readAll(Readable.from([bad]))).rejects.toThrow(/checksum mismatch/);
  });
  it('accepts a historic signed checksum', async () => {
    // A name byte ≥ 0x80 makes the signed and unsigned sums differ (0x80 itself included).
    const name = Buffer.from([0x61, 0xe9, 0x80]);
    const h = encodeUstarHeader({ name, mode: 0o644, size: 0, typeflag: '0' });
    let signed = 0;
    for (const [i, b] of h.subarray(0, 512).entries()) {
      const c = i >= 148 && i < 156 ? 0x20 : b;
      signed += c >= 0x80 ? c - 256 : c;
    }
    h.write(signed.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const rs = await readAll(Readable.from([h]));
    expect(nth(rs, 0).entry.path.equals(name)).toBe(true);
  });
  it('reads the bytes after the end blocks, so a hasher in front sees the whole stream', async () => {
    // GNU tar pads to 10240-byte records: the diff_id covers that padding too.
    expect(good.length % 10240).toBe(0);
    // Plus 256 KiB more zero blocks: far beyond what the hasher's stream buffers hold on their own.
    const whole = Buffer.concat([good, Buffer.alloc(256 << 10)]);
    const ds = new DigestStream();
    Readable.from(
      Array.from({ length: Math.ceil(whole.length / 4096) }, (_, i) =>
        whole.subarray(i * 4096, (i + 1) * 4096),
      ),
    ).pipe(ds);
    const rs = await readAll(ds);
    expect(rs).toHaveLength(1);
    expect(ds.size).toBe(whole.length);
    expect(ds.digest()).toBe(`sha256:${createHash('sha256').update(whole).digest('hex')}`);
  });
  it('byte-at-a-time input gives the same result', async () => {
    const chunks = Array.from(good, (b) => Buffer.from([b]));
    const rs = await readAll(Readable.from(chunks));
    expect(rs).toHaveLength(1);
    expect(nth(rs, 0).data.length).toBe(5000);
  });
});

describe('hand-made records', () => {
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
  const ZERO2 = Buffer.alloc(1024);
  /** The ustar checksum field (6 octal digits, NUL, space) for a header, computed here independently. */
  const checksumOf = (h: Buffer) => {
    let sum = 0;
    for (const [i, b] of h.subarray(0, 512).entries()) sum += i >= 148 && i < 156 ? 0x20 : b;
    return sum.toString(8).padStart(6, '0') + '\0 ';
  };

  it('global PAX records are not applied; local ones are; a stray zero block is skipped', async () => {
    const g = encodePaxRecords([{ key: 'path', value: Buffer.from('global-name') }]);
    const x = encodePaxRecords([
      { key: 'path', value: Buffer.from('local/name') },
      { key: 'SCHILY.xattr.user.k', value: Buffer.from('v1') },
      { key: 'SCHILY.xattr.security.selinux', value: Buffer.from('ctx\0') },
      { key: 'SCHILY.xattr.user.k', value: Buffer.from('v2') },
    ]);
    const tarBytes = Buffer.concat([
      encodeUstarHeader({ name: 'g', mode: 0, size: g.length, typeflag: 'g' }),
      pad(g),
      encodeUstarHeader({ name: 'first', mode: 0o644, size: 0, typeflag: '0' }),
      Buffer.alloc(512),
      encodeUstarHeader({ name: 'x', mode: 0, size: x.length, typeflag: 'x' }),
      pad(x),
      encodeUstarHeader({ name: 'short', mode: 0o644, size: 2, typeflag: '0' }),
      pad(Buffer.from('hi')),
      ZERO2,
    ]);
    const rs = await readAll(Readable.from([tarBytes]));
    expect(rs.map((r) => r.entry.path.toString())).toEqual(['first', 'local/name']);
    expect(nth(rs, 0).entry.headerOffset).toBe(0n);
    expect(nth(rs, 0).entry.dataOffset).toBe(1024n + 512n);
    expect(nth(rs, 1).entry.xattrs.map((a) => [a.key.toString(), a.value.toString()])).toEqual([
      ['user.k', 'v2'],
      ['security.selinux', 'ctx\0'],
    ]);
    expect(nth(rs, 1).data.toString()).toBe('hi');
    expectTiling(rs);
  });

  it('refuses a PAX header over 1 MiB and a long name over 1 MiB (LIMIT, offset)', async () => {
    const big = encodeUstarHeader({ name: 'x', mode: 0, size: (1 << 20) + 1, typeflag: 'x' });
    await expect(readAll(Readable.from([Buffer.alloc(512), big, Buffer.alloc(512)]))).rejects.toMatchObject({
      code: 'LIMIT',
      context: { offset: 512n },
    });
    const L = encodeUstarHeader({ name: '././@LongLink', mode: 0, size: (1 << 20) + 1, typeflag: 'L' });
    await expect(readAll(Readable.from([L]))).rejects.toMatchObject({
      code: 'LIMIT',
      context: { offset: 0n },
    });
  });

  it('malformed PAX values are FORMAT errors', async () => {
    for (const rec of [
      Buffer.from('5 a=b\n'), // wrong length
      encodePaxRecords([{ key: 'size', value: Buffer.from('-1') }]),
      encodePaxRecords([{ key: 'mtime', value: Buffer.from('-5.2') }]),
      encodePaxRecords([{ key: 'uid', value: Buffer.from('12a') }]),
      encodePaxRecords([{ key: 'size', value: Buffer.alloc(0) }]), // empty is not a number (Go, tar-core)
    ]) {
      const t = Buffer.concat([
        encodeUstarHeader({ name: 'x', mode: 0, size: rec.length, typeflag: 'x' }),
        pad(rec),
        encodeUstarHeader({ name: 'f', mode: 0o644, size: 0, typeflag: '0' }),
        ZERO2,
      ]);
      await expect(readAll(Readable.from([t]))).rejects.toMatchObject({ code: 'FORMAT' });
    }
  });

  it('every header and PAX error names the layer the reader was given, with the offset', async () => {
    const where = { layer: 'sha256:' + 'c'.repeat(64) };
    const file = (name: string) => encodeUstarHeader({ name, mode: 0o644, size: 0, typeflag: '0' });
    const pax = (rec: Buffer, flag = 'x') =>
      Buffer.concat([encodeUstarHeader({ name: 'x', mode: 0, size: rec.length, typeflag: flag }), pad(rec)]);
    const badSum = file('a');
    xorByte(badSum, 0, 1);
    const badOctal = file('b');
    badOctal.write('12x4\0', 124, 'latin1'); // size field
    badOctal.write(checksumOf(badOctal), 148, 'latin1');
    const badMode = file('c');
    badMode.fill(0xff, 100, 108); // base-256 -1
    badMode.write(checksumOf(badMode), 148, 'latin1');
    // [bytes after a good first header, message, offset of the header the error names]
    const cases: [Buffer, RegExp, bigint][] = [
      [badSum, /tar header checksum mismatch/, 512n],
      [badOctal, /invalid octal number "12x4" in size/, 512n],
      [badMode, /mode -1 out of range/, 512n],
      [pax(Buffer.from('5 a=b\n')), /PAX header: record at byte 0 overruns/, 512n],
      [pax(Buffer.from('x a=b\n'), 'g'), /PAX header: bad record length/, 512n],
      [pax(encodePaxRecords([{ key: 'uid', value: Buffer.from('12a') }])), /PAX uid "12a"/, 1536n], // the entry the PAX record applies to,
    ];
    for (const [block, msg, offset] of cases) {
      const t = Buffer.concat([file('ok'), block, file('z'), ZERO2]);
      const err = await (async () => {
        for await (const _ of readTar(Readable.from([t]), { where })) void _;
      })().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FORMAT', context: { ...where, offset } });
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).toContain(`layer ${where.layer}`);
    }
  });

  it('a PAX header followed by the end of the archive is TRUNCATED', async () => {
    const rec = encodePaxRecords([{ key: 'path', value: Buffer.from('p') }]);
    const t = Buffer.concat([
      encodeUstarHeader({ name: 'x', mode: 0, size: rec.length, typeflag: 'x' }),
      pad(rec),
      ZERO2,
    ]);
    await expect(readAll(Readable.from([t]))).rejects.toMatchObject({ code: 'TRUNCATED' });
  });

  it('reading a body after moving on is refused', async () => {
    const t = Buffer.concat([
      encodeUstarHeader({ name: 'a', mode: 0o644, size: 1, typeflag: '0' }),
      pad(Buffer.from('A')),
      encodeUstarHeader({ name: 'b', mode: 0o644, size: 1, typeflag: '0' }),
      pad(Buffer.from('B')),
      ZERO2,
    ]);
    const bodies: AsyncIterable<Buffer>[] = [];
    for await (const { body } of readTar(Readable.from([t]))) bodies.push(body);
    await expect(
      (async () => {
        for await (const _ of nth(bodies, 0)) void _;
      })(),
    ).rejects.toThrow(/after moving to the next entry/);
  });
});
