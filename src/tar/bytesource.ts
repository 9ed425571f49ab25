import type { FileHandle } from 'node:fs/promises';

/**
 * Sequential byte access the tar parser works on: a network/decompressor stream, or a file read
 * with positional reads. `position` counts bytes consumed so far.
 */
export interface TarByteSource {
  readonly position: bigint;
  /** Up to `n` bytes; fewer only at end of input (empty buffer at EOF). */
  read(n: number): Promise<Buffer>;
  /** Skips up to `n` bytes without returning them; returns how many were skipped (fewer only at EOF). */
  skip(n: bigint): Promise<bigint>;
  /** Yields the next `n` bytes as chunks; stops early at end of input (the caller checks the count). */
  chunks(n: bigint): AsyncGenerator<Buffer>;
  /**
   * Reads and discards the rest of the input (after the end-of-archive marker), so that hashers
   * upstream of a stream see every byte (diff_ids cover trailing record padding too).
   */
  drain(): Promise<void>;
  /** Releases the underlying iterator (the file handle of a file source is the caller's). */
  close(): Promise<void>;
}

const EMPTY = Buffer.alloc(0);

/** A source over an async iterable of chunks; holds at most one chunk in memory. */
export class StreamByteSource implements TarByteSource {
  private pos = 0n;
  private buf: Buffer = EMPTY;
  private ended = false;
  private readonly it: AsyncIterator<unknown>;

  constructor(source: AsyncIterable<unknown>) {
    this.it = source[Symbol.asyncIterator]();
  }

  get position(): bigint {
    return this.pos;
  }

  /** Makes `buf` non-empty unless the input has ended. */
  private async fill(): Promise<boolean> {
    while (this.buf.length === 0) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      const v = r.value;
      this.buf = Buffer.isBuffer(v)
        ? v
        : typeof v === 'string'
          ? Buffer.from(v, 'latin1')
          : Buffer.from(v as Uint8Array);
    }
    return true;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    this.pos += BigInt(out.length);
    return out;
  }

  async read(n: number): Promise<Buffer> {
    if (!(await this.fill())) return EMPTY;
    if (this.buf.length >= n) return this.take(n);
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n && (await this.fill())) {
      const c = this.take(n - got);
      parts.push(c);
      got += c.length;
    }
    return Buffer.concat(parts, got);
  }

  async skip(n: bigint): Promise<bigint> {
    let left = n;
    while (left > 0n && (await this.fill())) {
      left -= BigInt(
        this.take(Number(left < BigInt(this.buf.length) ? left : BigInt(this.buf.length))).length,
      );
    }
    return n - left;
  }

  async *chunks(n: bigint): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0n && (await this.fill())) {
      const c = this.take(Number(left < BigInt(this.buf.length) ? left : BigInt(this.buf.length)));
      left -= BigInt(c.length);
      yield c;
    }
  }

  async drain(): Promise<void> {
    while (await this.fill()) this.take(this.buf.length);
  }

  async close(): Promise<void> {
    this.buf = EMPTY;
    if (!this.ended) {
      this.ended = true;
      await this.it.return?.();
    }
  }
}

/** Chunk size for positional content reads. */
const FILE_CHUNK = 1 << 20;

/** A source over a file handle using positional reads only (no shared file offset). */
export class FileByteSource implements TarByteSource {
  private pos: bigint;

  constructor(
    private readonly fh: FileHandle,
    private readonly fileSize: bigint,
    start = 0n,
  ) {
    this.pos = start;
  }

  get position(): bigint {
    return this.pos;
  }

  async read(n: number): Promise<Buffer> {
    const avail = this.fileSize - this.pos;
    const want = BigInt(n) < avail ? n : Number(avail > 0n ? avail : 0n);
    const b = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.fh.read(b, got, want - got, Number(this.pos) + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.pos += BigInt(got);
    return got === want ? b : b.subarray(0, got);
  }

  async skip(n: bigint): Promise<bigint> {
    const avail = this.fileSize - this.pos;
    const k = n < avail ? n : avail > 0n ? avail : 0n;
    this.pos += k;
    return k;
  }

  async *chunks(n: bigint): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0n) {
      const c = await this.read(left < BigInt(FILE_CHUNK) ? Number(left) : FILE_CHUNK);
      if (c.length === 0) return;
      left -= BigInt(c.length);
      yield c;
    }
  }

  async drain(): Promise<void> {}

  async close(): Promise<void> {}
}

/** `TarByteSource` without waiting: for a thread whose input is at hand (a layer worker's blocking pipeline). */
export interface BlockingTarByteSource {
  readonly position: bigint;
  read(n: number): Buffer;
  skip(n: bigint): bigint;
  chunks(n: bigint): Generator<Buffer>;
  drain(): void;
  close(): void;
}

/** A count as a number; beyond 2^53 (a hostile size field) the input ends first, and callers see the shortfall. */
function upTo2p53(n: bigint): number {
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/**
 * A blocking source over an iterator of chunks; holds at most one chunk in memory. Each chunk need
 * only stay valid until the next is pulled (a decoder may write every chunk into one buffer): what
 * `read` returns is a copy, and what `chunks` yields is valid until the next step of any method.
 * Counts in numbers, not BigInts (it runs once per tar block): exact up to 2^53 bytes, far above
 * any layer.
 */
export class IteratorByteSource implements BlockingTarByteSource {
  private pos = 0;
  private buf: Buffer = EMPTY;
  private ended = false;

  constructor(private readonly it: Iterator<Buffer>) {}

  get position(): bigint {
    return BigInt(this.pos);
  }

  /** Makes `buf` non-empty unless the input has ended. */
  private fill(): boolean {
    while (this.buf.length === 0) {
      if (this.ended) return false;
      const r = this.it.next();
      if (r.done === true) {
        this.ended = true;
        return false;
      }
      this.buf = r.value;
    }
    return true;
  }

  /** Up to `n` bytes of the held chunk. */
  private take(n: number): Buffer {
    const out = n >= this.buf.length ? this.buf : this.buf.subarray(0, n);
    this.buf = out === this.buf ? EMPTY : this.buf.subarray(n);
    this.pos += out.length;
    return out;
  }

  read(n: number): Buffer {
    if (!this.fill()) return EMPTY;
    if (this.buf.length >= n) return Buffer.from(this.take(n));
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n && this.fill()) {
      const c = Buffer.from(this.take(n - got));
      parts.push(c);
      got += c.length;
    }
    return Buffer.concat(parts, got);
  }

  skip(n: bigint): bigint {
    const want = upTo2p53(n);
    let done = 0;
    while (done < want && this.fill()) done += this.take(want - done).length;
    return BigInt(done);
  }

  *chunks(n: bigint): Generator<Buffer> {
    let left = upTo2p53(n);
    while (left > 0 && this.fill()) {
      const c = this.take(left);
      left -= c.length;
      yield c;
    }
  }

  drain(): void {
    while (this.fill()) this.take(this.buf.length);
  }

  close(): void {
    this.buf = EMPTY;
    if (!this.ended) {
      this.ended = true;
      this.it.return?.();
    }
  }
}
