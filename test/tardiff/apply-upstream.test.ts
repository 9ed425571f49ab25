import { describe, it, expect } from 'vitest';
import { encodeOp, OpCode } from '../../src/tardiff/ops.js';
import { ADD_DATA_MAX } from '../../src/tardiff/op-rules.js';
import { encodeUvarint } from '../../src/tardiff/varint.js';
import { applyError, applyToBuffer, makeDelta, MemorySource, zstdPatch } from './fixtures.js';

const { Data, Open, Copy, AddData, Seek, ZstdDict } = OpCode;
const s = (t: string) => Buffer.from(t);
const b = (...x: number[]) => Buffer.from(x);

describe('Rust crate vectors (spec oci-delta §8.1)', () => {
  const blob = new MemorySource({ 'data/blob.bin': b(10, 20, 30, 40, 250, 2, 70) });

  it('v1 copy/seek/add → [10,20,4,1,70,20,30]', async () => {
    const delta = makeDelta(1, [
      encodeOp(Open, s('data/blob.bin')),
      encodeOp(Copy, 2),
      encodeOp(Seek, 4),
      encodeOp(AddData, b(10, 255)),
      encodeOp(Copy, 1),
      encodeOp(Seek, 1),
      encodeOp(Copy, 2),
    ]);
    // every chunk boundary of the delta file
    for (const piece of [1, 3, 1 << 16]) {
      const { out } = await applyToBuffer(delta, blob, { piece });
      expect([...out]).toEqual([10, 20, 4, 1, 70, 20, 30]);
    }
  });

  describe('short payloads fail (source "abcd")', () => {
    const abcd = new MemorySource({ f: s('abcd') });
    const open = encodeOp(Open, s('f'));
    const cases: [string, Buffer[], string][] = [
      ['Data size 3 with 2 bytes', [b(Data, 3, 0x61, 0x62)], 'TRUNCATED'],
      ['Open size 3 with 2 bytes', [b(Open, 3, 0x61, 0x62)], 'TRUNCATED'],
      ['AddData size 3 with 2 bytes', [open, b(AddData, 3, 1, 2)], 'TRUNCATED'],
      ['Copy 5 of 4 bytes', [open, encodeOp(Copy, 5)], 'TRUNCATED'],
      ['AddData 5 over 4 bytes', [open, encodeOp(AddData, s('abcde'))], 'TRUNCATED'],
    ];
    for (const [name, ops, code] of cases) {
      it(name, async () => {
        const err = await applyError(makeDelta(1, ops), abcd);
        expect(err.code).toBe(code);
      });
    }
  });

  it('zstd dict: 32 KiB source, level-3 patch < target/4, reproduces the target; same bytes as the golden vector', async () => {
    const source = Buffer.alloc(32768);
    for (let i = 0; i < source.length; i++) source[i] = ((Math.imul(i, 2654435761) >>> 0) >>> 13) & 0xff;
    const target = Buffer.concat([source, s('appended target-only bytes')]);
    target.fill(0x5a, 10000, 10256);
    const patch = zstdPatch(source, target, { level: 3 });
    expect(patch.length).toBeLessThan(target.length / 4);
    const delta = makeDelta(2, [encodeOp(Open, s('source.bin')), encodeOp(ZstdDict, patch)]);
    const { out } = await applyToBuffer(delta, new MemorySource({ 'source.bin': source }));
    expect(out.equals(target)).toBe(true);
    // provenance: vectors/tardiff/v2-zstddict-32k was made from the same recipe with the zstd CLI
    const { readFileSync } = await import('node:fs');
    const { vectorPath } = await import('../helpers/shared.js');
    expect(
      readFileSync(vectorPath('tardiff', 'v2-zstddict-32k', 'source', 'source.bin')).equals(source),
    ).toBe(true);
    expect(readFileSync(vectorPath('tardiff', 'v2-zstddict-32k', 'expected.bin')).equals(target)).toBe(true);
  });

  it('zstd dict: window log 29 accepted, 30 rejected', async () => {
    const source = Buffer.from('0123456789abcdef'.repeat(64));
    const target = Buffer.concat([source.subarray(100), s('tail')]);
    const src = new MemorySource({ src: source });
    const p29 = zstdPatch(source, target, { windowLog: 29, contentSize: false });
    expect(p29[5]! >> 3).toBe(29 - 10); // window descriptor exponent
    const ok = await applyToBuffer(makeDelta(2, [encodeOp(Open, s('src')), encodeOp(ZstdDict, p29)]), src);
    expect(ok.out.equals(target)).toBe(true);
    const p30 = zstdPatch(source, target, { windowLog: 30, contentSize: false });
    expect(p30[5]! >> 3).toBe(30 - 10);
    const err = await applyError(makeDelta(2, [encodeOp(Open, s('src')), encodeOp(ZstdDict, p30)]), src);
    expect(err.code).toBe('LIMIT');
    expect(err.message).toMatch(/window log 30/);
    expect(err.context.op).toBe(1);
  });

  it('unknown header tardf3 is rejected', async () => {
    const delta = Buffer.concat([s('tardf3\n\0'), makeDelta(1, [encodeOp(Data, s('x'))]).subarray(8)]);
    const err = await applyError(delta, new MemorySource({}));
    expect(err.code).toBe('FORMAT');
    expect(err.message).toMatch(/invalid tar-diff header/);
  });
});

describe('Go tar-patch tests (spec oci-delta §8.2)', () => {
  const run = async (version: 1 | 2, files: Record<string, string | Buffer>, ops: Buffer[]) => {
    const src = new MemorySource(
      Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])),
    );
    return (await applyToBuffer(makeDelta(version, ops), src)).out;
  };
  const fail = async (version: 1 | 2, files: Record<string, string>, ops: Buffer[]) => {
    const src = new MemorySource(
      Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])),
    );
    return applyError(makeDelta(version, ops), src);
  };

  it('Data', async () => {
    expect((await run(1, {}, [encodeOp(Data, s('Hello, World!'))])).toString()).toBe('Hello, World!');
  });
  it('Copy 7', async () => {
    const out = await run(1, { f: 'content to copy' }, [encodeOp(Open, s('f')), encodeOp(Copy, 7)]);
    expect(out.toString()).toBe('content');
  });
  it('AddData, with and without byte wrap', async () => {
    const a = await run(1, { f: b(1, 2, 3, 4, 5) }, [
      encodeOp(Open, s('f')),
      encodeOp(AddData, b(10, 20, 30, 40, 50)),
    ]);
    expect([...a]).toEqual([11, 22, 33, 44, 55]);
    const w = await run(1, { f: b(255, 254, 253) }, [encodeOp(Open, s('f')), encodeOp(AddData, b(2, 3, 4))]);
    expect([...w]).toEqual([1, 1, 1]);
  });
  it('Seek 5 + Copy 3', async () => {
    const out = await run(1, { f: '0123456789' }, [
      encodeOp(Open, s('f')),
      encodeOp(Seek, 5),
      encodeOp(Copy, 3),
    ]);
    expect(out.toString()).toBe('567');
  });
  it('ZstdDict fox → cat', async () => {
    const old = s('The quick brown fox jumps over the lazy dog');
    const neu = s('The quick red fox runs over the lazy cat');
    for (const opts of [{}, { contentSize: false, checksum: true }]) {
      const out = await run(2, { f: old }, [
        encodeOp(Open, s('f')),
        encodeOp(ZstdDict, zstdPatch(old, neu, opts)),
      ]);
      expect(out.equals(neu)).toBe(true);
    }
  });
  it('ZstdDict under a v1 header mentions tardf2', async () => {
    const patch = zstdPatch(s('abc'), s('abd'));
    const err = await fail(1, { f: 'abc' }, [encodeOp(Open, s('f')), encodeOp(ZstdDict, patch)]);
    expect(err.message).toMatch(/tardf2/);
  });
  it('garbage header', async () => {
    const err = await applyError(s('not a tar-diff at all'), new MemorySource({}));
    expect(err.message).toMatch(/invalid tar-diff header/);
  });
  it('op 99', async () => {
    const err = await fail(1, {}, [b(99, 0)]);
    expect(err.message).toMatch(/unexpected tar-diff op 99/);
  });
  it('Open of 4097 bytes, AddData of 104857601 bytes', async () => {
    const long = await fail(1, {}, [encodeOp(Open, Buffer.alloc(4097, 0x61))]);
    expect(long.code).toBe('LIMIT');
    // only the size varint: the limit must fire before any data is read
    const add = await fail(1, { f: 'x' }, [
      encodeOp(Open, s('f')),
      Buffer.concat([b(AddData), encodeUvarint(ADD_DATA_MAX + 1)]),
    ]);
    expect(add.code).toBe('LIMIT');
    expect(add.message).toMatch(/104857600/);
  });
  it('Open of exactly 4096 bytes is allowed (then not found)', async () => {
    const err = await fail(1, {}, [encodeOp(Open, Buffer.alloc(4096, 0x61))]);
    expect(err.code).toBe('NOT_FOUND');
  });
  it('path traversal is cleaned lexically', async () => {
    for (const name of ['../secret.txt', '../../secret.txt']) {
      expect(
        (await run(1, { 'secret.txt': 'DECOY' }, [encodeOp(Open, s(name)), encodeOp(Copy, 5)])).toString(),
      ).toBe('DECOY');
    }
    const err = await fail(1, { 'secret.txt': 'DECOY' }, [
      encodeOp(Open, s('/etc/passwd')),
      encodeOp(Copy, 1),
    ]);
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('etc/passwd');
  });
  it('complex: two files, Data between', async () => {
    const out = await run(1, { 'file1.txt': 'First file content', 'file2.txt': 'Second file content' }, [
      encodeOp(Open, s('file1.txt')),
      encodeOp(Copy, 5),
      encodeOp(Data, s(' and some raw data')),
      encodeOp(Open, s('file2.txt')),
      encodeOp(Seek, 7),
      encodeOp(Copy, 4),
    ]);
    expect(out.toString()).toBe('First and some raw datafile');
  });
  it('filesystem integration case', async () => {
    const out = await run(1, { 'source1.txt': 'Hello from file 1', 'source2.txt': 'Hello from file 2' }, [
      encodeOp(Open, s('source1.txt')),
      encodeOp(Copy, 5),
      encodeOp(Data, s(' + ')),
      encodeOp(Open, s('source2.txt')),
      encodeOp(Seek, 11),
      encodeOp(Copy, 6),
    ]);
    expect(out.toString()).toBe('Hello + file 2');
  });
  it('empty op stream → empty output', async () => {
    expect((await run(1, {}, [])).length).toBe(0);
  });
  it('Copy/AddData/Seek/ZstdDict without Open → no current file', async () => {
    for (const op of [
      encodeOp(Copy, 1),
      encodeOp(AddData, b(1)),
      encodeOp(Seek, 1),
      encodeOp(ZstdDict, b(0x28)),
    ]) {
      const err = await fail(2, {}, [op]);
      expect(err.message).toMatch(/no current file/);
    }
  });
  it('Data 0 and Copy 0 write nothing', async () => {
    expect(
      (await run(1, { f: 'x' }, [encodeOp(Data, b()), encodeOp(Open, s('f')), encodeOp(Copy, 0)])).length,
    ).toBe(0);
  });
  it('Open with an empty name', async () => {
    const err = await fail(1, {}, [encodeOp(Open, b())]);
    expect(err.message).toMatch(/invalid source name/);
  });
  it('Seek 100 in "short" then Copy 5 → EOF', async () => {
    const err = await fail(1, { short: 'short' }, [
      encodeOp(Open, s('short')),
      encodeOp(Seek, 100),
      encodeOp(Copy, 5),
    ]);
    expect(err.code).toBe('TRUNCATED');
    expect(err.message).toMatch(/EOF/);
    expect(err.context.file).toBe('short');
    expect(err.context.offset).toBe(100n);
  });
});

describe('hex vectors (spec oci-delta §8.4)', () => {
  const blob = new MemorySource({
    'data/blob.bin': b(10, 20, 30, 40, 250, 2, 70),
    'base.txt': s('The quick brown fox jumps over the lazy dog'),
  });
  const cases: [string, string, Buffer][] = [
    [
      'A (v1)',
      '7461726466310a0028b52ffd201de90000010d646174612f626c6f622e62696e0202040403020aff020104010202',
      b(10, 20, 4, 1, 70, 20, 30),
    ],
    ['data only', '7461726466310a0028b52ffd2007390000000568656c6c6f', s('hello')],
    [
      'B (v2, single-segment with content size)',
      '7461726466320a0028b52ffd202d6901000108626173652e747874052128b52ffd2428a50000505472656472756e6361740310050b07bbe38a2ba6862dde',
      s('The quick red fox runs over the lazy cat'),
    ],
    [
      'C (v2, window descriptor, no content size, then Copy 0)',
      '7461726466320a0028b52ffd202e7101000108626173652e747874052028b52ffd04009d00004872656472756e6361740310050b07bbe33620a6862dde0200',
      s('The quick red fox runs over the lazy cat'),
    ],
  ];
  for (const [name, hex, expected] of cases) {
    it(name, async () => {
      for (const piece of [1, 1 << 16]) {
        const { out } = await applyToBuffer(Buffer.from(hex, 'hex'), blob, { piece });
        expect(out.equals(expected)).toBe(true);
      }
    });
  }
  it('A: the uncompressed op stream is what encodeOp writes', () => {
    const ops = Buffer.concat([
      encodeOp(Open, s('data/blob.bin')),
      encodeOp(Copy, 2),
      encodeOp(Seek, 4),
      encodeOp(AddData, b(10, 255)),
      encodeOp(Copy, 1),
      encodeOp(Seek, 1),
      encodeOp(Copy, 2),
    ]);
    expect(ops.toString('hex')).toBe('010d646174612f626c6f622e62696e0202040403020aff020104010202');
  });
});
