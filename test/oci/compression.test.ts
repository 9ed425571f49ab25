import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  compressStream,
  decompressSniffed,
  decompressStream,
  sniffCompression,
} from '../../src/oci/compression.js';
import { hasTool } from '../helpers/tools.js';

async function run(s: NodeJS.ReadWriteStream, input: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const src = Readable.from(input);
  src.pipe(s as NodeJS.WritableStream);
  for await (const c of s as unknown as AsyncIterable<Buffer>) out.push(c);
  return Buffer.concat(out);
}

const haveZstd = hasTool('zstd', 'zstd');
const zstdCli = (args: string[], input: Buffer) =>
  execFileSync('zstd', ['-q', '-c', ...args], { input, maxBuffer: 1 << 30 });

describe('compression', () => {
  it('sniffs magic bytes', () => {
    expect(sniffCompression(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f]))).toBe('none');
    expect(sniffCompression(Buffer.from('ustar'))).toBe('none');
  });

  it('gzip and zstd round trip through our encoders and decoders', async () => {
    const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(300_000, 1)]);
    for (const kind of ['gzip', 'zstd', 'none'] as const) {
      const packed = await run(compressStream(kind), [data]);
      expect(sniffCompression(packed)).toBe(kind === 'none' ? 'none' : kind);
      expect((await run(decompressStream(kind), [packed])).equals(data)).toBe(true);
      expect((await run(decompressSniffed(), [packed.subarray(0, 1), packed.subarray(1)])).equals(data)).toBe(
        true,
      );
    }
    expect((await run(decompressStream('gzip'), [gzipSync(data)])).equals(data)).toBe(true);
  });

  it.skipIf(!haveZstd)('decodes zstd CLI output with several frames and window log 27', async () => {
    const a = randomBytes(50_000);
    const b = Buffer.alloc(2_000_000, 7);
    const packed = Buffer.concat([zstdCli(['--long=27'], a), zstdCli([], b)]);
    const out = await run(decompressStream('zstd'), [packed]);
    expect(createHash('sha256').update(out).digest('hex')).toBe(
      createHash('sha256')
        .update(Buffer.concat([a, b]))
        .digest('hex'),
    );
  });

  it.skipIf(!haveZstd)('refuses a frame asking for a 2^28 window (LIMIT)', async () => {
    // Streamed through stdin the CLI cannot use single-segment mode, so the header carries windowLog 28.
    const packed = execFileSync('sh', ['-c', 'head -c 100000 /dev/zero | zstd -q --long=28 -c']);
    expect(packed[5] >> 3).toBe(18); // window exponent 18 → 2^28
    await expect(run(decompressStream('zstd'), [packed])).rejects.toMatchObject({
      code: 'LIMIT',
      message: expect.stringMatching(/zstd window .*2\^28.* exceeds the 2\^27-byte limit/),
    });
  });

  it('gzip output carries the Go header and is valid for gzip(1)', async (ctx) => {
    const data = Buffer.concat([randomBytes(70_000), Buffer.alloc(1 << 20, 3)]);
    const packed = await run(compressStream('gzip'), [data.subarray(0, 5), data.subarray(5)]);
    expect(packed.subarray(0, 10).toString('hex')).toBe('1f8b08000000000000ff');
    expect(gunzipSync(packed).equals(data)).toBe(true);
    expect(packed.readUInt32LE(packed.length - 4)).toBe(data.length);
    if (!hasTool('gzip', 'gzip')) ctx.skip();
    expect(execFileSync('gzip', ['-dc'], { input: packed, maxBuffer: 1 << 30 }).equals(data)).toBe(true);
  });

  it('truncated input is TRUNCATED for zstd and gzip', async () => {
    const data = randomBytes(200_000);
    const z = await run(compressStream('zstd'), [data]);
    await expect(run(decompressStream('zstd'), [z.subarray(0, z.length - 10)])).rejects.toMatchObject({
      code: 'TRUNCATED',
    });
    const g = gzipSync(data);
    await expect(run(decompressStream('gzip'), [g.subarray(0, g.length - 10)])).rejects.toMatchObject({
      code: 'TRUNCATED',
    });
  });

  it('a small zstd bomb is decoded with backpressure (bounded chunks)', async () => {
    const packed = await run(compressStream('zstd', 19), [Buffer.alloc(64 << 20)]);
    expect(packed.length).toBeLessThan(1 << 16);
    const dec = decompressStream('zstd');
    Readable.from([packed]).pipe(dec);
    let total = 0;
    let largest = 0;
    for await (const c of dec as AsyncIterable<Buffer>) {
      total += c.length;
      largest = Math.max(largest, c.length);
    }
    expect(total).toBe(64 << 20);
    expect(largest).toBeLessThanOrEqual(128 << 10);
  });
});
