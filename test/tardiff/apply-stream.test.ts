import { Writable } from 'node:stream';
import { compress } from 'zstd-napi';
import { describe, it, expect } from 'vitest';
import { applyTarDiff } from '../../src/tardiff/apply.js';
import { encodeOp, OpCode } from '../../src/tardiff/ops.js';
import type { DataSource, DataSourceFile } from '../../src/tardiff/data-source.js';
import {
  applyError,
  applyToBuffer,
  chunked,
  makeDelta,
  MAGIC_V1,
  MAGIC_V2,
  MemorySource,
  zstdPatch,
} from './fixtures.js';

const { Data, Open, Copy, AddData, Seek, ZstdDict } = OpCode;
const s = (t: string) => Buffer.from(t);

/** Deterministic bytes that do not compress to nothing. */
function pattern(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('bounded memory: large ops stream in pieces', () => {
  it('a 64 MiB Data op arrives in ≤ 1 MiB pieces', async () => {
    const size = 64 << 20;
    const delta = makeDelta(1, [
      Buffer.concat([Buffer.from([Data]), encodeOpSize(size)]),
      Buffer.alloc(size, 7),
    ]);
    expect(delta.length).toBeLessThan(1 << 20);
    let total = 0;
    let biggest = 0;
    await applyTarDiff(chunked(delta), new MemorySource({}), async (c) => {
      total += c.length;
      biggest = Math.max(biggest, c.length);
      expect(c.every((v) => v === 7)).toBe(true);
    });
    expect(total).toBe(size);
    expect(biggest).toBeLessThanOrEqual(1 << 20);
  });

  it('Copy and AddData of 5 MiB stream in ≤ 1 MiB pieces and are exact', async () => {
    const src = pattern(5 << 20);
    const add = pattern(5 << 20, 9);
    const delta = makeDelta(1, [
      encodeOp(Open, s('big')),
      encodeOp(Copy, src.length),
      encodeOp(Seek, 0),
      encodeOp(AddData, add),
    ]);
    const { out, chunks, result } = await applyToBuffer(delta, new MemorySource({ big: src }));
    expect(Math.max(...chunks)).toBeLessThanOrEqual(1 << 20);
    expect(out.subarray(0, src.length).equals(src)).toBe(true);
    const sum = out.subarray(src.length);
    for (let i = 0; i < sum.length; i += 4099) expect(sum[i]).toBe((src[i]! + add[i]!) & 0xff);
    expect(result.bytesOut).toBe(BigInt(2 * src.length));
    expect(result.ops).toEqual({ Data: 0, Open: 1, Copy: 1, AddData: 1, Seek: 1, ZstdDict: 0 });
  });

  it('respects Writable backpressure (never queues far beyond highWaterMark)', async () => {
    const body = pattern(12 << 20);
    const delta = makeDelta(1, [encodeOp(Data, body)]);
    const got: Buffer[] = [];
    let maxQueued = 0;
    const out = new Writable({
      highWaterMark: 64 << 10,
      write(chunk: Buffer, _enc, cb) {
        got.push(Buffer.from(chunk));
        setTimeout(cb, 1);
      },
    });
    const origWrite = out.write.bind(out);
    out.write = ((chunk: Buffer, ...rest: never[]) => {
      const r = origWrite(chunk, ...rest);
      maxQueued = Math.max(maxQueued, out.writableLength);
      return r;
    }) as typeof out.write;
    await applyTarDiff(chunked(delta), new MemorySource({}), out);
    await new Promise<void>((resolve) => out.end(resolve));
    expect(Buffer.concat(got).equals(body)).toBe(true);
    expect(maxQueued).toBeLessThanOrEqual((64 << 10) + (1 << 20));
  });

  it('a failing Writable gives an IO error, not a hang', async () => {
    const delta = makeDelta(1, [encodeOp(Data, pattern(4 << 20))]);
    const out = new Writable({
      highWaterMark: 1024,
      write(_c, _e, cb) {
        cb(new Error('disk full'));
      },
    });
    out.on('error', () => {});
    const err = await applyTarDiff(chunked(delta), new MemorySource({}), out, { where: 'L1' }).catch(
      (e: Error) => e,
    );
    expect(err).toMatchObject({ code: 'IO' });
    expect((err as Error).message).toMatch(/disk full.*layer L1/);
  });
});

describe('outer stream', () => {
  it('ops may span concatenated zstd frames', async () => {
    const ops = Buffer.concat([encodeOp(Data, s('hello world')), encodeOp(Open, s('f')), encodeOp(Copy, 3)]);
    const delta = Buffer.concat([
      MAGIC_V1,
      compress(ops.subarray(0, 5)),
      compress(ops.subarray(5, 15)),
      compress(ops.subarray(15)),
    ]);
    const { out } = await applyToBuffer(delta, new MemorySource({ f: s('abc') }), { piece: 7 });
    expect(out.toString()).toBe('hello worldabc');
  });

  it('an outer stream cut inside a frame is TRUNCATED', async () => {
    const delta = makeDelta(1, [encodeOp(Data, pattern(5000))]);
    const err = await applyError(delta.subarray(0, delta.length - 3), new MemorySource({}));
    expect(err.code).toBe('TRUNCATED');
    expect(err.message).toMatch(/zstd stream/);
  });

  it('header only (no frames) is an empty op stream', async () => {
    const { out } = await applyToBuffer(MAGIC_V2, new MemorySource({}));
    expect(out.length).toBe(0);
  });

  it('a file shorter than the header is refused', async () => {
    const err = await applyError(s('tardf'), new MemorySource({}));
    expect(err.message).toMatch(/invalid tar-diff header/);
  });

  it('reports progress with output and delta byte counts', async () => {
    const delta = makeDelta(1, [encodeOp(Data, Buffer.alloc(20 << 20))]);
    const seen: bigint[] = [];
    await applyTarDiff(chunked(delta), new MemorySource({}), async () => {}, {
      onProgress: (p) => {
        seen.push(p.bytesOut);
        expect(p.deltaBytesRead).toBeLessThanOrEqual(delta.length);
      },
    });
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.at(-1)).toBe(20n << 20n);
  });
});

describe('ZstdDict', () => {
  const base = s('The quick brown fox jumps over the lazy dog\n'.repeat(40));
  const changed = Buffer.from(base);
  changed[10]! ^= 0xff;
  const src = new MemorySource({ 'shared.txt': base });

  it('then Seek/Copy of the same source (tar-diff §8.3 "ZstdDict then Copy")', async () => {
    const delta = makeDelta(2, [
      encodeOp(Open, s('shared.txt')),
      encodeOp(ZstdDict, zstdPatch(base, changed)),
      encodeOp(Seek, 0),
      encodeOp(Copy, base.length),
    ]);
    const { out } = await applyToBuffer(delta, src);
    expect(out.equals(Buffer.concat([changed, base]))).toBe(true);
  });

  it('leaves the position at end of file (a Copy right after fails)', async () => {
    const delta = makeDelta(2, [
      encodeOp(Open, s('shared.txt')),
      encodeOp(Seek, 5),
      encodeOp(ZstdDict, zstdPatch(base, changed)),
      encodeOp(Copy, 1),
    ]);
    const err = await applyError(delta, src);
    expect(err.code).toBe('TRUNCATED');
    expect(err.context.offset).toBe(BigInt(base.length));
    expect(err.context.op).toBe(3);
  });

  it('decodes one frame and ignores the rest of the payload (Rust semantics)', async () => {
    const patch = zstdPatch(base, changed);
    const payload = Buffer.concat([patch, compress(s('second frame')), s('junk')]);
    const delta = makeDelta(2, [
      encodeOp(Open, s('shared.txt')),
      encodeOp(ZstdDict, payload),
      encodeOp(Data, s('!')),
    ]);
    const { out } = await applyToBuffer(delta, src, { piece: 5 });
    expect(out.equals(Buffer.concat([changed, s('!')]))).toBe(true);
  });

  it('a payload cut inside its frame is TRUNCATED', async () => {
    const patch = zstdPatch(base, changed);
    const delta = makeDelta(2, [
      encodeOp(Open, s('shared.txt')),
      encodeOp(ZstdDict, patch.subarray(0, patch.length - 2)),
    ]);
    const err = await applyError(delta, src);
    expect(err.code).toBe('TRUNCATED');
    expect(err.context.op).toBe(1);
  });

  it('a payload that is not a zstd frame is FORMAT', async () => {
    const delta = makeDelta(2, [
      encodeOp(Open, s('shared.txt')),
      encodeOp(ZstdDict, s('definitely not zstd')),
    ]);
    const err = await applyError(delta, src);
    expect(err.code).toBe('FORMAT');
    expect(err.message).toMatch(/not a zstd frame/);
  });

  it('refuses from the header alone a single-segment frame whose content exceeds 2^29', async () => {
    // magic, FHD 0xe0 = 8-byte content size + single segment, content size 2^29 + 1; no block follows
    const fcs = Buffer.alloc(8);
    fcs.writeBigUInt64LE((1n << 29n) + 1n);
    const header = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), fcs]);
    const err = await applyError(
      makeDelta(2, [encodeOp(Open, s('shared.txt')), encodeOp(ZstdDict, header)]),
      src,
    );
    expect(err.code).toBe('LIMIT');
    expect(err.message).toMatch(/window/);
  });

  it('refuses a window log 29 descriptor with a mantissa (window > 2^29)', async () => {
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (19 << 3) | 1]);
    const err = await applyError(
      makeDelta(2, [encodeOp(Open, s('shared.txt')), encodeOp(ZstdDict, header)]),
      src,
    );
    expect(err.code).toBe('LIMIT');
  });

  it('refuses a source over 512 MiB before reading it', async () => {
    let reads = 0;
    const huge: DataSource = {
      async open(): Promise<DataSourceFile> {
        return {
          name: 'huge',
          size: (1 << 29) + 1,
          async readAt() {
            reads++;
            return 0;
          },
          async close() {},
        };
      },
    };
    const err = await applyError(
      makeDelta(2, [encodeOp(Open, s('huge')), encodeOp(ZstdDict, zstdPatch(base, changed))]),
      huge,
    );
    expect(err.code).toBe('LIMIT');
    expect(err.message).toMatch(/Source file too large/);
    expect(reads).toBe(0);
  });

  it('works with an empty source file (empty dictionary)', async () => {
    const delta = makeDelta(2, [
      encodeOp(Open, s('e')),
      encodeOp(ZstdDict, zstdPatch(Buffer.alloc(0), s('fresh'))),
    ]);
    const { out } = await applyToBuffer(delta, new MemorySource({ e: Buffer.alloc(0) }));
    expect(out.toString()).toBe('fresh');
  });

  it('many ZstdDict ops in one delta reuse one decoder correctly', async () => {
    const files: Record<string, Buffer> = {};
    const ops: Buffer[] = [];
    const expected: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const old = pattern(3000 + i, i + 1);
      const neu = Buffer.concat([old.subarray(0, 1000), s(`edit ${i}`), old.subarray(1000)]);
      files[`f${i}`] = old;
      ops.push(encodeOp(Open, s(`f${i}`)), encodeOp(ZstdDict, zstdPatch(old, neu)));
      expected.push(neu);
    }
    const { out, result } = await applyToBuffer(makeDelta(2, ops), new MemorySource(files));
    expect(out.equals(Buffer.concat(expected))).toBe(true);
    expect(result.ops.ZstdDict).toBe(50);
  });

  it('sources that shrink and grow each give exactly their own bytes as dictionary', async () => {
    // The dictionary memory is reused from op to op: a smaller source after a larger one must not
    // see the larger one's tail (the patch would then decode against the wrong window end).
    const sizes = [9000, 1200, 4000, 1200, 12000];
    const files: Record<string, Buffer> = {};
    const ops: Buffer[] = [];
    const expected: Buffer[] = [];
    for (const [i, size] of sizes.entries()) {
      const old = pattern(size, 100 + i);
      const neu = Buffer.concat([old.subarray(size - 600), s(`edit ${i}`), old.subarray(0, 500)]);
      files[`f${i}`] = old;
      ops.push(encodeOp(Open, s(`f${i}`)), encodeOp(ZstdDict, zstdPatch(old, neu)));
      expected.push(neu);
    }
    const { out } = await applyToBuffer(makeDelta(2, ops), new MemorySource(files));
    expect(out.equals(Buffer.concat(expected))).toBe(true);
  });
});

describe('output memory, reused when the sink releases chunks (sinkReleasesChunks)', () => {
  /**
   * A file-like sink that holds each chunk for a while before it "writes" it (copies it out) and
   * only then calls back: memory reused before that callback would show up as wrong output.
   */
  function slowSink() {
    const parts: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let chunks = 0;
    const sink = new Writable({
      highWaterMark: 4 << 20,
      write(chunk: Buffer, _enc, cb) {
        chunks++;
        buffers.add(chunk.buffer);
        setTimeout(() => {
          parts.push(Buffer.from(chunk));
          cb();
        }, 1);
      },
    });
    const drained = () =>
      new Promise<void>((resolve) => {
        sink.end(resolve);
      });
    return { sink, parts, buffers, chunks: () => chunks, drained };
  }

  /** Copy, AddData, ZstdDict and Data ops making 24 MiB of output, with the bytes it must be. */
  function mixedDelta(): { delta: Buffer; files: Record<string, Buffer>; expected: Buffer } {
    const big = pattern(6 << 20, 3);
    const add = pattern(3 << 20, 4);
    const old = pattern(5 << 20, 5);
    const neu = Buffer.from(old);
    for (let off = 4096; off + 64 < neu.length; off += 256 << 10) pattern(64, off).copy(neu, off);
    const header = Buffer.alloc(512, 0x61);
    const ops: Buffer[] = [];
    const expected: Buffer[] = [];
    for (let round = 0; round < 2; round++) {
      ops.push(encodeOp(Data, header), encodeOp(Open, s('big')), encodeOp(Copy, big.length));
      expected.push(header, big);
      ops.push(encodeOp(Seek, 0), encodeOp(AddData, add));
      expected.push(Buffer.from(add.map((v, i) => (v + big[i]!) & 0xff)));
      ops.push(encodeOp(Open, s('lib')), encodeOp(ZstdDict, zstdPatch(old, neu)), encodeOp(Data, header));
      expected.push(neu, header);
    }
    return { delta: makeDelta(2, ops), files: { big, lib: old }, expected: Buffer.concat(expected) };
  }

  it('a sink that calls back late still gets exact bytes, in a bounded set of buffers', async () => {
    const { delta, files, expected } = mixedDelta();
    const out = slowSink();
    await applyTarDiff(chunked(delta), new MemorySource(files), out.sink, { sinkReleasesChunks: true });
    await out.drained();
    const got = Buffer.concat(out.parts);
    expect(got.length).toBe(expected.length);
    expect(got.equals(expected)).toBe(true);
    // 24 MiB went out in ≥ 24 chunks, built in far fewer buffers: memory came back and was reused.
    expect(out.chunks()).toBeGreaterThanOrEqual(24);
    expect(out.buffers.size).toBeLessThan(out.chunks() / 2);
  });

  it('memory taken for output that never came (empty ZstdDict results) is not held', async () => {
    const old = pattern(4096, 7);
    const ops: Buffer[] = [encodeOp(Open, s('f'))];
    const empty = zstdPatch(old, Buffer.alloc(0));
    for (let i = 0; i < 3000; i++) ops.push(encodeOp(ZstdDict, empty));
    ops.push(encodeOp(Data, s('end')));
    const out = slowSink();
    await applyTarDiff(chunked(makeDelta(2, ops)), new MemorySource({ f: old }), out.sink, {
      sinkReleasesChunks: true,
    });
    await out.drained();
    expect(Buffer.concat(out.parts).toString()).toBe('end');
    // Each op took 1 MiB of output memory and gave none out: 3000 MiB if it were all kept.
    expect(process.memoryUsage().arrayBuffers).toBeLessThan(1 << 30);
  });

  it('without the option every chunk is memory of its own (a sink may keep what it gets)', async () => {
    const { delta, files, expected } = mixedDelta();
    const out = slowSink();
    await applyTarDiff(chunked(delta), new MemorySource(files), out.sink);
    await out.drained();
    expect(Buffer.concat(out.parts).equals(expected)).toBe(true);
    expect(out.buffers.size).toBe(out.chunks());
  });
});

describe('source errors', () => {
  it('Seek past EOF is allowed until something reads', async () => {
    const delta = makeDelta(1, [
      encodeOp(Open, s('f')),
      encodeOp(Seek, 2n ** 64n - 1n),
      encodeOp(Data, s('ok')),
    ]);
    expect((await applyToBuffer(delta, new MemorySource({ f: s('abc') }))).out.toString()).toBe('ok');
    const bad = makeDelta(1, [encodeOp(Open, s('f')), encodeOp(Seek, 2n ** 64n - 1n), encodeOp(Copy, 1)]);
    expect((await applyError(bad, new MemorySource({ f: s('abc') }))).code).toBe('TRUNCATED');
  });

  it('a huge Copy past EOF fails fast instead of looping', async () => {
    const bad = makeDelta(1, [encodeOp(Open, s('f')), encodeOp(Copy, 2n ** 63n)]);
    const err = await applyError(bad, new MemorySource({ f: s('abc') }));
    expect(err.message).toMatch(/EOF/);
  });

  it('names the layer on a missing source', async () => {
    const delta = makeDelta(1, [encodeOp(Open, s('nothere'))]);
    const err = await applyTarDiff(chunked(delta), new MemorySource({}), async () => {}, {
      where: 'sha256:abc',
    }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'NOT_FOUND' });
    expect((err as Error).message).toMatch(/nothere.*sha256:abc.*op #0/);
  });
});

function encodeOpSize(n: number): Buffer {
  // Data header only (payload follows in a separate buffer, so the test never builds op+payload twice)
  return encodeOp(Seek, n).subarray(1);
}
