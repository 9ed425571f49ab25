/**
 * Dumpfile → tree with the rules of composefs-rs (`dumpfile_parse.rs` and dumpfile → tree,
 * spec composefs-v2 §7.4): canonical absolute paths, inline content ≤ 512 bytes, symlink targets
 * ≤ 1024 bytes, sockets and negative mtimes rejected, mode masked to 0o7777, nanoseconds dropped,
 * NLINK ignored and recomputed, the first DFS occurrence of a hardlinked leaf is canonical.
 */
import { isUtf8 } from 'node:buffer';

import {
  linkCounts,
  newInode,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type Inode,
} from '../format/tree.js';
import { unescapeField } from './escape.js';
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
  FIELD_NAMES,
  parseRustUnsigned,
  splitLine,
  syntax,
} from './fields.js';
import { isValidFileType, PathTree, type ParseNode } from './path-tree.js';

const U32_MAX = 0xffffffffn;
const U64_MAX = (1n << 64n) - 1n;
const PATH_MAX = 4096;
/** spec composefs-v2 §7.4 (`MAX_INLINE_CONTENT`). */
export const MAX_INLINE_CONTENT = 512;
/** spec composefs-v2 §2 (`SYMLINK_MAX`). */
export const SYMLINK_MAX = 1024;
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65535;
const XATTR_LIST_MAX = 65535;

function optional(field: Buffer): Buffer | null {
  return field.length === 1 && field[0] === 0x2d ? null : field;
}

/** Unescapes a path-like field: no NUL, 1..4096 bytes. */
function unescapePath(field: Buffer, what: string): Buffer {
  const p = unescapeField(field, what);
  if (p.indexOf(0) >= 0) throw syntax(`Invalid embedded NUL in ${what}`);
  if (p.length === 0) throw syntax(`Invalid empty ${what}`);
  if (p.length > PATH_MAX) throw syntax(`${what} is too long: ${p.length} bytes`);
  return p;
}

/** Absolute, no empty, `.` or `..` components, no trailing `/` (except the root itself). */
function canonicalPath(field: Buffer, what: string): Buffer {
  const p = unescapePath(field, what);
  if (p[0] !== 0x2f) throw syntax(`Invalid non-absolute ${what}`);
  if (p.length === 1) return p;
  for (const c of p.subarray(1).toString('latin1').split('/')) {
    if (c === '') throw syntax(`Empty component (// or trailing /) in ${what}`);
    if (c === '.' || c === '..') throw syntax(`Invalid component ${c} in ${what}`);
  }
  return p;
}

function num(field: Buffer, what: string, max: bigint, radix: 8 | 10 = 10): bigint {
  const v = parseRustUnsigned(field, max, radix);
  if (v === null) throw syntax(`Invalid ${what} ${JSON.stringify(field.toString('latin1'))}`);
  return v;
}

function decodeHexDigest(text: Buffer): Buffer {
  const s = text.toString('latin1');
  if (!/^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/.test(s)) throw syntax('Invalid fs-verity digest');
  return Buffer.from(s, 'hex');
}

/** The mode field: `@` before the octal mode marks a hardlink line (spec composefs-v2 §7.4). */
function parseMode(field: Buffer): { mode: number; type: number; isHardlink: boolean } {
  const at = field.indexOf(0x40);
  const mode = Number(num(at >= 0 ? field.subarray(at + 1) : field, 'mode', U32_MAX, 8));
  if (!isValidFileType(mode)) throw syntax(`Unhandled file type from raw mode: ${mode}`);
  return { mode, type: mode & S_IFMT, isHardlink: at >= 0 };
}

/** `SEC.NSEC`: the seconds (nanoseconds are checked, then dropped: spec composefs-v2 §7.4). */
function parseMtimeSec(field: Buffer): bigint {
  const dot = field.indexOf(0x2e);
  if (dot < 0) throw syntax('Missing . in mtime');
  const sec = num(field.subarray(0, dot), 'mtime', U64_MAX);
  const nsec = num(field.subarray(dot + 1), 'mtime', U64_MAX);
  if (sec > (1n << 63n) - 1n) throw syntax('mtime seconds out of range');
  if (nsec >= 1_000_000_000n) throw syntax('mtime nanoseconds out of range');
  return sec;
}

/** The fields that say what an inode holds, as read from its line. */
interface DataFields {
  size: bigint;
  rdev: bigint;
  payload: Buffer | null;
  content: Buffer | null;
  digest: Buffer | null;
}

function regularData(inode: Inode, f: DataFields): void {
  if (f.payload !== null) {
    // External file: a digest is required to build a tree.
    inode.payload = unescapePath(f.payload, 'payload');
    if (f.digest === null) throw syntax('External file without fs-verity digest');
    inode.digest = decodeHexDigest(f.digest);
    inode.size = f.size;
    return;
  }
  if (f.digest !== null) throw syntax('Inline file cannot have fsverity digest');
  const data = f.content === null ? Buffer.alloc(0) : unescapeField(f.content, 'content');
  if (data.length > MAX_INLINE_CONTENT) {
    throw syntax(`Inline content of ${data.length} bytes exceeds maximum ${MAX_INLINE_CONTENT}`);
  }
  inode.content = data.length > 0 ? data : null;
  inode.size = BigInt(data.length);
}

/** Fills in what the inode of `type` holds: file data, symlink target or device number. */
function setData(inode: Inode, type: number, f: DataFields): void {
  if (type !== S_IFREG && (f.content !== null || f.digest !== null))
    throw syntax('entry cannot have content or digest');
  if (type !== S_IFCHR && type !== S_IFBLK && f.rdev !== 0n)
    throw syntax(`entry cannot have device (rdev) ${f.rdev}`);
  switch (type) {
    case S_IFREG:
      regularData(inode, f);
      break;
    case S_IFLNK: {
      if (f.payload === null) throw syntax('Missing payload');
      const target = unescapePath(f.payload, 'symlink target');
      if (target.length > SYMLINK_MAX) {
        throw syntax(`Symlink target length ${target.length} exceeds limit ${SYMLINK_MAX}`);
      }
      inode.payload = target;
      inode.size = BigInt(target.length);
      break;
    }
    case S_IFCHR:
    case S_IFBLK:
      inode.rdev = f.rdev;
      break;
    case S_IFSOCK:
      throw syntax('Sockets are not supported');
    default:
      break;
  }
}

export class ComposefsRsDumpfileParser {
  private readonly tree = new PathTree();

  line(bytes: Buffer, lineNo: number): void {
    if (!isUtf8(bytes)) throw syntax('Line is not valid UTF-8');
    const { fields, present, xattrArea } = splitLine(bytes);
    const missing = FIELD_NAMES[present]; // a name exactly when fewer than 11 fields were present
    if (missing !== undefined) throw syntax(`Missing ${missing.toLowerCase()}`);

    const path = canonicalPath(fields[F_PATH], 'path');
    const size = num(fields[F_SIZE], 'size', U64_MAX);
    const { mode, type, isHardlink } = parseMode(fields[F_MODE]);

    const isRoot = path.length === 1;
    if (this.tree.root === null && !isRoot) throw syntax('The first entry must be /');
    if (isRoot && (isHardlink || type !== S_IFDIR)) throw syntax('Root must be a directory');
    const node: ParseNode = isRoot ? this.tree.setRoot(lineNo) : this.tree.insert(path, lineNo, 255);
    if (isHardlink) {
      if (type === S_IFDIR) throw syntax('Invalid hardlinked directory');
      this.linkHardlink(node, optional(fields[F_PAYLOAD]));
      return;
    }

    num(fields[F_NLINK], 'nlink', U32_MAX); // parsed, then recomputed
    const uid = num(fields[F_UID], 'uid', U32_MAX);
    const gid = num(fields[F_GID], 'gid', U32_MAX);
    const rdev = num(fields[F_RDEV], 'rdev', U64_MAX);
    const mtimeSec = parseMtimeSec(fields[F_MTIME]);
    const payload = optional(fields[F_PAYLOAD]);
    const content = optional(fields[F_CONTENT]);
    const digest = optional(fields[F_DIGEST]);
    const xattrs = parseXattrs(xattrArea);

    // spec composefs-v2 §7.4: st_mode masked to 0o7777, nanoseconds dropped.
    const inode = newInode(type | (mode & 0o7777), { uid: Number(uid), gid: Number(gid), mtimeSec, xattrs });
    setData(inode, type, { size, rdev, payload, content, digest });
    node.inode = inode;
  }

  /** A hardlink line references the leaf of its target (spec composefs-v2 §7.4). */
  private linkHardlink(node: ParseNode, payload: Buffer | null): void {
    if (payload === null) throw syntax('Missing payload');
    const target = this.tree.lookup(canonicalPath(payload, 'hardlink target'));
    if (target === null || target === node) throw syntax('Hardlink target not found');
    let leaf: ParseNode = target;
    while (leaf.isHardlink && leaf.linkTo !== null) leaf = leaf.linkTo;
    if (leaf.inode === null || (leaf.inode.mode & S_IFMT) === S_IFDIR) {
      throw syntax('Hardlink target is not a leaf');
    }
    node.isHardlink = true;
    node.linkTo = leaf;
    this.tree.hardlinks.push(node);
  }

  finish(): Inode {
    if (this.tree.root === null) throw syntax('No files in dump file');
    const root = this.tree.resolve('first-dfs');
    recomputeNlink(root);
    return root;
  }
}

/** Xattr tokens `KEY=VALUE` split at the first `=`; keys without NUL; sorted by key bytes. */
function parseXattrs(area: Buffer | null): Inode['xattrs'] {
  if (area === null) return [];
  const byKey = new Map<string, { key: Buffer; value: Buffer }>();
  let total = 0;
  let pos = 0;
  while (pos <= area.length) {
    let sp = area.indexOf(0x20, pos);
    if (sp < 0) sp = area.length;
    const token = area.subarray(pos, sp);
    pos = sp + 1;
    const eq = token.indexOf(0x3d);
    if (eq < 0) throw syntax('Missing = in xattrs');
    const key = unescapeField(token.subarray(0, eq), 'xattr key');
    if (key.indexOf(0) >= 0) throw syntax('Invalid embedded NUL in xattr key');
    if (key.length > XATTR_NAME_MAX) throw syntax(`xattr name too long: ${key.length}`);
    const value = unescapeField(token.subarray(eq + 1), 'xattr value');
    if (value.length > XATTR_SIZE_MAX) throw syntax(`xattr value too long: ${value.length}`);
    total += key.length;
    if (total > XATTR_LIST_MAX) throw syntax('Too many xattrs');
    // The tree keeps one value per name (the last one).
    byKey.set(key.toString('latin1'), { key, value });
  }
  return [...byKey.values()].sort((a, b) => Buffer.compare(a.key, b.key));
}

/** NLINK as composefs-rs computes it (spec v2 §2, §4.5): the input's values are not kept. */
function recomputeNlink(root: Inode): void {
  for (const [inode, n] of linkCounts(root)) inode.nlink = n;
}
