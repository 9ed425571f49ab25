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
 * The zstd frames of one stream, decoded synchronously: each input chunk gives output pieces of at
 * most OUT_CHUNK bytes, one at a time (a generator), so memory stays bounded whatever the ratio.
 * Frames asking for a window above 2^ZSTD_WINDOW_LOG_MAX are refused with LIMIT; `end` on input
 * that stops inside a frame is TRUNCATED. Shared by the stream (ZstdDecoder) and the blocking decoder.
 */
/** Longest zstd frame header: magic, descriptor, window, dictionary ID and content size (RFC 8878 §3.1.1). */
const FRAME_HEADER_MAX = 18;

class ZstdFrames {
  #dctx: InstanceType<typeof binding.DCtx> | null = new binding.DCtx();
  #inFrame = false;
  #frameStart: Buffer = Buffer.alloc(0);
  #total = 0;

  constructor(private readonly ctx: ErrorContext) {
    this.#dctx!.setParameter(binding.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
  }

  /** Frees the decoder (ZSTD_freeDCtx runs when the context is collected); later calls yield nothing. */
  release(): void {
    this.#dctx = null;
  }

  *decode(chunk: Buffer): Generator<Buffer> {
    let src = chunk;
    // Copied: a blocking caller may read its next chunk into the same buffer. A frame header cut
    // by a chunk boundary is completed from the next chunk.
    const have = this.#frameStart.length;
    if (!this.#inFrame) this.#frameStart = Buffer.from(src.subarray(0, FRAME_HEADER_MAX));
    else if (have < FRAME_HEADER_MAX) {
      this.#frameStart = Buffer.concat([this.#frameStart, src.subarray(0, FRAME_HEADER_MAX - have)]);
    }
    while (src.length > 0 || this.#inFrame) {
      const dctx = this.#dctx;
      if (!dctx) return; // released
      // Fresh each round: the consumer keeps the piece, no copy.
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
      if (!this.#inFrame && src.length > 0) this.#frameStart = Buffer.from(src.subarray(0, FRAME_HEADER_MAX));
      if (produced > 0) yield dst.subarray(0, produced);
      // Output not full and input used up: the decoder needs more input.
      if (produced < dst.length && src.length === 0) break;
    }
  }

  /** The input has ended: TRUNCATED inside a frame. */
  end(): void {
    if (this.#inFrame) {
      throw new OdhError('TRUNCATED', 'zstd stream ends inside a frame', {
        ...this.ctx,
        offset: this.#total,
      });
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

/**
 * zstd decoder with real backpressure: output is produced in 128 KiB pieces and each piece waits
 * for the consumer, so a tiny highly compressed input cannot fill memory.
 */
class ZstdDecoder extends PacedTransform {
  readonly #frames: ZstdFrames;

  constructor(ctx: ErrorContext) {
    super();
    this.#frames = new ZstdFrames(ctx);
  }

  protected release(): void {
    this.#frames.release();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#decode(chunk).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.#frames.end();
    } catch (e) {
      return cb(e as Error);
    }
    cb();
  }

  async #decode(chunk: Buffer): Promise<void> {
    for (const piece of this.#frames.decode(chunk)) if (!(await this.pushPaced(piece))) return;
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

/** zlib's failure of a gzip input, typed: TRUNCATED at a cut, FORMAT otherwise; `offset` counts compressed bytes. */
function gzipError(e: Error, ctx: ErrorContext, offset: number): Error {
  if (e instanceof OdhError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err.code === 'Z_BUF_ERROR' ? 'TRUNCATED' : 'FORMAT';
  return new OdhError(code, `gzip: ${err.message}`, { ...ctx, offset }, { cause: e });
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
    return gzipError(e, this.ctx, (this.inner as zlib.Gunzip).bytesWritten);
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

/**
 * A decoder that runs on the calling thread, for a thread whose only job is one stream (a layer
 * worker). Each input chunk is decoded at once, in pieces handed out one by one (a generator), so
 * memory stays bounded whatever the ratio. A piece is valid only until the next one is pulled (gzip
 * decodes every piece into the same buffer), and `chunk` must stay as it is until its pieces are
 * all pulled. Failures are typed as the streams' are (TRUNCATED at a cut, FORMAT otherwise, LIMIT
 * for a zstd window).
 */
export interface BlockingDecoder {
  decode(chunk: Buffer): Generator<Buffer>;
  /** The input has ended: the last pieces, then TRUNCATED if it ended inside a stream or frame. */
  end(): Generator<Buffer>;
  /** Frees the decoder's native state (also after an error); idempotent. */
  close(): void;
}

/** Output buffer of the blocking gzip decoder: every piece is decoded into it, from its start. */
const GZIP_BLOCKING_OUT = 256 << 10;

/**
 * What Node's own synchronous zlib API (`zlib.gunzipSync`) drives: the native handle's `writeSync`,
 * which reports the space left in `_writeState` ([avail_out, avail_in]). Not documented, but kept on
 * purpose: Node's zlib.js says it cannot change `_writeState` without breaking npm (minizlib, which
 * node-tar decodes with, drives the same handle).
 */
interface ZlibHandleInternals {
  _handle: {
    writeSync(
      flush: number,
      input: Uint8Array,
      inOff: number,
      inLen: number,
      out: Uint8Array,
      outOff: number,
      outLen: number,
    ): void;
  } | null;
  _writeState: Uint32Array;
}

/**
 * gzip (multi-member) decoded by zlib on this thread: the same native inflate, with its multi-member
 * and end-of-input handling, that a zlib stream runs in the libuv thread pool. A stream sends every
 * 256 KiB of output there and back (a futex wake-up each way) into a fresh buffer: for read, inflate
 * and two SHA-256s of the 1 GiB bench image's layers (two threads) that took 5.0–5.3 s of CPU and
 * 2.9–3.3 s of wall, against 2.8–3.0 s and 1.5–1.7 s on the thread itself.
 */
class GzipBlockingDecoder implements BlockingDecoder {
  readonly #z: zlib.Gunzip;
  readonly #native: ZlibHandleInternals;
  readonly #out = Buffer.allocUnsafe(GZIP_BLOCKING_OUT);
  #consumed = 0;

  constructor(
    z: zlib.Gunzip,
    private readonly ctx: ErrorContext,
  ) {
    this.#z = z;
    this.#native = z as unknown as ZlibHandleInternals;
    // A failure destroys the stream at once (`errored` is set); the 'error' event follows on the
    // next tick, read here from `errored` instead.
    z.on('error', () => {});
  }

  /** The blocking decoder when this Node's zlib exposes what its sync API uses; null otherwise. */
  static open(ctx: ErrorContext): GzipBlockingDecoder | null {
    const z = zlib.createGunzip();
    const n = z as unknown as Partial<ZlibHandleInternals>;
    if (typeof n._handle?.writeSync !== 'function' || !(n._writeState instanceof Uint32Array)) {
      z.close();
      return null;
    }
    return new GzipBlockingDecoder(z, ctx);
  }

  decode(chunk: Buffer): Generator<Buffer> {
    return this.#run(chunk, zlib.constants.Z_NO_FLUSH);
  }

  *end(): Generator<Buffer> {
    yield* this.#run(Buffer.alloc(0), zlib.constants.Z_FINISH);
    this.close();
  }

  close(): void {
    this.#z.close();
  }

  /** zlib's loop (as its sync API runs it): write until the output is not filled up. */
  *#run(input: Buffer, flush: number): Generator<Buffer> {
    let inOff = 0;
    for (;;) {
      const handle = this.#native._handle;
      if (handle === null) throw this.#failure() ?? new Error('gzip decoder used after close');
      const out = this.#out;
      handle.writeSync(flush, input, inOff, input.length - inOff, out, 0, out.length);
      const failure = this.#failure();
      if (failure) throw failure;
      const [availOut = 0, availIn = 0] = this.#native._writeState;
      const used = input.length - inOff - availIn;
      inOff += used;
      this.#consumed += used;
      const have = out.length - availOut;
      if (have > 0) yield out.subarray(0, have);
      if (availOut !== 0) return;
    }
  }

  #failure(): Error | null {
    const e = this.#z.errored;
    return e ? gzipError(e, this.ctx, this.#consumed) : null;
  }
}

/** Plain bytes: passed through as they are. */
const PLAIN_BLOCKING: BlockingDecoder = {
  *decode(chunk) {
    yield chunk;
  },
  *end() {},
  close() {},
};

/** zstd on this thread: the frames the zstd stream decodes, without its backpressure waits. */
function zstdBlockingDecoder(ctx: ErrorContext): BlockingDecoder {
  const frames = new ZstdFrames(ctx);
  return {
    decode: (chunk) => frames.decode(chunk),
    // eslint-disable-next-line require-yield
    *end() {
      frames.end();
      frames.release();
    },
    close: () => frames.release(),
  };
}

let blockingDecodersProbe: boolean | undefined;

/** True when every kind has a blocking decoder on this Node (gzip needs zlib's sync internals). */
export function haveBlockingDecoders(): boolean {
  if (blockingDecodersProbe === undefined) {
    const gzip = GzipBlockingDecoder.open({});
    gzip?.close();
    blockingDecodersProbe = gzip !== null;
  }
  return blockingDecodersProbe;
}

/**
 * A decoder for `kind` running on this thread; null when this Node's zlib lacks what gzip needs
 * (callers then use `decompressStream`).
 */
export function blockingDecoder(kind: Compression, ctx: ErrorContext = {}): BlockingDecoder | null {
  switch (kind) {
    case 'none':
      return PLAIN_BLOCKING;
    case 'gzip':
      return GzipBlockingDecoder.open(ctx);
    case 'zstd':
      return zstdBlockingDecoder(ctx);
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
