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
