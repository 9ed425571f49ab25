import { describe, it, expect } from 'vitest';
import { imageId, layoutErofsV2, writeErofs } from '../../src/composefs/format/erofs/write.js';
import { emptyTree, hexdumpImage, simpleTree } from './erofs-writer-trees.js';
import { nth } from '../helpers/must.js';

// spec composefs-v2 §8.2: composefs-rs mkfs.rs::test_erofs_digest_stability, hexdumps of the images.
const EMPTY_ROWS = `
00000000: 9a62 78d0 0100 0000 0000 0000 0200 0000
00000400: e2e1 f5e0 0000 0000 0600 0000 0c00 2400
00000410: 0100 0000 0000 0000 0000 0000 0000 0000
00000420: 0000 0000 0100 0000 0000 0000 0000 0000
00000480: 0500 0000 ed41 0000 1b00 0000 0000 0000
00000490: 0000 0000 2400 0000 0000 0000 0000 0000
000004a0: 0000 0000 0000 0000 0000 0000 0200 0000
000004c0: 2400 0000 0000 0000 1800 0200 2400 0000
000004d0: 0000 0000 1900 0200 2e2e 2e00 0000 0000
`;

const SIMPLE_ROWS = `
00000000: 9a62 78d0 0100 0000 0000 0000 0200 0000
00000400: e2e1 f5e0 0000 0000 0600 0000 0c00 2400
00000410: 0800 0000 0000 0000 0000 0000 0000 0000
00000420: 0000 0000 0100 0000 0000 0000 0000 0000
00000480: 0500 0000 ed41 0000 aa00 0000 0000 0000
00000490: 0000 0000 2400 0000 0000 0000 0000 0000
000004a0: 0000 0000 0000 0000 0000 0000 0200 0000
000004c0: 2400 0000 0000 0000 6c00 0200 2400 0000
000004d0: 0000 0000 6d00 0200 2c00 0000 0000 0000
000004e0: 6f00 0400 2e00 0000 0000 0000 7500 0300
000004f0: 3000 0000 0000 0000 7b00 0500 3200 0000
00000500: 0000 0000 7f00 0100 3900 0000 0000 0000
00000510: 8f00 0100 3c00 0000 0000 0000 9d00 0600
00000520: 3e00 0000 0000 0000 a300 0700 2e2e 2e62
00000530: 6c6b 6465 7663 6872 6465 7666 6966 6f72
00000540: 6567 756c 6172 2d65 7874 6572 6e61 6c72
00000550: 6567 756c 6172 2d69 6e6c 696e 6573 6f63
00000560: 6b65 7473 796d 6c69 6e6b 0000 0000 0000
00000580: 0100 0000 0060 0000 0000 0000 0000 0000
00000590: 7b00 0000 2c00 0000 0000 0000 0000 0000
000005a0: 0000 0000 0000 0000 0000 0000 0100 0000
000005c0: 0100 0000 0020 0000 0000 0000 0000 0000
000005d0: 7b00 0000 2e00 0000 0000 0000 0000 0000
000005e0: 0000 0000 0000 0000 0000 0000 0100 0000
00000600: 0100 0000 0010 0000 0000 0000 0000 0000
00000610: 0000 0000 3000 0000 0000 0000 0000 0000
00000620: 0000 0000 0000 0000 0000 0000 0100 0000
00000640: 0900 2500 0080 0000 d204 0000 0000 0000
00000650: 1f00 0000 3200 0000 0000 0000 0000 0000
00000660: 0000 0000 0000 0000 0000 0000 0100 0000
00000680: ffff fd7f 0000 0000 0000 0000 1004 2400
00000690: 6f76 6572 6c61 792e 6d65 7461 636f 7079
000006a0: 0024 0001 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a
000006b0: 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a 5a5a
000006c0: 5a5a 5a5a 1004 4200 6f76 6572 6c61 792e
000006d0: 7265 6469 7265 6374 2f35 612f 3561 3561
000006e0: 3561 3561 3561 3561 3561 3561 3561 3561
000006f0: 3561 3561 3561 3561 3561 3561 3561 3561
00000700: 3561 3561 3561 3561 3561 3561 3561 3561
00000710: 3561 3561 3561 3561 3561 0000 ffff ffff
00000720: 0500 0000 0080 0000 0400 0000 0000 0000
00000730: 0000 0000 3900 0000 0000 0000 0000 0000
00000740: 0000 0000 0000 0000 0000 0000 0100 0000
00000760: 6869 6869 0000 0000 0000 0000 0000 0000
00000780: 0100 0000 00c0 0000 0000 0000 0000 0000
00000790: 0000 0000 3c00 0000 0000 0000 0000 0000
000007a0: 0000 0000 0000 0000 0000 0000 0100 0000
000007c0: 0500 0000 00a0 0000 0700 0000 0000 0000
000007d0: 0000 0000 3e00 0000 0000 0000 0000 0000
000007e0: 0000 0000 0000 0000 0000 0000 0100 0000
00000800: 2f74 6172 6765 7400
`;

describe('V2 writer (composefs-rs legacy) against spec composefs-v2 §8.2–§8.3', () => {
  it('empty: pinned SHA-256 image ID, derived SHA-512 ID and exact bytes', () => {
    const img = writeErofs(emptyTree(), { format: 'v2' });
    expect(img.length).toBe(4096);
    expect(img.equals(hexdumpImage(EMPTY_ROWS, 4096))).toBe(true);
    expect(imageId(img, 'sha256').toString('hex')).toBe(
      '086b702a519b57d6ef5aea6f8b3f2be24355cd1fb835cd80fb4e3d388b24d5a5',
    );
    expect(imageId(img, 'sha512').toString('hex')).toBe(
      '334472adb2a093bfb4d9bd138d921d76025387ac67813945a297a6391a20518d93efe5cd374cd7584a25c4df83dbfc1e3d4b5b3838ecc50e441d944ca0c11cf7',
    );
  });

  it('simple: pinned SHA-256 image ID, derived SHA-512 ID and exact bytes', () => {
    const img = writeErofs(simpleTree(), { format: 'v2' });
    expect(img.length).toBe(4096);
    expect(img.equals(hexdumpImage(SIMPLE_ROWS, 4096))).toBe(true);
    expect(imageId(img, 'sha256').toString('hex')).toBe(
      'a8fcd41f8b313bede69f462f2af0a38d64b99a6333f5df884ea9ab4037fac722',
    );
    expect(imageId(img, 'sha512').toString('hex')).toBe(
      '864fafb39729a4bb57445813b7c1bb9d52a6c263af560cd12aa511d56f911adba14b046b4bf3613cfad8dd9836b9b1d298907bcdb7994b87aa6dab2812fdf832',
    );
  });

  it('simple: the layout matches the mkfs__simple insta snapshot (nids, sizes, xattr body)', () => {
    // spec composefs-v2 §8.3 mkfs__simple.snap.
    const layout = layoutErofsV2(simpleTree());
    expect(layout.rootNid).toBe(36);
    expect(layout.inos).toBe(8);
    expect(layout.inodes.map((i) => i.nid)).toEqual([36, 44, 46, 48, 50, 57, 60, 62]);
    expect(layout.inodes.map((i) => i.ino)).toEqual([36, 44, 46, 48, 50, 57, 60, 62]);
    expect(layout.inodes.map((i) => i.format)).toEqual([5, 1, 1, 1, 9, 5, 1, 5]);
    expect(layout.inodes.map((i) => i.size)).toEqual([170n, 0n, 0n, 0n, 1234n, 4n, 0n, 7n]);
    const ext = nth(layout.inodes, 4);
    expect(ext.iu).toBe(31);
    expect(ext.xattrs?.size).toBe(156);
    expect(~ext.xattrs!.filter >>> 0).toBe(2147352575);
    expect(layout.shared).toEqual([]);
  });

  it('empty: the layout matches the mkfs__empty insta snapshot', () => {
    const layout = layoutErofsV2(emptyTree());
    expect(layout.inodes.map((i) => [i.nid, i.size, i.nlink])).toEqual([[36, 27n, 2]]);
    expect(layout.imageSize).toBe(4096);
  });

  it('does not modify the input tree', () => {
    const tree = simpleTree();
    const before = JSON.stringify(tree, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    writeErofs(tree, { format: 'v2' });
    writeErofs(tree, { format: 'v1' });
    expect(JSON.stringify(tree, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).toBe(before);
  });
});
