/**
 * Where an EROFS emitter writes: the bytes go on in chunks, and `pos` counts them. One emitter runs
 * twice over it, the measuring pass (which finds every offset and drops the bytes) and the writing
 * pass, so the layout cannot drift from the bytes (composefs-rs `erofs/writer.rs` runs its emitter
 * twice the same way). One class and one path, not two, keeps every call site monomorphic.
 */
import { checkRange } from '../column.js';

export class ImageSink {
  /** Bytes emitted so far: the offset of the next byte. */
  pos = 0;
  private readonly buf: Buffer;
  private at = 0;

  /**
   * The bytes go to `onChunk` in chunks of `chunkSize` (one reused buffer: consume or copy each
   * chunk at once); call `end()` after the last write. The measuring pass passes `discard`: it
   * writes the same bytes by the same code and drops them, so the JIT sees one path in both passes
   * (a counting-only branch made every emitter function deoptimize when the writing pass began).
   */
  constructor(
    private readonly onChunk: (chunk: Buffer) => void,
    chunkSize = 1 << 20,
  ) {
    // A field is written whole into one chunk (room()); the widest is 8 bytes.
    if (!(chunkSize >= 8)) throw new Error(`internal: image sink chunks of ${chunkSize} bytes`);
    this.buf = Buffer.alloc(chunkSize);
  }

  /** Advances by n and returns where the n bytes go in `buf`. */
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
    const at = this.room(2);
    const b = this.buf;
    b[at] = v;
    b[at + 1] = v >>> 8;
  }
  u32(v: number): void {
    this.put32(this.room(4), v);
  }
  u64(v: bigint): void {
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.room(8));
  }
  /** A u64 given as a Number below 2^53 (no BigInt on the common path). */
  u64n(v: number): void {
    const at = this.room(8);
    this.put32(at, v % 0x100000000);
    this.put32(at + 4, Math.floor(v / 0x100000000));
  }
  /** v's low 32 bits, little-endian, at buf[at] (byte stores keep only the low 8 bits of each). */
  private put32(at: number, v: number): void {
    const b = this.buf;
    b[at] = v;
    b[at + 1] = v >>> 8;
    b[at + 2] = v >>> 16;
    b[at + 3] = v >>> 24;
  }
  bytes(src: Uint8Array, start: number, end: number): void {
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
    while (n > 0) {
      if (this.at === this.buf.length) this.flush();
      const k = Math.min(n, this.buf.length - this.at);
      // Most fills are the 0–3 padding bytes after an xattr: a loop, not a call into C++ each time.
      if (k <= 16) for (let j = this.at; j < this.at + k; j++) this.buf[j] = b;
      else this.buf.fill(b, this.at, this.at + k);
      this.at += k;
      this.pos += k;
      n -= k;
    }
  }
  end(): void {
    this.flush();
  }
}

/** The measuring pass's chunk consumer: the bytes are not needed, only `pos`. */
export function discard(): void {}
