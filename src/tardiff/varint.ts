import { OdhError } from '../util/errors.js';

/**
 * Unsigned LEB128 varints as tar-diff writes them (Go `binary.PutUvarint`; spec oci-delta §2.2, §8.1):
 * 7 bits per byte, low group first, high bit = "more follows". At most 10 bytes, and the 10th byte may
 * only carry the single bit 63 (≤ 1), so every accepted value is < 2^64. Values are bigint because
 * Copy/Seek operands are full u64.
 */
export const MAX_UVARINT_BYTES = 10;

const U64_MAX = (1n << 64n) - 1n;

/** Encodes `value` (0 ≤ value < 2^64) as a uvarint. */
export function encodeUvarint(value: bigint | number): Buffer {
  let v = BigInt(value);
  if (v < 0n || v > U64_MAX) throw new RangeError(`uvarint out of range: ${v}`);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/**
 * Incremental decoder: feed bytes one at a time with `push`; it returns the value once the final byte
 * (high bit clear) arrives and `undefined` while more bytes are needed. Throws OdhError('FORMAT') on a
 * 10th byte > 1 (u64 overflow; this also stops an 11th byte). `reset()` readies it for the next varint.
 */
export class UvarintDecoder {
  // The first 7 groups (49 bits) accumulate exactly in a double; the rest in `high` as bigint, so the
  // common small operands never touch BigInt arithmetic until the end.
  private low = 0;
  private high = 0n;
  private count = 0;

  /** Bytes consumed so far by the varint in progress (0 when idle). */
  get pending(): number {
    return this.count;
  }

  push(byte: number): bigint | undefined {
    const index = this.count;
    if (index === MAX_UVARINT_BYTES - 1 && byte > 1) {
      // spec oci-delta §8.1: [80]x10, [80]x11 and [ff]x9 02 all fail here; a 10th byte ≤ 1 always ends
      // the varint, so an 11th byte can never be reached.
      throw new OdhError('FORMAT', 'varint overflows 64 bits (10th byte > 1)');
    }
    if (index < 7) this.low += (byte & 0x7f) * 2 ** (7 * index);
    else this.high |= BigInt(byte & 0x7f) << BigInt(7 * index);
    this.count = index + 1;
    if (byte >= 0x80) return undefined;
    const value = BigInt(this.low) | this.high;
    this.reset();
    return value;
  }

  reset(): void {
    this.low = 0;
    this.high = 0n;
    this.count = 0;
  }
}

/**
 * Decodes one uvarint from `buf` at `offset`. Returns the value and its encoded length, or `null`
 * when `buf` ends before the varint does (the caller decides whether that is truncation).
 */
export function decodeUvarint(buf: Uint8Array, offset = 0): { value: bigint; length: number } | null {
  const dec = new UvarintDecoder();
  for (let i = offset; i < buf.length; i++) {
    const v = dec.push(buf[i]!);
    if (v !== undefined) return { value: v, length: i - offset + 1 };
  }
  return null;
}
