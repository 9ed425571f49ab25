import type { Writable } from 'node:stream';
import { OdhError, type ErrorContext } from '../util/errors.js';

/** Where applied bytes go: a Writable (backpressure respected) or an async per-chunk callback. */
export type TarDiffSink = Writable | ((chunk: Buffer) => Promise<void>);

const STAGING_SIZE = 1 << 20;
/** Chunks at least this large skip the staging copy and go out as they are. */
const DIRECT_MIN = 256 << 10;

/**
 * Output side of the applier. tar-diff output is mostly many small pieces (512-byte tar headers,
 * small files) between a few large ones, so small pieces are gathered in a 1 MiB staging buffer and
 * large ones pass straight through. A buffer handed to the sink is never written again.
 */
export class OutputWriter {
  private readonly emit: (chunk: Buffer) => Promise<void>;
  private readonly detach: () => void;
  private staging = Buffer.allocUnsafe(STAGING_SIZE);
  private used = 0;
  /** Total bytes accepted. */
  written = 0n;

  constructor(sink: TarDiffSink, ctx: ErrorContext) {
    if (typeof sink === 'function') {
      this.emit = sink;
      this.detach = () => {};
    } else {
      const w = writableEmitter(sink, ctx);
      this.emit = w.emit;
      this.detach = w.detach;
    }
  }

  /** Whether a piece of `n` bytes should be built directly in `reserve(n)` space. */
  static isSmall(n: number): boolean {
    return n < DIRECT_MIN;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    if (chunk.length >= DIRECT_MIN) {
      await this.flush();
      this.written += BigInt(chunk.length);
      await this.emit(chunk);
      return;
    }
    const space = await this.reserve(chunk.length);
    chunk.copy(space);
    await this.commit(chunk.length);
  }

  /** Space for up to `n` (< 256 KiB) bytes to be filled in place, then `commit`ted. */
  async reserve(n: number): Promise<Buffer> {
    if (STAGING_SIZE - this.used < n) await this.flush();
    return this.staging.subarray(this.used, this.used + n);
  }

  async commit(n: number): Promise<void> {
    this.used += n;
    this.written += BigInt(n);
    if (this.used === STAGING_SIZE) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const out = this.staging.subarray(0, this.used);
    this.staging = Buffer.allocUnsafe(STAGING_SIZE);
    this.used = 0;
    await this.emit(out);
  }

  /** Stops listening to the Writable (does not end it: the caller owns it). */
  release(): void {
    this.detach();
  }
}

function writableEmitter(w: Writable, ctx: ErrorContext) {
  let failure: unknown = null;
  const onError = (e: unknown) => {
    failure ??= e;
  };
  w.on('error', onError);
  const fail = (e: unknown): never => {
    const msg = e instanceof Error ? e.message : String(e);
    throw new OdhError('IO', `cannot write tar-diff output: ${msg}`, ctx, { cause: e });
  };
  const emit = async (chunk: Buffer): Promise<void> => {
    if (failure) fail(failure);
    if (w.destroyed || w.writableEnded) fail(new Error('output stream is closed'));
    if (w.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        w.off('drain', onDrain);
        w.off('error', onErr);
        w.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onErr = (e: unknown) => done(e);
      const onClose = () => done(new Error('output stream closed'));
      w.on('drain', onDrain);
      w.on('error', onErr);
      w.on('close', onClose);
    }).catch(fail);
  };
  return { emit, detach: () => w.off('error', onError) };
}
