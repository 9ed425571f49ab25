import fs from 'node:fs';
import path from 'node:path';
import { OdhError } from '../util/errors.js';
import { displayName } from '../tardiff/path.js';
import type { DataSource, DataSourceFile } from '../tardiff/data-source.js';

/** Like Linux MAXSYMLINKS: more hops than this is treated as a loop. */
export const MAX_SYMLINK_HOPS = 40;

const SLASH = 0x2f;
const DIR_CACHE_MAX = 65536;
const SLASH_BUF = Buffer.from([SLASH]);

/**
 * Old-image bytes from an extracted merged root filesystem (upstream `--directory`, spec oci-delta
 * §3.2): a name opens `<root>/<name>`. Unlike upstream, resolution is confined to the root
 * (spec §2.3 [inferred]): each component is lstat'ed, symlinks are followed only inside the root
 * (absolute targets resolve from the root, like a chroot), and a relative target climbing above the
 * root is refused (UNSAFE_PATH) rather than clamped, since a valid old rootfs never needs it. Only
 * regular files are returned. Names are bytes throughout; they need not be UTF-8.
 * The tree is assumed not to change while in use (it is an extracted old image): resolved directories
 * are cached, and a directory swapped for a symlink between check and open is not detected (Node has
 * no openat2/RESOLVE_BENEATH); the final component is opened with O_NOFOLLOW.
 */
export class DirectorySource implements DataSource {
  readonly root: string;
  private readonly rootBytes: Buffer;
  /** Directory part of a name (latin1 key) → its resolved real components below the root. */
  private readonly dirCache = new Map<string, Buffer[]>();

  constructor(root: string) {
    this.root = path.resolve(root);
    this.rootBytes = Buffer.from(this.root);
  }

  /** A source over `root`, which must be an existing directory (symlinks to one are fine). */
  static async create(root: string): Promise<DirectorySource> {
    const st = await fs.promises.stat(root).catch(() => null);
    if (!st?.isDirectory()) {
      throw new OdhError('NOT_FOUND', 'source directory does not exist or is not a directory', {
        path: root,
      });
    }
    return new DirectorySource(await fs.promises.realpath(root));
  }

  // Metadata calls (lstat, readlink, open, fstat, close) are synchronous on purpose: on a cached tree
  // each takes microseconds, while a libuv threadpool round trip costs ~100 µs, which dominated
  // applying layers of tens of thousands of small files (measured 57 s → 13 s for 40k files).
  async open(name: Buffer): Promise<DataSourceFile> {
    const shown = displayName(name);
    if (name.includes(0))
      throw new OdhError('UNSAFE_PATH', 'source name contains a NUL byte', { path: shown });
    const full = this.resolve(name, shown);
    let fd: number;
    try {
      // O_NOFOLLOW: the last component was just checked to be a regular file; refuse it if it was
      // swapped for a symlink since. O_NONBLOCK: never hang on a FIFO swapped in.
      fd = fs.openSync(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      throw fsError(e, shown);
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      fs.closeSync(fd);
      throw new OdhError('UNSAFE_PATH', 'source is not a regular file', { path: shown });
    }
    return new DirectoryFile(shown, st.size, fd);
  }

  /**
   * Resolves `name` inside the root and returns the absolute path of a regular file reached only
   * through real (non-symlink) directories under the root. Directory parts are cached: an old
   * rootfs does not change while a delta is applied.
   */
  private resolve(name: Buffer, shown: string): Buffer {
    const comps = splitPath(name);
    const base = comps.pop();
    if (!base) throw new OdhError('UNSAFE_PATH', 'source is not a regular file', { path: shown });
    const key = Buffer.concat(comps.flatMap((c) => [c, SLASH_BUF])).toString('latin1');
    let dir = this.dirCache.get(key);
    if (!dir) {
      const walked = this.walk([], comps, shown);
      if (walked.stat && !walked.stat.isDirectory()) throw notFound(shown);
      dir = walked.resolved;
      if (this.dirCache.size >= DIR_CACHE_MAX) this.dirCache.clear();
      this.dirCache.set(key, dir);
    }
    const file = this.walk(dir, [base], shown);
    if (!file.stat?.isFile()) {
      throw new OdhError('UNSAFE_PATH', 'source is not a regular file', { path: shown });
    }
    return this.join(file.resolved);
  }

  /**
   * Walks `pending` components from `start` (real components below the root), lstat'ing each and
   * expanding symlinks in place. Returns the real components reached and the stat of the last one
   * (null when the walk ended at a `..` or at the root itself).
   */
  private walk(
    start: Buffer[],
    pending: Buffer[],
    shown: string,
  ): { resolved: Buffer[]; stat: fs.Stats | null } {
    const resolved = [...start];
    const queue = [...pending];
    let hops = 0;
    let last: fs.Stats | null = null;
    while (queue.length > 0) {
      const comp = queue.shift()!;
      if (isDot(comp)) continue;
      if (isDotDot(comp)) {
        if (resolved.length === 0) {
          throw new OdhError('UNSAFE_PATH', 'source path escapes the source directory through a symlink', {
            path: shown,
          });
        }
        resolved.pop();
        last = null;
        continue;
      }
      if (last && !last.isDirectory()) throw notFound(shown);
      const candidate = this.join([...resolved, comp]);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(candidate);
      } catch (e) {
        throw fsError(e, shown);
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new OdhError('UNSAFE_PATH', `too many levels of symbolic links (> ${MAX_SYMLINK_HOPS})`, {
            path: shown,
          });
        }
        const target = fs.readlinkSync(candidate, { encoding: 'buffer' });
        if (target[0] === SLASH) resolved.length = 0; // absolute: from the root, like a chroot
        queue.unshift(...splitPath(target));
        last = null;
        continue;
      }
      resolved.push(comp);
      last = st;
    }
    return { resolved, stat: last };
  }

  private join(parts: Buffer[]): Buffer {
    const pieces: Buffer[] = [this.rootBytes];
    for (const p of parts) pieces.push(SLASH_BUF, p);
    return Buffer.concat(pieces);
  }
}

/** Reads up to this size are done synchronously (see DirectorySource.open); larger ones in the pool. */
const SYNC_READ_MAX = 256 << 10;

class DirectoryFile implements DataSourceFile {
  constructor(
    readonly name: string,
    readonly size: number,
    private readonly fd: number,
  ) {}

  async readAt(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (length === 0) return 0;
    if (length <= SYNC_READ_MAX) return fs.readSync(this.fd, buf, offset, length, position);
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }

  async close(): Promise<void> {
    fs.closeSync(this.fd);
  }
}

function splitPath(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p[i] !== SLASH) continue;
    if (i > start) out.push(p.subarray(start, i));
    start = i + 1;
  }
  return out;
}

function isDot(c: Buffer): boolean {
  return c.length === 1 && c[0] === 0x2e;
}

function isDotDot(c: Buffer): boolean {
  return c.length === 2 && c[0] === 0x2e && c[1] === 0x2e;
}

function notFound(shown: string): OdhError {
  return new OdhError('NOT_FOUND', 'source file not found (a path component is not a directory)', {
    path: shown,
  });
}

function fsError(e: unknown, shown: string): OdhError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new OdhError('NOT_FOUND', 'source file not found', { path: shown }, { cause: e });
  }
  if (code === 'ELOOP') {
    return new OdhError('UNSAFE_PATH', 'source file is a symlink', { path: shown }, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new OdhError('IO', `cannot read source file: ${msg}`, { path: shown }, { cause: e });
}
