/**
 * Path resolution while a dumpfile fills a flat tree (format/flat-tree.ts) with the C mkcomposefs rules:
 * parents must exist, names are new and valid, hardlink lines are resolved in reverse file order
 * once every line is read (spec composefs-v1 §4.5 item 1, §4.7). Children are found through one
 * open-addressing table keyed by (directory, name bytes): no Map, string or object per entry.
 */
import { OdhError } from '../../util/errors.js';
import { FlatTree, NO_INODE, hasPrefixAt } from '../format/flat-tree.js';
import { syntax } from './fields.js';

const SLASH = 0x2f;
/** Lookup result for the root path (an empty path, or only slashes). */
const ROOT_ENTRY = -2;

/** FNV-1a over src[start, end), mixed with the directory. */
function hashName(parent: number, src: Uint8Array, start: number, end: number): number {
  let h = (0x811c9dc5 ^ Math.imul(parent, 0x9e3779b1)) >>> 0;
  // start, end are bounds of a name inside src.
  for (let i = start; i < end; i++) h = Math.imul(h ^ src[i]!, 0x01000193);
  return h >>> 0;
}

interface HardlinkLine {
  entry: number;
  line: number;
  /** Target path as written (PAYLOAD), or null when it is `-`. */
  path: Buffer | null;
}

export class FlatPathTree {
  readonly flat: FlatTree;
  private slots: Int32Array;
  private hashes: Int32Array;

  /**
   * `expected`: entries to make room for at once (e.g. estimated from the input size);
   * `maxName`: the longest name accepted.
   */
  constructor(
    expected: number,
    private readonly maxName: number,
  ) {
    this.flat = new FlatTree(expected);
    let slots = 1 << 12;
    while (slots < 2 * expected) slots *= 2;
    this.slots = new Int32Array(slots);
    this.hashes = new Int32Array(Math.max(1 << 10, expected));
  }

  private used = 0;
  private readonly hardlinks: HardlinkLine[] = [];
  private hasRoot = false;
  private lastParentPath: Buffer | null = null;
  private lastParent = 0;

  /** The root line: inode 0. */
  setRoot(mode: number): number {
    if (this.hasRoot) throw syntax('Root appears twice');
    this.hasRoot = true;
    return this.flat.addInode(mode);
  }

  /** Adds the entry of a non-root path (its inode is set later); returns the entry id. */
  insert(src: Uint8Array, start: number, end: number): number {
    if (!this.hasRoot) throw syntax('Root must be the first entry');
    let slash = end - 1;
    while (slash >= start && src[slash] !== SLASH) slash--;
    const cached = this.lastParentPath;
    if (
      cached !== null &&
      slash - start === cached.length &&
      slash + 1 < end &&
      hasPrefixAt(src, start, cached)
    ) {
      return this.addChild(this.lastParent, src, slash + 1, end);
    }
    const dir = this.walkParents(src, start, end);
    return this.addChild(dir, src, this.nameStart, end);
  }

  /** Start of the last component, set by walkParents. */
  private nameStart = 0;

  /**
   * The directory holding the last component of src[start, end): every earlier component must be a
   * directory (components skip leading and repeated slashes, spec composefs-v1 §4.5 item 1). Sets
   * nameStart and caches a canonical parent path for the next line.
   */
  private walkParents(src: Uint8Array, start: number, end: number): number {
    let pos = start;
    while (pos < end && src[pos] === SLASH) pos++;
    let dir = 0;
    let parts = 1;
    for (;;) {
      let next = pos;
      while (next < end && src[next] !== SLASH) next++;
      if (next >= end) break;
      dir = this.dirOf(this.find(dir, src, pos, next));
      if (dir < 0) {
        throw syntax(
          `Parent directory ${JSON.stringify(Buffer.from(src.subarray(pos, next)).toString('latin1'))} not found`,
        );
      }
      parts++;
      pos = next + 1;
      while (pos < end && src[pos] === SLASH) pos++;
    }
    if (!this.flat.isDir(dir)) throw syntax('Parent is not a directory');
    let slash = end - 1;
    while (slash >= start && src[slash] !== SLASH) slash--;
    // Cache only a canonical parent path ("/a/b": one leading slash, no empty component).
    if (slash > start && src[start] === SLASH && parts >= 2 && isCanonical(src, start, slash)) {
      this.lastParentPath = Buffer.from(src.subarray(start, slash));
      this.lastParent = dir;
    }
    this.nameStart = pos;
    return dir;
  }

  /** The directory inode entry e names, or -1 when e is -1 (not found), a hardlink or no directory. */
  private dirOf(e: number): number {
    if (e < 0 || this.flat.entryHardlink[e] === 1) return -1;
    const i = this.flat.entryInode[e];
    return i === undefined || i === NO_INODE || !this.flat.isDir(i) ? -1 : i;
  }

  private addChild(dir: number, src: Uint8Array, start: number, end: number): number {
    const maxName = this.maxName;
    const n = end - start;
    if (n === 0) throw syntax("Can't add child: empty name");
    if ((n === 1 && src[start] === 0x2e) || (n === 2 && src[start] === 0x2e && src[start + 1] === 0x2e)) {
      throw syntax('Invalid . or .. in path');
    }
    if (n > maxName) throw syntax(`Can't add child: name longer than ${maxName} bytes`);
    if (this.find(dir, src, start, end) >= 0) throw syntax("Can't add child: duplicate name");
    const e = this.flat.addEntry(dir, NO_INODE, false);
    this.flat.setEntryName(e, src, start, end);
    this.remember(e, this.hash);
    return e;
  }

  /** The inode of a non-hardlink line's entry. */
  setInode(entry: number, mode: number): number {
    const i = this.flat.addInode(mode);
    this.flat.entryInode[entry] = i;
    this.flat.canonical[i] = entry;
    return i;
  }

  markHardlink(entry: number, line: number, path: Buffer | null): void {
    this.flat.entryHardlink[entry] = 1;
    this.hardlinks.push({ entry, line, path });
  }

  /** The hash of the last name looked up (addChild files the new entry under it). */
  private hash = 0;

  /** The entry named src[start, end) in directory `dir`, or -1. */
  private find(dir: number, src: Uint8Array, start: number, end: number): number {
    const h = hashName(dir, src, start, end);
    this.hash = h;
    const mask = this.slots.length - 1;
    const f = this.flat;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const v = this.slots[s];
      if (!v) return -1; // 0: an empty slot (s is masked, so never undefined)
      const e = v - 1;
      if (
        this.hashes[e] === (h | 0) &&
        f.entryParent[e] === dir &&
        f.entryNameLen[e] === end - start &&
        f.bytes.matches(f.entryNameOff[e]!, src, start, end)
      ) {
        return e;
      }
    }
  }

  private remember(e: number, h: number): void {
    if (e >= this.hashes.length) {
      const grown = new Int32Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[e] = h | 0;
    if (++this.used * 2 > this.slots.length) this.rehash();
    else this.place(e, h);
  }

  private place(e: number, h: number): void {
    const mask = this.slots.length - 1;
    let s = h & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = e + 1;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.hashes.subarray(0, this.flat.entryCount).forEach((h, e) => this.place(e, h >>> 0));
  }

  /** Looks a hardlink target up from the root: an entry id, ROOT_ENTRY, or -1. */
  private lookup(path: Buffer): number {
    let node = ROOT_ENTRY;
    let pos = 0;
    while (pos <= path.length) {
      let next = path.indexOf(SLASH, pos);
      if (next < 0) next = path.length;
      if (next > pos) {
        const dir = node === ROOT_ENTRY ? 0 : this.flat.entryInode[node];
        if (dir === undefined || dir === NO_INODE) return -1;
        node = this.find(dir, path, pos, next);
        if (node < 0) return -1;
      }
      pos = next + 1;
    }
    return node;
  }

  /**
   * Resolves hardlink lines in reverse file order (spec composefs-v1 §4.7), rejects cycles
   * (mkcomposefs fails with ELOOP at write time) and sorts every directory. Returns the tree.
   */
  finish(): FlatTree {
    const f = this.flat;
    if (!this.hasRoot) throw syntax('No root directory');
    const linkTo = new Int32Array(f.entryCount).fill(-1);
    for (const h of this.hardlinks.toReversed()) {
      if (h.path === null) throw lineError('Missing hardlink target', h.line);
      const target = this.lookup(h.path);
      if (target === -1) throw lineError('Hardlink target not found', h.line);
      if (target === h.entry) throw lineError('Self-referential hardlink', h.line);
      linkTo[h.entry] = target;
    }
    for (const h of this.hardlinks) {
      // Follow hardlink lines to a line that has an inode: entry ids index linkTo and entryInode.
      let e = h.entry;
      for (let steps = 0; e !== ROOT_ENTRY && f.entryHardlink[e] === 1; steps++) {
        if (steps > this.hardlinks.length)
          throw lineError('Too many levels of symbolic links (hardlink cycle)', h.line);
        e = linkTo[e]!;
      }
      f.entryInode[h.entry] = e === ROOT_ENTRY ? 0 : f.entryInode[e]!;
    }
    f.indexDirectories();
    return f;
  }
}

/** src[start, end) is `/name/name…` with no empty component. */
function isCanonical(src: Uint8Array, start: number, end: number): boolean {
  for (let i = start + 1; i < end; i++) if (src[i] === SLASH && src[i - 1] === SLASH) return false;
  return src[end - 1] !== SLASH;
}

function lineError(message: string, line: number): OdhError {
  return new OdhError('FORMAT', message, { line });
}
