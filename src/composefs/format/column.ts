/**
 * Checked reads of typed-array columns (the flat tree, the V1 plan, byte buffers): element i as a
 * plain number or bigint. Every caller has proved i in range (a loop bound, a stored id); an index
 * outside is a bug in this code, not bad input, so it throws a plain Error (the CLI reports it as
 * INTERNAL). One function per element type keeps each read monomorphic and small enough for V8
 * to inline into the hot loops of the V1 writer, where the check costs one compare.
 */

/** Thrown by the accessors below; kept out of them so they stay small. */
function outOfRange(kind: string, length: number, i: number): never {
  throw new Error(`internal: ${kind} column index ${i} out of range (length ${length})`);
}

export function i32(a: Int32Array, i: number): number {
  const v = a[i];
  if (v === undefined) return outOfRange('Int32', a.length, i);
  return v;
}

export function u32(a: Uint32Array, i: number): number {
  const v = a[i];
  if (v === undefined) return outOfRange('Uint32', a.length, i);
  return v;
}

/** For Uint8Array columns; bytes of a Buffer go through `byte` (a second map would slow both). */
export function u8(a: Uint8Array, i: number): number {
  const v = a[i];
  if (v === undefined) return outOfRange('Uint8', a.length, i);
  return v;
}

/** Byte i of a Buffer (names, values, the arena, images). */
export function byte(b: Buffer, i: number): number {
  const v = b[i];
  if (v === undefined) return outOfRange('Buffer', b.length, i);
  return v;
}

export function u64(a: BigUint64Array, i: number): bigint {
  const v = a[i];
  if (v === undefined) return outOfRange('BigUint64', a.length, i);
  return v;
}

export function i64(a: BigInt64Array, i: number): bigint {
  const v = a[i];
  if (v === undefined) return outOfRange('BigInt64', a.length, i);
  return v;
}

/**
 * Checks that [start, end) lies in a. The short byte-copy loops (every byte of every name and
 * xattr value passes through one: the hottest loops of the V1 writer) check their range once
 * with this, then read `src[i]!` inside it, instead of a checked read per byte.
 */
export function checkRange(a: Uint8Array, start: number, end: number): void {
  if (!(start >= 0 && start <= end && end <= a.length)) {
    throw new Error(`internal: byte range [${start}, ${end}) out of range (length ${a.length})`);
  }
}

/** Element i of an array the caller has proved long enough (a loop bound, a stored index). */
export function item<T>(a: readonly T[], i: number): T {
  const v = a[i];
  if (v === undefined) return outOfRange('Array', a.length, i);
  return v;
}
