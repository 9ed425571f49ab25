import { OdhError, type ErrorContext } from '../util/errors.js';

/** Tar block size; headers and padded content are multiples of it. */
export const BLOCK_SIZE = 512;

/** Header magic family: POSIX ustar (`ustar\0`), GNU (`ustar `), or none (v7). */
export type HeaderFormat = 'ustar' | 'gnu' | 'v7';

/** One decoded 512-byte header, before PAX / GNU long-name overrides. Text fields are raw bytes. */
export interface RawHeader {
  format: HeaderFormat;
  /** `name`, cut at its first NUL; for ustar with a non-empty prefix: `prefix + "/" + name`. */
  name: Buffer;
  mode: number;
  uid: bigint;
  gid: bigint;
  size: bigint;
  mtime: bigint;
  /** The raw typeflag byte as a one-character string (`'\0'` for old regular files). */
  typeflag: string;
  linkname: Buffer;
  uname: Buffer;
  gname: Buffer;
  /** Present only with ustar or GNU magic (spec composefs-v2 §3.2). */
  devmajor: bigint | undefined;
  devminor: bigint | undefined;
  /** GNU old sparse header: the `isextended` flag (byte 482), meaning extension blocks follow. */
  gnuSparseExtended: boolean;
}

// Field offsets and lengths (POSIX ustar; GNU shares 0..263).
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const;
type Field = keyof typeof F;

function field(b: Buffer, f: Field): Buffer {
  const [o, n] = F[f];
  return b.subarray(o, o + n);
}

/** Bytes up to the first NUL (or the whole field). */
export function cutAtNul(b: Buffer): Buffer {
  const i = b.indexOf(0);
  return i < 0 ? b : b.subarray(0, i);
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Decodes a numeric header field (spec composefs-v2 §3.2): octal ASCII cut at the first NUL with
 * surrounding spaces allowed (an empty field is 0), or GNU base-256 (high bit of the first byte set;
 * the remaining bits are a big-endian two's-complement number, so 0xff-led fields are negative).
 */
export function decodeNumeric(b: Buffer, what: string, offset: bigint, where: ErrorContext = {}): bigint {
  const plain = plainOctal(b);
  if (plain >= 0) return BigInt(plain);
  const first = b[0];
  if (first !== undefined && (first & 0x80) !== 0) {
    let v = BigInt(first & 0x7f);
    for (const c of b.subarray(1)) v = (v << 8n) | BigInt(c);
    const bits = BigInt(b.length * 8 - 1);
    if ((first & 0x40) !== 0) v -= 1n << bits;
    return v;
  }
  const s = cutAtNul(b)
    .toString('latin1')
    .replace(/^[ ]+|[ ]+$/g, '');
  if (s === '') return 0n;
  if (!/^[0-7]+$/.test(s)) {
    throw new OdhError('FORMAT', `tar header: invalid octal number ${JSON.stringify(s)} in ${what}`, {
      ...where,
      offset,
    });
  }
  return BigInt('0o' + s);
}

/**
 * The common form of an octal field read in place: spaces, octal digits, spaces, then NUL or the
 * field's end. -1 for anything else (base-256, bad bytes), which decodeNumeric reads the long way
 * with the same result or error. Fields are at most 12 bytes, so the value is exact in a number.
 */
function plainOctal(b: Buffer): number {
  const end = b.length;
  let i = 0;
  while (i < end && b[i] === 0x20) i++;
  let v = 0;
  for (let c = b[i]; i < end && c !== undefined && c >= 0x30 && c <= 0x37; c = b[++i]) v = v * 8 + (c - 0x30);
  while (i < end && b[i] === 0x20) i++;
  return i === end || b[i] === 0 ? v : -1;
}

/** Unsigned and signed byte sums of a header with the checksum field read as eight spaces. */
export function headerChecksums(b: Buffer): { unsigned: number; signed: number } {
  let u = 0;
  let high = 0; // bytes ≥ 0x80: each counts 256 less in the signed sum
  for (let i = 0; i < BLOCK_SIZE; i++) {
    // The chksum field (bytes 148..155) counts as spaces, whatever it holds.
    const c = i >= 148 && i < 156 ? 0x20 : (b[i] ?? 0);
    u += c;
    if (c >= 0x80) high++;
  }
  return { unsigned: u, signed: u - 256 * high };
}

/** The mode field as a number: it must fit 32 bits unsigned. */
function modeNumber(v: bigint, offset: bigint, where: ErrorContext): number {
  if (v < 0n || v > 0xffffffffn)
    throw new OdhError('FORMAT', `tar header: mode ${v} out of range`, { ...where, offset });
  return Number(v);
}

/**
 * Decodes one non-zero 512-byte header block found at `offset`. Verifies the checksum (either the
 * unsigned or the historic signed sum is accepted); a mismatch is OdhError('FORMAT'). Errors carry
 * `where` (the tar's file or layer) and the offset.
 */
export function decodeHeader(b: Buffer, offset: bigint, where: ErrorContext = {}): RawHeader {
  if (b.length !== BLOCK_SIZE) throw new Error('decodeHeader needs exactly one block');
  const stored = decodeNumeric(field(b, 'chksum'), 'chksum', offset, where);
  const { unsigned, signed } = headerChecksums(b);
  if (stored !== BigInt(unsigned) && stored !== BigInt(signed)) {
    throw new OdhError('FORMAT', `tar header checksum mismatch: stored ${stored}, computed ${unsigned}`, {
      ...where,
      offset,
    });
  }
  const magic = field(b, 'magic').toString('latin1');
  const format: HeaderFormat = magic === 'ustar\0' ? 'ustar' : magic === 'ustar ' ? 'gnu' : 'v7';
  let name = Buffer.from(cutAtNul(field(b, 'name')));
  if (format === 'ustar') {
    const prefix = cutAtNul(field(b, 'prefix'));
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  const num = (f: Field) => decodeNumeric(field(b, f), f, offset, where);
  const size = num('size');
  if (size < 0n) throw new OdhError('FORMAT', `tar header: negative size ${size}`, { ...where, offset });
  const hasDev = format !== 'v7';
  return {
    format,
    name,
    mode: modeNumber(num('mode'), offset, where),
    uid: num('uid'),
    gid: num('gid'),
    size,
    mtime: num('mtime'),
    typeflag: b.toString('latin1', 156, 157),
    linkname: Buffer.from(cutAtNul(field(b, 'linkname'))),
    uname: hasDev ? Buffer.from(cutAtNul(field(b, 'uname'))) : Buffer.alloc(0),
    gname: hasDev ? Buffer.from(cutAtNul(field(b, 'gname'))) : Buffer.alloc(0),
    devmajor: hasDev ? num('devmajor') : undefined,
    devminor: hasDev ? num('devminor') : undefined,
    gnuSparseExtended: format === 'gnu' && b[156] === 0x53 /* 'S' */ && b[482] !== 0,
  };
}

/** Fields the USTAR encoder writes. Text fields are bytes or UTF-8 strings. */
export interface UstarFields {
  name: Buffer | string;
  mode: number;
  uid?: number;
  gid?: number;
  size: bigint | number;
  mtime?: bigint | number;
  typeflag: string;
  linkname?: Buffer | string;
  uname?: Buffer | string;
  gname?: Buffer | string;
  devmajor?: number;
  devminor?: number;
}

/**
 * Octal field as Go's archive/tar writes it: zero-padded digits followed by one NUL, filling the
 * field (e.g. mode 0644 in 8 bytes → "0000644\0").
 */
function putOctal(b: Buffer, f: Field, v: bigint | number, what: string): void {
  const [o, n] = F[f];
  const s = BigInt(v).toString(8);
  if (BigInt(v) < 0n || s.length > n - 1) {
    throw new OdhError('LIMIT', `tar writer: ${what} ${v} does not fit a ${n}-byte octal field`);
  }
  b.write(s.padStart(n - 1, '0'), o, 'latin1');
  b[o + n - 1] = 0;
}

function putText(b: Buffer, f: Field, v: Buffer | string | undefined, what: string): void {
  const [o, n] = F[f];
  const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : (v ?? Buffer.alloc(0));
  if (bytes.length > n)
    throw new OdhError('LIMIT', `tar writer: ${what} is ${bytes.length} bytes, field holds ${n}`);
  bytes.copy(b, o);
}

/**
 * Splits a name that does not fit the 100-byte `name` field at a '/' so that prefix ≤ 155 and
 * name ≤ 100 bytes (POSIX ustar). Throws LIMIT when no split exists.
 */
function splitUstarName(name: Buffer): { prefix: Buffer; name: Buffer } {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name };
  for (let i = Math.min(name.length - 1, 155); i > 0; i--) {
    if (name[i] === 0x2f && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
    }
  }
  throw new OdhError(
    'LIMIT',
    `tar writer: name ${JSON.stringify(name.toString())} does not fit a USTAR header`,
  );
}

/**
 * Encodes one USTAR header block the way Go's archive/tar does for FormatUSTAR (spec oci-delta §4.1
 * "Output tar"): magic "ustar\0" version "00", octal fields zero-padded with a trailing NUL,
 * checksum as six octal digits, NUL, space.
 */
export function encodeUstarHeader(h: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  const nameBytes = typeof h.name === 'string' ? Buffer.from(h.name, 'utf8') : h.name;
  const split = splitUstarName(nameBytes);
  putText(b, 'name', split.name, 'name');
  putOctal(b, 'mode', h.mode, 'mode');
  putOctal(b, 'uid', h.uid ?? 0, 'uid');
  putOctal(b, 'gid', h.gid ?? 0, 'gid');
  putOctal(b, 'size', h.size, 'size');
  putOctal(b, 'mtime', h.mtime ?? 0, 'mtime');
  if (h.typeflag.length !== 1) throw new Error('typeflag must be one character');
  b[156] = h.typeflag.charCodeAt(0);
  putText(b, 'linkname', h.linkname, 'linkname');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  putText(b, 'uname', h.uname, 'uname');
  putText(b, 'gname', h.gname, 'gname');
  putOctal(b, 'devmajor', h.devmajor ?? 0, 'devmajor');
  putOctal(b, 'devminor', h.devminor ?? 0, 'devminor');
  putText(b, 'prefix', split.prefix, 'prefix');
  const sum = headerChecksums(b).unsigned;
  b.write(sum.toString(8).padStart(6, '0'), 148, 'latin1');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** Bytes of padding after `size` content bytes to reach a block boundary. */
export function paddingFor(size: bigint): bigint {
  const r = size % BigInt(BLOCK_SIZE);
  return r === 0n ? 0n : BigInt(BLOCK_SIZE) - r;
}

/** One PAX extended-header record; the key is UTF-8 text, the value raw bytes. */
export interface PaxRecord {
  key: string;
  value: Buffer;
}

/**
 * Parses PAX extended-header content: records `"<len> <key>=<value>\n"` where len counts the whole
 * record in decimal. Any malformed record is OdhError('FORMAT') naming `where` and the header offset.
 */
export function parsePaxRecords(data: Buffer, offset: bigint, where: ErrorContext = {}): PaxRecord[] {
  const out: PaxRecord[] = [];
  let p = 0;
  while (p < data.length) {
    // A NUL-filled tail is tolerated (some writers pad the content).
    if (data[p] === 0 && isZeroBlock(data.subarray(p))) break;
    const sp = data.indexOf(0x20, p);
    const lenText = sp < 0 ? '' : data.subarray(p, sp).toString('latin1');
    if (!/^[1-9][0-9]{0,8}$/.test(lenText)) {
      throw new OdhError('FORMAT', `PAX header: bad record length at byte ${p}`, { ...where, offset });
    }
    const len = Number(lenText);
    const end = p + len;
    if (end > data.length || data[end - 1] !== 0x0a) {
      throw new OdhError('FORMAT', `PAX header: record at byte ${p} overruns or lacks its newline`, {
        ...where,
        offset,
      });
    }
    const body = data.subarray(sp + 1, end - 1);
    const eq = body.indexOf(0x3d);
    if (eq <= 0)
      throw new OdhError('FORMAT', `PAX header: record at byte ${p} has no key`, { ...where, offset });
    const keyBytes = body.subarray(0, eq);
    const key = keyBytes.toString('utf8');
    if (!Buffer.from(key, 'utf8').equals(keyBytes)) {
      throw new OdhError('FORMAT', `PAX header: record key at byte ${p} is not UTF-8`, { ...where, offset });
    }
    out.push({ key, value: Buffer.from(body.subarray(eq + 1)) });
    p = end;
  }
  return out;
}

/** Encodes PAX records (used by tests and writers that need long names). */
export function encodePaxRecords(records: PaxRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const { key, value } of records) {
    const rest = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
    parts.push(Buffer.from(String(len), 'latin1'), rest);
  }
  return Buffer.concat(parts);
}

/** Largest size a 12-byte octal field holds (11 digits): 8 GiB - 1. */
export const MAX_OCTAL_SIZE = 8n ** 11n - 1n;

/**
 * The header blocks Go's archive/tar writes for a USTAR-shaped entry (spec oci-delta §4.1 "Output
 * tar"). When `size` does not fit the octal field Go falls back to PAX: an 'x' header named
 * `<dir>/PaxHeaders.0/<file>` (mode/uid/gid/mtime 0, no device fields) holding the sorted record
 * `size=<n>`, then the main header with size written as 0 and ustar magic. **[inferred from Go's
 * writer; no upstream vector exists for blobs ≥ 8 GiB]**
 */
export function encodeGoHeaders(h: UstarFields): Buffer {
  const size = BigInt(h.size);
  if (size <= MAX_OCTAL_SIZE) return encodeUstarHeader(h);
  const name = typeof h.name === 'string' ? h.name : h.name.toString('utf8');
  const slash = name.lastIndexOf('/', name.length - 2);
  const paxName = (slash < 0 ? '' : name.slice(0, slash + 1)) + 'PaxHeaders.0/' + name.slice(slash + 1);
  const data = encodePaxRecords([{ key: 'size', value: Buffer.from(size.toString()) }]);
  const x = encodeUstarHeader({
    name: paxName.replace(/\/+$/, '').slice(0, 100),
    mode: 0,
    size: data.length,
    typeflag: 'x',
  });
  // Go's writeRawFile leaves devmajor/devminor unformatted (NUL): clear them and redo the checksum.
  x.fill(0, 329, 345);
  x.fill(0x20, 148, 156);
  x.write(headerChecksums(x).unsigned.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const pad = Buffer.alloc(Number(paddingFor(BigInt(data.length))));
  return Buffer.concat([x, data, pad, encodeUstarHeader({ ...h, size: 0 })]);
}
