/**
 * The path tree a dumpfile parser fills line by line, and its conversion to the composefs tree
 * model (tree.ts) once every line is read: path resolution and hardlink resolution
 * (spec composefs-v1 §4.5 item 1, §4.7; composefs-v2 §7.4).
 */
import { OdhError } from '../../util/errors.js';
import {
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
} from '../format/tree.js';
import { syntax } from './fields.js';

export interface ParseNode {
  name: Buffer;
  /** Line that created the node (errors name it). */
  line: number;
  /** The node's inode; null for a hardlink line. */
  inode: Inode | null;
  /** Children by name (latin1 key = the name bytes), for directories. */
  children: Map<string, ParseNode> | null;
  isHardlink: boolean;
  /** Hardlink target path as written (PAYLOAD). */
  linkPath: Buffer | null;
  linkTo: ParseNode | null;
}

export function isValidFileType(mode: number): boolean {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFBLK:
    case S_IFCHR:
    case S_IFIFO:
    case S_IFSOCK:
      return true;
    default:
      return false;
  }
}

function isDirNode(n: ParseNode): boolean {
  return n.inode !== null && (n.inode.mode & S_IFMT) === S_IFDIR;
}

function newNode(name: Buffer, line: number): ParseNode {
  return { name, line, inode: null, children: null, isHardlink: false, linkPath: null, linkTo: null };
}

/** Splits at `/`, skipping leading and repeated slashes (spec composefs-v1 §4.5 item 1). */
/** path[0, end) is `/name/name…` with no empty component (so components() would not alter it). */
function isCanonical(path: Buffer, end: number): boolean {
  for (let i = 1; i < end; i++) if (path[i] === 0x2f && path[i - 1] === 0x2f) return false;
  return path[end - 1] !== 0x2f;
}

function components(path: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < path.length && path[pos] === 0x2f) pos++;
  while (pos <= path.length) {
    const slash = path.indexOf(0x2f, pos);
    if (slash < 0) {
      out.push(path.subarray(pos));
      break;
    }
    out.push(path.subarray(pos, slash));
    pos = slash + 1;
    while (pos < path.length && path[pos] === 0x2f) pos++;
  }
  return out;
}

/** How the canonical entry of a hardlinked inode is chosen when the tree is built. */
export type CanonicalRule =
  /** The entry whose line was not an `@` line (C mkcomposefs, spec composefs-v1 §6.1). */
  | 'line'
  /** The first occurrence in depth-first pre-order over sorted names (composefs-rs, spec v2 §4.2). */
  | 'first-dfs';

export class PathTree {
  root: ParseNode | null = null;
  readonly hardlinks: ParseNode[] = [];

  setRoot(line: number): ParseNode {
    if (this.root !== null) throw syntax('Root appears twice');
    this.root = newNode(Buffer.from('/'), line);
    return this.root;
  }

  /**
   * The parent directory of the last inserted path: dumpfiles list a directory's entries together,
   * so most lines share it and skip the walk from the root (the cache holds the parent's path bytes,
   * `/`-led with single slashes, and its node, which stays a directory once it was one).
   */
  private lastParentPath: Buffer | null = null;
  private lastParent: ParseNode | null = null;

  /** Inserts the node of a non-root path: parents must exist; the last name must be new and valid. */
  insert(path: Buffer, line: number, maxName: number): ParseNode {
    if (this.root === null) throw syntax('Root must be the first entry');
    const slash = path.lastIndexOf(0x2f);
    const cached = this.lastParentPath;
    if (
      cached !== null &&
      slash === cached.length &&
      slash + 1 < path.length &&
      path.compare(cached, 0, cached.length, 0, slash) === 0
    ) {
      return this.addChild(this.lastParent!, path.subarray(slash + 1), maxName, line);
    }
    const parents = components(path);
    // components() always yields at least one (maybe empty) name; addChild refuses an empty one.
    const name = parents.pop() ?? Buffer.alloc(0);
    let dir = this.root;
    for (const part of parents) {
      const child = dir.children?.get(part.toString('latin1'));
      if (child === undefined || child.isHardlink || !isDirNode(child)) {
        throw syntax(`Parent directory ${JSON.stringify(part.toString('latin1'))} not found`);
      }
      dir = child;
    }
    if (!isDirNode(dir)) throw syntax('Parent is not a directory');
    // Cache only a canonical parent path ("/a/b": one leading slash, no empty component).
    if (slash > 0 && path[0] === 0x2f && parents.length >= 1 && isCanonical(path, slash)) {
      this.lastParentPath = Buffer.from(path.subarray(0, slash));
      this.lastParent = dir;
    }
    return this.addChild(dir, name, maxName, line);
  }

  private addChild(dir: ParseNode, name: Buffer, maxName: number, line: number): ParseNode {
    if (name.length === 0) throw syntax("Can't add child: empty name");
    if (
      (name.length === 1 && name[0] === 0x2e) ||
      (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)
    ) {
      throw syntax('Invalid . or .. in path');
    }
    if (name.length > maxName) throw syntax(`Can't add child: name longer than ${maxName} bytes`);
    const key = name.toString('latin1');
    if (dir.children === null) dir.children = new Map();
    if (dir.children.has(key)) throw syntax("Can't add child: duplicate name");
    const node = newNode(Buffer.from(name), line);
    dir.children.set(key, node);
    return node;
  }

  /** Looks a hardlink target up from the root; an empty path is the root (spec composefs-v1 §4.7). */
  lookup(path: Buffer): ParseNode | null {
    let node = this.root;
    for (const part of components(path)) {
      if (part.length === 0) continue;
      node = node?.children?.get(part.toString('latin1')) ?? null;
      if (node === null) return null;
    }
    return node;
  }

  /**
   * Resolves hardlink lines in reverse file order (spec composefs-v1 §4.7), rejects cycles
   * (mkcomposefs fails with ELOOP at write time) and builds the tree model.
   */
  resolve(canonical: CanonicalRule = 'line'): Inode {
    if (this.root === null || this.root.inode === null) throw syntax('No root directory');
    for (const h of this.hardlinks.toReversed()) {
      if (h.linkTo !== null) continue;
      if (h.linkPath === null) throw lineError('Missing hardlink target', h);
      const target = this.lookup(h.linkPath);
      if (target === null) throw lineError('Hardlink target not found', h);
      if (target === h) throw lineError('Self-referential hardlink', h);
      h.linkTo = target;
    }
    const final = new Map<ParseNode, Inode>();
    for (const h of this.hardlinks) {
      const seen = new Set<ParseNode>();
      let n: ParseNode = h;
      while (n.isHardlink) {
        if (seen.has(n)) throw lineError('Too many levels of symbolic links (hardlink cycle)', h);
        seen.add(n);
        n = n.linkTo!;
      }
      final.set(h, n.inode!);
    }
    // Build every directory's sorted entry list (explicit stack: deep trees must not overflow).
    const stack: ParseNode[] = [this.root];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      const entries: DirEntry[] = [];
      for (const child of dir.children?.values() ?? []) {
        const inode = child.isHardlink ? final.get(child)! : child.inode!;
        entries.push({ name: child.name, inode, hardlink: child.isHardlink });
        if (!child.isHardlink && isDirNode(child)) stack.push(child);
      }
      entries.sort((a, b) => Buffer.compare(a.name, b.name));
      dir.inode!.entries = entries;
    }
    if (canonical === 'first-dfs') markFirstOccurrences(this.root.inode);
    return this.root.inode;
  }
}

/**
 * Marks, for every inode, its first entry in depth-first pre-order over sorted names as canonical
 * (hardlink: false) and every later one as a hardlink (composefs-rs, spec composefs-v2 §4.2).
 */
export function markFirstOccurrences(root: Inode): void {
  const seen = new Set<Inode>([root]);
  const frames: { entries: DirEntry[]; next: number }[] = [{ entries: root.entries ?? [], next: 0 }];
  for (let top = frames.at(-1); top !== undefined; top = frames.at(-1)) {
    const e = top.entries[top.next++];
    if (e === undefined) {
      frames.pop(); // every entry of this directory is done
      continue;
    }
    e.hardlink = seen.has(e.inode);
    seen.add(e.inode);
    if (!e.hardlink && e.inode.entries !== null) frames.push({ entries: e.inode.entries, next: 0 });
  }
}

function lineError(message: string, node: ParseNode): OdhError {
  return new OdhError('FORMAT', message, { line: node.line });
}
