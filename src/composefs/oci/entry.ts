/**
 * One tar entry of an OCI layer → one composefs tree item, exactly as composefs-rs
 * `tar.rs::get_entry` does it (spec composefs-v2 §3.2–§3.3, spec composefs-v1 §14.3).
 * Pure: no I/O; file contents are read by the caller (image-tree.ts).
 */
import { OdhError } from '../../util/errors.js';
import type { TarEntry } from '../../tar/entry.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, type Xattr } from '../format/tree.js';

/** The fields of a tar entry (src/tar) these rules read. */
export type OciTarEntryFields = Pick<
  TarEntry,
  | 'path'
  | 'linkpath'
  | 'typeflag'
  | 'format'
  | 'sparse'
  | 'mode'
  | 'uid'
  | 'gid'
  | 'mtime'
  | 'size'
  | 'devmajor'
  | 'devminor'
  | 'xattrs'
  | 'pax'
>;

export type OciEntryKind = 'reg' | 'hardlink' | 'symlink' | 'chr' | 'blk' | 'dir' | 'fifo';

/** spec composefs-v2 §3.2 "Entry type mapping" (by the raw typeflag byte). */
const KIND_BY_TYPEFLAG: Record<string, OciEntryKind> = {
  '0': 'reg',
  '\0': 'reg',
  '7': 'reg',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'chr',
  '4': 'blk',
  '5': 'dir',
  '6': 'fifo',
};

/** spec composefs-v2 §3.2: other typeflags and GNU sparse entries (type S or PAX sparse) are errors. */
export function entryKind(entry: Pick<TarEntry, 'typeflag' | 'sparse'>, where: string): OciEntryKind {
  if (entry.sparse)
    throw new OdhError('UNSUPPORTED', 'sparse tar entries are not supported', { path: where });
  const k = KIND_BY_TYPEFLAG[entry.typeflag];
  if (k === undefined) {
    throw new OdhError('UNSUPPORTED', `unsupported tar entry type ${JSON.stringify(entry.typeflag)}`, {
      path: where,
    });
  }
  return k;
}

/** Where an entry goes: `null` name means the root entry (spec composefs-v2 §3.3). */
export interface OciPath {
  /** Directory components from the root, never containing `.`, `..` or empty names. */
  dir: Buffer[];
  /** The file name, or null for the root entry. */
  name: Buffer | null;
}

const DOT = 0x2e;
const SLASH = 0x2f;

function isDot(c: Buffer): boolean {
  return c.length === 1 && c[0] === DOT;
}

function isDotDot(c: Buffer): boolean {
  return c.length === 2 && c[0] === DOT && c[1] === DOT;
}

/**
 * spec composefs-v2 §3.3 `make_absolute_path` + Rust `Path` semantics: leading/trailing `/`,
 * empty and `.` components are dropped; a path with no components or ending in `..` has no file
 * name (the root entry); `..` anywhere else is an error.
 */
export function ociEntryPath(raw: Buffer, display = raw.toString('latin1')): OciPath {
  const comps: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i === raw.length || raw[i] === SLASH) {
      if (i > start) {
        const c = raw.subarray(start, i);
        if (!isDot(c)) comps.push(c);
      }
      start = i + 1;
    }
  }
  const name = comps.at(-1);
  if (name === undefined || isDotDot(name)) return { dir: [], name: null };
  const dir = comps.slice(0, -1);
  if (dir.some(isDotDot)) {
    throw new OdhError('UNSAFE_PATH', "tar entry path has '..' in its directory part", { path: display });
  }
  return { dir, name };
}

/** Metadata every tree node carries (spec composefs-v2 §2 "Stat"). */
export interface OciStat {
  /** The low 16 bits of the raw tar mode (spec composefs-v2 §3.2: not masked); see `ociMode`. */
  mode16: number;
  uid: number;
  gid: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  /** Sorted by key bytes, one per key. */
  xattrs: Xattr[];
}

function toBigInt(v: number | bigint): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}

function paxValue(pax: Map<string, Buffer>, key: string): string | undefined {
  return pax.get(key)?.toString('utf8');
}

/**
 * spec composefs-v2 §3.2 (PAX mtime: integer part only, negative is an error) and spec composefs-v1
 * §14.3 (the fraction, read as 9 digits right-padded or truncated, becomes nanoseconds; an
 * unparsable fraction gives 0).
 */
export function ociMtime(entry: OciTarEntryFields, where: string): { sec: bigint; nsec: number } {
  const pax = paxValue(entry.pax, 'mtime');
  if (pax === undefined) return { sec: BigInt.asIntN(64, toBigInt(entry.mtime)), nsec: 0 };
  const dot = pax.indexOf('.');
  const whole = dot < 0 ? pax : pax.slice(0, dot);
  if (!/^\+?[0-9]+$/.test(whole) || BigInt(whole) > 0xffffffffffffffffn) {
    throw new OdhError('FORMAT', `invalid PAX mtime ${JSON.stringify(pax)}`, { path: where });
  }
  let nsec = 0;
  if (dot >= 0) {
    const frac = pax
      .slice(dot + 1)
      .slice(0, 9)
      .padEnd(9, '0');
    nsec = /^[0-9]{9}$/.test(frac) ? Number(frac) : 0;
  }
  return { sec: BigInt.asIntN(64, BigInt(whole)), nsec };
}

/** spec composefs-v2 §3.2 "Xattrs": SCHILY.xattr.* only, last one of a name wins, sorted by name bytes. */
export function ociXattrs(records: { key: Buffer; value: Buffer }[]): Xattr[] {
  const byKey = new Map<string, Xattr>();
  for (const r of records) byKey.set(r.key.toString('latin1'), { key: r.key, value: r.value });
  return [...byKey.values()].sort((a, b) => Buffer.compare(a.key, b.key));
}

/** spec composefs-v2 §3.3 "stat": uid/gid mod 2^32, raw mode, mtime as i64. */
export function ociStat(entry: OciTarEntryFields, where: string): OciStat {
  const { sec, nsec } = ociMtime(entry, where);
  return {
    mode16: Number(BigInt.asUintN(16, toBigInt(entry.mode))),
    uid: Number(BigInt.asUintN(32, toBigInt(entry.uid))),
    gid: Number(BigInt.asUintN(32, toBigInt(entry.gid))),
    mtimeSec: sec,
    mtimeNsec: nsec,
    xattrs: ociXattrs(entry.xattrs),
  };
}

/**
 * The full st_mode the writers see: composefs-rs keeps the tar mode unmasked and the writer ORs the
 * type bits into its low 16 bits (spec composefs-v2 §3.2 "Mode", §10 item 5). When the tar mode
 * carries the same type bits (old Go tar writers did) the result is the same; contradicting type
 * bits would make composefs-rs write a different file type than the entry has, which our tree
 * cannot represent, so such an entry is refused.
 */
export function ociMode(stat: OciStat, typeBits: number, where: string): number {
  const stored = stat.mode16 & S_IFMT;
  if (stored !== 0 && stored !== typeBits) {
    throw new OdhError(
      'UNSUPPORTED',
      `tar mode 0${stat.mode16.toString(8)} carries file-type bits that contradict the entry type`,
      { path: where },
    );
  }
  return (stat.mode16 & 0o7777) | typeBits;
}

export const TYPE_BITS: Record<Exclude<OciEntryKind, 'hardlink'>, number> = {
  reg: S_IFREG,
  symlink: S_IFLNK,
  chr: S_IFCHR,
  blk: S_IFBLK,
  dir: S_IFDIR,
  fifo: S_IFIFO,
};

/** spec composefs-v2 §3.3: glibc/Linux userspace makedev. */
export function makedev(major: bigint, minor: bigint): bigint {
  const M = BigInt.asUintN(64, major);
  const m = BigInt.asUintN(64, minor);
  return BigInt.asUintN(
    64,
    ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn),
  );
}

/** spec composefs-v2 §3.2: device numbers exist only with ustar or GNU magic. */
export function ociRdev(entry: OciTarEntryFields, where: string): bigint {
  if (entry.format === 'v7') {
    throw new OdhError('FORMAT', 'device entry without device numbers', { path: where });
  }
  return makedev(toBigInt(entry.devmajor), toBigInt(entry.devminor));
}

/** spec composefs-v2 §3.3: regular files larger than this are external objects. */
export const INLINE_CONTENT_MAX = 64;

/** spec composefs-v2 §3.4 step 4: whiteout names (one classifier for the whole project). */
export { whiteoutOf, type Whiteout } from '../../oci/whiteout.js';
