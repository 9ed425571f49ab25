/**
 * Checked access for test data under noUncheckedIndexedAccess: a missing value fails the test with
 * a message naming it, instead of a TypeError further down (or a scattered `!`).
 */

/** `value`, or an Error saying `what` is missing. */
export function must<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) throw new Error(`expected ${what}, got ${String(value)}`);
  return value;
}

/** `list[i]`, or an Error saying how long the list is. */
export function nth<T>(list: ArrayLike<T>, i: number, what = 'list'): T {
  const v = list[i];
  if (v === undefined) throw new Error(`expected ${what}[${i}], ${what} has ${list.length} item(s)`);
  return v;
}

/** Flips the `mask` bits of byte i (corrupting test input); an index outside the bytes throws. */
export function xorByte(bytes: Uint8Array, i: number, mask: number): void {
  const b = bytes[i];
  if (b === undefined) throw new RangeError(`byte ${i} is outside ${bytes.length} bytes`);
  bytes[i] = b ^ mask;
}
