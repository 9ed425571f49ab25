import type { Writable } from 'node:stream';
import { OdhError, type ErrorContext } from '../util/errors.js';

/** Where applied bytes go: a Writable (backpressure respected) or an async per-chunk callback. */
export type TarDiffSink = Writable | ((chunk: Buffer) => Promise<void>);

/** Size of the staging buffer and the most a producer builds in one `piece`. */
export const PIECE_MAX = 1 << 20;
/** Chunks at least this large skip the staging copy and go out as they are. */
const DIRECT_MIN = 256 << 10;
/**
 * Most buffers kept for reuse. A sink holds at most its write queue (8 MiB for tar-patch's file
 * output) plus the piece being written, so this many cover it; more would only be held idle.
 */
const REUSE_MAX = 16;

export interface OutputWriterOptions {
  /**
   * The sink is done with a chunk once its write callback has run (Writable) or its promise has
   * resolved (function): a file or socket stream, never a transform that passes chunks on. The writer
   * then builds later output in that memory again instead of in fresh pages, which cost the kernel a
   * page fault per 4 KiB (measured: about a tenth of the CPU of applying 4 × 32 MiB of ZstdDict).
   */
  sinkReleasesChunks?: boolean;
}

/**
 * Output memory of PIECE_MAX bytes, lent to producers and given back once the sink is done with it.
 * Each lent buffer goes out once (a piece, or the staging buffer); only buffers lent here come back.
 */
class ReusedMemory {
  private readonly idle: ArrayBufferLike[] = [];
  /** Lent and not yet back. Weak: memory a producer took and dropped (an empty output) is not held. */
  private readonly lent = new WeakSet<ArrayBufferLike>();

  /**
   * Idle memory, else fresh. A sink that wrote synchronously (stdout to a file) runs its write
   * callbacks on the next tick, so when nothing is idle those run first.
   */
  async take(): Promise<Buffer> {
    if (this.idle.length === 0) await new Promise<void>((r) => process.nextTick(r));
    const idle = this.idle.pop();
    const buf = idle === undefined ? Buffer.allocUnsafe(PIECE_MAX) : Buffer.from(idle);
    this.lent.add(buf.buffer);
    return buf;
  }

  /** The sink is done with `chunk` (a lent buffer or part of one, or anything else: then ignored). */
  giveBack(chunk: Buffer): void {
    const ab = chunk.buffer;
    if (this.lent.delete(ab) && this.idle.length < REUSE_MAX) this.idle.push(ab);
  }
}

/**
 * Output side of the applier. tar-diff output is mostly many small pieces (512-byte tar headers,
 * small files) between a few large ones, so small pieces are gathered in a 1 MiB staging buffer and
 * large ones pass straight through. A buffer handed to the sink is never written again until the
 * sink is done with it: never, unless the sink says it releases chunks (OutputWriterOptions).
 */
export class OutputWriter {
  private readonly emit: (chunk: Buffer) => Promise<void>;
  private readonly detach: () => void;
  private readonly reused: ReusedMemory | null;
  private staging: Buffer;
  private used = 0;
  /** Total bytes accepted. */
  written = 0n;

  constructor(sink: TarDiffSink, ctx: ErrorContext, opts: OutputWriterOptions = {}) {
    const reused = opts.sinkReleasesChunks ? new ReusedMemory() : null;
    this.reused = reused;
    const released = reused === null ? null : (chunk: Buffer) => reused.giveBack(chunk);
    if (typeof sink === 'function') {
      this.emit =
        released === null
          ? sink
          : async (chunk) => {
              await sink(chunk);
              released(chunk);
            };
      this.detach = () => {};
    } else {
      const w = writableEmitter(sink, ctx, released);
      this.emit = w.emit;
      this.detach = w.detach;
    }
    this.staging = Buffer.allocUnsafe(PIECE_MAX);
  }

  /** Whether a piece of `n` bytes should be built directly in `reserve(n)` space. */
  static isSmall(n: number): boolean {
    return n < DIRECT_MIN;
  }

  /**
   * Memory for one large piece of `n` ≤ PIECE_MAX bytes (default PIECE_MAX), to be filled and then
   * passed to `write` once, whole or as its first bytes.
   */
  async piece(n = PIECE_MAX): Promise<Buffer> {
    if (n > PIECE_MAX) throw new Error(`internal: piece of ${n} bytes exceeds ${PIECE_MAX}`);
    return (await this.memory()).subarray(0, n);
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
    // A small tail of a lent piece is copied, so its memory is free at once.
    this.reused?.giveBack(chunk);
    await this.commit(chunk.length);
  }

  /** Space for up to `n` (< 256 KiB) bytes to be filled in place, then `commit`ted. */
  async reserve(n: number): Promise<Buffer> {
    if (PIECE_MAX - this.used < n) await this.flush();
    return this.staging.subarray(this.used, this.used + n);
  }

  async commit(n: number): Promise<void> {
    this.used += n;
    this.written += BigInt(n);
    if (this.used === PIECE_MAX) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const out = this.staging.subarray(0, this.used);
    this.staging = await this.memory();
    this.used = 0;
    await this.emit(out);
  }

  /** Stops listening to the Writable (does not end it: the caller owns it). */
  release(): void {
    this.detach();
  }

  private async memory(): Promise<Buffer> {
    return this.reused === null ? Buffer.allocUnsafe(PIECE_MAX) : this.reused.take();
  }
}

function writableEmitter(w: Writable, ctx: ErrorContext, released: ((chunk: Buffer) => void) | null) {
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
    // The callback runs once the chunk is written out; after a failed write it is left to the GC.
    const written =
      released === null
        ? undefined
        : (err?: Error | null) => {
            if (!err) released(chunk);
          };
    if (w.write(chunk, written)) return;
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
