/**
 * Where an EROFS emitter writes: a sink that only counts (the first pass, which finds every offset)
 * or one that keeps the bytes. The emitter runs the same code over both, so the layout cannot drift
 * from the bytes (composefs-rs `erofs/writer.rs` runs its emitter twice the same way).
 */
import { copyBytes } from '../flat-tree.js';

export interface ImageSink {
  /** Bytes emitted so far: the offset of the next byte. */
  readonly pos: number;
  u8(v: number): void;
  u16(v: number): void;
  u32(v: number): void;
  u64(v: bigint): void;
  /** A u64 given as a Number below 2^53. */
  u64n(v: number): void;
  bytes(src: Uint8Array, start: number, end: number): void;
  /** n zero bytes. */
  zeros(n: number): void;
  /** n bytes of the value b. */
  fill(b: number, n: number): void;
}

/** Counts bytes; stores nothing. */
export class MeasureSink implements ImageSink {
  pos = 0;
  u8(): void {
    this.pos += 1;
  }
  u16(): void {
    this.pos += 2;
  }
  u32(): void {
    this.pos += 4;
  }
  u64(): void {
    this.pos += 8;
  }
  u64n(): void {
    this.pos += 8;
  }
  bytes(_src: Uint8Array, start: number, end: number): void {
    this.pos += end - start;
  }
  zeros(n: number): void {
    this.pos += n;
  }
  fill(_b: number, n: number): void {
    this.pos += n;
  }
}

/** Writes into one zero-filled buffer of the measured size (zeros are skipped over). */
export class BufferSink implements ImageSink {
  pos = 0;
  readonly buf: Buffer;

  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }
  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16LE(v & 0xffff, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }
  u64(v: bigint): void {
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }
  /** A u64 from a Number below 2^53 (no BigInt on the common path). */
  u64n(v: number): void {
    this.buf.writeUInt32LE(v % 0x100000000, this.pos);
    this.buf.writeUInt32LE(Math.floor(v / 0x100000000), this.pos + 4);
    this.pos += 8;
  }
  bytes(src: Uint8Array, start: number, end: number): void {
    copyBytes(src, start, end, this.buf, this.pos);
    this.pos += end - start;
  }
  zeros(n: number): void {
    this.pos += n;
  }
  fill(b: number, n: number): void {
    this.buf.fill(b, this.pos, this.pos + n);
    this.pos += n;
  }
}

/**
 * Hands the bytes on in chunks of `size` (one reused buffer), so an image streams to its file and
 * its digest without ever being whole in memory. Call `end()` after the last write.
 */
export class ChunkSink implements ImageSink {
  pos = 0;
  private readonly buf: Buffer;
  private at = 0;

  constructor(
    private readonly onChunk: (chunk: Buffer) => void,
    size = 1 << 20,
  ) {
    this.buf = Buffer.alloc(size);
  }

  private room(n: number): number {
    if (this.at + n > this.buf.length) this.flush();
    const at = this.at;
    this.at += n;
    this.pos += n;
    return at;
  }

  private flush(): void {
    if (this.at === 0) return;
    this.onChunk(this.buf.subarray(0, this.at));
    this.at = 0;
  }

  u8(v: number): void {
    this.buf[this.room(1)] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16LE(v & 0xffff, this.room(2));
  }
  u32(v: number): void {
    this.buf.writeUInt32LE(v >>> 0, this.room(4));
  }
  u64(v: bigint): void {
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.room(8));
  }
  u64n(v: number): void {
    const at = this.room(8);
    this.buf.writeUInt32LE(v % 0x100000000, at);
    this.buf.writeUInt32LE(Math.floor(v / 0x100000000), at + 4);
  }
  bytes(src: Uint8Array, start: number, end: number): void {
    while (start < end) {
      if (this.at === this.buf.length) this.flush();
      const n = Math.min(end - start, this.buf.length - this.at);
      copyBytes(src, start, start + n, this.buf, this.at);
      this.at += n;
      this.pos += n;
      start += n;
    }
  }
  zeros(n: number): void {
    this.fill(0, n);
  }
  fill(b: number, n: number): void {
    while (n > 0) {
      if (this.at === this.buf.length) this.flush();
      const k = Math.min(n, this.buf.length - this.at);
      this.buf.fill(b, this.at, this.at + k);
      this.at += k;
      this.pos += k;
      n -= k;
    }
  }
  end(): void {
    this.flush();
  }
}
