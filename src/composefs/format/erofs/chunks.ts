/**
 * The chunk table of an external (backing-file) regular file: chunk size 2^bits with
 * bits = clamp(bitlength(size−1), 12, 43), one null address per chunk. spec composefs-v1 §9.3.
 */

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function chunkBits(size: bigint): number {
  if (size <= SAFE) return chunkBitsOf(Number(size));
  return Math.min(43, (size - 1n).toString(2).length);
}

export function chunkCount(size: bigint): number {
  if (size <= SAFE) return chunkCountOf(Number(size));
  const bits = BigInt(chunkBits(size));
  return Number((size + (1n << bits) - 1n) >> bits);
}

/** chunkBits of a size below 2^53 (the only ones a V1 image can hold), without BigInt. */
export function chunkBitsOf(size: number): number {
  let bits = 0;
  for (let v = size - 1; v >= 1; v = Math.floor(v / 2)) bits++;
  return Math.min(43, Math.max(12, bits));
}

/** 2^bits for every chunkBitsOf result: `2 ** bits` with a variable exponent calls pow (profiled). */
const CHUNK_SIZES = Array.from({ length: 44 }, (_, bits) => 2 ** bits);

/** chunkCount of a size below 2^53, without BigInt. */
export function chunkCountOf(size: number): number {
  const chunk = CHUNK_SIZES[chunkBitsOf(size)];
  if (chunk === undefined) throw new Error(`internal: no chunk size for ${size}`);
  return Math.ceil(size / chunk);
}
