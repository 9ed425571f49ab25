import { createReadStream, readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { inspectTarDiff } from '../../src/tardiff/inspect.js';
import { encodeOp, OpCode } from '../../src/tardiff/ops.js';
import { chunked, makeDelta } from './fixtures.js';
import { vectorPath } from '../helpers/shared.js';

const open = (name: string) => createReadStream(vectorPath('tardiff', name, 'delta.tardiff'));
const expectedSize = (name: string) =>
  BigInt(readFileSync(vectorPath('tardiff', name, 'expected.bin')).length);

describe('inspectTarDiff (no source needed)', () => {
  it('v1-two-files: sources in order, exact output size', async () => {
    const s = await inspectTarDiff(open('v1-two-files'));
    expect(s.version).toBe(1);
    expect(s.sources).toEqual(['file1.txt', 'file2.txt']);
    expect(s.ops).toEqual({ Data: 1, Open: 2, Copy: 2, AddData: 0, Seek: 1, ZstdDict: 0 });
    expect(s.bytesOut).toBe(expectedSize('v1-two-files'));
    expect(s.bytesOutExact).toBe(true);
  });

  it('v2 ZstdDict with content size counts it; cleaned names are listed once', async () => {
    const s = await inspectTarDiff(open('v2-zstddict-32k'));
    expect(s.version).toBe(2);
    expect(s.sources).toEqual(['source.bin']);
    expect(s.bytesOut).toBe(expectedSize('v2-zstddict-32k'));
    expect(s.bytesOutExact).toBe(true);
    const abs = await inspectTarDiff(open('v1-absolute-cleaned'));
    expect(abs.sources).toEqual(['dir/sub/f']);
  });

  it('ZstdDict without content size makes the size inexact', async () => {
    const s = await inspectTarDiff(open('v2-zstddict-no-content-size'));
    expect(s.bytesOutExact).toBe(false);
    expect(s.ops.ZstdDict).toBe(1);
  });

  it('dedupes repeated sources and keeps first-use order', async () => {
    const { Open, Copy } = OpCode;
    const delta = makeDelta(1, [
      encodeOp(Open, Buffer.from('b')),
      encodeOp(Open, Buffer.from('a')),
      encodeOp(Open, Buffer.from('./b')),
      encodeOp(Copy, 4),
    ]);
    const s = await inspectTarDiff(chunked(delta, 3));
    expect(s.sources).toEqual(['b', 'a']);
    expect(s.bytesOut).toBe(4n);
  });

  for (const [name, code] of [
    ['bad-magic', 'FORMAT'],
    ['zstddict-in-v1', 'FORMAT'],
    ['unknown-op', 'FORMAT'],
    ['open-name-too-long', 'LIMIT'],
    ['adddata-too-large', 'LIMIT'],
    ['copy-without-open', 'FORMAT'],
    ['truncated-data', 'TRUNCATED'],
    ['empty-open-name', 'FORMAT'],
    ['not-zstd', 'FORMAT'],
  ] as const) {
    it(`rejects ${name} like the applier (${code})`, async () => {
      await expect(inspectTarDiff(open(name), { where: name })).rejects.toMatchObject({ code });
    });
  }
});
