/**
 * The chunk table of an external (backing-file) regular file: chunk size 2^bits with
 * bits = clamp(bitlength(size−1), 12, 43), one null address per chunk. spec composefs-v1 §9.3.
 */

export function chunkBits(size: bigint): number {
  let bits: number;
  if (size <= 0xffffffffn) bits = size <= 1n ? 0 : 32 - Math.clz32(Number(size - 1n));
  else bits = (size - 1n).toString(2).length;
  if (bits < 12) bits = 12;
  if (bits > 43) bits = 43;
  return bits;
}

export function chunkCount(size: bigint): number {
  const bits = BigInt(chunkBits(size));
  return Number((size + (1n << bits) - 1n) >> bits);
}
