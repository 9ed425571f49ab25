import { Duplex, PassThrough, Readable, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import binding from 'zstd-napi/binding.js';
import { OdhError, type ErrorContext } from '../util/errors.js';

/** Compression of a layer blob, as found by its magic bytes. */
export type Compression = 'gzip' | 'zstd' | 'none';

/** Largest zstd window we accept when decoding: 2^27 = 128 MiB (window bombs are refused). */
export const ZSTD_WINDOW_LOG_MAX = 27;

const OUT_CHUNK = 128 << 10;

/**
 * Compression by magic: `1f 8b` gzip, `28 b5 2f fd` zstd, anything else uncompressed (spec
 * oci-delta §1.4: robust appliers sniff instead of trusting the media type). Needs ≥ 4 bytes to
 * recognise zstd; fewer bytes give 'none' unless they start with the gzip magic.
 */
export function sniffCompression(first: Uint8Array): Compression {
  if (first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) return 'gzip';
  if (first.length >= 4 && first[0] === 0x28 && first[1] === 0xb5 && first[2] === 0x2f && first[3] === 0xfd)
    return 'zstd';
  return 'none';
}

/** Window size a zstd frame header asks for, for error messages (RFC 8878 §3.1.1.1.2). */
function zstdWindowOf(header: Buffer): string {
  if (header.length < 6) return 'unknown';
  const fhd = header[4];
  if ((fhd & 0x20) !== 0) return 'the whole frame (single segment)';
  const wd = header[5];
  const log = 10 + (wd >> 3);
  const size = 2 ** log + (2 ** log / 8) * (wd & 7);
  return `${size} bytes (2^${log}${wd & 7 ? '+' : ''})`;
}

/**
 * zstd decoder with real backpressure: output is produced in 128 KiB pieces and each piece waits
 * for the consumer, so a tiny highly compressed input cannot fill memory. Frames asking for a
 * window above 2^ZSTD_WINDOW_LOG_MAX are refused with LIMIT; input ending inside a frame is TRUNCATED.
 */
function zstdDecoder(ctx: ErrorContext): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const dctx = new binding.DCtx();
    dctx.setParameter(binding.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
    let inFrame = false;
    let frameStart: Buffer = Buffer.alloc(0);
    let total = 0;
    for await (const chunk of source) {
      let src = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      if (!inFrame) frameStart = src.subarray(0, 18);
      while (src.length > 0 || inFrame) {
        const dst = Buffer.allocUnsafe(OUT_CHUNK);
        let ret: number, produced: number, consumed: number;
        try {
          [ret, produced, consumed] = dctx.decompressStream(dst, src);
        } catch (e) {
          const msg = (e as Error).message;
          if (/too much memory|window/i.test(msg)) {
            throw new OdhError(
              'LIMIT',
              `zstd window ${zstdWindowOf(frameStart)} exceeds the 2^${ZSTD_WINDOW_LOG_MAX}-byte limit`,
              { ...ctx, offset: total },
            );
          }
          throw new OdhError('FORMAT', `zstd: ${msg}`, { ...ctx, offset: total });
        }
        total += consumed;
        src = src.subarray(consumed);
        inFrame = ret !== 0;
        if (!inFrame && src.length > 0) frameStart = src.subarray(0, 18);
        if (produced > 0) yield dst.subarray(0, produced); // dst is fresh each round: no copy
        // Nothing consumed and nothing produced: the decoder needs more input.
        if (produced < dst.length && src.length === 0) break;
      }
    }
    if (inFrame)
      throw new OdhError('TRUNCATED', 'zstd stream ends inside a frame', { ...ctx, offset: total });
  });
}

/** gzip decoder (multi-member) whose failures are typed: TRUNCATED at a cut, FORMAT otherwise. */
function gzipDecoder(ctx: ErrorContext): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const g = zlib.createGunzip();
    const input = Readable.from(source);
    input.on('error', (e) => g.destroy(e));
    input.pipe(g);
    try {
      yield* g as AsyncIterable<Buffer>;
    } catch (e) {
      if (e instanceof OdhError) throw e;
      const err = e as NodeJS.ErrnoException;
      const code = err.code === 'Z_BUF_ERROR' ? 'TRUNCATED' : 'FORMAT';
      throw new OdhError(code, `gzip: ${err.message}`, { ...ctx, offset: g.bytesWritten }, { cause: e });
    }
  });
}

/** Decompressing stream for `kind` ('none' passes bytes through). */
export function decompressStream(kind: Compression, ctx: ErrorContext = {}): Duplex {
  switch (kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return gzipDecoder(ctx);
    case 'zstd':
      return zstdDecoder(ctx);
  }
}

/**
 * Decompresses whatever the input is, chosen from its first bytes (gzip, zstd or plain).
 */
export function decompressSniffed(ctx: ErrorContext = {}): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const it = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let n = 0;
    let ended = false;
    while (n < 4) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      head.push(r.value);
      n += r.value.length;
    }
    const first = Buffer.concat(head);
    const rest = async function* () {
      if (first.length) yield first;
      if (!ended) for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    };
    const dec = decompressStream(sniffCompression(first), ctx);
    const input = Duplex.from(rest());
    input.pipe(dec);
    input.on('error', (e) => dec.destroy(e));
    yield* dec as AsyncIterable<Buffer>;
  });
}

/** zstd encoder (streaming, single frame). */
function zstdEncoder(level: number): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, level);
    const dst = Buffer.allocUnsafe(OUT_CHUNK);
    for await (const chunk of source) {
      let src = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      while (src.length > 0) {
        const [, produced, consumed] = cctx.compressStream2(dst, src, binding.EndDirective.continue);
        src = src.subarray(consumed);
        if (produced > 0) yield Buffer.from(dst.subarray(0, produced));
      }
    }
    for (;;) {
      const [ret, produced] = cctx.compressStream2(dst, Buffer.alloc(0), binding.EndDirective.end);
      if (produced > 0) yield Buffer.from(dst.subarray(0, produced));
      if (ret === 0) break;
    }
  });
}

/**
 * Header Go's compress/gzip writes with Name "" and ModTime Unix(0) at the default level: no FNAME,
 * MTIME 0, XFL 0, OS 255 (spec oci-delta §4.1). The deflate bytes still differ from Go's.
 */
export const GO_GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]);

/** gzip member with Go's header: raw deflate (zlib) between our header and the CRC32/ISIZE trailer. */
function goGzipEncoder(level: number): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    yield GO_GZIP_HEADER;
    let crc = 0;
    let isize = 0;
    const counted = Readable.from(
      (async function* () {
        for await (const c of source) {
          const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
          crc = zlib.crc32(b, crc);
          isize = (isize + b.length) % 2 ** 32;
          yield b;
        }
      })(),
    );
    const deflate = zlib.createDeflateRaw({ level });
    counted.on('error', (e) => deflate.destroy(e));
    counted.pipe(deflate);
    yield* deflate as AsyncIterable<Buffer>;
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(isize, 4);
    yield trailer;
  });
}

/**
 * Compressing stream: gzip (Go-style header, zlib deflate, default level 6), zstd (default level 3)
 * or pass-through.
 */
export function compressStream(kind: Compression, level?: number): Duplex | Transform {
  switch (kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return goGzipEncoder(level ?? 6);
    case 'zstd':
      return zstdEncoder(level ?? 3);
  }
}
