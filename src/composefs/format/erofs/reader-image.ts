/**
 * Bounds-checked decoding of the structures of a composefs EROFS image held in memory: composefs
 * header, superblock, inodes, xattr bodies, shared xattrs and dirent chunks (spec composefs-v1 §11,
 * §12.1; composefs-v2 §4.6–§4.9). Every offset is checked; every failure is OdhError('FORMAT')
 * with the offset.
 */
import { OdhError } from '../../../util/errors.js';
import { S_IFMT } from '../tree.js';
import {
  BLOCK_SIZE,
  COMPACT_INODE_SIZE,
  COMPOSEFS_HEADER_VERSION,
  COMPOSEFS_MAGIC,
  DIRENT_SIZE,
  EROFS_MAGIC,
  EXTENDED_INODE_SIZE,
  LAYOUT_CHUNK_BASED,
  LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN,
  SUPERBLOCK_OFFSET,
  XATTR_ENTRY_HEADER_SIZE,
  XATTR_IBODY_HEADER_SIZE,
  XATTR_PREFIXES,
  xattrBodySize,
} from './format.js';

export interface ImageHeader {
  /** composefs header field `composefs_version` (0/1 for C, 2 for composefs-rs V2). */
  composefsVersion: number;
  flags: number;
  rootNid: number;
  inos: bigint;
  buildTime: bigint;
  buildTimeNsec: number;
  blocks: number;
  metaBlkaddr: number;
  xattrBlkaddr: number;
}

export interface RawInode {
  nid: number;
  offset: number;
  compact: boolean;
  layout: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: bigint;
  /** i_u: block address, rdev or chunk format. */
  u: number;
  ino: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  /** Absolute start and size of the xattr body. */
  xattrStart: number;
  xattrSize: number;
  /** Absolute start of the inline (tail) data. */
  inlineStart: number;
}

export interface RawXattr {
  key: Buffer;
  value: Buffer;
  /** Absolute offset just after the value (the C redirect quirk reads past it, spec v1 §12.1). */
  valueEnd: number;
}

export interface RawDirent {
  name: Buffer;
  nid: bigint;
  fileType: number;
}

const PREFIX_BYTES = XATTR_PREFIXES.map((p) => Buffer.from(p, 'latin1'));

export class ImageView {
  constructor(
    readonly bytes: Buffer,
    readonly file?: string,
  ) {}

  fail(message: string, offset: number | bigint): OdhError {
    return new OdhError('FORMAT', message, { file: this.file, offset });
  }

  /** Throws unless [offset, offset+length) lies inside the image. */
  check(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.bytes.length) {
      throw this.fail(`${what} (${length} bytes) lies outside the ${this.bytes.length}-byte image`, offset);
    }
  }

  slice(offset: number, length: number, what: string): Buffer {
    this.check(offset, length, what);
    return this.bytes.subarray(offset, offset + length);
  }

  /** spec composefs-v1 §12.1 step 1 and §11.1–11.2. */
  header(): ImageHeader {
    const b = this.bytes;
    if (b.length < BLOCK_SIZE) throw this.fail(`image of ${b.length} bytes is shorter than one block`, 0);
    if (b.readUInt32LE(0) !== COMPOSEFS_MAGIC) throw this.fail('bad composefs magic', 0);
    if (b.readUInt32LE(4) !== COMPOSEFS_HEADER_VERSION)
      throw this.fail(`unsupported composefs header version ${b.readUInt32LE(4)}`, 4);
    const sb = SUPERBLOCK_OFFSET;
    if (b.readUInt32LE(sb) !== EROFS_MAGIC) throw this.fail('bad EROFS superblock magic', sb);
    if (b[sb + 12] !== 12) throw this.fail(`unsupported EROFS block size 2^${b[sb + 12]}`, sb + 12);
    return {
      composefsVersion: b.readUInt32LE(12),
      flags: b.readUInt32LE(8),
      rootNid: b.readUInt16LE(sb + 14),
      inos: b.readBigUInt64LE(sb + 16),
      buildTime: b.readBigInt64LE(sb + 24),
      buildTimeNsec: b.readUInt32LE(sb + 32),
      blocks: b.readUInt32LE(sb + 36),
      metaBlkaddr: b.readUInt32LE(sb + 40),
      xattrBlkaddr: b.readUInt32LE(sb + 44),
    };
  }

  /** Decodes the inode at `metaBlkaddr·4096 + 32·nid` (spec composefs-v1 §11.3). */
  inode(hdr: ImageHeader, nid: bigint): RawInode {
    const off = BigInt(hdr.metaBlkaddr) * BigInt(BLOCK_SIZE) + 32n * nid;
    if (off + BigInt(COMPACT_INODE_SIZE) > BigInt(this.bytes.length)) {
      throw this.fail(`inode nid ${nid} lies outside the image`, off);
    }
    const o = Number(off);
    const b = this.bytes;
    const format = b.readUInt16LE(o);
    const compact = (format & 1) === 0;
    const layout = (format >> 1) & 7;
    if (format >> 4 !== 0) throw this.fail(`unsupported inode format 0x${format.toString(16)}`, o);
    if (layout !== LAYOUT_FLAT_PLAIN && layout !== LAYOUT_FLAT_INLINE && layout !== LAYOUT_CHUNK_BASED) {
      throw this.fail(`unsupported data layout ${layout}`, o);
    }
    const isz = compact ? COMPACT_INODE_SIZE : EXTENDED_INODE_SIZE;
    this.check(o, isz, `inode nid ${nid}`);
    const xattrSize = xattrBodySize(b.readUInt16LE(o + 2));
    this.check(o + isz, xattrSize, `xattr body of inode nid ${nid}`);
    const raw: RawInode = {
      nid: Number(nid),
      offset: o,
      compact,
      layout,
      mode: b.readUInt16LE(o + 4),
      nlink: compact ? b.readUInt16LE(o + 6) : b.readUInt32LE(o + 44),
      uid: compact ? b.readUInt16LE(o + 24) : b.readUInt32LE(o + 24),
      gid: compact ? b.readUInt16LE(o + 26) : b.readUInt32LE(o + 28),
      size: compact ? BigInt(b.readUInt32LE(o + 8)) : b.readBigUInt64LE(o + 8),
      u: b.readUInt32LE(o + 16),
      ino: b.readUInt32LE(o + 20),
      // Compact inodes take the superblock build time (spec composefs-v1 §8, §12.1 step 5).
      mtimeSec: compact ? hdr.buildTime : b.readBigInt64LE(o + 32),
      mtimeNsec: compact ? hdr.buildTimeNsec : b.readUInt32LE(o + 40),
      xattrStart: o + isz,
      xattrSize,
      inlineStart: o + isz + xattrSize,
    };
    if ((raw.mode & S_IFMT) === 0) throw this.fail(`inode nid ${nid} has no file type`, o + 4);
    return raw;
  }

  /** One xattr entry at an absolute offset, bounded by `end` (spec composefs-v2 §4.8). */
  xattrEntry(at: number, end: number): { xattr: RawXattr; next: number } {
    if (at + XATTR_ENTRY_HEADER_SIZE > end) throw this.fail('truncated xattr entry', at);
    const b = this.bytes;
    const nameLen = b.readUInt8(at);
    const index = b.readUInt8(at + 1);
    const valueSize = b.readUInt16LE(at + 2);
    const total = XATTR_ENTRY_HEADER_SIZE + nameLen + valueSize;
    if (at + total > end) throw this.fail('xattr entry runs past its area', at);
    const prefix = PREFIX_BYTES[index];
    if (prefix === undefined) throw this.fail(`unknown xattr prefix index ${index}`, at + 1);
    const nameStart = at + XATTR_ENTRY_HEADER_SIZE;
    const key = Buffer.concat([prefix, b.subarray(nameStart, nameStart + nameLen)]);
    const valueStart = nameStart + nameLen;
    const value = Buffer.from(b.subarray(valueStart, valueStart + valueSize));
    return { xattr: { key, value, valueEnd: valueStart + valueSize }, next: at + ((total + 3) & ~3) };
  }

  /** Inline entries first, then shared ones, as the C reader lists them (spec composefs-v1 §12.1 step 6). */
  xattrs(hdr: ImageHeader, ino: RawInode, shared: Map<number, RawXattr>): RawXattr[] {
    if (ino.xattrSize === 0) return [];
    const start = ino.xattrStart;
    const end = start + ino.xattrSize;
    if (ino.xattrSize < XATTR_IBODY_HEADER_SIZE) throw this.fail('xattr body shorter than its header', start);
    const sharedCount = this.bytes.readUInt8(start + 4);
    let pos = start + XATTR_IBODY_HEADER_SIZE + 4 * sharedCount;
    if (pos > end) throw this.fail(`${sharedCount} shared xattr ids do not fit the xattr body`, start);
    const out: RawXattr[] = [];
    while (end - pos >= XATTR_ENTRY_HEADER_SIZE) {
      const { xattr, next } = this.xattrEntry(pos, end);
      out.push(xattr);
      pos = next;
    }
    for (let i = 0; i < sharedCount; i++) {
      const id = this.bytes.readUInt32LE(start + XATTR_IBODY_HEADER_SIZE + 4 * i);
      let x = shared.get(id);
      if (x === undefined) {
        const at = hdr.xattrBlkaddr * BLOCK_SIZE + 4 * id;
        this.check(at, XATTR_ENTRY_HEADER_SIZE, `shared xattr id ${id}`);
        x = this.xattrEntry(at, this.bytes.length).xattr;
        shared.set(id, x);
      }
      out.push(x);
    }
    return out;
  }

  /**
   * The data of an uncompressed inode as its chunks: full blocks at `i_u`, then (FLAT_INLINE) the
   * tail after the xattr body. `limit` bounds the size callers accept before anything is read.
   */
  data(ino: RawInode, limit: number, what: string): Buffer[] {
    if (ino.layout === LAYOUT_CHUNK_BASED) throw this.fail(`${what} cannot be chunk-based`, ino.offset);
    if (ino.size > BigInt(limit))
      throw this.fail(`${what} of ${ino.size} bytes exceeds ${limit}`, ino.offset);
    const size = Number(ino.size);
    const inline = ino.layout === LAYOUT_FLAT_INLINE;
    const tail = inline ? size % BLOCK_SIZE : 0;
    const blocked = size - tail;
    const out: Buffer[] = [];
    if (blocked > 0) {
      const start = ino.u * BLOCK_SIZE;
      this.check(start, blocked, `data blocks of ${what}`);
      for (let off = 0; off < blocked; off += BLOCK_SIZE) {
        out.push(this.bytes.subarray(start + off, start + Math.min(blocked, off + BLOCK_SIZE)));
      }
    }
    if (tail > 0) out.push(this.slice(ino.inlineStart, tail, `inline data of ${what}`));
    return out;
  }

  /**
   * Dirents of one chunk (spec composefs-v1 §12.1 step 2): count = nameoff[0]/12; a name ends at
   * the next nameoff, the last one at the first NUL or the chunk end.
   */
  dirents(chunk: Buffer, chunkOffset: number): RawDirent[] {
    if (chunk.length < DIRENT_SIZE) throw this.fail('directory chunk shorter than one dirent', chunkOffset);
    const first = chunk.readUInt16LE(8);
    const count = Math.floor(first / DIRENT_SIZE);
    if (count === 0 || first > chunk.length)
      throw this.fail(`bad first name offset ${first}`, chunkOffset + 8);
    const out: RawDirent[] = [];
    for (let i = 0; i < count; i++) {
      const at = i * DIRENT_SIZE;
      const nameoff = chunk.readUInt16LE(at + 8);
      let nameEnd: number;
      if (i + 1 < count) {
        nameEnd = chunk.readUInt16LE(at + DIRENT_SIZE + 8);
      } else {
        const z = chunk.indexOf(0, nameoff);
        nameEnd = z < 0 ? chunk.length : z;
      }
      if (nameoff < first || nameEnd <= nameoff || nameEnd > chunk.length || nameEnd - nameoff > 255) {
        throw this.fail(`bad dirent name bounds ${nameoff}..${nameEnd}`, chunkOffset + at + 8);
      }
      out.push({
        name: Buffer.from(chunk.subarray(nameoff, nameEnd)),
        nid: chunk.readBigUInt64LE(at),
        fileType: chunk.readUInt8(at + 10),
      });
    }
    return out;
  }
}
