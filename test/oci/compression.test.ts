import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  blockingDecoder,
  compressStream,
  decompressSniffed,
  decompressStream,
  haveBlockingDecoders,
  sniffCompression,
  type Compression,
} from '../../src/oci/compression.js';
import { hasTool } from '../helpers/tools.js';
import { xorByte } from '../helpers/must.js';
import { outcomeOf, shown } from '../helpers/outcome.js';

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
    expect(packed.readUInt8(5) >> 3).toBe(18); // window exponent 18 → 2^28
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

  describe('a codec destroyed mid-stream lets pipeline settle with the error', () => {
    // Before codecs were real Transforms, a Duplex.from(async generator) destroyed while awaiting input
    // never emitted 'close': pipeline stayed pending and, with an empty event loop, Node exited 0.
    const settles = <T>(p: Promise<T>) =>
      Promise.race([p, sleep(3000).then(() => Promise.reject(new Error('pipeline never settled')))]);
    // A source that trickles small pieces and never ends by itself: the codec is mostly awaiting input.
    const trickle = (bytes: Buffer) =>
      Readable.from(
        (async function* () {
          for (;;) {
            // whole copies one after the other: several gzip members / zstd frames stay valid input
            for (let i = 0; i < bytes.length; i += 4096) {
              yield bytes.subarray(i, i + 4096);
              await sleep(1);
            }
          }
        })(),
      );
    const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
    const plain = Buffer.alloc(1 << 20, 5);
    const codecs = [
      ['gzip decoder', () => decompressStream('gzip'), 'gzip'],
      ['zstd decoder', () => decompressStream('zstd'), 'zstd'],
      ['sniffing decoder (zstd)', () => decompressSniffed(), 'zstd'],
      ['gzip encoder', () => compressStream('gzip'), 'none'],
      ['zstd encoder', () => compressStream('zstd'), 'none'],
    ] as const;

    for (const [name, make, input] of codecs) {
      it(`${name}: destroy(err), destroy() and abort`, async () => {
        const bytes =
          input === 'none'
            ? plain
            : input === 'gzip'
              ? gzipSync(plain)
              : await run(compressStream('zstd'), [plain]);
        const a = make();
        setTimeout(() => a.destroy(new Error('consumer gave up')), 30);
        await expect(settles(pipeline(trickle(bytes), a, sink()))).rejects.toThrow('consumer gave up');
        expect(a.destroyed).toBe(true);

        const b = make();
        setTimeout(() => b.destroy(), 30);
        await expect(settles(pipeline(trickle(bytes), b, sink()))).rejects.toMatchObject({
          code: 'ERR_STREAM_PREMATURE_CLOSE',
        });

        const ac = new AbortController();
        setTimeout(() => ac.abort(), 30);
        await expect(
          settles(pipeline(trickle(bytes), make(), sink(), { signal: ac.signal })),
        ).rejects.toMatchObject({
          name: 'AbortError',
        });
      });

      it(`${name}: a failing sink rejects pipeline with the sink's error`, async () => {
        const bytes =
          input === 'none'
            ? plain
            : input === 'gzip'
              ? gzipSync(plain)
              : await run(compressStream('zstd'), [plain]);
        let seen = 0;
        const failing = new Writable({
          write: (c: Buffer, _e, cb) => ((seen += c.length) > 0 ? cb(new Error('disk full')) : cb()),
        });
        await expect(settles(pipeline(trickle(bytes), make(), failing))).rejects.toThrow('disk full');
      });
    }

    it('a destroyed decoder does not relabel the outside error as a gzip FORMAT error', async () => {
      const d = decompressStream('gzip');
      setTimeout(() => d.destroy(new Error('outside')), 30);
      const err = await settles(pipeline(trickle(gzipSync(plain)), d, sink())).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe('outside');
    });
  });
});

/** Everything a blocking decoder gives for `chunks`: each piece copied at once (pieces are reused). */
function decodeBlocking(
  kind: Compression,
  chunks: Buffer[],
): { out: Buffer; largest: number; pieces: number } {
  const dec = blockingDecoder(kind, { layer: 'sha256:test' });
  if (dec === null) throw new Error(`no blocking ${kind} decoder on ${process.version}`);
  const parts: Buffer[] = [];
  let largest = 0;
  try {
    for (const c of chunks) {
      for (const piece of dec.decode(c)) {
        parts.push(Buffer.from(piece));
        largest = Math.max(largest, piece.length);
      }
    }
    for (const piece of dec.end()) parts.push(Buffer.from(piece));
  } finally {
    dec.close();
  }
  return { out: Buffer.concat(parts), largest, pieces: parts.length };
}

/** `input` cut into pieces of `size` bytes. */
function cut(input: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < input.length; o += size) out.push(input.subarray(o, o + size));
  return out;
}

describe('blocking decoders (layer workers)', () => {
  it('this Node has them: zlib still exposes what its own sync API drives', () => {
    // Node 20, 22 and 24 do; without them layer workers fall back to the decoder streams.
    expect(haveBlockingDecoders()).toBe(true);
  });

  it('give the decoder streams bytes for multi-member gzip, several zstd frames and plain input, in any chunking', async () => {
    const a = Buffer.concat([randomBytes(90_000), Buffer.alloc(700_000, 5)]);
    const b = Buffer.from('second member\n'.repeat(5000));
    const inputs: [Compression, Buffer][] = [
      ['gzip', Buffer.concat([gzipSync(a), gzipSync(b)])],
      [
        'zstd',
        Buffer.concat([await run(compressStream('zstd'), [a]), await run(compressStream('zstd'), [b])]),
      ],
      ['none', Buffer.concat([a, b])],
    ];
    for (const [kind, packed] of inputs) {
      const want = await run(decompressStream(kind), [packed]);
      expect(want.equals(Buffer.concat([a, b]))).toBe(true);
      for (const size of [1, 7, 4096, 65_537, packed.length]) {
        if (size === 1 && packed.length > 200_000) continue; // a byte at a time: the small cases suffice
        expect(
          decodeBlocking(kind, cut(packed, size)).out.equals(want),
          `${kind} in ${size}-byte chunks`,
        ).toBe(true);
      }
    }
  });

  it('a gzip bomb comes out in pieces of at most 256 KiB, one at a time', () => {
    const packed = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    expect(packed.length).toBeLessThan(1 << 17);
    const { out, largest, pieces } = decodeBlocking('gzip', [packed]);
    expect(out.length).toBe(64 << 20);
    expect(largest).toBeLessThanOrEqual(256 << 10);
    expect(pieces).toBeGreaterThanOrEqual(256);
  });

  it('fail as the decoder streams do: truncated gzip and zstd, corrupt gzip', async () => {
    const data = randomBytes(300_000);
    const g = gzipSync(data);
    const z = await run(compressStream('zstd'), [data]);
    const corrupt = Buffer.from(g);
    xorByte(corrupt, 100, 0xff);
    const cases: [Compression, Buffer, string][] = [
      ['gzip', g.subarray(0, g.length - 10), 'TRUNCATED'],
      ['gzip', g.subarray(0, 5000), 'TRUNCATED'],
      ['zstd', z.subarray(0, z.length - 10), 'TRUNCATED'],
      ['gzip', corrupt, 'FORMAT'],
    ];
    for (const [kind, packed, code] of cases) {
      const ctx = { layer: 'sha256:test' };
      // The same chunks, and zlib's output in 256 KiB as layer-stream.ts asks of the stream: the
      // offset counts what zlib consumed before the failing call, so it depends on both.
      const stream = shown(await outcomeOf(() => new GzipOrZstd(kind, ctx).drain(cut(packed, 4096))));
      const blocking = shown(await outcomeOf(() => decodeBlocking(kind, cut(packed, 4096))));
      expect(blocking).toMatchObject({ code });
      expect(blocking).toEqual(stream);
    }
  });

  it.skipIf(!haveZstd)(
    'refuse a zstd frame asking for a 2^28 window (LIMIT), its header cut by a chunk boundary',
    async () => {
      const packed = execFileSync('sh', ['-c', 'head -c 100000 /dev/zero | zstd -q --long=28 -c']);
      const cutHeader = [packed.subarray(0, 3), packed.subarray(3)];
      await expect(run(decompressStream('zstd'), cutHeader)).rejects.toMatchObject({
        code: 'LIMIT',
        message: expect.stringMatching(/zstd window .*2\^28.* exceeds the 2\^27-byte limit/),
      });
      const blocking = shown(await outcomeOf(() => decodeBlocking('zstd', cutHeader)));
      expect(blocking).toMatchObject({
        code: 'LIMIT',
        message: expect.stringMatching(/zstd window .*2\^28.* exceeds the 2\^27-byte limit/),
      });
    },
  );
});

/** The decoder stream of `kind` with an error context, drained. */
class GzipOrZstd {
  constructor(
    private readonly kind: Compression,
    private readonly ctx: { layer: string },
  ) {}

  async drain(input: Buffer[]): Promise<void> {
    await pipeline(
      Readable.from(input),
      decompressStream(this.kind, this.ctx, { chunkSize: 256 << 10 }),
      new Writable({ write: (_c, _e, cb) => cb() }),
    );
  }
}
