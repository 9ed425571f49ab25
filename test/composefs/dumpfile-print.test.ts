import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { parseDumpfileSync } from '../../src/composefs/dumpfile/parse.js';
import { printDumpfile } from '../../src/composefs/dumpfile/print.js';
import { fsverityDigest } from '../../src/composefs/format/fsverity.js';
import { newInode, S_IFDIR, S_IFREG } from '../../src/composefs/format/tree.js';
import { vectorPath } from '../helpers/shared.js';

const C = { rules: 'mkcomposefs', strict: true } as const;

describe('composefs-info dump format (spec composefs-v1 §12.2)', () => {
  it('prints fields, escapes, hardlinks with the primary fields and @ mode', () => {
    // /l has the one-byte target `-` and /f the content `-`: both print with the lone-dash rule.
    const lines = printDumpfile(
      parseDumpfileSync(
        '/ 4096 40755 2 0 0 0 0.0 - - -\n' +
          '/a\\x20b 0 @100644 0 0 0 0 0.0 /f - -\n' +
          '/c 0 20644 1 5 6 1234 -5.7 - - - user.k\\x3d=v=\\x2d security.x=\n' +
          '/f 1 100644 2 0 0 0 1.20 - \\x2d - user.a=-\n' +
          '/l 1 120777 1 0 0 0 0.0 \\x2d - -\n',
        C,
      ),
    )
      .toString('latin1')
      .split('\n');
    expect(lines).toEqual([
      '/ 4096 40755 2 0 0 0 0.0 - - -',
      '/a\\x20b 1 @100644 2 0 0 0 1.20 /f \\x2d - user.a=-',
      '/c 0 20644 1 5 6 1234 -5.7 - - - user.k\\x3d=v\\x3d- security.x=',
      '/f 1 100644 2 0 0 0 1.20 - \\x2d - user.a=-',
      '/l 1 120777 1 0 0 0 0.0 \\x2d - -',
      '',
    ]);
  });

  it('prints the root as an empty hardlink payload (C quirk)', () => {
    const root = parseDumpfileSync('/ 0 40755 2 0 0 0 0.0 - - -\n/x 0 @100644 0 0 0 0 0.0 / - -\n', C);
    expect(printDumpfile(root).toString().split('\n')[1]).toBe('/x 0 @40755 2 0 0 0 0.0  - -');
  });

  it('round-trips special.dump: parse → print → parse → print is stable', () => {
    const text = readFileSync(vectorPath('composefs-c', 'special.dump'));
    const once = printDumpfile(parseDumpfileSync(text, C));
    const twice = printDumpfile(parseDumpfileSync(once, C));
    expect(twice.toString('latin1')).toBe(once.toString('latin1'));
  });
});

describe('composefs-rs write_dumpfile format (spec composefs-v2 §7)', () => {
  it('reproduces the pinned test_layer listing (spec composefs-v2 §8.1)', () => {
    const root = newInode(S_IFDIR | 0o755);
    for (const n of [0, 4095, 4096, 4097]) {
      const data = Buffer.alloc(n);
      const f = newInode(S_IFREG | 0o700, { size: BigInt(n) });
      if (n > 0) f.digest = fsverityDigest(data, 'sha256');
      root.entries!.push({ name: Buffer.from(`file${n}`), inode: f, hardlink: false });
    }
    const lines = printDumpfile(root, { format: 'composefs-rs' }).toString().split('\n');
    expect(lines.slice(1, 5)).toEqual([
      '/file0 0 100700 1 0 0 0 0.0 - - -',
      '/file4095 4095 100700 1 0 0 0 0.0 53/72beb83c78537c8970c8361e3254119fafdf1763854ecd57d3f0fe2da7c719 - 5372beb83c78537c8970c8361e3254119fafdf1763854ecd57d3f0fe2da7c719',
      '/file4096 4096 100700 1 0 0 0 0.0 ba/bc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e - babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e',
      '/file4097 4097 100700 1 0 0 0 0.0 09/3756e4ea9683329106d4a16982682ed182c14bf076463a9e7f97305cbac743 - 093756e4ea9683329106d4a16982682ed182c14bf076463a9e7f97305cbac743',
    ]);
    expect(lines[0]).toBe('/ 0 40755 2 0 0 0 0.0 - - -');
  });

  it('prints later hardlink occurrences as @120000 lines, dirs with size 0 and computed nlink', () => {
    const rs = { rules: 'composefs-rs' } as const;
    const root = parseDumpfileSync(
      '/ 0 40755 1 0 0 0 7.0 - - -\n' +
        '/a 0 40755 1 0 0 0 0.0 - - -\n' +
        '/b 1 100644 1 0 0 0 0.0 - - - user.z=1 user.a=\\x3d\n' +
        '/c 0 @100644 1 0 0 0 0.0 /b - -\n',
      rs,
    );
    expect(printDumpfile(root, { format: 'composefs-rs' }).toString()).toBe(
      '/ 0 40755 3 0 0 0 7.0 - - -\n' +
        '/a 0 40755 2 0 0 0 0.0 - - -\n' +
        '/b 0 100644 2 0 0 0 0.0 - - - user.a=\\x3d user.z=1\n' +
        '/c 0 @120000 - - - - 0.0 /b - -\n',
    );
  });
});
