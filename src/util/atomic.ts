import { promises as fs } from 'node:fs';
import path from 'node:path';
import { OdhError } from './errors.js';
import { releaseTemp, runTempDir, sweepStale, tempBeside, throwIfCancelled } from './run.js';
import { noteCommitted } from './outcome.js';

/**
 * An output that appears at its final path only after every check passed: work happens under a
 * hidden temp name in the same directory (`.odh-tmp-<pid>-…`, journaled by the run), and the commit
 * never replaces anything that appeared at the destination meanwhile (see `commitNoReplace`).
 * `abort()` removes the temp data; a process killed mid-way leaves only a name the next run sweeps.
 */
export class AtomicOutput {
  readonly finalPath: string;
  readonly tempPath: string;
  private settled = false;

  private constructor(
    finalPath: string,
    tempPath: string,
    private readonly overwrite: boolean,
  ) {
    this.finalPath = finalPath;
    this.tempPath = tempPath;
  }

  /**
   * Refuses an existing destination unless `overwrite` (`--force`) allows replacing a file; an
   * existing directory is always refused. Sweeps what dead runs left in the output directory.
   */
  static async create(finalPath: string, opts: { overwrite?: boolean } = {}): Promise<AtomicOutput> {
    const abs = path.resolve(finalPath);
    const st = await fs.lstat(abs).catch(() => null);
    if (st?.isDirectory()) {
      throw new OdhError('EXISTS', 'output path is an existing directory', { path: finalPath });
    }
    if (st && !opts.overwrite) {
      throw new OdhError('EXISTS', 'output path already exists (remove it first, or use --force)', {
        path: finalPath,
      });
    }
    const dir = path.dirname(abs);
    const dst = await fs.stat(dir).catch(() => null);
    if (!dst?.isDirectory()) {
      throw new OdhError('NOT_FOUND', 'output directory does not exist', { path: dir });
    }
    await sweepStale([dir]);
    return new AtomicOutput(abs, tempBeside(abs), opts.overwrite === true);
  }

  /** Moves the finished temp entry into place; EXISTS (temp removed) if something took the path. */
  async commit(): Promise<void> {
    if (this.settled) return;
    try {
      throwIfCancelled();
      await commitNoReplace(this.tempPath, this.finalPath, { overwrite: this.overwrite });
    } catch (e) {
      await this.abort();
      throw e;
    }
    this.settled = true;
    await releaseTemp(this.tempPath);
    noteCommitted(this.finalPath);
  }

  async abort(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await releaseTemp(this.tempPath, { remove: true });
  }
}

/** The one-line error of a lost race: the destination appeared while we were writing. */
export function lostRace(finalPath: string): OdhError {
  return new OdhError(
    'EXISTS',
    'output path appeared while the output was being written; it was left untouched and nothing was written',
    { path: finalPath },
  );
}

/**
 * Moves `temp` to `final` without ever replacing what is there (unless `overwrite`, for files):
 * a file by link(2) then unlink (link fails with EEXIST instead of replacing), a directory by
 * claiming `final` with mkdir(2) and renaming over the still-empty claim (rename(2) refuses a
 * non-empty directory). rename(2) alone replaces silently, and renameat2(RENAME_NOREPLACE) is not
 * reachable from Node without a native build step.
 */
export async function commitNoReplace(
  temp: string,
  final: string,
  opts: { overwrite?: boolean } = {},
): Promise<void> {
  const st = await fs.lstat(temp);
  if (st.isDirectory()) {
    try {
      await fs.mkdir(final);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw lostRace(final);
      throw e;
    }
    try {
      await fs.rename(temp, final);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw lostRace(final);
      await fs.rmdir(final).catch(() => {});
      throw e;
    }
    return;
  }
  if (opts.overwrite) {
    await fs.rename(temp, final);
    return;
  }
  try {
    await fs.link(temp, final);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw lostRace(final);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // A file system without hard links: claim the name exclusively, then rename over our claim.
    await fs.writeFile(final, '', { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'EEXIST' ? lostRace(final) : err;
    });
    await fs.rename(temp, final);
    return;
  }
  await fs.unlink(temp);
}

/** A private temp directory of this run under $TMPDIR, removed by `cleanup()` (call it in `finally`). */
export async function makeTempDir(prefix = 'odh-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  return runTempDir(prefix.replace(/^odh-/, '').replace(/-$/, '') || 'tmp');
}
