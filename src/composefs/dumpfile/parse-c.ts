/**
 * Dumpfile → tree with the rules of C `mkcomposefs --from-file` 1.0.8 (spec composefs-v1 §4),
 * strict (CFS_PARSE_STRICT) or lenient. Accept/reject decisions follow C exactly, including its
 * quirks (strtoull numbers, the GID/RDEV error-reporting bug, the xattr size budget).
 */
import { S_IFCHR, S_IFBLK, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Xattr } from '../format/tree.js';
import type { FlatTree } from '../format/flat-tree.js';
import { FlatPathTree } from './flat-paths.js';
import { truncateAtNul, unescapeField } from './escape.js';
import {
  F_CONTENT,
  F_DIGEST,
  F_GID,
  F_MODE,
  F_MTIME,
  F_NLINK,
  F_PATH,
  F_PAYLOAD,
  F_RDEV,
  F_SIZE,
  F_UID,
  parseStrtoull,
  parsePlainDecimal,
  plainDecimalAt,
  splitBoundsAt,
  syntax,
} from './fields.js';
import { isValidFileType } from './path-tree.js';
import type { LineRef } from './lines.js';

const U32 = 0xffffffffn;
const MAX_NAME = 255;
const MAX_PATH = 4096; // symlink targets and payloads must be shorter (spec composefs-v1 §4.5)
const MAX_CONTENT = 5000;
const MAX_XATTR_AREA = 65535;
const MAX_XATTR_VALUE = 65535;
const XATTR_BUDGET = 32767;
/** spec composefs-v1 §9.3: more than 1024 chunks of 2^43 bytes cannot be written. */
const MAX_EXTERNAL_SIZE = 1n << 53n;
/**
 * From here on C's chunk count `(size + 2^43 − 1) >> 43` wraps in 64 bits: C 1.0.8 then writes an
 * image whose chunk table is far shorter than i_size says, which fsck.erofs rejects or loops on.
 * We refuse these like every other size above MAX_EXTERNAL_SIZE (docs/composefs-decisions.md §1).
 */
const C_CHUNK_OVERFLOW = (1n << 64n) - (1n << 43n) + 1n;

export class MkcomposefsDumpfileParser {
  private readonly tree: FlatPathTree;
  private readonly flat: FlatTree;
  private sawLine = false;

  /** `expectedLines`: a size hint (room is made for that many entries at once). */
  constructor(
    private readonly strict: boolean,
    private readonly digestBytes: 32 | 64 = 32,
    expectedLines = 0,
  ) {
    this.tree = new FlatPathTree(expectedLines, MAX_NAME);
    this.flat = this.tree.flat;
  }

  /** Field bounds of the current line (splitBounds); fields become Buffers only when needed. */
  private readonly b = new Int32Array(22);
  private cur: Buffer = Buffer.alloc(0);
  /** End of the current line in `cur`. */
  private end = 0;
  /** Interned xattr keys and values (raw text without escapes → bytes): labels repeat on every file. */
  private readonly interned = new Map<string, Buffer>();
  /** The current line's xattrs (C replaces a repeated key), committed to the tree at the line's end. */
  private readonly xs: Xattr[] = [];
  /** Decoded digest of the current line. */
  private readonly digest = Buffer.alloc(64);

  /**
   * Start of field f in `cur`. `b` has a slot pair for each of the 11 fields and every caller
   * passes a field constant (F_PATH … F_DIGEST), so the slot is always there.
   */
  private start(f: number): number {
    return this.b[2 * f]!;
  }

  /** End of field f in `cur` (see start). */
  private stop(f: number): number {
    return this.b[2 * f + 1]!;
  }

  private field(i: number): Buffer {
    return this.cur.subarray(this.start(i), this.stop(i));
  }

  /** The field is exactly `-` (absent optional field, spec composefs-v1 §4.3). */
  private isDash(i: number): boolean {
    const s = this.start(i);
    return this.stop(i) === s + 1 && this.cur[s] === 0x2d;
  }

  /** The field holds a backslash (so it must be unescaped before use). */
  private hasEscape(i: number): boolean {
    const end = this.stop(i);
    for (let j = this.start(i); j < end; j++) if (this.cur[j] === 0x5c) return true;
    return false;
  }

  /** MTIME as `DIGITS.DIGITS` of safe-integer size, read in place; false for anything else. */
  private plainMtime(i: number): boolean {
    const start = this.start(F_MTIME);
    const end = this.stop(F_MTIME);
    let dot = start;
    while (dot < end && this.cur[dot] !== 0x2e) dot++;
    if (dot === end) return false;
    const sec = plainDecimalAt(this.cur, start, dot);
    const nsec = plainDecimalAt(this.cur, dot + 1, end);
    if (sec < 0 || nsec < 0 || nsec > 0xffffffff) return false;
    this.flat.mtimeSec[i] = BigInt(sec);
    this.flat.mtimeNsec[i] = nsec;
    return true;
  }

  private optional(i: number, what: string): Buffer | null {
    return this.isDash(i) ? null : unescapeField(this.field(i), what);
  }

  /** An optional field's length after unescaping and NUL truncation; -1 when it is `-`. */
  private optionalLength(i: number, what: string): number {
    if (this.isDash(i)) return -1;
    if (!this.hasEscape(i)) return this.stop(i) - this.start(i);
    return truncateAtNul(unescapeField(this.field(i), what)).length;
  }

  line(bytes: Buffer, lineNo: number, terminated: boolean): void {
    this.lineAt({ buf: bytes, start: 0, end: bytes.length, number: lineNo, terminated });
  }

  /** The line buf[start, end) (without its LF). */
  lineAt(line: LineRef): void {
    const { buf, start, end, number: lineNo, terminated } = line;
    this.sawLine = true;
    // spec composefs-v1 §4.1
    if (!terminated && this.strict) throw syntax('Missing trailing newline');
    if (end === start) throw syntax('Invalid empty path');
    for (let i = start; i < end; i++) if (buf[i] === 0) throw syntax('NUL byte in line');

    this.cur = buf;
    this.end = end;
    const bytes = buf;
    const xattrStart = splitBoundsAt(buf, start, end, this.b);
    // The path is read in place unless it has escapes (the tree copies the name it keeps).
    let pathSrc: Uint8Array = bytes;
    let pathStart = this.start(F_PATH);
    let pathEnd = this.stop(F_PATH);
    if (this.hasEscape(F_PATH)) {
      pathSrc = truncateAtNul(unescapeField(this.field(F_PATH), 'PATH'));
      pathStart = 0;
      pathEnd = pathSrc.length;
    }
    if (pathEnd === pathStart) throw syntax('Invalid empty path');
    const isRoot = pathEnd - pathStart === 1 && pathSrc[pathStart] === 0x2f;
    const entry = isRoot ? -1 : this.tree.insert(pathSrc, pathStart, pathEnd);

    // MODE, with `@` marking a hardlink line (spec composefs-v1 §4.5 item 2).
    const modeStart = this.start(F_MODE);
    const modeEnd = this.stop(F_MODE);
    const isHardlink = modeEnd > modeStart && bytes[modeStart] === 0x40;
    const mode = this.mode(isHardlink ? modeStart + 1 : modeStart, modeEnd);
    if (!isValidFileType(mode)) throw syntax(`Invalid mode ${mode.toString(8)}`);
    const type = mode & S_IFMT;
    if (isRoot && (isHardlink || type !== S_IFDIR)) throw syntax('Root must be a directory');

    if (isHardlink) {
      if (type === S_IFDIR) throw syntax("Directories can't be hardlinked");
      // Only PAYLOAD is used; everything else is ignored (spec composefs-v1 §4.5 item 3).
      const target = this.optional(F_PAYLOAD, 'PAYLOAD');
      this.tree.markHardlink(entry, lineNo, target === null ? null : truncateAtNul(target));
      return;
    }
    this.inode(isRoot ? this.tree.setRoot(mode) : this.tree.setInode(entry, mode), type, xattrStart);
  }

  /** Fills inode i from the current (non-hardlink) line. */
  private inode(i: number, type: number, xattrStart: number): void {
    const f = this.flat;
    let size = this.bigAt(F_SIZE, 'size');
    f.nlink[i] = this.u32At(F_NLINK, 'nlink');
    let inline = false;
    const uidPlain = this.plain(F_UID);
    f.uid[i] = uidPlain >= 0 && uidPlain <= 0xffffffff ? uidPlain : Number(this.bigAt(F_UID, 'uid') & U32);
    // spec composefs-v1 §4.4: C reports a bad GID/RDEV only when UID parsed as 0 (as u64: a UID of
    // 2^32 is not 0 even though its u32 value is).
    const uidIsZero = uidPlain === 0 || (uidPlain < 0 && this.bigAt(F_UID, 'uid') === 0n);
    const gidPlain = this.plain(F_GID);
    f.gid[i] =
      gidPlain >= 0 && gidPlain <= 0xffffffff
        ? gidPlain
        : Number(this.quirkNumber(this.field(F_GID), 'gid', uidIsZero) & U32);
    const rdevPlain = this.plain(F_RDEV);
    const rdev = rdevPlain === 0 ? 0n : this.quirkNumber(this.field(F_RDEV), 'rdev', uidIsZero);
    if (!this.plainMtime(i)) {
      const [sec, nsec] = this.mtime(this.field(F_MTIME));
      f.mtimeSec[i] = sec;
      f.mtimeNsec[i] = nsec;
    }
    const payloadLen = this.optionalLength(F_PAYLOAD, 'PAYLOAD');
    const contentRaw = this.isDash(F_CONTENT) ? null : this.content();
    const hasDigest = !this.isDash(F_DIGEST);

    // spec composefs-v1 §4.5 item 6: rdev is kept (as u32) for devices only.
    if (type === S_IFCHR || type === S_IFBLK) f.rdev[i] = rdev & U32;
    else if (this.strict && rdev !== 0n) throw syntax('Invalid rdev for a file that is not a device');

    // spec composefs-v1 §4.5 item 8: the content length must equal SIZE, for every type.
    if (contentRaw !== null && BigInt(contentRaw.length) !== size) throw syntax('Invalid content size');

    if (type === S_IFLNK) {
      if (payloadLen <= 0 || payloadLen >= MAX_PATH) throw syntax('Invalid symlink');
      if (this.strict && (size !== BigInt(payloadLen) || (contentRaw !== null && contentRaw.length > 0))) {
        throw syntax('Invalid symlink size or content');
      }
      this.setPayload(i);
      size = BigInt(payloadLen);
    } else {
      if (payloadLen >= 0) {
        if (payloadLen >= MAX_PATH) throw syntax('Invalid payload length');
        this.setPayload(i);
      }
      if (contentRaw !== null) {
        if (contentRaw.length > MAX_CONTENT) {
          throw syntax(`Inline content size ${contentRaw.length} exceeds maximum ${MAX_CONTENT}`);
        }
        if (contentRaw.length > 0) {
          f.setContent(i, contentRaw);
          inline = true;
          size = BigInt(contentRaw.length);
        }
      }
    }
    f.size[i] = size;

    if (hasDigest) f.setDigest(i, this.decodeDigest());

    // mkcomposefs fails at write time (EFBIG) for these; reject them here, where the line is known.
    if (type === S_IFREG && !inline && size > MAX_EXTERNAL_SIZE) {
      if (size >= C_CHUNK_OVERFLOW) {
        throw syntax(
          `File too large: SIZE ${size} (2^64 − ${(1n << 64n) - size}) overflows the chunk ` +
            'count; C mkcomposefs 1.0.8 writes a corrupt image for it, refused (see docs/composefs-decisions.md)',
        );
      }
      throw syntax(`File too large: ${size} bytes needs more than 1024 chunks`);
    }

    if (xattrStart >= 0 && xattrStart < this.end) this.xattrs(this.cur.subarray(xattrStart, this.end));
  }

  /** PAYLOAD into the tree: in place when it has no escapes (no NUL is possible then). */
  private setPayload(i: number): void {
    if (this.hasEscape(F_PAYLOAD)) {
      this.flat.setPayload(i, truncateAtNul(unescapeField(this.field(F_PAYLOAD), 'PAYLOAD')));
      return;
    }
    const start = this.start(F_PAYLOAD);
    const end = this.stop(F_PAYLOAD);
    this.flat.payloadOff[i] = this.flat.bytes.put(this.cur, start, end);
    this.flat.payloadLen[i] = end - start;
  }

  private content(): Buffer {
    return this.hasEscape(F_CONTENT)
      ? unescapeField(this.field(F_CONTENT), 'CONTENT')
      : this.field(F_CONTENT);
  }

  /** DIGEST into this.digest (a view of it is returned); spec composefs-v1 §4.5 item 11. */
  private decodeDigest(): Buffer {
    const text = this.hasEscape(F_DIGEST)
      ? truncateAtNul(unescapeField(this.field(F_DIGEST), 'DIGEST'))
      : this.field(F_DIGEST);
    return decodeDigest(text, this.digestBytes, this.digest);
  }

  finish(): FlatTree {
    if (!this.sawLine) throw syntax('No files in dump file');
    return this.tree.finish();
  }

  private plain(i: number): number {
    return plainDecimalAt(this.cur, this.start(i), this.stop(i));
  }

  private bigAt(i: number, what: string): bigint {
    const v = this.plain(i);
    return v >= 0 ? BigInt(v) : this.number(this.field(i), what);
  }

  private u32At(i: number, what: string): number {
    const v = this.plain(i);
    return v >= 0 && v <= 0xffffffff ? v : Number(this.number(this.field(i), what) & U32);
  }

  /** MODE in octal (strtoull base 8, truncated to u32) from cur[start, end). */
  private mode(start: number, end: number): number {
    let v = 0;
    let i = start;
    // end <= cur.length: the bounds come from splitBoundsAt on this line.
    for (; i < end && i - start < 11; i++) {
      const d = this.cur[i]! - 0x30;
      if (d < 0 || d > 7) break;
      v = v * 8 + d;
    }
    if (i === end && end > start) return v >>> 0;
    const text = this.cur.subarray(start, end);
    const big = parseStrtoull(text, 8);
    if (big === null) throw syntax(`Invalid mode ${text.toString('latin1')}`);
    return Number(big & U32);
  }

  private number(field: Buffer, what: string): bigint {
    const plain = parsePlainDecimal(field);
    if (plain >= 0) return BigInt(plain);
    const v = parseStrtoull(field, 10);
    if (v === null) throw syntax(`Invalid ${what} ${JSON.stringify(field.toString('latin1'))}`);
    return v;
  }

  /** A field C stores as u32: the strtoull value truncated (Number, no BigInt on the common path). */
  private u32(field: Buffer, what: string): number {
    const plain = parsePlainDecimal(field);
    if (plain >= 0 && plain <= 0xffffffff) return plain;
    return Number(this.number(field, what) & U32);
  }

  private quirkNumber(field: Buffer, what: string, uidIsZero: boolean): bigint {
    const plain = parsePlainDecimal(field);
    if (plain >= 0) return BigInt(plain);
    const v = parseStrtoull(field, 10);
    if (v !== null) return v;
    if (uidIsZero) throw syntax(`Invalid ${what} ${JSON.stringify(field.toString('latin1'))}`);
    return 0n;
  }

  /**
   * spec composefs-v1 §4.4: `SEC.NSEC`, split at the first `.`, both parts required. Returns the
   * seconds as i64 and the nanoseconds as u32 (both as C stores them).
   */
  private mtime(field: Buffer): [bigint, number] {
    const dot = field.indexOf(0x2e);
    if (dot < 0) throw syntax(`Invalid mtime ${JSON.stringify(field.toString('latin1'))}`);
    const secText = field.subarray(0, dot);
    const nsecText = field.subarray(dot + 1);
    const secPlain = parsePlainDecimal(secText);
    const nsecPlain = parsePlainDecimal(nsecText);
    const sec = secPlain >= 0 ? BigInt(secPlain) : parseStrtoull(secText, 10);
    const nsec = nsecPlain >= 0 ? BigInt(nsecPlain) : parseStrtoull(nsecText, 10);
    if (sec === null || nsec === null)
      throw syntax(`Invalid mtime ${JSON.stringify(field.toString('latin1'))}`);
    return [
      BigInt.asIntN(64, sec),
      nsecPlain >= 0 && nsecPlain <= 0xffffffff ? nsecPlain : Number(nsec & U32),
    ];
  }

  /** spec composefs-v1 §4.6: tokens `KEY=VALUE` at single spaces, with the 32767-byte budget. */
  private xattrs(area: Buffer): void {
    if (area.length > MAX_XATTR_AREA) throw syntax('Too many xattrs');
    // C's u64 counter as a signed Number: steps are < 2^17, so a negative value is a wrapped u64.
    let budget = 0;
    let pos = 0;
    const xs = this.xs;
    xs.length = 0;
    while (pos <= area.length) {
      let sp = area.indexOf(0x20, pos);
      if (sp < 0) sp = area.length;
      let eq = pos;
      while (eq < sp && area[eq] !== 0x3d) eq++;
      if (eq === sp) throw syntax('Missing = in xattr');
      const key = truncateAtNul(this.text(area, pos, eq, 'xattr key'));
      const value = this.text(area, eq + 1, sp, 'xattr value');
      pos = sp + 1;
      if (key.length === 0 || key.length > MAX_NAME) throw syntax("Can't set xattr: invalid key length");
      if (value.length > MAX_XATTR_VALUE) throw syntax("Can't set xattr: value too long");
      const old = xs.find((x) => x.key.equals(key));
      if (old !== undefined) {
        xs.splice(xs.indexOf(old), 1);
        budget = xs.length > 0 ? budget - (7 + old.key.length + old.value.length) : 0;
      }
      const next = budget + 7 + key.length + value.length + (xs.length === 0 ? 12 : 0);
      if (next < 0 || next > XATTR_BUDGET) throw syntax("Can't set xattr: too much xattr data");
      budget = next;
      xs.push({ key, value });
    }
    for (const x of xs) this.flat.addXattr(x.key, x.value);
  }

  /**
   * Unescaped bytes of area[start, end). Short escape-free texts are interned (one Buffer per
   * distinct text; nothing downstream mutates xattr bytes), which saves most allocations: the
   * same SELinux label or user xattr sits on thousands of entries.
   */
  private text(area: Buffer, start: number, end: number, what: string): Buffer {
    const backslash = area.indexOf(0x5c, start);
    if (end - start > 256 || (backslash >= 0 && backslash < end)) {
      return unescapeField(area.subarray(start, end), what);
    }
    const k = area.toString('latin1', start, end);
    let b = this.interned.get(k);
    if (b === undefined) {
      b = Buffer.from(k, 'latin1');
      if (this.interned.size < 1 << 16) this.interned.set(k, b);
    }
    return b;
  }
}

/**
 * spec composefs-v1 §4.5 item 11: pairs of hex digits into 32 bytes, stopping at the first invalid
 * character. C leaves the rest uninitialised; here it is zero (only 64 hex digits are well defined).
 * Extra digits are ignored, as C does. For 64-byte (SHA-512) digests, which C cannot read, a short
 * digest is refused instead: zero-filling half a SHA-512 digest would name an object that is not there.
 */
function decodeDigest(text: Buffer, bytes: 32 | 64, into: Buffer): Buffer {
  const out = into.subarray(0, bytes).fill(0);
  let i = 0;
  for (; i < bytes && 2 * i + 1 < text.length; i++) {
    const hi = hexDigit(text[2 * i]);
    const lo = hexDigit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) break;
    out[i] = (hi << 4) | lo;
  }
  if (bytes === 64 && i < 64) {
    throw syntax(`Invalid digest: ${2 * i} hex digits, a SHA-512 fs-verity digest has 128`);
  }
  return out;
}

/** The value of a hex digit; -1 for anything else, including undefined (past the end). */
function hexDigit(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
