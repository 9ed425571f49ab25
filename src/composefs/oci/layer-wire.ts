/**
 * Tree items of one layer as they cross from a layer worker to the thread that owns the tree
 * builder: a batch of items is one byte buffer (transferred, not copied); the revived items' paths
 * are views into it, and the few bytes the tree keeps are copied out, so the batch is freed once
 * applied. A structured clone of the items themselves would cost an object
 * graph per entry on both sides, and each Buffer in it would drag its whole backing ArrayBuffer
 * along (a 256 KiB inflate chunk, an 8 KiB pool slab).
 *
 * Item layout (little-endian): u8 kind (0 dir, 1 leaf, 2 hardlink), the path, then
 *   dir:      stat
 *   leaf:     stat, u32 nlink, u64 rdev, u64 size, bytes? payload, bytes? content, bytes? digest
 *   hardlink: target path, bytes targetDisplay (latin1)
 * path = u32 n, n × bytes (directory components), bytes? name;
 * stat = u32 mode, u32 uid, u32 gid, i64 mtimeSec, u32 mtimeNsec, u32 n, n × (bytes key, bytes value);
 * bytes = u32 length + the bytes; bytes? = the same, length 0xffffffff for null.
 */
import type { OciPath } from './entry.js';
import type { DirStat, OciNewNode } from './merge.js';
import { newInode, type Inode, type Xattr } from '../format/tree.js';

const NULL = 0xffffffff;
const EMPTY = Buffer.alloc(0);
const KIND = { dir: 0, leaf: 1, hardlink: 2 } as const;

/** Appends items to a growing buffer; `take()` hands the bytes over and starts afresh. */
export class WireWriter {
  private buf = Buffer.allocUnsafeSlow(64 << 10);
  private pos = 0;
  count = 0;

  get byteLength(): number {
    return this.pos;
  }

  add(path: OciPath, node: OciNewNode): void {
    this.u8(KIND[node.kind]);
    this.path(path);
    if (node.kind === 'dir') this.stat(node.stat);
    else if (node.kind === 'leaf') this.leaf(node.inode);
    else {
      this.path(node.target);
      this.bytes(Buffer.from(node.targetDisplay, 'latin1'));
    }
    this.count++;
  }

  /** The batch so far, in an ArrayBuffer of its own (ready to transfer). */
  take(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    this.pos = 0;
    this.count = 0;
    return out;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  private u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  private u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }

  private u64(v: bigint): void {
    this.room(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }

  private bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  private optBytes(b: Uint8Array | null): void {
    if (b === null) this.u32(NULL);
    else this.bytes(b);
  }

  private path(p: OciPath): void {
    this.u32(p.dir.length);
    for (const c of p.dir) this.bytes(c);
    this.optBytes(p.name);
  }

  private stat(s: DirStat | Inode): void {
    this.u32(s.mode);
    this.u32(s.uid);
    this.u32(s.gid);
    this.u64(s.mtimeSec);
    this.u32(s.mtimeNsec);
    this.u32(s.xattrs.length);
    for (const x of s.xattrs) {
      this.bytes(x.key);
      this.bytes(x.value);
    }
  }

  /** A leaf inode never has entries (the builder makes directory inodes itself when it finishes). */
  private leaf(i: Inode): void {
    if (i.entries !== null) throw new RangeError('a directory inode cannot travel as a leaf');
    this.stat(i);
    this.u32(i.nlink);
    this.u64(i.rdev);
    this.u64(i.size);
    this.optBytes(i.payload);
    this.optBytes(i.content);
    this.optBytes(i.digest);
  }
}

/**
 * Reads back the items of one batch, in order; path components are views into the batch, what the
 * tree keeps (payloads, contents, digests, xattrs) is copied out of it. A class, not
 * closures per batch: V8 would optimize each batch's fresh closures again.
 */
class WireReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  item(): { path: OciPath; node: OciNewNode } {
    const kind = this.buf[this.pos++];
    const p = this.path();
    if (kind === KIND.dir) return { path: p, node: { kind: 'dir', stat: this.stat() } };
    if (kind === KIND.leaf) {
      const s = this.stat();
      const inode = newInode(s.mode, s);
      inode.nlink = this.u32();
      inode.rdev = this.u64();
      inode.size = this.u64();
      inode.payload = this.keptBytes();
      inode.content = this.keptBytes();
      inode.digest = this.keptBytes();
      inode.entries = null;
      return { path: p, node: { kind: 'leaf', inode } };
    }
    if (kind === KIND.hardlink) {
      const target = this.path();
      return { path: p, node: { kind: 'hardlink', target, targetDisplay: this.bytes().toString('latin1') } };
    }
    throw new RangeError(`layer item kind ${kind} at byte ${this.pos - 1}`);
  }

  private u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  private u64(): bigint {
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  private optBytes(): Buffer | null {
    const n = this.u32();
    if (n === NULL) return null;
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /**
   * A byte string the tree keeps, copied out of the batch: a view would keep the whole batch
   * (paths, stats) alive for as long as the tree lives.
   */
  private keptBytes(): Buffer | null {
    const view = this.optBytes();
    return view === null ? null : Buffer.from(view);
  }

  private bytes(): Buffer {
    return this.optBytes() ?? EMPTY;
  }

  private path(): OciPath {
    const n = this.u32();
    const dir: Buffer[] = [];
    for (let i = 0; i < n; i++) dir.push(this.bytes());
    return { dir, name: this.optBytes() };
  }

  private stat(): DirStat {
    const mode = this.u32();
    const uid = this.u32();
    const gid = this.u32();
    const mtimeSec = BigInt.asIntN(64, this.u64());
    const mtimeNsec = this.u32();
    const n = this.u32();
    const xattrs: Xattr[] = [];
    for (let i = 0; i < n; i++)
      xattrs.push({ key: this.keptBytes() ?? EMPTY, value: this.keptBytes() ?? EMPTY });
    return { mode, uid, gid, mtimeSec, mtimeNsec, xattrs };
  }
}

/** Reads back the items of one batch, in order (see WireReader for which byte strings are views). */
export function* readWireItems(bytes: Uint8Array): Generator<{ path: OciPath; node: OciNewNode }> {
  const r = new WireReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  while (!r.done) yield r.item();
}
