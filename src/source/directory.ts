import { constants, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { OdhError } from '../util/errors.js';
import { displayName } from '../tardiff/path.js';
import type { DataSource, SourceFile } from '../tardiff/source.js';

/** Like Linux MAXSYMLINKS: more hops than this is treated as a loop. */
export const MAX_SYMLINK_HOPS = 40;

const SLASH = 0x2f;

/**
 * Old-image bytes from an extracted merged root filesystem (upstream `--directory`, spec oci-delta
 * §3.2): a name opens `<root>/<name>`. Unlike upstream, resolution is confined to the root
 * (spec §2.3 [inferred]): each component is lstat'ed, symlinks are followed only inside the root
 * (absolute targets resolve from the root, like a chroot), and a relative target climbing above the
 * root is refused (UNSAFE_PATH) rather than clamped, since a valid old rootfs never needs it. Only
 * regular files are returned. Names are bytes throughout; they need not be UTF-8.
 */
export class DirectorySource implements DataSource {
  readonly root: string;
  private readonly rootBytes: Buffer;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.rootBytes = Buffer.from(this.root);
  }

  /** A source over `root`, which must be an existing directory (symlinks to one are fine). */
  static async create(root: string): Promise<DirectorySource> {
    const st = await fs.stat(root).catch(() => null);
    if (!st?.isDirectory()) {
      throw new OdhError('NOT_FOUND', 'source directory does not exist or is not a directory', {
        path: root,
      });
    }
    return new DirectorySource(await fs.realpath(root));
  }

  async open(name: Buffer): Promise<SourceFile> {
    const shown = displayName(name);
    if (name.includes(0))
      throw new OdhError('UNSAFE_PATH', 'source name contains a NUL byte', { path: shown });
    const full = await this.resolve(name, shown);
    let fh: fs.FileHandle;
    try {
      // O_NOFOLLOW: the last component was just checked to be a regular file; refuse it if it was
      // swapped for a symlink since. O_NONBLOCK: never hang on a FIFO swapped in.
      fh = await fs.open(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      throw fsError(e, shown);
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new OdhError('UNSAFE_PATH', 'source is not a regular file', { path: shown });
    }
    return new DirectoryFile(shown, st.size, fh);
  }

  /**
   * Resolves `name` component by component inside the root and returns the absolute path of a
   * regular file whose every directory component is a real (non-symlink) directory under the root.
   */
  private async resolve(name: Buffer, shown: string): Promise<Buffer> {
    const pending = splitPath(name); // components still to walk, next first
    const resolved: Buffer[] = []; // real directories walked so far, below the root
    let hops = 0;
    let last: Stats | null = null;
    while (pending.length > 0) {
      const comp = pending.shift()!;
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
      const candidate = this.join([...resolved, comp]);
      let st: Stats;
      try {
        st = await fs.lstat(candidate);
      } catch (e) {
        throw fsError(e, shown);
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new OdhError('UNSAFE_PATH', `too many levels of symbolic links (> ${MAX_SYMLINK_HOPS})`, {
            path: shown,
          });
        }
        const target = await fs.readlink(candidate, { encoding: 'buffer' });
        if (target[0] === SLASH) resolved.length = 0; // absolute: from the root, like a chroot
        pending.unshift(...splitPath(target));
        last = null;
        continue;
      }
      if (pending.some((p) => !isDot(p)) && !st.isDirectory()) {
        throw new OdhError('NOT_FOUND', 'source file not found (a path component is not a directory)', {
          path: shown,
        });
      }
      resolved.push(comp);
      last = st;
    }
    if (!last?.isFile()) {
      throw new OdhError('UNSAFE_PATH', 'source is not a regular file', { path: shown });
    }
    return this.join(resolved);
  }

  private join(parts: Buffer[]): Buffer {
    const pieces: Buffer[] = [this.rootBytes];
    for (const p of parts) pieces.push(Buffer.from([SLASH]), p);
    return Buffer.concat(pieces);
  }
}

class DirectoryFile implements SourceFile {
  constructor(
    readonly name: string,
    readonly size: number,
    private readonly fh: fs.FileHandle,
  ) {}

  async readAt(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (length === 0) return 0;
    const { bytesRead } = await this.fh.read(buf, offset, length, position);
    return bytesRead;
  }

  async close(): Promise<void> {
    await this.fh.close();
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
