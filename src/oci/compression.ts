import { PassThrough, Transform, type TransformCallback } from 'node:stream';
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

/**
 * A stream's compression by its magic, and the stream itself to read from the start: the first
 * chunks (at least 4 bytes, or the whole stream) are read to sniff, then replayed. Read errors of
 * those first chunks are thrown as they are.
 */
export async function sniffStream(
  src: AsyncIterable<Uint8Array>,
): Promise<{ kind: Compression; bytes: AsyncIterable<Buffer> }> {
  const it = src[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 4) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(c);
    headLen += c.length;
  }
  const kind = sniffCompression(Buffer.concat(head, headLen));
  const bytes = async function* (): AsyncGenerator<Buffer> {
    yield* head;
    if (ended) return;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
  };
  return { kind, bytes: bytes() };
}

/** Window size a zstd frame header asks for, for error messages (RFC 8878 §3.1.1.1.2). */
function zstdWindowOf(header: Buffer): string {
  const [, , , , fhd, wd] = header;
  if (fhd === undefined || wd === undefined) return 'unknown';
  if ((fhd & 0x20) !== 0) return 'the whole frame (single segment)';
  const log = 10 + (wd >> 3);
  const size = 2 ** log + (2 ** log / 8) * (wd & 7);
  return `${size} bytes (2^${log}${wd & 7 ? '+' : ''})`;
}

/**
 * A Transform whose `_transform` may yield many output pieces per input chunk (a decoder of a
 * highly compressed input): `pushPaced` waits for the reader whenever its buffer is full, so memory stays
 * bounded. Being a real Transform, a destroy mid-stream settles at once ('close' is emitted, any
 * wait is woken) and `release` frees the codec's state; a `Duplex.from(async generator)` instead
 * never emits 'close' when destroyed while the generator awaits input, and `pipeline` then never
 * settles (the process would exit 0 with an empty event loop).
 */
abstract class PacedTransform extends Transform {
  #wake: (() => void) | null = null;

  /** Pushes `piece`; false once the stream is destroyed (the caller stops). */
  protected async pushPaced(piece: Buffer): Promise<boolean> {
    if (this.destroyed) return false;
    if (!this.push(piece)) await new Promise<void>((r) => (this.#wake = r));
    return !this.destroyed;
  }

  /** Frees the codec's native state; called once on destroy (also after a normal end). */
  protected abstract release(): void;

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  override _read(size: number): void {
    this.#wakeUp();
    super._read(size);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#wakeUp();
    this.release();
    cb(err);
  }
}

/**
 * zstd decoder with real backpressure: output is produced in 128 KiB pieces and each piece waits
 * for the consumer, so a tiny highly compressed input cannot fill memory. Frames asking for a
 * window above 2^ZSTD_WINDOW_LOG_MAX are refused with LIMIT; input ending inside a frame is TRUNCATED.
 */
class ZstdDecoder extends PacedTransform {
  #dctx: InstanceType<typeof binding.DCtx> | null = new binding.DCtx();
  #inFrame = false;
  #frameStart: Buffer = Buffer.alloc(0);
  #total = 0;

  constructor(private readonly ctx: ErrorContext) {
    super();
    this.#dctx!.setParameter(binding.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
  }

  protected release(): void {
    this.#dctx = null; // ZSTD_freeDCtx runs when the context is collected
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#decode(chunk).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#inFrame)
      return cb(
        new OdhError('TRUNCATED', 'zstd stream ends inside a frame', { ...this.ctx, offset: this.#total }),
      );
    cb();
  }

  async #decode(chunk: Buffer): Promise<void> {
    let src = chunk;
    if (!this.#inFrame) this.#frameStart = src.subarray(0, 18);
    while (src.length > 0 || this.#inFrame) {
      const dctx = this.#dctx;
      if (!dctx) return; // destroyed
      const dst = Buffer.allocUnsafe(OUT_CHUNK);
      let ret: number, produced: number, consumed: number;
      try {
        [ret, produced, consumed] = dctx.decompressStream(dst, src);
      } catch (e) {
        throw this.#error((e as Error).message);
      }
      this.#total += consumed;
      src = src.subarray(consumed);
      this.#inFrame = ret !== 0;
      if (!this.#inFrame && src.length > 0) this.#frameStart = src.subarray(0, 18);
      // dst is fresh each round: no copy
      if (produced > 0 && !(await this.pushPaced(dst.subarray(0, produced)))) return;
      // Output not full and input used up: the decoder needs more input.
      if (produced < dst.length && src.length === 0) break;
    }
  }

  #error(msg: string): OdhError {
    const where = { ...this.ctx, offset: this.#total };
    if (/too much memory|window/i.test(msg)) {
      return new OdhError(
        'LIMIT',
        `zstd window ${zstdWindowOf(this.#frameStart)} exceeds the 2^${ZSTD_WINDOW_LOG_MAX}-byte limit`,
        where,
      );
    }
    return new OdhError('FORMAT', `zstd: ${msg}`, where);
  }
}

/** zstd encoder (streaming, single frame). */
class ZstdEncoder extends PacedTransform {
  #cctx: InstanceType<typeof binding.CCtx> | null = new binding.CCtx();
  readonly #dst = Buffer.allocUnsafe(OUT_CHUNK);

  constructor(level: number) {
    super();
    this.#cctx!.setParameter(binding.CParameter.compressionLevel, level);
  }

  protected release(): void {
    this.#cctx = null; // ZSTD_freeCCtx runs when the context is collected
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#encode(chunk, binding.EndDirective.continue).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.#encode(Buffer.alloc(0), binding.EndDirective.end).then(() => cb(), cb);
  }

  async #encode(chunk: Buffer, directive: binding.EndDirective): Promise<void> {
    let src = chunk;
    for (;;) {
      const cctx = this.#cctx;
      if (!cctx) return; // destroyed
      const [ret, produced, consumed] = cctx.compressStream2(this.#dst, src, directive);
      src = src.subarray(consumed);
      if (produced > 0 && !(await this.pushPaced(Buffer.from(this.#dst.subarray(0, produced))))) return;
      if (directive === binding.EndDirective.end ? ret === 0 : src.length === 0) return;
    }
  }
}

/**
 * A Transform whose bytes go through an inner stream (a zlib stream or another codec) chosen by the
 * subclass, with backpressure both ways. The inner stream's own errors destroy this one (mapped by
 * `innerError`); destroying this one destroys the inner stream, so nothing is left pending.
 */
abstract class Relay extends Transform {
  #inner: Transform | null = null;
  #flushed: TransformCallback | null = null;

  protected get inner(): Transform | null {
    return this.#inner;
  }

  protected attach(inner: Transform): void {
    this.#inner = inner;
    inner.on('error', (e: Error) => this.destroy(this.innerError(e)));
    inner.on('end', () => {
      if (this.destroyed) return;
      this.innerEnded();
      this.#flushed?.();
    });
    inner.on('data', (c: Buffer) => {
      if (!this.destroyed && !this.push(c)) inner.pause();
    });
  }

  /** Maps an error the inner stream raised by itself. */
  protected innerError(e: Error): Error {
    return e;
  }

  /** Called when the inner stream has ended, before this one ends (e.g. to push a trailer). */
  protected innerEnded(): void {}

  /** Writes `chunk` to the inner stream; `cb` runs once it has taken it (its own backpressure). */
  protected forward(chunk: Buffer, cb: TransformCallback): void {
    // An error reaches us through the inner 'error' event (mapped), not through this callback.
    this.#inner!.write(chunk, () => cb());
  }

  override _read(size: number): void {
    this.#inner?.resume();
    super._read(size);
  }

  override _flush(cb: TransformCallback): void {
    this.#flushed = cb;
    this.#inner!.end();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#inner?.destroy();
    cb(err);
  }
}

/** gzip decoder (multi-member, zlib) whose own failures are typed: TRUNCATED at a cut, FORMAT otherwise. */
class GzipDecoder extends Relay {
  constructor(
    private readonly ctx: ErrorContext,
    options?: zlib.ZlibOptions,
  ) {
    super();
    this.attach(zlib.createGunzip(options));
  }

  protected override innerError(e: Error): Error {
    if (e instanceof OdhError) return e;
    const err = e as NodeJS.ErrnoException;
    const code = err.code === 'Z_BUF_ERROR' ? 'TRUNCATED' : 'FORMAT';
    const offset = (this.inner as zlib.Gunzip).bytesWritten;
    return new OdhError(code, `gzip: ${err.message}`, { ...this.ctx, offset }, { cause: e });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.forward(chunk, cb);
  }
}

/**
 * Decompressing stream for `kind` ('none' passes bytes through). `gzip`: zlib options for a gzip
 * input (a larger `chunkSize` saves thread-pool round trips on big layers).
 */
export function decompressStream(
  kind: Compression,
  ctx: ErrorContext = {},
  gzip?: zlib.ZlibOptions,
): Transform {
  switch (kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return new GzipDecoder(ctx, gzip);
    case 'zstd':
      return new ZstdDecoder(ctx);
  }
}

/** Decoder chosen from the first 4 bytes of the input (spec oci-delta §1.4). */
class SniffingDecoder extends Relay {
  #head: Buffer[] = [];
  #headLength = 0;

  constructor(private readonly ctx: ErrorContext) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.inner) return this.forward(chunk, cb);
    this.#head.push(chunk);
    this.#headLength += chunk.length;
    if (this.#headLength < 4) return cb();
    this.forward(this.#start(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.inner) {
      const first = this.#start();
      if (first.length > 0) this.inner!.write(first);
    }
    super._flush(cb);
  }

  #start(): Buffer {
    const first = Buffer.concat(this.#head);
    this.#head = [];
    this.attach(decompressStream(sniffCompression(first), this.ctx));
    return first;
  }
}

/** Decompresses whatever the input is, chosen from its first bytes (gzip, zstd or plain). */
export function decompressSniffed(ctx: ErrorContext = {}): Transform {
  return new SniffingDecoder(ctx);
}

/**
 * Header Go's compress/gzip writes with Name "" and ModTime Unix(0) at the default level: no FNAME,
 * MTIME 0, XFL 0, OS 255 (spec oci-delta §4.1). The deflate bytes still differ from Go's.
 */
export const GO_GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]);

/** gzip member with Go's header: raw deflate (zlib) between our header and the CRC32/ISIZE trailer. */
class GoGzipEncoder extends Relay {
  #crc = 0;
  #isize = 0;

  constructor(level: number) {
    super();
    this.push(GO_GZIP_HEADER);
    this.attach(zlib.createDeflateRaw({ level }));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#crc = zlib.crc32(chunk, this.#crc);
    this.#isize = (this.#isize + chunk.length) % 2 ** 32;
    this.forward(chunk, cb);
  }

  protected override innerEnded(): void {
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.#crc >>> 0, 0);
    trailer.writeUInt32LE(this.#isize, 4);
    this.push(trailer);
  }
}

/**
 * Compressing stream: gzip (Go-style header, zlib deflate, default level 6), zstd (default level 3)
 * or pass-through.
 */
export function compressStream(kind: Compression, level?: number): Transform {
  switch (kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return new GoGzipEncoder(level ?? 6);
    case 'zstd':
      return new ZstdEncoder(level ?? 3);
  }
}
