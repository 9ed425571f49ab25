/**
 * Reads a composefs EROFS image (V1 as C mkcomposefs writes it, V2 as composefs-rs writes it) back
 * into the tree model, the way `composefs-info dump` reconstructs it (spec composefs-v1 §12.1).
 *
 * Hostile images are expected: every offset is bounds-checked, each inode is built once (a nid met
 * again becomes a hardlink entry, so directory cycles cannot loop and depth is bounded), and the bytes of
 * metadata decoded are bounded by the image size. Failures are OdhError('FORMAT', …, { offset }).
 */
import { readFile, stat } from 'node:fs/promises';

import { OdhError } from '../../../util/errors.js';
import {
  newInode,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type DirEntry,
  type Inode,
} from '../tree.js';
import { LAYOUT_CHUNK_BASED } from './format.js';
import { ImageView, type ImageHeader, type RawDirent, type RawInode, type RawXattr } from './reader-image.js';
import { applyXattrs, type ReconstructRules } from './reader-reconstruct.js';

export type { ReconstructRules } from './reader-reconstruct.js';
export type { ImageHeader } from './reader-image.js';

export interface ReadErofsOptions {
  /** Default: 'composefs-info' for composefs_version 0/1, 'composefs-rs' for 2. */
  rules?: ReconstructRules;
  /** Omit char devices 0:0 (the V1 whiteout stubs). Default: true for 'composefs-info'. */
  hideWhiteouts?: boolean;
  /** Name used in error messages. */
  file?: string;
  /**
   * Deepest directory nesting accepted. Default: no cap beyond the image itself (each directory is
   * decoded once, so depth ≤ directories ≤ image size / 32): C mkcomposefs writes any depth, and
   * `composefs dump` must read what `composefs mkfs` writes (docs/composefs-decisions.md §3).
   */
  maxDepth?: number;
}

export interface ErofsImage {
  header: ImageHeader;
  rules: ReconstructRules;
  root: Inode;
}

/** spec composefs-v1 §4.5: inline content is at most 5000 bytes; symlink targets < 4096. */
const MAX_INLINE_CONTENT = 5000;
const MAX_SYMLINK = 4095;

interface Frame {
  /** The directory's entries, filled as its dirents are read. */
  entries: DirEntry[];
  dirents: RawDirent[];
  next: number;
  depth: number;
  offset: number;
}

class Reader {
  private readonly view: ImageView;
  private readonly hdr: ImageHeader;
  private readonly shared = new Map<number, RawXattr>();
  /** nid → inode built for it, or null when it was hidden (a whiteout stub). */
  private readonly built = new Map<bigint, Inode | null>();
  /** Bytes of directory data, xattr bodies and inline data decoded so far. */
  private budget: number;

  constructor(
    image: Buffer,
    private readonly opts: Required<Omit<ReadErofsOptions, 'file'>> & { file?: string },
    hdr: ImageHeader,
  ) {
    this.view = new ImageView(image, opts.file);
    this.hdr = hdr;
    // Legitimate images never decode more metadata than they hold; twice that plus slack is generous.
    this.budget = 2 * image.length + (1 << 20);
  }

  private spend(n: number, offset: number): void {
    this.budget -= n;
    if (this.budget < 0)
      throw this.view.fail('image metadata references overlap (more decoded than the image holds)', offset);
  }

  read(): Inode {
    const rootNid = BigInt(this.hdr.rootNid);
    const raw = this.view.inode(this.hdr, rootNid);
    if ((raw.mode & S_IFMT) !== S_IFDIR) throw this.view.fail('root inode is not a directory', raw.offset);
    const root = this.build(raw);
    // A directory is never hidden and always has entries.
    if (root === null || root.entries === null)
      throw this.view.fail('root inode is not a directory', raw.offset);
    this.built.set(rootNid, root);
    const frames: Frame[] = [
      { entries: root.entries, dirents: this.dirents(raw), next: 0, depth: 1, offset: raw.offset },
    ];
    for (let top = frames.at(-1); top !== undefined; top = frames.at(-1)) {
      const d = top.dirents[top.next++];
      if (d === undefined) {
        frames.pop();
        finishDirectory(top.entries, this.view, top.offset);
        continue;
      }
      if (isDotOrDotDot(d.name)) continue;
      const seen = this.built.get(d.nid);
      if (seen === null) continue; // hidden whiteout met again
      if (seen !== undefined) {
        // spec composefs-v1 §12.1 step 3: a nid met again is a hardlink to its first node.
        top.entries.push({ name: d.name, inode: seen, hardlink: true });
        continue;
      }
      const childRaw = this.view.inode(this.hdr, d.nid);
      const child = this.build(childRaw);
      this.built.set(d.nid, child);
      if (child === null) continue;
      top.entries.push({ name: d.name, inode: child, hardlink: false });
      if (child.entries !== null) {
        if (top.depth >= this.opts.maxDepth) {
          throw this.view.fail(`directories nested deeper than ${this.opts.maxDepth}`, childRaw.offset);
        }
        frames.push({
          entries: child.entries,
          dirents: this.dirents(childRaw),
          next: 0,
          depth: top.depth + 1,
          offset: childRaw.offset,
        });
      }
    }
    return root;
  }

  /** Builds the node of one inode; null when it is hidden. */
  private build(raw: RawInode): Inode | null {
    const type = raw.mode & S_IFMT;
    if (!VALID_TYPES.has(type))
      throw this.view.fail(`invalid file type in mode 0${raw.mode.toString(8)}`, raw.offset + 4);
    // spec composefs-v1 §12.1 step 4: char devices 0:0 are whiteouts and not shown.
    if (type === S_IFCHR && raw.u === 0 && this.opts.hideWhiteouts) return null;
    const inode = newInode(raw.mode, {
      uid: raw.uid,
      gid: raw.gid,
      nlink: raw.nlink,
      size: raw.size,
      mtimeSec: raw.mtimeSec,
      mtimeNsec: raw.mtimeNsec,
    });
    if (type === S_IFCHR || type === S_IFBLK) inode.rdev = BigInt(raw.u);
    if (type === S_IFLNK) {
      if (raw.size === 0n) throw this.view.fail('empty symlink target', raw.offset);
      inode.payload = Buffer.concat(this.view.data(raw, MAX_SYMLINK, 'symlink target'));
      this.spend(inode.payload.length, raw.offset);
    } else if (type === S_IFREG && raw.layout !== LAYOUT_CHUNK_BASED && raw.size > 0n) {
      inode.content = Buffer.concat(this.view.data(raw, MAX_INLINE_CONTENT, 'inline file content'));
      this.spend(inode.content.length, raw.offset);
    } else if (type !== S_IFREG && type !== S_IFDIR && raw.layout === LAYOUT_CHUNK_BASED) {
      throw this.view.fail('chunk-based layout on a special file', raw.offset);
    }
    this.spend(raw.xattrSize, raw.xattrStart);
    applyXattrs(inode, this.view.xattrs(this.hdr, raw, this.shared), this.opts.rules, this.view.bytes);
    return inode;
  }

  /** All dirents of a directory: blocks first, then the inline tail (spec composefs-v1 §12.1 step 2). */
  private dirents(raw: RawInode): RawDirent[] {
    const chunks = this.view.data(raw, this.view.bytes.length, 'directory');
    const out: RawDirent[] = [];
    for (const chunk of chunks) {
      const offset = chunk.byteOffset - this.view.bytes.byteOffset;
      this.spend(chunk.length, offset);
      for (const d of this.view.dirents(chunk, offset)) out.push(d);
    }
    return out;
  }
}

const VALID_TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK]);

function isDotOrDotDot(name: Buffer): boolean {
  return name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e));
}

/** Sorts entries by name bytes (the tree's invariant) and rejects duplicate names. */
function finishDirectory(entries: DirEntry[], view: ImageView, offset: number): void {
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  let prev: DirEntry | undefined;
  for (const e of entries) {
    if (prev?.name.equals(e.name)) {
      throw view.fail(`duplicate directory entry ${JSON.stringify(e.name.toString('latin1'))}`, offset);
    }
    prev = e;
  }
}

/** Reads the header and superblock only. */
export function readErofsHeader(image: Buffer, file?: string): ImageHeader {
  return new ImageView(image, file).header();
}

/** Reads a whole composefs EROFS image (held in memory: images are metadata only) into a tree. */
export function readErofs(image: Buffer, options: ReadErofsOptions = {}): ErofsImage {
  try {
    const header = new ImageView(image, options.file).header();
    const rules = options.rules ?? (header.composefsVersion >= 2 ? 'composefs-rs' : 'composefs-info');
    const reader = new Reader(
      image,
      {
        rules,
        hideWhiteouts: options.hideWhiteouts ?? rules === 'composefs-info',
        maxDepth: options.maxDepth ?? Number.POSITIVE_INFINITY,
        file: options.file,
      },
      header,
    );
    return { header, rules, root: reader.read() };
  } catch (e) {
    if (e instanceof OdhError) throw e;
    // Any decoding slip on hostile bytes (e.g. a RangeError from a Buffer read) is still a FORMAT error.
    throw new OdhError(
      'FORMAT',
      `corrupt EROFS image: ${(e as Error).message}`,
      { file: options.file },
      { cause: e },
    );
  }
}

/** Largest image file readErofsFile loads: composefs images hold metadata only. */
export const MAX_IMAGE_FILE_BYTES = 1 << 30;

/** Reads an image file from disk (whole, it is metadata only) and decodes it with readErofs. */
export async function readErofsFile(
  file: string,
  options: Omit<ReadErofsOptions, 'file'> = {},
): Promise<ErofsImage> {
  let bytes: Buffer;
  try {
    const st = await stat(file);
    if (st.size > MAX_IMAGE_FILE_BYTES) {
      throw new OdhError('LIMIT', `EROFS image of ${st.size} bytes exceeds ${MAX_IMAGE_FILE_BYTES}`, {
        file,
      });
    }
    bytes = await readFile(file);
  } catch (e) {
    if (e instanceof OdhError) throw e;
    throw new OdhError('IO', `cannot read image: ${(e as Error).message}`, { file }, { cause: e });
  }
  return readErofs(bytes, { ...options, file });
}
