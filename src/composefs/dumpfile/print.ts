/**
 * Tree → dumpfile text, in either format:
 * - `composefs-info` (default): what C `composefs-info dump` prints (spec composefs-v1 §12.2);
 * - `composefs-rs`: what composefs-rs `write_dumpfile` prints (spec composefs-v2 §7.1–7.3).
 * Lines come out in depth-first pre-order with children in name-byte order. Output is ASCII.
 */
import { digestObjectPath } from '../format/fsverity.js';
import { escapeField } from './escape.js';
import {
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFBLK,
  S_IFCHR,
  linkCounts,
  type DirEntry,
  type Inode,
} from '../format/tree.js';

export type DumpfileFormat = 'composefs-info' | 'composefs-rs';

export interface PrintDumpfileOptions {
  format?: DumpfileFormat;
}

interface Visit {
  /** The entry's path. Aliases a buffer the walk reuses: copy it to keep it past the next step. */
  path: Buffer;
  entry: DirEntry | null; // null for the root
}

/**
 * Depth-first pre-order over the tree; hardlinked directories are never entered twice. Paths are
 * built in one growing buffer (each frame remembers its prefix length), so memory stays linear in
 * the depth however deep the tree is (an image can nest directories thousands of levels deep).
 */
function* walk(root: Inode, isPrimary: (e: DirEntry) => boolean): Generator<Visit> {
  let pathBuf = Buffer.alloc(4096);
  yield { path: pathBuf.subarray(0, 0), entry: null };
  const entered = new Set<Inode>([root]);
  const frames: { prefix: number; entries: DirEntry[]; next: number }[] = [
    { prefix: 0, entries: root.entries ?? [], next: 0 },
  ];
  for (let top = frames.at(-1); top !== undefined; top = frames.at(-1)) {
    const entry = top.entries[top.next++];
    if (entry === undefined) {
      frames.pop(); // every entry of this directory is done
      continue;
    }
    const end = top.prefix + 1 + entry.name.length;
    if (end > pathBuf.length) {
      const bigger = Buffer.alloc(Math.max(end, 2 * pathBuf.length));
      pathBuf.copy(bigger, 0, 0, top.prefix);
      pathBuf = bigger;
    }
    pathBuf[top.prefix] = 0x2f;
    entry.name.copy(pathBuf, top.prefix + 1);
    yield { path: pathBuf.subarray(0, end), entry };
    if (entry.inode.entries !== null && !entered.has(entry.inode) && isPrimary(entry)) {
      entered.add(entry.inode);
      frames.push({ prefix: end, entries: entry.inode.entries, next: 0 });
    }
  }
}

/**
 * Chooses, for every inode reached by more than one entry, the entry printed in full: the one
 * flagged canonical (hardlink: false), else the first occurrence. Returns primary entry and path.
 */
function primaries(
  root: Inode,
  format: DumpfileFormat,
): Map<Inode, { entry: DirEntry | null; path: Buffer }> {
  const seen = new Map<Inode, { entry: DirEntry | null; path: Buffer }>();
  const multi = new Set<Inode>();
  seen.set(root, { entry: null, path: Buffer.alloc(0) });
  // Directories are entered through their canonical entry (a directory hardlink exists only in C
  // trees, spec composefs-v1 §4.7).
  for (const v of walk(root, (e) => !e.hardlink)) {
    if (v.entry === null) continue;
    const inode = v.entry.inode;
    const prev = seen.get(inode);
    if (prev === undefined) {
      seen.set(inode, { entry: v.entry, path: Buffer.from(v.path) });
      continue;
    }
    multi.add(inode);
    // composefs-rs: the first occurrence is written normally (spec composefs-v2 §7.2).
    if (format === 'composefs-info' && prev.entry !== null && prev.entry.hardlink && !v.entry.hardlink) {
      seen.set(inode, { entry: v.entry, path: Buffer.from(v.path) });
    }
  }
  for (const inode of seen.keys()) if (!multi.has(inode)) seen.delete(inode);
  return seen;
}

function infoLine(path: string, inode: Inode, hardlinkPath: Buffer | null): string {
  const payload =
    hardlinkPath !== null
      ? escapeField(hardlinkPath, { loneDash: true })
      : inode.payload === null
        ? '-'
        : escapeField(inode.payload, { loneDash: true });
  const content = inode.content === null ? '-' : escapeField(inode.content, { loneDash: true });
  const digest = inode.digest === null ? '-' : inode.digest.toString('hex');
  let line =
    `${path} ${inode.size} ${hardlinkPath !== null ? '@' : ''}${(inode.mode >>> 0).toString(8)} ` +
    `${inode.nlink >>> 0} ${inode.uid >>> 0} ${inode.gid >>> 0} ${inode.rdev} ` +
    `${inode.mtimeSec}.${inode.mtimeNsec >>> 0} ${payload} ${content} ${digest}`;
  for (const x of inode.xattrs) {
    line += ` ${escapeField(x.key, { equal: true })}=${escapeField(x.value, { equal: true })}`;
  }
  return line;
}

const RS_FIELD = { emptyDash: true, loneDash: true };

function rsLine(path: string, inode: Inode, nlink: number): string {
  const type = inode.mode & S_IFMT;
  const isDir = inode.entries !== null;
  const external = type === S_IFREG && inode.digest !== null;
  let size = 0n;
  let payload = '-';
  let content = '-';
  let digest = '-';
  if (type === S_IFREG) {
    if (external) {
      size = inode.size;
      payload = escapeField(Buffer.from(digestObjectPath(inode.digest!)), RS_FIELD);
      digest = inode.digest!.toString('hex');
    } else {
      size = BigInt(inode.content?.length ?? 0);
      content = escapeField(inode.content ?? Buffer.alloc(0), RS_FIELD);
    }
  } else if (type === S_IFLNK && inode.payload !== null) {
    size = BigInt(inode.payload.length);
    payload = escapeField(inode.payload, RS_FIELD);
  }
  const rdev = type === S_IFCHR || type === S_IFBLK ? inode.rdev : 0n;
  let line =
    `${path} ${isDir ? 0n : size} ${(inode.mode >>> 0).toString(8)} ${nlink} ${inode.uid >>> 0} ` +
    // composefs-rs 0.9.0 `write_dumpfile` prints the nanoseconds the tree holds (a V1 image keeps
    // them; V2 trees and images carry 0), so the dumpfile says exactly what the image holds.
    `${inode.gid >>> 0} ${rdev} ${inode.mtimeSec}.${inode.mtimeNsec >>> 0} ${payload} ${content} ${digest}`;
  const sorted = [...inode.xattrs].sort((a, b) => Buffer.compare(a.key, b.key));
  for (const x of sorted)
    line += ` ${escapeField(x.key, { equal: true })}=${escapeField(x.value, { equal: true })}`;
  return line;
}

/** The dumpfile lines (without LF) of a tree. */
export function* dumpfileLinesOf(root: Inode, options: PrintDumpfileOptions = {}): Generator<string> {
  const format = options.format ?? 'composefs-info';
  const prim = primaries(root, format);
  const counts = format === 'composefs-rs' ? linkCounts(root) : null;
  const isPrimary = (e: DirEntry): boolean => {
    const p = prim.get(e.inode);
    return p === undefined || p.entry === e;
  };
  for (const v of walk(root, isPrimary)) {
    const path = v.entry === null ? '/' : escapeField(v.path);
    const inode = v.entry === null ? root : v.entry.inode;
    const primaryPath = v.entry === null || isPrimary(v.entry) ? null : prim.get(inode)!.path;
    if (format === 'composefs-info') {
      yield infoLine(path, inode, primaryPath);
    } else if (primaryPath !== null) {
      yield `${path} 0 @120000 - - - - 0.0 ${escapeField(primaryPath, RS_FIELD)} - -`;
    } else {
      yield rsLine(path, inode, counts!.get(inode)!);
    }
  }
}

/**
 * Streams the dumpfile of a tree in pieces of about 1 MiB (each line terminated by LF): a deep tree's
 * dumpfile grows with depth × entries, so it is never held whole.
 */
export async function writeDumpfile(
  root: Inode,
  options: PrintDumpfileOptions,
  write: (piece: Buffer) => Promise<void>,
): Promise<void> {
  let parts: string[] = [];
  let size = 0;
  for (const line of dumpfileLinesOf(root, options)) {
    parts.push(line, '\n');
    size += line.length + 1;
    if (size >= 1 << 20) {
      await write(Buffer.from(parts.join(''), 'latin1'));
      parts = [];
      size = 0;
    }
  }
  if (size > 0) await write(Buffer.from(parts.join(''), 'latin1'));
}

/** The whole dumpfile text of a tree, each line terminated by LF. */
export function printDumpfile(root: Inode, options: PrintDumpfileOptions = {}): Buffer {
  const parts: string[] = [];
  for (const line of dumpfileLinesOf(root, options)) parts.push(line, '\n');
  return Buffer.from(parts.join(''), 'latin1');
}
