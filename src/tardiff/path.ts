import { OdhError, type ErrorContext } from '../util/errors.js';

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * Cleans an Open name like upstream Go `CleanPath` on Linux (spec oci-delta §2.3): lexically clean
 * `"/" + name` (collapse `//`, drop `.`, resolve `..` without ever climbing above the root, drop a
 * trailing `/`), then strip the leading `/`. Works on bytes, as names need not be UTF-8.
 * An empty result (``, `/`, `.`, `..`, …) is refused with "invalid source name '<name>' in tar-diff".
 * Linux has no volume names, so Go's volume check never fires here.
 */
export function cleanSourceName(name: Uint8Array, ctx: ErrorContext = {}): Buffer {
  const parts: Buffer[] = [];
  const raw = Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i < raw.length && raw[i] !== SLASH) continue;
    const part = raw.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === DOT)) continue;
    if (part.length === 2 && part[0] === DOT && part[1] === DOT) {
      parts.pop(); // at the root, `..` stays at the root
      continue;
    }
    parts.push(part);
  }
  if (parts.length === 0) {
    throw new OdhError('FORMAT', `invalid source name '${displayName(raw)}' in tar-diff`, ctx);
  }
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(Buffer.from([SLASH]));
    out.push(p);
  });
  return Buffer.concat(out);
}

/**
 * A name for messages: UTF-8 when it is valid UTF-8, otherwise each byte that is not part of a valid
 * sequence shown as `\xNN`, so distinct names never print the same.
 */
export function displayName(name: Uint8Array): string {
  const buf = Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  const text = buf.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(buf)) return text;
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const len = utf8SequenceLength(buf, i);
    if (len === 0) {
      out += `\\x${buf[i]!.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += buf.toString('utf8', i, i + len);
      i += len;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence at `i`, or 0 if there is none. */
function utf8SequenceLength(buf: Buffer, i: number): number {
  const b = buf[i]!;
  const len =
    b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
  if (len === 0 || i + len > buf.length) return 0;
  const seq = buf.subarray(i, i + len);
  return Buffer.from(seq.toString('utf8'), 'utf8').equals(seq) ? len : 0;
}
