import { describe, it, expect } from 'vitest';
import { imageId, layoutErofsV1, writeErofs } from '../../src/composefs/format/erofs/write.js';
import { S_IFDIR, S_IFREG, newInode } from '../../src/composefs/format/tree.js';
import { dirWith, emptyTree, hexdumpRows, simpleTree } from './erofs-writer-trees.js';

// spec composefs-v1 §13.2: the non-zero rows listed for `empty` at cfs-version 0 (C mkcomposefs 1.0.8).
const EMPTY_V0_ROWS = `
00000000: 9a62 78d0 0100 0000 0000 0000 0000 0000
00000400: e2e1 f5e0 0000 0000 0600 0000 0c00 2400
00000410: 0101 0000 0000 0000 0000 0000 0000 0000
00000420: 0000 0000 0400 0000 0000 0000 0200 0000
00000480: 0000 0600 ed41 0200 0010 0000 0000 0000
00000490: 0300 0000 0000 0000 0000 0000 0000 0000
000004a0: ffff efff 0000 0000 0000 0000 0e04 0100
000004b0: 6f76 6572 6c61 792e 6f70 6171 7565 7900
000004c0: 0000 0000 a421 0100 0000 0000 0000 0000
000004d0: 0000 0000 0100 0000 0000 0000 0000 0000
00003000: 2400 0000 0000 0000 180c 0200 2400 0000
00003010: 0000 0000 190c 0200 2600 0000 0000 0000
00003c00: 2401 0000 0000 0000 170e 0300 2501 0000
00003c10: 0000 0000 190e 0300 2e2e 2e30 3030 3130
00003e10: 6166 6266 6366 6466 6566 6600
`;

const v = (n: number) => ({ format: 'v1' as const, minVersion: n, maxVersion: n });

describe('V1 writer (C mkcomposefs 1.0.8) against spec composefs-v1 §13.2–§13.3', () => {
  it('empty at cfs-version 0: listed rows, layout facts and the pinned digest', () => {
    const img = writeErofs(emptyTree(), v(0));
    expect(img.length).toBe(16384);
    for (const row of hexdumpRows(EMPTY_V0_ROWS)) {
      expect(
        img.subarray(row.offset, row.offset + row.bytes.length).toString('hex'),
        `row ${row.offset}`,
      ).toBe(row.bytes.toString('hex'));
    }
    // The 256 stubs: nids 38…293, inos 1…256; the rest of the image after the names is zero.
    const layout = layoutErofsV1(emptyTree(), v(0));
    expect(layout.inodes.slice(1).map((i) => i.nid)).toEqual(Array.from({ length: 256 }, (_, i) => 38 + i));
    expect(layout.inodes.slice(1).map((i) => i.ino)).toEqual(Array.from({ length: 256 }, (_, i) => 1 + i));
    expect(layout.sharedTableOffset).toBe(9408);
    expect(img.subarray(0x3e1c).every((b) => b === 0)).toBe(true);
    expect(imageId(img).toString('hex')).toBe(
      '8f589e8f57ecb88823736b0d857ddca1e1068a23e264fad164b28f7038eb3682',
    );
  });

  it('empty at cfs-version 1 differs only in header byte 12', () => {
    const a = writeErofs(emptyTree(), v(0));
    const b = writeErofs(emptyTree(), v(1));
    expect(b[12]).toBe(1);
    b[12] = 0;
    expect(b.equals(a)).toBe(true);
    b[12] = 1;
    expect(imageId(b).toString('hex')).toBe(
      '14a26c957c84f6eb774b91205476adc13196c7c33b9dd97d08d43725ecb90b63',
    );
  });

  it('default versions (0, 1) without whiteouts give cfs-version 0', () => {
    const img = writeErofs(emptyTree(), { format: 'v1' });
    expect(imageId(img).toString('hex')).toBe(
      '8f589e8f57ecb88823736b0d857ddca1e1068a23e264fad164b28f7038eb3682',
    );
  });

  it('simple (composefs-rs mkfs.rs V0/V1 pinned digests) and its layout table', () => {
    expect(imageId(writeErofs(simpleTree(), v(0))).toString('hex')).toBe(
      '9f3f5620ee0c54708516467d0d58741e7963047c7106b245d94c298259d0fa01',
    );
    const img = writeErofs(simpleTree(), v(1));
    expect(imageId(img).toString('hex')).toBe(
      'ad6db6427568a1e4fdc772cbab7b6063f5eb4b33cb62982a740ba9213e5962b5',
    );
    const layout = layoutErofsV1(simpleTree(), v(1));
    const byIno = new Map(layout.inodes.map((i) => [i.ino, i]));
    // spec composefs-v1 §13.3 table: ino → nid.
    const table: [number, number][] = [
      [0, 36],
      [193, 230],
      [210, 247],
      [259, 296],
      [260, 297],
      [261, 303],
      [262, 305],
      [263, 306],
    ];
    for (const [ino, nid] of table) expect(byIno.get(ino)?.nid, `ino ${ino}`).toBe(nid);
    const ext = byIno.get(260)!;
    expect(ext.xattrSize).toBe(156);
    expect(ext.iu).toBe(0);
    expect(layout.sharedTableOffset).toBe(9856);
  });

  it('end-to-end OCI → V1 vector (cli.rs OCI_LAYOUT_COMPOSEFS_V1_ID, SHA-512 image ID)', () => {
    // spec composefs-v1 §13.3: the canonical entry of the hardlink pair is hello-link.txt.
    const t = 1234567890n;
    const hello = newInode(S_IFREG | 0o644, {
      nlink: 2,
      mtimeSec: t,
      size: 22n,
      content: Buffer.from('hello from test layer\n'),
    });
    const tree = dirWith(newInode(S_IFDIR | 0o755, { nlink: 2, mtimeSec: t }), [
      ['hello-link.txt', hello, false],
      ['hello.txt', hello, true],
      ['usr', newInode(S_IFDIR | 0o755, { nlink: 2, mtimeSec: t })],
    ]);
    const img = writeErofs(tree, { format: 'v1', minVersion: 1 });
    expect(img.length).toBe(16384);
    expect(imageId(img, 'sha512').toString('hex')).toBe(
      'd06f1f6a73f62ed48e05ce9442ff045cdf2a9f5ba1ec623795de3d6177a253d91076459795d94f55d8c3d71dab458bb3fc0071255a50c0a4896d86ffdc870b9a',
    );
  });

  it('rejects versions above 1 and a file needing more than 1024 chunks', () => {
    expect(() => writeErofs(emptyTree(), { format: 'v1', minVersion: 2 })).toThrow(/version/);
    const big = dirWith(emptyTree(), [['f', newInode(S_IFREG | 0o644, { size: 9_500_000_000_000_000n })]]);
    expect(() => writeErofs(big, { format: 'v1' })).toThrow(/too large/);
  });
});
