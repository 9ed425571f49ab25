import { crc32 } from 'node:zlib';

/**
 * bup-style rolling checksum splitting (spec oci-delta §5.6): content is cut into blobs where the
 * rolling sum's low 13 bits are all ones, or at 32 KiB; each blob is identified by (size, CRC-32).
 * Two files sharing blobs share content at those offsets, which the rollsum copy path exploits.
 */

const WINDOW = 128;
const CHAR_OFFSET = 31;
const MAX_BLOB = 32768;
const SPLIT_MASK = 0x1fff;

/** The blobs of one file, in offset order (parallel arrays keep big files compact). */
export interface RollsumBlobs {
  readonly count: number;
  readonly offsets: Float64Array;
  readonly sizes: Uint32Array;
  readonly crcs: Uint32Array;
}

/** Feeds content chunk by chunk; `finish()` returns the blob list (a final partial blob included). */
export class RollsumSplitter {
  private readonly window = new Uint8Array(WINDOW);
  private w = 0;
  private s1 = 0;
  private s2 = 0;
  private blobStart = 0;
  private blobLen = 0;
  private offset = 0;
  /** CRC of the current blob's bytes seen in earlier chunks. */
  private crc = 0;
  private offsets: number[] = [];
  private sizes: number[] = [];
  private crcs: number[] = [];

  constructor() {
    this.reset();
  }

  private reset(): void {
    this.window.fill(0);
    this.w = 0;
    this.s1 = WINDOW * CHAR_OFFSET;
    this.s2 = WINDOW * (WINDOW - 1) * CHAR_OFFSET;
  }

  push(chunk: Uint8Array): void {
    const window = this.window;
    let { w, s1, s2, blobLen } = this;
    let crc = this.crc;
    let from = 0; // start in `chunk` of the current blob's bytes not yet in `crc`
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      const drop = window[w]!;
      s1 = (s1 + ch - drop) >>> 0;
      s2 = (s2 + s1 - WINDOW * (drop + CHAR_OFFSET)) >>> 0;
      window[w] = ch;
      w = (w + 1) & (WINDOW - 1);
      blobLen++;
      if (blobLen === MAX_BLOB || (s2 & SPLIT_MASK) === SPLIT_MASK) {
        crc = crc32(chunk.subarray(from, i + 1), crc);
        this.record(blobLen, crc);
        from = i + 1;
        crc = 0;
        blobLen = 0;
        // spec oci-delta §5.6: the state restarts after every split
        this.reset();
        w = 0;
        s1 = this.s1;
        s2 = this.s2;
      }
    }
    if (from < chunk.length) crc = crc32(chunk.subarray(from), crc);
    Object.assign(this, { w, s1, s2, blobLen, crc });
    this.offset += chunk.length;
  }

  private record(size: number, crc: number): void {
    this.offsets.push(this.blobStart);
    this.sizes.push(size);
    this.crcs.push(crc);
    this.blobStart += size;
  }

  finish(): RollsumBlobs {
    if (this.blobLen > 0) {
      this.record(this.blobLen, this.crc);
      this.blobLen = 0;
      this.crc = 0;
    }
    const out = {
      count: this.sizes.length,
      offsets: Float64Array.from(this.offsets),
      sizes: Uint32Array.from(this.sizes),
      crcs: Uint32Array.from(this.crcs),
    };
    this.offsets = [];
    this.sizes = [];
    this.crcs = [];
    return out;
  }
}

/** Splits a whole content stream. */
export async function rollsumBlobs(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<RollsumBlobs> {
  const s = new RollsumSplitter();
  for await (const c of chunks) s.push(c);
  return s.finish();
}

/** One matched blob: target blob `index` has the same size and CRC as the source blob at `sourceOffset`. */
export interface RollsumMatch {
  targetOffset: number;
  size: number;
  sourceOffset: number;
}

/**
 * spec oci-delta §5.6: for each target blob, the first source blob with the same CRC and size; the
 * ratio is matches·100 / target blobs (integer).
 */
export function matchRollsum(
  target: RollsumBlobs,
  source: RollsumBlobs,
): { matches: RollsumMatch[]; ratio: number } {
  const first = new Map<number, number>(); // key: crc ^ size hash → first source blob index list head
  const key = (size: number, crc: number) => size * 4294967296 + crc; // exact: size < 2^16
  for (let i = source.count - 1; i >= 0; i--) first.set(key(source.sizes[i]!, source.crcs[i]!), i);
  const matches: RollsumMatch[] = [];
  for (let i = 0; i < target.count; i++) {
    const j = first.get(key(target.sizes[i]!, target.crcs[i]!));
    if (j !== undefined) {
      matches.push({
        targetOffset: target.offsets[i]!,
        size: target.sizes[i]!,
        sourceOffset: source.offsets[j]!,
      });
    }
  }
  const ratio = target.count === 0 ? 0 : Math.floor((matches.length * 100) / target.count);
  return { matches, ratio };
}
