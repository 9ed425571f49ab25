import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';

import {
  parseDumpfile,
  parseDumpfileSync,
  type ParseDumpfileOptions,
} from '../../src/composefs/dumpfile/parse.js';
import { S_IFCHR, S_IFMT, S_IFREG, type Inode } from '../../src/composefs/format/tree.js';
import { OdhError } from '../../src/util/errors.js';
import { vectorPath } from '../helpers/shared.js';
import { must, nth } from '../helpers/must.js';

const ASSETS = vectorPath('composefs-c');
/** Upstream parses these three without CFS_PARSE_STRICT (vectors/README.md). */
const LENIENT = new Set(['no-newline.dump', 'longlink.dump', 'honggfuzz-longlink-unterminated.dump']);
const assetFiles = readdirSync(ASSETS);
const positives = assetFiles.filter((f) => /\.dump(\.gz)?$/.test(f) && !f.startsWith('should-fail-'));
const negatives = assetFiles.filter((f) => f.startsWith('should-fail-') && f.endsWith('.dump'));

function assetStream(f: string): AsyncIterable<Uint8Array> {
  const s = createReadStream(`${ASSETS}/${f}`);
  return f.endsWith('.gz') ? s.pipe(createGunzip()) : s;
}

const C_STRICT: ParseDumpfileOptions = { rules: 'mkcomposefs', strict: true };
const C_LENIENT: ParseDumpfileOptions = { rules: 'mkcomposefs', strict: false };
const RS: ParseDumpfileOptions = { rules: 'composefs-rs' };

function rejects(text: string, options: ParseDumpfileOptions): OdhError {
  try {
    parseDumpfileSync(text, options);
  } catch (e) {
    expect(e).toBeInstanceOf(OdhError);
    return e as OdhError;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

function child(dir: Inode, name: string): Inode {
  const e = dir.entries!.find((x) => x.name.equals(Buffer.from(name, 'latin1')));
  if (!e) throw new Error(`no entry ${name}`);
  return e.inode;
}

describe('C test assets (spec composefs-v1 §13.1)', () => {
  it('finds the assets', () => {
    expect(positives.length).toBe(14);
    expect(negatives.length).toBe(14);
  });

  for (const f of positives) {
    const strict = !LENIENT.has(f);
    it(`parses ${f} (${strict ? 'strict' : 'lenient'})`, async () => {
      const root = await parseDumpfile(assetStream(f), { rules: 'mkcomposefs', strict, file: f });
      expect(root.entries).not.toBeNull();
    });
  }

  for (const f of LENIENT) {
    // Upstream runs these leniently because strict parsing rejects them.
    it(`rejects ${f} in strict mode`, async () => {
      const err: unknown = await parseDumpfile(assetStream(f), { ...C_STRICT, file: f }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(OdhError);
      expect((err as OdhError).message).toMatch(/Missing trailing newline|Invalid symlink size|rdev/);
    });
  }

  // spec composefs-v1 §4.9: the C error of each asset (lenient, as the upstream harness runs them);
  // with strict parsing three of them already fail on the missing final newline.
  const reasons: Record<string, [RegExp, RegExp]> = {
    'should-fail-big-inline.dump': [
      /Inline content size 5004 exceeds maximum 5000/,
      /Missing trailing newline/,
    ],
    'should-fail-dir-hardlink.dump': [/Directories can't be hardlinked/, /Directories can't be hardlinked/],
    'should-fail-dot-name.dump': [/Invalid \. or \.\. in path/, /Invalid \. or \.\. in path/],
    'should-fail-dotdot-name.dump': [/Invalid \. or \.\. in path/, /Invalid \. or \.\. in path/],
    'should-fail-empty-link-name.dump': [/Invalid symlink/, /Invalid symlink/],
    'should-fail-empty-name.dump': [/Can't add child/, /Can't add child/],
    'should-fail-empty-xattr-key.dump': [/Can't set xattr/, /Can't set xattr/],
    'should-fail-honggfuzz-long-xattr.dump': [/Can't set xattr/, /Missing trailing newline/],
    'should-fail-long-link.dump': [/Invalid symlink/, /Invalid symlink/],
    'should-fail-long-xattr-key.dump': [/Too many xattrs/, /Too many xattrs/],
    'should-fail-long-xattr-value.dump': [/Invalid mode 644/, /Invalid mode 644/],
    'should-fail-no-ftype.dump': [/Invalid mode 0\b/, /Invalid mode 0\b/],
    'should-fail-self-hardlink.dump': [/Self-referential hardlink/, /Missing trailing newline/],
    'should-fail-too-big.dump': [/File too large/, /File too large/],
  };
  for (const f of negatives) {
    for (const strict of [false, true]) {
      it(`rejects ${f} (${strict ? 'strict' : 'lenient'}) naming the line`, async () => {
        const err = await parseDumpfile(assetStream(f), { rules: 'mkcomposefs', strict, file: f }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(OdhError);
        const e = err as OdhError;
        expect(e.code).toBe('FORMAT');
        expect(e.context.line).toBeGreaterThan(0);
        expect(e.message).toContain(`line ${e.context.line}`);
        expect(e.message).toContain(f);
        expect(e.message).toMatch(must(reasons[f], `reasons for ${f}`)[strict ? 1 : 0]);
      });
    }
  }
});

describe('mkcomposefs rules (spec composefs-v1 §4)', () => {
  const ROOT = '/ 0 40755 2 0 0 0 0.0 - - -\n';

  it('reads fields, octal mode, signed mtime seconds and unbounded nanoseconds', () => {
    const root = parseDumpfileSync(ROOT + '/f 3 100644 7 1000 2000 0 -5.1 - abc - user.a=b\n', C_STRICT);
    const f = child(root, 'f');
    expect(f.mode).toBe(0o100644);
    expect(f.size).toBe(3n);
    expect([f.nlink, f.uid, f.gid]).toEqual([7, 1000, 2000]);
    expect(f.mtimeSec).toBe(-5n);
    expect(f.mtimeNsec).toBe(1);
    expect(f.content).toEqual(Buffer.from('abc'));
    expect(f.xattrs).toEqual([{ key: Buffer.from('user.a'), value: Buffer.from('b') }]);
  });

  it('uses strtoull semantics: sign, whitespace, saturation, u32 truncation', () => {
    const root = parseDumpfileSync(
      ROOT + '/f 0 100644 +1 -1 \t4294967297 0 99999999999999999999999.0 - - -\n',
      C_STRICT,
    );
    const f = child(root, 'f');
    expect(f.nlink).toBe(1);
    expect(f.uid).toBe(0xffffffff); // -1 mod 2^64, truncated to u32
    expect(f.gid).toBe(1);
    expect(f.mtimeSec).toBe(-1n); // saturated 2^64-1 read as i64
    expect(rejects(ROOT + '/f 0 100644 1x 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(/Invalid nlink/);
    expect(rejects(ROOT + '/f 0 100644 1 0 0 0 5 - - -\n', C_STRICT).message).toMatch(/Invalid mtime/);
    expect(rejects(ROOT + '/f 0 100648 1 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(/Invalid mode/);
  });

  it('reports a bad GID or RDEV only when UID is 0 (C quirk)', () => {
    expect(rejects(ROOT + '/c 0 20644 1 0 x 5 0.0 - - -\n', C_STRICT).message).toMatch(/Invalid gid/);
    const root = parseDumpfileSync(ROOT + '/c 0 20644 1 7 x xyz 0.0 - - -\n', C_STRICT);
    const c = child(root, 'c');
    expect(c.gid).toBe(0);
    expect(c.rdev).toBe(0n);
  });

  it('unescapes bytes, optional dash and NUL truncation of names', () => {
    const root = parseDumpfileSync(
      ROOT +
        '/a\\x20b\\x00junk 1 100644 1 0 0 0 0.0 - \\x2d - user.k\\x3d=v\\x00=x\n/\\\\ 1 100644 1 0 0 0 0.0 - \\n -\n',
      C_STRICT,
    );
    const a = child(root, 'a b');
    expect(a.content).toEqual(Buffer.from('-'));
    expect(nth(a.xattrs, 0).key).toEqual(Buffer.from('user.k='));
    expect(nth(a.xattrs, 0).value).toEqual(Buffer.from('v\0=x'));
    expect(child(root, '\\').content).toEqual(Buffer.from('\n'));
    expect(rejects(ROOT + '/a\\q 0 100644 1 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(/invalid escape/);
    expect(rejects(ROOT + '/a\\x4 0 100644 1 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(/\\x escape/);
  });

  it('accepts lenient paths (d, //d, /d//x) and missing trailing fields as empty', () => {
    const root = parseDumpfileSync(
      ROOT + 'd 0 40755 2 0 0 0 0.0 - - -\n/d//x 0 100644 1 0 0 0 0.0\n',
      C_STRICT,
    );
    const x = child(child(root, 'd'), 'x');
    expect(x.payload).toEqual(Buffer.alloc(0)); // empty PAYLOAD is present-but-empty, not absent
    expect(x.digest).not.toBeNull();
  });

  it('rejects empty lines, NUL bytes, empty input, children before the root and duplicates', () => {
    expect(rejects(ROOT + '\n', C_STRICT).context.line).toBe(2);
    expect(rejects(ROOT + '/a\0 0 100644 1 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(/NUL/);
    expect(rejects('', C_STRICT).message).toMatch(/No files/);
    expect(rejects('/a 0 100644 1 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(/Root/);
    const dup = ROOT + '/a 0 100644 1 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n';
    expect(rejects(dup, C_STRICT).context.line).toBe(3);
    expect(rejects(ROOT + '/x/y 0 100644 1 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(/not found/);
  });

  it('applies strict-only checks: rdev on non-devices, symlink size and content', () => {
    const rdev = ROOT + '/f 0 100644 1 0 0 5 0.0 - - -\n';
    expect(rejects(rdev, C_STRICT).message).toMatch(/rdev/);
    expect(child(parseDumpfileSync(rdev, C_LENIENT), 'f').rdev).toBe(0n);
    const link = ROOT + '/l 99 120777 1 0 0 0 0.0 target - -\n';
    expect(rejects(link, C_STRICT).message).toMatch(/symlink/);
    expect(child(parseDumpfileSync(link, C_LENIENT), 'l').size).toBe(6n);
  });

  it('truncates rdev to 32 bits and keeps mode bits above 16 in memory', () => {
    const root = parseDumpfileSync(
      ROOT + '/c 0 20644 1 0 0 4294967296 0.0 - - -\n/l 6 20720777 1 0 0 0 0.0 target - -\n',
      C_STRICT,
    );
    expect(child(root, 'c').rdev).toBe(0n);
    expect(child(root, 'l').mode).toBe(0o20720777);
  });

  it('checks content length against SIZE and the 5000-byte inline limit', () => {
    expect(rejects(ROOT + '/f 4 100644 1 0 0 0 0.0 - abc -\n', C_STRICT).message).toMatch(
      /Invalid content size/,
    );
    const ok = parseDumpfileSync(ROOT + `/f 5000 100644 1 0 0 0 0.0 - ${'a'.repeat(5000)} -\n`, C_STRICT);
    expect(child(ok, 'f').content!.length).toBe(5000);
  });

  it('applies the per-inode xattr budget of 32767 bytes and replaces duplicate keys', () => {
    const max = 32767 - 19 - 6; // one xattr with a 6-byte key
    const ok = parseDumpfileSync(
      ROOT + `/f 0 100644 1 0 0 0 0.0 - - - user.a=${'v'.repeat(max)}\n`,
      C_STRICT,
    );
    expect(nth(child(ok, 'f').xattrs, 0).value.length).toBe(max);
    expect(
      rejects(ROOT + `/f 0 100644 1 0 0 0 0.0 - - - user.a=${'v'.repeat(max + 1)}\n`, C_STRICT).message,
    ).toMatch(/Can't set xattr/);
    const dup = parseDumpfileSync(
      ROOT + '/f 0 100644 1 0 0 0 0.0 - - - user.a=1 user.b=2 user.a=3\n',
      C_STRICT,
    );
    expect(child(dup, 'f').xattrs.map((x) => `${x.key}=${x.value}`)).toEqual(['user.b=2', 'user.a=3']);
    expect(rejects(ROOT + '/f 0 100644 1 0 0 0 0.0 - - - user.a=1 \n', C_STRICT).message).toMatch(
      /Missing =/,
    );
    expect(child(parseDumpfileSync(ROOT + '/f 0 100644 1 0 0 0 0.0 - - - \n', C_STRICT), 'f').xattrs).toEqual(
      [],
    );
  });

  it('resolves hardlinks to the same Inode, keeps the target NLINK, ignores other fields', () => {
    const root = parseDumpfileSync(
      ROOT +
        '/a 0 @100644 garbage x x x x /d/f - - not=parsed\n' +
        '/d 0 40755 2 0 0 0 0.0 - - -\n' +
        '/d/f 3 100644 1 0 0 0 0.0 - abc -\n' +
        '/z 0 @100644 0 0 0 0 0.0 /a - -\n',
      C_STRICT,
    );
    const a = root.entries!.find((e) => e.name.toString() === 'a')!;
    const z = root.entries!.find((e) => e.name.toString() === 'z')!;
    const f = must(child(root, 'd').entries?.[0], '/d/f');
    expect(a.inode).toBe(f.inode);
    expect(z.inode).toBe(f.inode);
    expect([a.hardlink, z.hardlink, f.hardlink]).toEqual([true, true, false]);
    expect(f.inode.nlink).toBe(1);
  });

  it('accepts a hardlink to a directory (as C) and rejects cycles and missing targets', () => {
    const root = parseDumpfileSync(ROOT + '/x 0 @100644 0 0 0 0 0.0 / - -\n', C_STRICT);
    expect(must(root.entries?.[0], '/x').inode).toBe(root);
    const cycle = ROOT + '/a 0 @100644 0 0 0 0 0.0 /b - -\n/b 0 @100644 0 0 0 0 0.0 /a - -\n';
    expect(rejects(cycle, C_STRICT).message).toMatch(/cycle/);
    expect(rejects(ROOT + '/a 0 @100644 0 0 0 0 0.0 /nope - -\n', C_STRICT).context.line).toBe(2);
    expect(rejects(ROOT + '/a 0 @100644 0 0 0 0 0.0 - - -\n', C_STRICT).message).toMatch(
      /Missing hardlink target/,
    );
  });

  it('keeps a char device 0:0 as given (whiteout escaping is the writer’s job)', () => {
    const root = parseDumpfileSync(ROOT + '/w 1 20644 1 0 0 0 0.0 - - -\n', C_STRICT);
    const w = child(root, 'w');
    expect(w.mode & S_IFMT).toBe(S_IFCHR);
    expect(w.size).toBe(1n);
  });

  it('parses the same from a stream split at every byte', async () => {
    const text = readFileSync(`${ASSETS}/special.dump`);
    async function* bytewise(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < text.length; i += 7) yield text.subarray(i, i + 7);
    }
    const a = await parseDumpfile(bytewise(), C_STRICT);
    const b = parseDumpfileSync(text, C_STRICT);
    expect(a).toEqual(b);
  });
});

describe('composefs-rs rules (spec composefs-v2 §7.4)', () => {
  const ROOT = '/ 4096 40755 9 0 0 0 0.0 - - -\n';

  it('masks mode to 0o7777, drops nanoseconds, ignores directory size', () => {
    const root = parseDumpfileSync(ROOT + '/f 0 1104644 9 1 2 0 5.7 - - -\n', RS);
    const f = child(root, 'f');
    expect(f.mode).toBe(S_IFREG | 0o4644);
    expect(f.mtimeNsec).toBe(0);
    expect(f.mtimeSec).toBe(5n);
    expect(root.size).toBe(0n);
  });

  it('recomputes nlink and makes the first DFS occurrence canonical', () => {
    const root = parseDumpfileSync(
      ROOT +
        '/b 1 100644 1 0 0 0 0.0 - x -\n' +
        '/a 0 40755 7 0 0 0 0.0 - - -\n' +
        '/a/l 0 @120000 - - - - 0.0 /b - -\n' +
        '/c 0 @120000 - - - - 0.0 /b - -\n',
      RS,
    );
    expect(root.nlink).toBe(3);
    const b = root.entries!.find((e) => e.name.toString() === 'b')!;
    const al = must(child(root, 'a').entries?.[0], '/a/l');
    expect(al.inode).toBe(b.inode);
    expect(b.inode.nlink).toBe(3);
    expect(al.hardlink).toBe(false); // /a/l comes first in sorted DFS order
    expect(b.hardlink).toBe(true);
  });

  it('sorts xattrs and requires a digest for external files', () => {
    const d = 'ab'.repeat(32);
    const root = parseDumpfileSync(
      ROOT + `/e 9 100644 1 0 0 0 0.0 ab/${d.slice(2)} - ${d} user.z=1 security.a=2\n`,
      RS,
    );
    const e = child(root, 'e');
    expect(e.digest!.toString('hex')).toBe(d);
    expect(e.xattrs.map((x) => x.key.toString())).toEqual(['security.a', 'user.z']);
    expect(rejects(ROOT + '/e 9 100644 1 0 0 0 0.0 ab/cd - -\n', RS).message).toMatch(/digest/);
  });

  it('rejects what composefs-rs rejects', () => {
    const cases: [string, RegExp][] = [
      [`/f 513 100644 1 0 0 0 0.0 - ${'a'.repeat(513)} -\n`, /exceeds maximum 512/],
      ['/s 0 140755 1 0 0 0 0.0 - - -\n', /Sockets/],
      ['/f 0 100644 1 0 0 0 -5.0 - - -\n', /mtime/],
      [`/l 1025 120777 1 0 0 0 0.0 ${'t'.repeat(1025)} - -\n`, /Symlink target/],
      ['//f 0 100644 1 0 0 0 0.0 - - -\n', /Empty component/],
      ['/f/ 0 100644 1 0 0 0 0.0 - - -\n', /Empty component/],
      ['/f 0 100644 1 0 0 0 0.0 - -\n', /Missing digest/],
      ['/f 0 100644 1 0 0 5 0.0 - - -\n', /rdev/],
      ['/f 0 100644 1 0 0 0 1.1000000000 - - -\n', /nanoseconds/],
    ];
    for (const [line, re] of cases) {
      const e = rejects(ROOT + line, RS);
      expect(e.message).toMatch(re);
      expect(e.context.line).toBe(2);
    }
    expect(rejects('/f 0 100644 1 0 0 0 0.0 - - -\n', RS).message).toMatch(/first entry/);
  });
});

describe('composefs-rs rules on special.dump without the inline-large lines (its tests/special_v1.dump)', () => {
  it('parses, and rejects the full special.dump on the 512-byte inline limit', () => {
    const text = readFileSync(`${ASSETS}/special.dump`, 'latin1');
    const trimmed = text
      .split('\n')
      .filter((l) => !l.startsWith('/inline-large'))
      .join('\n');
    const root = parseDumpfileSync(trimmed, RS);
    expect(root.entries!.length).toBeGreaterThan(5);
    expect(rejects(text, RS).message).toMatch(/exceeds maximum 512/);
  });
});
