/**
 * The C mkcomposefs 1.0.8 image of a planned tree (v1-plan.ts), emitted front to back: composefs
 * header, superblock, inode table (BFS order, compact inodes when possible, C tail padding), shared
 * xattr table, data blocks (spec composefs-v1 §6–§11). The emitter runs twice over the same code: a
 * measuring pass finds every offset (nids, block addresses, the shared table, the image size), then
 * the writing pass emits the bytes with those values. Each on-disk struct is declared once, here.
 */
import { S_IFBLK, S_IFCHR, S_IFLNK, S_IFMT, S_IFREG } from '../tree.js';
import { direntFileType } from './dirents.js';
import {
  BLOCK_BITS,
  BLOCK_SIZE,
  COMPACT_INODE_SIZE,
  COMPOSEFS_FLAG_HAS_ACL,
  COMPOSEFS_HEADER_SIZE,
  COMPOSEFS_HEADER_VERSION,
  COMPOSEFS_MAGIC,
  DIRENT_SIZE,
  EROFS_MAGIC,
  EXTENDED_INODE_SIZE,
  FEATURE_COMPAT,
  FT_DIR,
  INODE_SLOT_SIZE,
  LAYOUT_CHUNK_BASED,
  LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
  XATTR_IBODY_HEADER_SIZE,
  inodeFormat,
  xattrIcount,
} from './format.js';
import { ImageSink, discard } from './sink.js';
import { FLAG_EXTERNAL, FLAG_MIN_MTIME, FLAG_SIZE_U32, pairKeyOf, type V1Plan } from './v1-plan.js';
import { byte, i32, i64, u32, u64, u8 } from '../column.js';

const U32_MAX = 0xffffffffn;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
/** Dirent name markers for `.` and `..` (entry ids are ≥ 0). */
const NAME_DOT = -1;
const NAME_DOTDOT = -2;

/** Where the measuring pass put things; all indexed by BFS position. */
export interface V1Placement {
  offset: Int32Array;
  firstBlock: Int32Array;
  xattrSize: Int32Array;
  iu: Uint32Array;
  inodesEnd: number;
  imageSize: number;
}

const roundUp = (x: number, a: number): number => Math.ceil(x / a) * a;

/** The name b[off, end) sorts after `.` (byte order). */
function afterDot(b: Buffer, off: number, end: number): boolean {
  const c = byte(b, off);
  return c > 0x2e || (c === 0x2e && end - off > 1);
}

/** The name b[off, end) sorts after `..` (byte order). */
function afterDotDot(b: Buffer, off: number, end: number): boolean {
  const c = byte(b, off);
  if (c !== 0x2e) return c > 0x2e;
  if (end - off < 2) return false;
  const d = byte(b, off + 1);
  return d > 0x2e || (d === 0x2e && end - off > 2);
}

/** A placement of n inodes with every offset 0: what the measuring pass starts from. */
function emptyPlacement(n: number): V1Placement {
  return {
    offset: new Int32Array(n),
    firstBlock: new Int32Array(n),
    xattrSize: new Int32Array(n),
    iu: new Uint32Array(n),
    inodesEnd: 0,
    imageSize: 0,
  };
}

/** An inode's shape before placement: what its size, inline tail and blocks are. */
interface Shape {
  compact: boolean;
  blocks: number;
  tail: number;
  xsize: number;
  shared: number;
  filter: number;
}

class V1Emitter {
  private readonly t;
  private readonly n: number;
  /** The current directory's dirents, `.` and `..` merged in (name: entry id or NAME_DOT/NAME_DOTDOT). */
  private dName = new Int32Array(64);
  private dTarget = new Int32Array(64);
  private dCount = 0;
  /** Chunk k of the current directory is dirents chunkStart[k] … chunkStart[k+1]−1. */
  private chunkStart = new Int32Array(64);
  private chunks = 0;
  private lastChunkSize = 0;
  private readonly shape: Shape = { compact: false, blocks: 0, tail: 0, xsize: 0, shared: 0, filter: 0 };
  /** Filled by the pass: blocks and tail after padding decisions, per BFS index. */
  private readonly blocks: Int32Array;
  private readonly tails: Int32Array;
  readonly placed: V1Placement;

  constructor(
    private readonly plan: V1Plan,
    /** The measuring pass's placement; during that pass all zeros (offsets are placeholders). */
    private readonly known: V1Placement,
  ) {
    this.t = plan.tree;
    this.n = plan.order.length;
    this.blocks = new Int32Array(this.n);
    this.tails = new Int32Array(this.n);
    this.placed = emptyPlacement(this.n);
  }

  private nid(k: number): number {
    return i32(this.known.offset, k) / INODE_SLOT_SIZE;
  }

  emit(s: ImageSink): void {
    this.header(s);
    this.superblock(s);
    for (let k = 0; k < this.n; k++) this.inode(s, k);
    s.zeros(roundUp(s.pos, INODE_SLOT_SIZE) - s.pos);
    this.placed.inodesEnd = s.pos;
    this.sharedTable(s);
    s.zeros(roundUp(s.pos, BLOCK_SIZE) - s.pos);
    for (let k = 0; k < this.n; k++) if (i32(this.blocks, k) > 0) this.dataBlocks(s, k);
    this.placed.imageSize = s.pos;
  }

  // ---------------------------------------------------------------- header and superblock

  /** spec composefs-v1 §11.1: the composefs header, then zeros up to the superblock. */
  private header(s: ImageSink): void {
    s.u32(COMPOSEFS_MAGIC);
    s.u32(COMPOSEFS_HEADER_VERSION);
    s.u32(this.plan.hasAcl ? COMPOSEFS_FLAG_HAS_ACL : 0);
    s.u32(this.plan.version);
    s.zeros(COMPOSEFS_HEADER_SIZE - 16 + (SUPERBLOCK_OFFSET - COMPOSEFS_HEADER_SIZE));
  }

  /** spec composefs-v1 §11.2: the EROFS superblock (128 bytes). */
  private superblock(s: ImageSink): void {
    const k = this.known;
    s.u32(EROFS_MAGIC);
    s.u32(0); // checksum: not used
    s.u32(FEATURE_COMPAT);
    s.u8(BLOCK_BITS);
    s.u8(0); // extslots
    s.u16(this.nid(0) & 0xffff);
    s.u64(BigInt(this.n));
    s.u64(this.plan.minSec);
    s.u32(this.plan.minNsec);
    s.u32(k.imageSize / BLOCK_SIZE);
    s.u32(0); // meta_blkaddr
    s.u32(Math.floor(k.inodesEnd / BLOCK_SIZE));
    s.zeros(SUPERBLOCK_SIZE - 48); // uuid, volume name, incompat features, reserved
  }

  // ---------------------------------------------------------------- directories

  /** Collects directory i's dirents (BFS index k), `.` and `..` merged where they sort. */
  private collectDirents(i: number, k: number): void {
    const t = this.t;
    const first = i32(t.childFirst, i);
    const count = i32(t.childCount, i);
    if (this.dName.length < count + 2) {
      this.dName = new Int32Array(2 * (count + 2));
      this.dTarget = new Int32Array(2 * (count + 2));
    }
    let n = 0;
    let dot = false;
    let dotdot = false;
    const buf = t.bytes.buf;
    for (let c = first; c < first + count; c++) {
      const e = i32(t.childIds, c);
      const off = i32(t.entryNameOff, e);
      const end = off + i32(t.entryNameLen, e);
      if (!dot && afterDot(buf, off, end)) {
        this.dName[n] = NAME_DOT;
        this.dTarget[n++] = k;
        dot = true;
      }
      if (!dotdot && afterDotDot(buf, off, end)) {
        this.dName[n] = NAME_DOTDOT;
        this.dTarget[n++] = i32(this.plan.parentIndex, k);
        dotdot = true;
      }
      this.dName[n] = e;
      this.dTarget[n++] = i32(this.plan.ino, i32(t.entryInode, e));
    }
    if (!dot) {
      this.dName[n] = NAME_DOT;
      this.dTarget[n++] = k;
    }
    if (!dotdot) {
      this.dName[n] = NAME_DOTDOT;
      this.dTarget[n++] = i32(this.plan.parentIndex, k);
    }
    this.dCount = n;
    this.splitChunks();
  }

  private nameLength(d: number): number {
    const name = i32(this.dName, d);
    return name === NAME_DOT ? 1 : name === NAME_DOTDOT ? 2 : i32(this.t.entryNameLen, name);
  }

  /** Greedy ≤ 4096-byte chunks (spec composefs-v1 §9.1). */
  private splitChunks(): void {
    if (this.chunkStart.length < this.dCount + 2) this.chunkStart = new Int32Array(2 * (this.dCount + 2));
    let chunks = 0;
    let size = 0;
    this.chunkStart[0] = 0;
    for (let d = 0; d < this.dCount; d++) {
      const cost = DIRENT_SIZE + this.nameLength(d);
      if (size + cost > BLOCK_SIZE) {
        this.chunkStart[++chunks] = d;
        size = 0;
      }
      size += cost;
    }
    this.chunkStart[chunks + 1] = this.dCount;
    this.chunks = chunks + 1;
    this.lastChunkSize = size;
  }

  /** One chunk of dirents: headers (nid, name offset, type), then the names. spec composefs-v2 §4.9. */
  private dirents(s: ImageSink, chunk: number): void {
    const t = this.t;
    const from = i32(this.chunkStart, chunk);
    const to = i32(this.chunkStart, chunk + 1);
    let nameoff = DIRENT_SIZE * (to - from);
    for (let d = from; d < to; d++) {
      const target = i32(this.dTarget, d);
      const name = i32(this.dName, d);
      s.u64n(this.nid(target));
      s.u16(nameoff);
      s.u8(name < 0 ? FT_DIR : direntFileType(u32(t.mode, i32(this.plan.order, target))));
      s.u8(0);
      nameoff += this.nameLength(d);
    }
    for (let d = from; d < to; d++) {
      const name = i32(this.dName, d);
      if (name === NAME_DOT) s.bytes(DOT, 0, 1);
      else if (name === NAME_DOTDOT) s.bytes(DOTDOT, 0, 2);
      else {
        const off = i32(t.entryNameOff, name);
        s.bytes(t.bytes.buf, off, off + i32(t.entryNameLen, name));
      }
    }
  }

  // ---------------------------------------------------------------- inodes

  /** Size, blocks, tail and xattr body of inode i (spec composefs-v1 §7.3–§9). */
  private computeShape(i: number): Shape {
    const t = this.t;
    const p = this.plan;
    const sh = this.shape;
    let filter = 0;
    let shared = 0;
    let local = 0;
    const xFirst = i32(p.xFirst, i);
    const xCount = i32(p.xCount, i);
    for (let x = xFirst; x < xFirst + xCount; x++) {
      const pair = i32(p.pairIds, x);
      const key = pairKeyOf(p, pair);
      filter |= 1 << key.bit;
      if (i32(p.pairShared, pair) >= 0 && shared < p.maxSharedRefs) shared++;
      else local += (4 + key.split.suffix.length + i32(p.pairValueLen, pair) + 3) & ~3;
    }
    sh.filter = filter >>> 0;
    sh.shared = shared;
    sh.xsize = xCount === 0 ? 0 : XATTR_IBODY_HEADER_SIZE + 4 * shared + local;
    sh.blocks = 0;
    sh.tail = 0;
    /** SIZE when it is not the input's (directories and symlinks), else -1. */
    let dirSize = -1;
    const type = u32(t.mode, i) & S_IFMT;
    const flags = u8(p.flags, i);
    if (t.isDir(i)) {
      const last = this.lastChunkSize;
      sh.blocks = this.chunks - (last > BLOCK_SIZE / 2 ? 0 : 1);
      sh.tail = last > BLOCK_SIZE / 2 ? 0 : last;
      dirSize = BLOCK_SIZE * sh.blocks + sh.tail;
    } else if (type === S_IFLNK) {
      sh.tail = i32(t.payloadLen, i);
      dirSize = sh.tail;
    } else if (type === S_IFREG && i32(t.contentLen, i) > 0) {
      const n = i32(t.contentLen, i);
      sh.blocks = Math.floor(n / BLOCK_SIZE);
      sh.tail = n % BLOCK_SIZE;
      if (sh.tail > BLOCK_SIZE / 2) {
        sh.blocks++;
        sh.tail = 0;
      }
    } else if (flags & FLAG_EXTERNAL) {
      sh.tail = 4 * i32(p.chunks, i);
    }
    sh.compact =
      (flags & FLAG_MIN_MTIME) !== 0 &&
      u32(t.nlink, i) <= 0xffff &&
      u32(t.uid, i) <= 0xffff &&
      u32(t.gid, i) <= 0xffff &&
      (dirSize >= 0 ? dirSize <= 0xffffffff : (flags & FLAG_SIZE_U32) !== 0);
    return sh;
  }

  /** Zero bytes before the inode at `pos` (spec composefs-v1 §10.2); may move the tail to a block. */
  private tailPadding(sh: Shape, symlink: boolean, pos: number, isz: number): number {
    if (symlink) {
      const t = isz + sh.xsize + sh.tail;
      if (t >= BLOCK_SIZE) {
        sh.blocks = 1;
        sh.tail = 0;
      }
      const crosses = Math.floor(pos / BLOCK_SIZE) !== Math.floor((pos + t - 1) / BLOCK_SIZE);
      return crosses ? roundUp(pos, BLOCK_SIZE) - pos : 0;
    }
    if (sh.tail === 0) return 0;
    const r = BLOCK_SIZE - ((pos + isz + sh.xsize) % BLOCK_SIZE);
    if (r >= sh.tail) return 0;
    const pad = roundUp(r, INODE_SLOT_SIZE);
    const r2 = BLOCK_SIZE - ((pos + isz + sh.xsize + pad) % BLOCK_SIZE);
    if (sh.tail <= r2) return pad;
    sh.blocks++;
    sh.tail = 0;
    return roundUp(pos, BLOCK_SIZE) - pos;
  }

  /** One inode: slot alignment, tail padding, header, xattr body, inline data (spec §10–§11). */
  private inode(s: ImageSink, k: number): void {
    const t = this.t;
    const i = i32(this.plan.order, k);
    if (t.isDir(i)) this.collectDirents(i, k);
    const sh = this.computeShape(i);
    const isz = sh.compact ? COMPACT_INODE_SIZE : EXTENDED_INODE_SIZE;
    s.zeros(roundUp(s.pos, INODE_SLOT_SIZE) - s.pos);
    const type = u32(t.mode, i) & S_IFMT;
    s.zeros(this.tailPadding(sh, type === S_IFLNK, s.pos, isz));
    this.placed.offset[k] = s.pos;
    this.placed.xattrSize[k] = sh.xsize;
    this.blocks[k] = sh.blocks;
    this.tails[k] = sh.tail;
    this.inodeHeader(s, k, i, sh);
    if (sh.xsize > 0) this.xattrBody(s, i, sh);
    this.inlineData(s, i, sh);
  }

  /** spec composefs-v1 §11.3: compact (32 bytes) or extended (64 bytes) inode. */
  private inodeHeader(s: ImageSink, k: number, i: number, sh: Shape): void {
    const t = this.t;
    const p = this.plan;
    const mode = u32(t.mode, i);
    const type = mode & S_IFMT;
    let layout = sh.tail > 0 ? LAYOUT_FLAT_INLINE : LAYOUT_FLAT_PLAIN;
    /** SIZE below 2^53 (external files are, spec composefs-v1 §9.3). */
    let size = 0;
    let iu = sh.blocks > 0 ? i32(this.known.firstBlock, k) : 0;
    if (t.isDir(i)) size = BLOCK_SIZE * sh.blocks + sh.tail;
    else if (type === S_IFLNK) size = i32(t.payloadLen, i);
    else if (type === S_IFREG && i32(t.contentLen, i) > 0) size = i32(t.contentLen, i);
    else if (u8(p.flags, i) & FLAG_EXTERNAL) {
      layout = LAYOUT_CHUNK_BASED;
      size = Number(u64(t.size, i));
      // The u16 at i_u offset 0 is the chunk format; the high half keeps the block address.
      iu = ((iu & 0xffff0000) | (u8(p.chunkBits, i) - 12)) >>> 0;
    } else if (type === S_IFCHR || type === S_IFBLK) iu = Number(u64(t.rdev, i) & U32_MAX);
    this.placed.iu[k] = iu;
    const nlink = u32(t.nlink, i);
    const uid = u32(t.uid, i);
    const gid = u32(t.gid, i);
    s.u16(inodeFormat(layout, !sh.compact));
    s.u16(xattrIcount(sh.xsize));
    s.u16(mode & 0xffff);
    if (sh.compact) {
      s.u16(nlink);
      s.u32(size);
      s.u32(0); // reserved
      s.u32(iu);
      s.u32(k); // ino
      s.u16(uid);
      s.u16(gid);
      s.u32(0); // reserved
    } else {
      s.u16(0); // reserved
      s.u64n(size);
      s.u32(iu);
      s.u32(k); // ino
      s.u32(uid);
      s.u32(gid);
      s.u64(i64(t.mtimeSec, i));
      s.u32(u32(t.mtimeNsec, i));
      s.u32(nlink);
      s.zeros(16); // reserved
    }
  }

  /** spec composefs-v1 §7.3: filter, shared ids (≤ 128), then local entries. */
  private xattrBody(s: ImageSink, i: number, sh: Shape): void {
    const p = this.plan;
    const base = this.known.inodesEnd % BLOCK_SIZE;
    s.u32(~sh.filter >>> 0);
    s.u8(sh.shared);
    s.zeros(XATTR_IBODY_HEADER_SIZE - 5);
    const first = i32(p.xFirst, i);
    const end = first + i32(p.xCount, i);
    let shared = 0;
    for (let x = first; x < end && shared < sh.shared; x++) {
      const at = i32(p.pairShared, i32(p.pairIds, x));
      if (at < 0) continue;
      s.u32((base + at) / 4);
      shared++;
    }
    shared = 0;
    for (let x = first; x < end; x++) {
      const pair = i32(p.pairIds, x);
      if (i32(p.pairShared, pair) >= 0 && shared < sh.shared) {
        shared++;
        continue;
      }
      this.xattrEntry(s, pair);
    }
  }

  /** spec composefs-v2 §4.8: name length, prefix index, value size, suffix, value, padding to 4. */
  private xattrEntry(s: ImageSink, pair: number): void {
    const p = this.plan;
    const key = pairKeyOf(p, pair);
    const suffix = key.split.suffix;
    const off = i32(p.pairValueOff, pair);
    const len = i32(p.pairValueLen, pair);
    s.u8(suffix.length);
    s.u8(key.split.index);
    s.u16(len);
    s.bytes(suffix, 0, suffix.length);
    s.bytes(this.t.bytes.buf, off, off + len);
    s.zeros(((4 + suffix.length + len + 3) & ~3) - (4 + suffix.length + len));
  }

  /** The inline part after the xattrs: dirent tail, symlink target, content tail or chunk table. */
  private inlineData(s: ImageSink, i: number, sh: Shape): void {
    const t = this.t;
    if (sh.tail === 0) return;
    if (t.isDir(i)) this.dirents(s, this.chunks - 1);
    else if ((u32(t.mode, i) & S_IFMT) === S_IFLNK) this.payload(s, i);
    else if (i32(t.contentLen, i) > 0) {
      const end = i32(t.contentOff, i) + i32(t.contentLen, i);
      s.bytes(t.bytes.buf, end - sh.tail, end);
    } else s.fill(0xff, sh.tail); // null chunk addresses
  }

  /** A symlink's target. */
  private payload(s: ImageSink, i: number): void {
    const t = this.t;
    const off = i32(t.payloadOff, i);
    s.bytes(t.bytes.buf, off, off + i32(t.payloadLen, i));
  }

  // ---------------------------------------------------------------- shared table and data

  private sharedTable(s: ImageSink): void {
    for (const pair of this.plan.sharedOrder) this.xattrEntry(s, pair);
  }

  /** The inode's data blocks, each zero-padded to 4096 (spec composefs-v1 §11.5–§11.6). */
  private dataBlocks(s: ImageSink, k: number): void {
    const t = this.t;
    const i = i32(this.plan.order, k);
    const blocks = i32(this.blocks, k);
    this.placed.firstBlock[k] = s.pos / BLOCK_SIZE;
    const pad = (): void => s.zeros(roundUp(s.pos, BLOCK_SIZE) - s.pos);
    if (t.isDir(i)) {
      this.collectDirents(i, k);
      const full =
        i32(this.tails, k) > 0 || this.lastChunkSize <= BLOCK_SIZE / 2 ? this.chunks - 1 : this.chunks;
      for (let c = 0; c < full; c++) {
        this.dirents(s, c);
        pad();
      }
      // A promoted tail chunk (never reached: after padding a ≤ 2048-byte tail always fits).
      if (full < blocks) s.zeros(BLOCK_SIZE * (blocks - full));
    } else if ((u32(t.mode, i) & S_IFMT) === S_IFLNK) {
      this.payload(s, i);
      pad();
    } else if (i32(t.contentLen, i) > 0) {
      const off = i32(t.contentOff, i);
      const len = i32(t.contentLen, i);
      for (let b = 0; b < blocks; b++) {
        s.bytes(t.bytes.buf, off + b * BLOCK_SIZE, off + Math.min(len, (b + 1) * BLOCK_SIZE));
        pad();
      }
    } else {
      // spec composefs-v1 §11.5: a promoted chunk table fills its whole block with null addresses.
      s.fill(0xff, BLOCK_SIZE);
    }
  }
}

/** Runs the emitter over a measuring sink; the result places every inode and block. */
export function measureV1(plan: V1Plan): V1Placement {
  const e = new V1Emitter(plan, emptyPlacement(plan.order.length));
  e.emit(new ImageSink(discard));
  return e.placed;
}

/**
 * Streams the image to `onChunk` (chunks of a reused buffer: consume or copy them at once) and
 * returns its size: a measuring pass, then the writing pass with the offsets it found.
 */
export function emitV1Chunks(plan: V1Plan, onChunk: (chunk: Buffer) => void): number {
  const placement = measureV1(plan);
  const sink = new ImageSink(onChunk);
  const e = new V1Emitter(plan, placement);
  e.emit(sink);
  sink.end();
  if (sink.pos !== placement.imageSize || e.placed.inodesEnd !== placement.inodesEnd) {
    throw new Error('EROFS V1 emitter: the writing pass did not follow the measuring pass');
  }
  return sink.pos;
}

/** The image bytes: a measuring pass, then the writing pass (into one buffer of the measured size). */
export function emitV1(plan: V1Plan): { image: Buffer; placement: V1Placement } {
  const placement = measureV1(plan);
  const image = Buffer.allocUnsafe(placement.imageSize);
  let at = 0;
  const sink = new ImageSink((chunk) => {
    chunk.copy(image, at);
    at += chunk.length;
  });
  const e = new V1Emitter(plan, placement);
  e.emit(sink);
  sink.end();
  if (at !== placement.imageSize || e.placed.inodesEnd !== placement.inodesEnd) {
    throw new Error('EROFS V1 emitter: the writing pass did not follow the measuring pass');
  }
  return { image, placement };
}
