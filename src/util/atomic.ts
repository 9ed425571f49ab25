import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { OdhError } from './errors.js';
import { noteCommitted } from './outcome.js';

/**
 * An output that appears at its final path only after every check passed: work happens under a
 * hidden temp name in the same directory (so the final rename is atomic), and `abort()` removes it.
 * A process killed mid-way leaves at most a `.odh-tmp-*` entry, never a file at the destination.
 */
export class AtomicOutput {
  readonly finalPath: string;
  readonly tempPath: string;
  private settled = false;

  private constructor(finalPath: string, tempPath: string) {
    this.finalPath = finalPath;
    this.tempPath = tempPath;
  }

  /** Refuses an existing destination (file or directory) unless `overwrite` allows a file. */
  static async create(finalPath: string, opts: { overwrite?: boolean } = {}): Promise<AtomicOutput> {
    const abs = path.resolve(finalPath);
    const st = await fs.lstat(abs).catch(() => null);
    if (st?.isDirectory()) {
      throw new OdhError('EXISTS', 'output path is an existing directory', { path: finalPath });
    }
    if (st && !opts.overwrite) {
      throw new OdhError('EXISTS', 'output path already exists (remove it first)', { path: finalPath });
    }
    const dir = path.dirname(abs);
    const dst = await fs.stat(dir).catch(() => null);
    if (!dst?.isDirectory()) {
      throw new OdhError('NOT_FOUND', 'output directory does not exist', { path: dir });
    }
    const tmp = path.join(dir, `.odh-tmp-${path.basename(abs)}-${randomBytes(6).toString('hex')}`);
    return new AtomicOutput(abs, tmp);
  }

  async commit(): Promise<void> {
    if (this.settled) return;
    await fs.rename(this.tempPath, this.finalPath);
    this.settled = true;
    noteCommitted(this.finalPath);
  }

  async abort(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await fs.rm(this.tempPath, { recursive: true, force: true });
  }
}

/** A private temp directory under $TMPDIR, removed by `cleanup()` (call it in `finally`). */
export async function makeTempDir(prefix = 'odh-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const os = await import('node:os');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}
