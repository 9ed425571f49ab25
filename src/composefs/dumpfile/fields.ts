/**
 * Field-level helpers shared by the dumpfile parsers: splitting a line into its 11 fixed fields and
 * the xattr area, and number parsing with C `strtoull` semantics (spec composefs-v1 §4.2, §4.4).
 */
import { OdhError } from '../../util/errors.js';

export const FIELD_NAMES = [
  'PATH',
  'SIZE',
  'MODE',
  'NLINK',
  'UID',
  'GID',
  'RDEV',
  'MTIME',
  'PAYLOAD',
  'CONTENT',
  'DIGEST',
] as const;
export const F_PATH = 0;
export const F_SIZE = 1;
export const F_MODE = 2;
export const F_NLINK = 3;
export const F_UID = 4;
export const F_GID = 5;
export const F_RDEV = 6;
export const F_MTIME = 7;
export const F_PAYLOAD = 8;
export const F_CONTENT = 9;
export const F_DIGEST = 10;

/** The 11 fixed fields of a line, in the order of FIELD_NAMES. */
export type LineFields = [
  path: Buffer,
  size: Buffer,
  mode: Buffer,
  nlink: Buffer,
  uid: Buffer,
  gid: Buffer,
  rdev: Buffer,
  mtime: Buffer,
  payload: Buffer,
  content: Buffer,
  digest: Buffer,
];

export interface SplitLine {
  /** Missing trailing fields are empty (spec composefs-v1 §4.2). */
  fields: LineFields;
  /** How many fields the line really had (≤ 11). */
  present: number;
  /** Text after the space that ends DIGEST, or null when DIGEST ended the line. */
  xattrArea: Buffer | null;
}

const EMPTY = Buffer.alloc(0);

/** Splits at single spaces: 11 fixed fields, then the rest of the line is the xattr area. */
export function splitLine(line: Buffer): SplitLine {
  let pos = 0;
  let present = 0;
  const next = (): Buffer => {
    if (pos > line.length) return EMPTY;
    present++;
    const start = pos;
    const sp = line.indexOf(0x20, start);
    const end = sp < 0 ? line.length : sp;
    pos = end + 1;
    return line.subarray(start, end);
  };
  const fields: LineFields = [
    next(),
    next(),
    next(),
    next(),
    next(),
    next(),
    next(),
    next(),
    next(),
    next(),
    next(),
  ];
  const xattrArea = pos <= line.length ? line.subarray(pos) : null;
  return { fields, present, xattrArea };
}

/**
 * splitLine without allocating: writes [start, end) of the 11 fields into `out[0..21]` (missing
 * trailing fields get start = end = line length) and returns the start of the xattr area, or -1.
 */
export function splitBounds(line: Uint8Array, out: Int32Array): number {
  return splitBoundsAt(line, 0, line.length, out);
}

/** splitBounds of the line buf[start, end); bounds are offsets in buf. */
export function splitBoundsAt(buf: Uint8Array, start: number, end: number, out: Int32Array): number {
  let pos = start;
  for (let i = 0; i < 11; i++) {
    if (pos > end) {
      out[2 * i] = end;
      out[2 * i + 1] = end;
      continue;
    }
    let sp = pos;
    while (sp < end && buf[sp] !== 0x20) sp++;
    out[2 * i] = pos;
    out[2 * i + 1] = sp;
    pos = sp + 1;
  }
  return pos <= end ? pos : -1;
}

/** parsePlainDecimal of line[start, end). */
export function plainDecimalAt(line: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n <= 0 || n > 15) return -1;
  let v = 0;
  // i < end <= line.length (the caller's bounds), so every read is a byte.
  for (let i = start; i < end; i++) {
    const d = line[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

const U64_MAX = (1n << 64n) - 1n;

/** C isspace(); undefined (past the end) is not a space. */
function isCSpace(c: number | undefined): boolean {
  return c === 0x20 || (c !== undefined && c >= 0x09 && c <= 0x0d);
}

/**
 * C `strtoull(field, &end, base)` with the caller's checks: non-empty, nothing after the digits.
 * Optional leading whitespace and sign; `-` negates modulo 2^64; overflow saturates to 2^64−1.
 * Returns null when the field does not parse (spec composefs-v1 §4.4).
 */
export function parseStrtoull(field: Uint8Array, base: 8 | 10): bigint | null {
  let i = 0;
  while (isCSpace(field[i])) i++;
  let negative = false;
  if (i < field.length && (field[i] === 0x2b || field[i] === 0x2d)) {
    negative = field[i] === 0x2d;
    i++;
  }
  const first = i;
  let small = 0;
  let big: bigint | null = null;
  for (const c of field.subarray(i)) {
    const d = c - 0x30;
    if (d < 0 || d >= base) break;
    i++;
    if (big === null) {
      small = small * base + d;
      if (small > Number.MAX_SAFE_INTEGER / 16) big = BigInt(small);
    } else {
      big = big * BigInt(base) + BigInt(d);
      if (big > U64_MAX) big = U64_MAX + 1n; // keep it bounded; saturates below
    }
  }
  if (i === first || i !== field.length) return null;
  let value = big ?? BigInt(small);
  if (value > U64_MAX) return U64_MAX;
  if (negative) value = -value & U64_MAX;
  return value;
}

/**
 * Fast path of parseStrtoull for the common field: 1–15 decimal digits and nothing else (exact as a
 * Number). Returns -1 for anything else; the caller then takes the full strtoull path.
 */
export function parsePlainDecimal(field: Uint8Array): number {
  const n = field.length;
  if (n === 0 || n > 15) return -1;
  let v = 0;
  for (const c of field) {
    const d = c - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Strict unsigned number as Rust's `from_str_radix` for unsigned types (optional `+`, digits only). */
export function parseRustUnsigned(field: Uint8Array, max: bigint, radix: 8 | 10 = 10): bigint | null {
  let i = 0;
  if (field.length > 0 && field[0] === 0x2b) i = 1;
  if (i >= field.length) return null;
  let v = 0n;
  for (const c of field.subarray(i)) {
    const d = c - 0x30;
    if (d < 0 || d >= radix) return null;
    v = v * BigInt(radix) + BigInt(d);
    if (v > max) return null;
  }
  return v;
}

/** The error a parser throws for a line; the line loop adds the line number and file. */
export function syntax(message: string): OdhError {
  return new OdhError('FORMAT', message);
}
