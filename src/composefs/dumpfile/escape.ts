/**
 * Byte escaping of composefs dumpfile fields: the unescaping both parsers share (spec composefs-v1
 * §4.3, composefs-v2 §7.4) and the escaping both printers use (spec composefs-v1 §12.2,
 * composefs-v2 §7.3). Fields are bytes, never JS strings.
 */
import { OdhError } from '../../util/errors.js';

const BACKSLASH = 0x5c;
const DASH = 0x2d;
const EQUAL = 0x3d;

/** The value of a hex digit; -1 for anything else, including undefined (past the end). */
function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Decodes `\\ \n \r \t \xHH` (two hex digits, either case); every other byte is literal.
 * Any other escape, a trailing `\` or bad hex is an error (spec composefs-v1 §4.3).
 * The result is a fresh copy (it never aliases the input line).
 */
export function unescapeField(field: Uint8Array, what: string): Buffer {
  if (field.indexOf(BACKSLASH) < 0) return Buffer.from(field);
  const out = Buffer.allocUnsafe(field.length);
  let o = 0;
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!; // i < field.length
    if (c !== BACKSLASH) {
      out[o++] = c;
      continue;
    }
    const e = field[++i];
    switch (e) {
      case BACKSLASH:
        out[o++] = BACKSLASH;
        break;
      case 0x6e: // n
        out[o++] = 0x0a;
        break;
      case 0x72: // r
        out[o++] = 0x0d;
        break;
      case 0x74: // t
        out[o++] = 0x09;
        break;
      case 0x78: {
        // x
        const hi = hexValue(field[i + 1]);
        const lo = hexValue(field[i + 2]);
        if (hi < 0 || lo < 0) throw new OdhError('FORMAT', `invalid \\x escape in ${what}`);
        out[o++] = (hi << 4) | lo;
        i += 2;
        break;
      }
      case undefined:
        throw new OdhError('FORMAT', `trailing backslash in ${what}`);
      default:
        throw new OdhError('FORMAT', `invalid escape \\${String.fromCharCode(e)} in ${what}`);
    }
  }
  return out.subarray(0, o);
}

/** Optional field (PAYLOAD, CONTENT, DIGEST): the exact text `-` means absent (spec composefs-v1 §4.3). */
export function unescapeOptional(field: Uint8Array, what: string): Buffer | null {
  if (field.length === 1 && field[0] === DASH) return null;
  return unescapeField(field, what);
}

/** C string semantics: everything from the first NUL byte on is ignored (spec composefs-v1 §4.3). */
export function truncateAtNul(b: Buffer): Buffer {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

export interface EscapeRules {
  /** Escape `=` as `\x3d` (xattr keys and values). */
  equal?: boolean;
  /** Print exactly `-` as `\x2d` (PAYLOAD and CONTENT). */
  loneDash?: boolean;
  /** Print an empty value as `-` (composefs-rs path/payload/content, spec composefs-v2 §7.3). */
  emptyDash?: boolean;
}

const HEX = '0123456789abcdef';

/**
 * Escapes bytes for a dumpfile field: `\` `\n` `\r` `\t`, bytes outside 0x21..0x7e as `\xNN`
 * (lowercase), optionally `=` (spec composefs-v1 §12.2, composefs-v2 §7.3). Output is ASCII.
 */
export function escapeField(value: Uint8Array, rules: EscapeRules = {}): string {
  if (value.length === 0) return rules.emptyDash ? '-' : '';
  if (value.length === 1 && value[0] === DASH && (rules.loneDash || rules.emptyDash)) return '\\x2d';
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  let s = '';
  let start = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!; // i < buf.length
    let esc: string | null = null;
    if (c === BACKSLASH) esc = '\\\\';
    else if (c === 0x0a) esc = '\\n';
    else if (c === 0x0d) esc = '\\r';
    else if (c === 0x09) esc = '\\t';
    else if (c < 0x21 || c > 0x7e || (c === EQUAL && rules.equal)) esc = `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
    if (esc !== null) {
      if (i > start) s += buf.toString('latin1', start, i);
      s += esc;
      start = i + 1;
    }
  }
  if (start === 0) return buf.toString('latin1');
  if (start < buf.length) s += buf.toString('latin1', start);
  return s;
}
