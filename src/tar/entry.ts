import type { HeaderFormat } from './header.js';

/** What a tar entry is, from its typeflag (spec composefs-v2 §3.2 table). */
export type TarEntryType =
  'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo' | 'other';

/** One xattr from a PAX `SCHILY.xattr.<name>` record. */
export interface TarXattr {
  /** The name after `SCHILY.xattr.` (UTF-8 bytes of the PAX key). */
  key: Buffer;
  value: Buffer;
}

/**
 * One tar entry with every PAX / GNU override applied. Paths are raw bytes (never decoded);
 * 64-bit quantities are BigInt.
 */
export interface TarEntry {
  type: TarEntryType;
  /** The raw typeflag byte as a one-character string ('0', '\0', '7', 'S', …). */
  typeflag: string;
  /** Magic family of the entry's own header block. */
  format: HeaderFormat;
  /** Final path: PAX `path` > GNU 'L' long name > ustar prefix + "/" + name > name. */
  path: Buffer;
  /** Final link target: PAX `linkpath` > GNU 'K' > header linkname; empty when absent. */
  linkpath: Buffer;
  /** Raw header mode, not masked (type bits a writer put there survive). */
  mode: number;
  /** PAX `uid`/`gid` override the header; may exceed 32 bits (base-256 or PAX). */
  uid: number;
  gid: number;
  uname: Buffer;
  gname: Buffer;
  /** Stored content size in bytes (PAX `size` overrides the header). */
  size: bigint;
  /** Seconds; PAX `mtime` is truncated at its '.'; base-256 values may be negative. */
  mtime: bigint;
  /** 0 when the header has no device fields (v7 magic); see `format`. */
  devmajor: number;
  devminor: number;
  /** `SCHILY.xattr.*` records in record order; a repeated name keeps its first position, last value. */
  xattrs: TarXattr[];
  /** Every record of this entry's PAX 'x' header(s), last value per key. Global 'g' records are not applied. */
  pax: Map<string, Buffer>;
  /** GNU 'S' typeflag or any PAX `GNU.sparse.*` record: content is a sparse encoding, not file bytes. */
  sparse: boolean;
  /** Offset of the first block belonging to this entry (its PAX/GNU prelude, skipped zero blocks included). */
  headerOffset: bigint;
  /** Offset of the entry's content (after its own header block and any GNU sparse extension blocks). */
  dataOffset: bigint;
}

/** Maps a typeflag to an entry type ('S' sparse files are 'file' with `sparse`). */
export function entryTypeOf(typeflag: string): TarEntryType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
    case 'S':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'chardev';
    case '4':
      return 'blockdev';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}
