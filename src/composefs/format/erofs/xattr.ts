/**
 * EROFS xattr entries as composefs writes them: key → (prefix index, suffix), entry size and encoding,
 * name-filter bits and the ibody. spec composefs-v2 §4.3, §4.8; composefs-v1 §7.
 */
import {
  XATTR_ENTRY_HEADER_SIZE,
  XATTR_FILTER_SEED,
  XATTR_IBODY_HEADER_SIZE,
  XE_NAME_INDEX,
  XE_NAME_LEN,
  XE_VALUE_SIZE,
  XH_NAME_FILTER,
  XH_SHARED_COUNT,
} from './format.js';
import { xxh32 } from './xxh32.js';
import { OdhError } from '../../../util/errors.js';

/** One xattr split for the disk: `prefix[index] + suffix` is the full key. */
export interface XattrEntry {
  index: number;
  suffix: Buffer;
  value: Buffer;
}

interface Prefix {
  index: number;
  bytes: Buffer;
}

function prefixes(list: [number, string][]): Prefix[] {
  return list.map(([index, p]) => ({ index, bytes: Buffer.from(p, 'latin1') }));
}

// spec composefs-v2 §4.3: tested from index 6 down to 1 (0 matches everything).
const V2_PREFIXES = prefixes([
  [6, 'security.'],
  [5, 'lustre.'],
  [4, 'trusted.'],
  [3, 'system.posix_acl_default'],
  [2, 'system.posix_acl_access'],
  [1, 'user.'],
]);

// spec composefs-v1 §7.1: the C writer has no `lustre.` (index 5); at most one prefix can match.
const V1_PREFIXES = prefixes([
  [1, 'user.'],
  [2, 'system.posix_acl_access'],
  [3, 'system.posix_acl_default'],
  [4, 'trusted.'],
  [6, 'security.'],
]);

export type XattrDialect = 'v1' | 'v2';

/** Splits a full key into (prefix index, suffix) as the given writer does. */
export function splitXattrKey(key: Buffer, value: Buffer, dialect: XattrDialect): XattrEntry {
  for (const p of dialect === 'v1' ? V1_PREFIXES : V2_PREFIXES) {
    const n = p.bytes.length;
    if (key.length >= n && p.bytes.compare(key, 0, n) === 0) {
      return { index: p.index, suffix: key.subarray(p.bytes.length), value };
    }
  }
  return { index: 0, suffix: key, value };
}

/** Bytes an entry takes on disk, padded to 4. */
export function xattrEntrySize(e: XattrEntry): number {
  return (XATTR_ENTRY_HEADER_SIZE + e.suffix.length + e.value.length + 3) & ~3;
}

/** The name-filter bit of an entry (spec composefs-v2 §4.3). */
export function xattrFilterBit(e: XattrEntry): number {
  return xxh32(e.suffix, (XATTR_FILTER_SEED + e.index) >>> 0) % 32;
}

/** Writes one entry at `off` (the buffer is zero-filled, so padding is implicit); returns its size. */
export function encodeXattrEntry(buf: Buffer, off: number, e: XattrEntry): number {
  buf[off + XE_NAME_LEN] = e.suffix.length;
  buf[off + XE_NAME_INDEX] = e.index;
  buf.writeUInt16LE(e.value.length, off + XE_VALUE_SIZE);
  e.suffix.copy(buf, off + XATTR_ENTRY_HEADER_SIZE);
  e.value.copy(buf, off + XATTR_ENTRY_HEADER_SIZE + e.suffix.length);
  return xattrEntrySize(e);
}

/** An inode's xattr body: the filter bits of all its xattrs, shared ids, then local entries. */
export interface XattrBody {
  /** OR of 1 << bit over every xattr of the inode, shared or local; stored inverted. */
  filter: number;
  sharedIds: number[];
  local: XattrEntry[];
  /** 12 + 4·shared + Σ local entry sizes. */
  size: number;
}

export function xattrBodySizeOf(sharedCount: number, local: XattrEntry[]): number {
  let size = XATTR_IBODY_HEADER_SIZE + 4 * sharedCount;
  for (const e of local) size += xattrEntrySize(e);
  return size;
}

export function encodeXattrBody(buf: Buffer, off: number, body: XattrBody): void {
  buf.writeUInt32LE(~body.filter >>> 0, off + XH_NAME_FILTER);
  buf[off + XH_SHARED_COUNT] = body.sharedIds.length & 0xff;
  let p = off + XATTR_IBODY_HEADER_SIZE;
  for (const id of body.sharedIds) {
    buf.writeUInt32LE(id >>> 0, p);
    p += 4;
  }
  for (const e of body.local) p += encodeXattrEntry(buf, p, e);
}

/** The on-disk fields are u8 (name length) and u16 (value size): larger xattrs cannot be written. */
export function checkXattrEntry(e: XattrEntry, path: () => string): void {
  if (e.suffix.length > 255 || e.value.length > 65535) {
    throw new OdhError(
      'LIMIT',
      `xattr ${JSON.stringify(e.suffix.toString('latin1'))} too large (name ${e.suffix.length} > 255 or value ${e.value.length} > 65535 bytes)`,
      { path: path() },
    );
  }
}
