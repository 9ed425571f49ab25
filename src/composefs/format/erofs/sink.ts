/**
 * Where an EROFS emitter writes. The same class counts (the measuring pass, which finds every
 * offset) or hands the bytes on in chunks (the writing pass): one emitter runs over both, so the
 * layout cannot drift from the bytes (composefs-rs `erofs/writer.rs` runs its emitter twice the
 * same way). One class, not two, keeps every call site monomorphic for the JIT.
 */
import { checkRange } from '../column.js';

export class ImageSink {
  /** Bytes emitted so far: the offset of the next byte. */
  pos = 0;
  private readonly buf: Buffer;
  private at = 0;

  /**
   * `onChunk` null: measure only. Otherwise the bytes go to `onChunk` in chunks of `chunkSize`
   * (one reused buffer: consume or copy each chunk at once); call `end()` after the last write.
   */
  constructor(
    private readonly onChunk: ((chunk: Buffer) => void) | null,
    chunkSize = 1 << 20,
  ) {
    this.buf = Buffer.alloc(onChunk === null ? 0 : chunkSize);
  }

  /** Advances by n and returns where the n bytes go in `buf`, or -1 when measuring. */
  private room(n: number): number {
    this.pos += n;
    if (this.onChunk === null) return -1;
    if (this.at + n > this.buf.length) this.flush();
    const at = this.at;
    this.at += n;
    return at;
  }

  private flush(): void {
    if (this.at === 0 || this.onChunk === null) return;
    this.onChunk(this.buf.subarray(0, this.at));
    this.at = 0;
  }

  u8(v: number): void {
    const at = this.room(1);
    if (at >= 0) this.buf[at] = v;
  }
  u16(v: number): void {
    const at = this.room(2);
    if (at >= 0) this.buf.writeUInt16LE(v & 0xffff, at);
  }
  u32(v: number): void {
    const at = this.room(4);
    if (at >= 0) this.buf.writeUInt32LE(v >>> 0, at);
  }
  u64(v: bigint): void {
    const at = this.room(8);
    if (at >= 0) this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), at);
  }
  /** A u64 given as a Number below 2^53 (no BigInt on the common path). */
  u64n(v: number): void {
    const at = this.room(8);
    if (at < 0) return;
    this.buf.writeUInt32LE(v % 0x100000000, at);
    this.buf.writeUInt32LE(Math.floor(v / 0x100000000), at + 4);
  }
  bytes(src: Uint8Array, start: number, end: number): void {
    if (this.onChunk === null) {
      this.pos += end - start;
      return;
    }
    while (start < end) {
      if (this.at === this.buf.length) this.flush();
      const n = Math.min(end - start, this.buf.length - this.at);
      const b = this.buf;
      if (n <= 128) {
        checkRange(src, start, start + n);
        for (let i = start, at = this.at; i < start + n; i++) b[at++] = src[i]!; // in range: checked above
      } else b.set(src.subarray(start, start + n), this.at);
      this.at += n;
      this.pos += n;
      start += n;
    }
  }
  /** n zero bytes. */
  zeros(n: number): void {
    this.fill(0, n);
  }
  /** n bytes of the value b. */
  fill(b: number, n: number): void {
    if (this.onChunk === null) {
      this.pos += n;
      return;
    }
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
