/**
 * On-disk constants and struct offsets of composefs EROFS images, shared by the writer and the reader.
 * Little-endian everywhere. Offsets are relative to the start of each structure unless named ABS_*.
 * spec composefs-v2 §4.6–§4.9, spec composefs-v1 §11.
 */

export const BLOCK_SIZE = 4096;
export const BLOCK_BITS = 12;

// ---- composefs header (offset 0, 32 bytes, zeros up to 1024) — spec composefs-v1 §11.1 ----
export const COMPOSEFS_MAGIC = 0xd078629a;
export const COMPOSEFS_HEADER_VERSION = 1;
/** Header flag: some inode carries a POSIX ACL xattr (V1 only). */
export const COMPOSEFS_FLAG_HAS_ACL = 1;
export const HDR_MAGIC = 0;
export const HDR_VERSION = 4;
export const HDR_FLAGS = 8;
export const HDR_COMPOSEFS_VERSION = 12;
export const COMPOSEFS_HEADER_SIZE = 32;

// ---- EROFS superblock (absolute offset 1024, 128 bytes) — spec composefs-v2 §4.6 step 2 ----
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 128;
export const EROFS_MAGIC = 0xe0f5e1e2;
/** MTIME | XATTR_FILTER */
export const FEATURE_COMPAT = 6;
export const SB_MAGIC = 0;
export const SB_CHECKSUM = 4;
export const SB_FEATURE_COMPAT = 8;
export const SB_BLKSZBITS = 12;
export const SB_EXTSLOTS = 13;
export const SB_ROOT_NID = 14; // u16
export const SB_INOS = 16; // u64
export const SB_BUILD_TIME = 24; // u64
export const SB_BUILD_TIME_NSEC = 32; // u32
export const SB_BLOCKS = 36; // u32
export const SB_META_BLKADDR = 40; // u32
export const SB_XATTR_BLKADDR = 44; // u32
export const SB_UUID = 48; // 16 bytes
export const SB_VOLUME_NAME = 64; // 16 bytes
export const SB_FEATURE_INCOMPAT = 80; // u32

/** The inode table starts right after the superblock. nid = absolute byte offset / 32 (meta_blkaddr 0). */
export const INODE_TABLE_START = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE; // 1152
export const INODE_SLOT_SIZE = 32;

// ---- inodes — spec composefs-v1 §11.3 ----
export const COMPACT_INODE_SIZE = 32;
export const EXTENDED_INODE_SIZE = 64;

/** i_format bit 0: inode version. */
export const INODE_VERSION_COMPACT = 0;
export const INODE_VERSION_EXTENDED = 1;
/** i_format bits 1–3: data layout. */
export const LAYOUT_FLAT_PLAIN = 0;
export const LAYOUT_FLAT_INLINE = 2;
export const LAYOUT_CHUNK_BASED = 4;

export function inodeFormat(layout: number, extended: boolean): number {
  return (layout << 1) | (extended ? INODE_VERSION_EXTENDED : INODE_VERSION_COMPACT);
}

// Fields common to both inode versions.
export const I_FORMAT = 0; // u16
export const I_XATTR_ICOUNT = 2; // u16
export const I_MODE = 4; // u16

// Compact inode (32 bytes).
export const IC_NLINK = 6; // u16
export const IC_SIZE = 8; // u32
export const IC_U = 16; // u32
export const IC_INO = 20; // u32
export const IC_UID = 24; // u16
export const IC_GID = 26; // u16

// Extended inode (64 bytes).
export const IE_SIZE = 8; // u64
export const IE_U = 16; // u32
export const IE_INO = 20; // u32
export const IE_UID = 24; // u32
export const IE_GID = 28; // u32
export const IE_MTIME = 32; // u64
export const IE_MTIME_NSEC = 40; // u32
export const IE_NLINK = 44; // u32

/** Chunk-based i_u: low 16 bits = chunk format = chunkbits − 12 (spec composefs-v1 §11.3). */
export const CHUNK_FORMAT_BLKBITS_MASK = 0x1f;
/** A null chunk address in a chunk-based inode's block map. */
export const NULL_CHUNK_ADDR = 0xffffffff;
export const CHUNK_INDEX_SIZE = 4;

// ---- xattrs — spec composefs-v2 §4.3, §4.8; composefs-v1 §7 ----
/** The ibody header: name_filter u32 (= NOT of the filter bits), shared_count u8, 7 zero bytes. */
export const XATTR_IBODY_HEADER_SIZE = 12;
export const XH_NAME_FILTER = 0;
export const XH_SHARED_COUNT = 4;
/** An xattr entry: name_len u8, name_index u8, value_size u16, then suffix, value, pad to 4. */
export const XATTR_ENTRY_HEADER_SIZE = 4;
export const XE_NAME_LEN = 0;
export const XE_NAME_INDEX = 1;
export const XE_VALUE_SIZE = 2;
/** Name-filter bit = xxh32(suffix, seed = XATTR_FILTER_SEED + prefix index) mod 32. */
export const XATTR_FILTER_SEED = 0x25bbe08f;

/**
 * Prefix index → prefix, as readers know it (index 5 `lustre.` included). The V1 (C) writer never uses
 * index 5; the V2 writer does. spec composefs-v2 §4.3, composefs-v1 §7.1.
 */
export const XATTR_PREFIXES: readonly string[] = [
  '',
  'user.',
  'system.posix_acl_access',
  'system.posix_acl_default',
  'trusted.',
  'lustre.',
  'security.',
];

/** i_xattr_icount for an xattr body of `bodySize` bytes (0 when there is no body). */
export function xattrIcount(bodySize: number): number {
  return bodySize === 0 ? 0 : (bodySize - XATTR_IBODY_HEADER_SIZE) / 4 + 1;
}

/** Xattr body size from i_xattr_icount (inverse of xattrIcount). */
export function xattrBodySize(icount: number): number {
  return icount === 0 ? 0 : XATTR_IBODY_HEADER_SIZE + 4 * (icount - 1);
}

// ---- directory entries — spec composefs-v2 §4.9 ----
export const DIRENT_SIZE = 12;
export const DE_NID = 0; // u64
export const DE_NAMEOFF = 8; // u16
export const DE_FILE_TYPE = 10; // u8

export const FT_UNKNOWN = 0;
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;

// ---- overlayfs xattrs written by composefs ----
export const OVERLAY_PREFIX = 'trusted.overlay.';
export const OVERLAY_ESCAPED_PREFIX = 'trusted.overlay.overlay.';
export const XATTR_METACOPY = 'trusted.overlay.metacopy';
export const XATTR_REDIRECT = 'trusted.overlay.redirect';
export const XATTR_OPAQUE = 'trusted.overlay.opaque';
