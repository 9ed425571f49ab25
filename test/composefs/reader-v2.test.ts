import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { printDumpfile } from '../../src/composefs/dumpfile/print.js';
import { fsverityDigest } from '../../src/composefs/format/fsverity.js';
import { readErofs, readErofsFile } from '../../src/composefs/format/erofs/reader.js';
import { S_IFMT, S_IFSOCK } from '../../src/composefs/format/tree.js';
import { OdhError } from '../../src/util/errors.js';
import { nth } from '../helpers/must.js';

/**
 * The composefs-rs V2 images `empty` and `simple` of crates/composefs/tests/mkfs.rs, rebuilt from
 * the non-zero hexdump rows in spec composefs-v2 §8.2 (all other bytes are 0, 4096 bytes in all).
 * Their SHA-256 fs-verity digests are the pinned upstream image IDs, which proves the rows.
 */
const EMPTY_ROWS = [
  '00000000: 9a62 78d0 0100 0000 0000 0000 0200 0000',
  '00000400: e2e1 f5e0 0000 0000 0600 0000 0c00 2400',
  '00000410: 0100 0000 0000 0000 0000 0000 0000 0000',
  '00000420: 0000 0000 0100 0000 0000 0000 0000 0000',
  '00000480: 0500 0000 ed41 0000 1b00 0000 0000 0000',
  '00000490: 0000 0000 2400 0000 0000 0000 0000 0000',
  '000004a0: 0000 0000 0000 0000 0000 0000 0200 0000',
  '000004c0: 2400 0000 0000 0000 1800 0200 2400 0000',
  '000004d0: 0000 0000 1900 0200 2e2e 2e00 0000 0000',
];
const SIMPLE_ROWS = [
  '00000000: 9a62 78d0 0100 0000 0000 0000 0200 0000',
  '00000400: e2e1 f5e0 0000 0000 0600 0000 0c00 2400',
  '00000410: 0800 0000 0000 0000 0000 0000 0000 0000',
  '00000420: 0000 0000 0100 0000 0000 0000 0000 0000',
  '00000480: 0500 0000 ed41 0000 aa00 0000 0000 0000',
  '00000490: 0000 0000 2400 0000 0000 0000 0000 0000',
  '000004a0: 0000 0000 0000 0000 0000 0000 0200 0000',
  '000004c0: 2400 0000 0000 0000 6c00 0200 2400 0000',
  '000004d0: 0000 0000 6d00 0200 2c00 0000 0000 0000',
  '000004e0: 6f00 0400 2e00 0000 0000 0000 7500 0300',
  '000004f0: 3000 0000 0000 0000 7b00 0500 3200 0000',
  '00000500: 0000 0000 7f00 0100 3900 0000 0000 0000',
  '00000510: 8f00 0100 3c00 0000 0000 0000 9d00 0600',
  '00000520: 3e00 0000 0000 0000 a300 0700 2e2e 2e62',
  '00000530: 6c6b 6465 7663 6872 6465 7666 6966 6f72',
  '00000540: 6567 756c 6172 2d65 7874 6572 6e61 6c72',
  '00000550: 6567 756c 6172 2d69 6e6c 696e 6573 6f63',
  '00000560: 6b65 7473 796d 6c69 6e6b 0000 0000 0000',
  '00000580: 0100 0000 0060 0000 0000 0000 0000 0000',
  '00000590: 7b00 0000 2c00 0000 0000 0000 0000 0000',
  '000005a0: 0000 0000 0000 0000 0000 0000 0100 0000',
  '000005c0: 0100 0000 0020 0000 0000 0000 0000 0000',
  '000005d0: 7b00 0000 2e00 0000 0000 0000 0000 0000',
  '000005e0: 0000 0000 0000 0000 0000 0000 0100 0000',
  '00000600: 0100 0000 0010 0000 0000 0000 0000 0000',
  '00000610: 0000 0000 3000 0000 0000 0000 0000 0000',
  '00000620: 0000 0000 0000 0000 0000 0000 0100 0000',
  '00000640: 0900 2500 0080 0000 d204 0000 0000 0000',
  '00000650: 1f00 0000 3200 0000 0000 0000 0000 0000',
  '00000660: 0000 0000 0000 0000 0000 0000 0100 0000',
  '00000680: ffff fd7f 0000 0000 0000 0000 1004 2400',
  '00000690: 6f76 6572 6c61 792e 6d65 7461 636f 7079',
  '000006a0: 0024 0001 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a',
  '000006b0: 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a',
  '000006c0: 5a5a 5a5a 1004 4200 6f76 6572 6c61 792e',
  '000006d0: 7265 6469 7265 6374 2f35 612f 3561 3561',
  '000006e0: 3561 3561 3561 3561 3561 3561 3561 3561',
  '000006f0: 3561 3561 3561 3561 3561 3561 3561 3561',
  '00000700: 3561 3561 3561 3561 3561 3561 3561 3561',
  '00000710: 3561 3561 3561 3561 3561 0000 ffff ffff',
  '00000720: 0500 0000 0080 0000 0400 0000 0000 0000',
  '00000730: 0000 0000 3900 0000 0000 0000 0000 0000',
  '00000740: 0000 0000 0000 0000 0000 0000 0100 0000',
  '00000760: 6869 6869 0000 0000 0000 0000 0000 0000',
  '00000780: 0100 0000 00c0 0000 0000 0000 0000 0000',
  '00000790: 0000 0000 3c00 0000 0000 0000 0000 0000',
  '000007a0: 0000 0000 0000 0000 0000 0000 0100 0000',
  '000007c0: 0500 0000 00a0 0000 0700 0000 0000 0000',
  '000007d0: 0000 0000 3e00 0000 0000 0000 0000 0000',
  '000007e0: 0000 0000 0000 0000 0000 0000 0100 0000',
  '00000800: 2f74 6172 6765 7400',
];

function imageFromRows(rows: string[]): Buffer {
  const img = Buffer.alloc(4096);
  for (const row of rows) {
    const colon = row.indexOf(': ');
    const [off, hex] = [row.slice(0, colon), row.slice(colon + 2)];
    Buffer.from(hex.replace(/ /g, ''), 'hex').copy(img, parseInt(off, 16));
  }
  return img;
}

const EMPTY = imageFromRows(EMPTY_ROWS);
const SIMPLE = imageFromRows(SIMPLE_ROWS);

describe('reader on composefs-rs V2 images (spec composefs-v2 §8.2)', () => {
  it('rebuilds the pinned images', () => {
    expect(fsverityDigest(EMPTY, 'sha256').toString('hex')).toBe(
      '086b702a519b57d6ef5aea6f8b3f2be24355cd1fb835cd80fb4e3d388b24d5a5',
    );
    expect(fsverityDigest(SIMPLE, 'sha256').toString('hex')).toBe(
      'a8fcd41f8b313bede69f462f2af0a38d64b99a6333f5df884ea9ab4037fac722',
    );
  });

  it('reads empty: a bare root', () => {
    const { header, rules, root } = readErofs(EMPTY);
    expect(header.composefsVersion).toBe(2);
    expect(rules).toBe('composefs-rs');
    expect(root.entries).toEqual([]);
    expect(printDumpfile(root, { format: 'composefs-rs' }).toString()).toBe('/ 0 40755 2 0 0 0 0.0 - - -\n');
  });

  it('reads simple back to its tree (spec composefs-v1 §13.3 gives it as a dumpfile)', () => {
    const { root } = readErofs(SIMPLE);
    const z = '5a'.repeat(32);
    expect(printDumpfile(root, { format: 'composefs-rs' }).toString()).toBe(
      [
        '/ 0 40755 2 0 0 0 0.0 - - -',
        '/blkdev 0 60000 1 0 0 123 0.0 - - -',
        '/chrdev 0 20000 1 0 0 123 0.0 - - -',
        '/fifo 0 10000 1 0 0 0 0.0 - - -',
        `/regular-external 1234 100000 1 0 0 0 0.0 5a/${z.slice(2)} - ${z}`,
        '/regular-inline 4 100000 1 0 0 0 0.0 - hihi -',
        '/socket 0 140000 1 0 0 0 0.0 - - -',
        '/symlink 7 120000 1 0 0 0 0.0 /target - -',
        '',
      ].join('\n'),
    );
    const ext = root.entries!.find((e) => e.name.toString() === 'regular-external')!.inode;
    expect(ext.payload!.toString()).toBe(`5a/${z.slice(2)}`);
    expect(ext.xattrs).toEqual([]); // metacopy and redirect became digest and payload
    const sock = root.entries!.find((e) => e.name.toString() === 'socket')!.inode;
    expect(sock.mode & S_IFMT).toBe(S_IFSOCK);
    // The directory size is the EROFS size in the composefs-info format.
    expect(printDumpfile(root).toString().split('\n')[0]).toBe('/ 170 40755 2 0 0 0 0.0 - - -');
  });

  it('reads simple with the raw rules: the overlay xattrs as stored', () => {
    const { root } = readErofs(SIMPLE, { rules: 'raw' });
    const ext = root.entries!.find((e) => e.name.toString() === 'regular-external')!.inode;
    expect(ext.xattrs.map((x) => x.key.toString())).toEqual([
      'trusted.overlay.metacopy',
      'trusted.overlay.redirect',
    ]);
    expect(nth(ext.xattrs, 0).value.length).toBe(36);
    expect(ext.digest).toBeNull();
  });
});

describe('readErofsFile', () => {
  it('reads an image from disk and names a missing file in an IO error', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odh-reader-'));
    try {
      const file = path.join(dir, 'simple.img');
      writeFileSync(file, SIMPLE);
      const { root } = await readErofsFile(file);
      expect(root.entries!.map((e) => e.name.toString())).toEqual([
        'blkdev',
        'chrdev',
        'fifo',
        'regular-external',
        'regular-inline',
        'socket',
        'symlink',
      ]);
      const err = await readErofsFile(path.join(dir, 'missing.img')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OdhError);
      expect((err as OdhError).code).toBe('IO');
      expect((err as OdhError).message).toContain('missing.img');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
