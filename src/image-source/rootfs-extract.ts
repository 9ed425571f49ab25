import { constants, promises as fs, type Stats } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { displayName } from '../tardiff/path.js';
import { OdhError } from '../util/errors.js';
import { cleanMemberName, nameKey } from '../tardiff/merged-rootfs.js';
import { whiteoutAt } from '../oci/whiteout.js';
import { openOldImage, streamOldLayer, type OldImageInput } from './old-layers.js';

/**
 * Extracts the old image's merged root filesystem, unprivileged: every layer in order with OCI
 * whiteouts applied (spec oci-delta §5.2), as upstream tests prepare `apply --directory` (§3.2).
 * Regular files, directories, symlinks and hardlinks (hard links, or copies when linking fails);
 * devices, FIFOs and sparse files are skipped. Ownership and xattrs are not reproduced; modes are,
 * made owner-readable (and directories owner-writable) so the tree can be read and replaced.
 *
 * Member names are cleaned like upstream CleanPath (never above the root). An entry whose parent is
 * a symlink, or a hardlink whose target is not a regular file reached without symlinks, is refused
 * (UNSAFE_PATH): nothing is ever written outside `destDir`.
 */

export interface ExtractStats {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** Devices, FIFOs, sparse files, names that clean to nothing, hardlinks with empty targets. */
  skipped: number;
}

const SLASH = 0x2f;

export async function extractMergedRootfs(image: OldImageInput, destDir: string): Promise<ExtractStats> {
  await fs.mkdir(destDir, { recursive: true });
  const root = Buffer.from(await fs.realpath(destDir));
  const stats: ExtractStats = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, skipped: 0 };
  const old = await openOldImage(image);
  try {
    for (let layer = 0; layer < old.manifest.layers.length; layer++) {
      const x = new LayerExtractor(root, stats, old.manifest.layers[layer]!.digest);
      await streamOldLayer(old, layer, (item) => x.entry(item.entry, item.body));
    }
  } finally {
    await old.close();
  }
  return stats;
}

type Entry = Parameters<Parameters<typeof streamOldLayer>[2]>[0]['entry'];

class LayerExtractor {
  /** Paths written by this layer, and their ancestors: opaque whiteouts keep them. */
  private readonly unpacked = new Set<string>();
  private readonly ancestors = new Set<string>();

  constructor(
    private readonly root: Buffer,
    private readonly stats: ExtractStats,
    private readonly layer: string,
  ) {}

  private abs(rel: Buffer): Buffer {
    return rel.length === 0 ? this.root : Buffer.concat([this.root, Buffer.from('/'), rel]);
  }

  private unsafe(message: string, rel: Buffer): OdhError {
    return new OdhError('UNSAFE_PATH', message, { layer: this.layer, path: displayName(rel) });
  }

  async entry(e: Entry, body: AsyncIterable<Buffer>): Promise<void> {
    const rel = cleanMemberName(e.path);
    if (rel === null) {
      this.stats.skipped++;
      return;
    }
    const wh = whiteoutAt(rel);
    if (wh?.kind === 'opaque') return this.opaque(wh.dir);
    if (wh?.kind === 'remove') {
      const victim = wh.path;
      if (!(await this.parentsExist(victim))) return;
      // OCI: a whiteout hides lower layers only; what this layer already wrote there stays.
      const key = nameKey(victim);
      if (this.unpacked.has(key) || this.ancestors.has(key)) {
        if ((await lstatOrNull(this.abs(victim)))?.isDirectory()) await this.clearLower(victim);
      } else {
        await fs.rm(this.abs(victim), { recursive: true, force: true });
      }
      return;
    }
    if (e.type === 'file' && e.sparse) e = { ...e, type: 'other' };
    if (e.type !== 'file' && e.type !== 'dir' && e.type !== 'symlink' && e.type !== 'hardlink') {
      this.stats.skipped++;
      return;
    }
    await this.parents(rel);
    const full = this.abs(rel);
    const existing = await lstatOrNull(full);
    if (e.type === 'dir') {
      if (!existing?.isDirectory()) {
        if (existing) await fs.rm(full, { recursive: true, force: true });
        await fs.mkdir(full);
      }
      await fs.chmod(full, (e.mode & 0o7777) | 0o700);
      this.stats.dirs++;
    } else {
      if (existing) await fs.rm(full, { recursive: true, force: true });
      if (e.type === 'file') {
        const fh = await fs.open(
          full,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        await pipeline(body, fh.createWriteStream());
        await fs.chmod(full, (e.mode & 0o7777) | 0o400);
        this.stats.files++;
      } else if (e.type === 'symlink') {
        await fs.symlink(e.linkpath, full);
        this.stats.symlinks++;
      } else if (!(await this.hardlink(rel, full, e.linkpath))) {
        return;
      }
    }
    this.mark(rel);
  }

  private async hardlink(rel: Buffer, full: Buffer, linkpath: Buffer): Promise<boolean> {
    const target = cleanMemberName(linkpath);
    if (target === null) {
      this.stats.skipped++;
      return false;
    }
    const tfull = this.abs(target);
    const st = (await this.parentsExist(target)) ? await lstatOrNull(tfull) : null;
    if (!st)
      throw new OdhError('FORMAT', `hardlink target ${JSON.stringify(displayName(target))} does not exist`, {
        layer: this.layer,
        path: displayName(rel),
      });
    if (!st.isFile())
      throw this.unsafe(`hardlink target ${JSON.stringify(displayName(target))} is not a regular file`, rel);
    try {
      await fs.link(tfull, full);
    } catch {
      await fs.copyFile(tfull, full, constants.COPYFILE_EXCL);
    }
    this.stats.hardlinks++;
    return true;
  }

  /** Creates missing parent directories of `rel`; a symlink among them is refused (no escape). */
  private async parents(rel: Buffer): Promise<void> {
    for (let i = rel.indexOf(SLASH); i >= 0; i = rel.indexOf(SLASH, i + 1)) {
      const p = this.abs(rel.subarray(0, i));
      const st = await lstatOrNull(p);
      if (st?.isDirectory()) continue;
      if (st?.isSymbolicLink())
        throw this.unsafe('entry below a symlink refused (it could escape the root)', rel);
      if (st) await fs.rm(p, { force: true });
      await fs.mkdir(p, 0o755);
    }
  }

  /** True if every parent of `rel` is an existing directory; a symlink among them is refused. */
  private async parentsExist(rel: Buffer): Promise<boolean> {
    for (let i = rel.indexOf(SLASH); i >= 0; i = rel.indexOf(SLASH, i + 1)) {
      const st = await lstatOrNull(this.abs(rel.subarray(0, i)));
      if (st?.isSymbolicLink())
        throw this.unsafe('path below a symlink refused (it could escape the root)', rel);
      if (!st?.isDirectory()) return false;
    }
    return true;
  }

  private mark(rel: Buffer): void {
    this.unpacked.add(nameKey(rel));
    for (let i = rel.indexOf(SLASH); i >= 0; i = rel.indexOf(SLASH, i + 1)) {
      this.ancestors.add(nameKey(rel.subarray(0, i)));
    }
  }

  /** Opaque whiteout of `dir`: removes what lower layers put beneath it, keeping this layer's entries. */
  private async opaque(dir: Buffer): Promise<void> {
    if (dir.length > 0) {
      const st = (await this.parentsExist(dir)) ? await lstatOrNull(this.abs(dir)) : null;
      if (!st?.isDirectory()) return;
    }
    await this.clearLower(dir);
  }

  private async clearLower(dir: Buffer): Promise<void> {
    const names = await fs.readdir(this.abs(dir), { encoding: 'buffer' });
    for (const n of names) {
      const rel = dir.length ? Buffer.concat([dir, Buffer.from('/'), n]) : n;
      const key = nameKey(rel);
      const full = this.abs(rel);
      if (this.unpacked.has(key) || this.ancestors.has(key)) {
        const st = await fs.lstat(full);
        if (st.isDirectory()) await this.clearLower(rel);
      } else {
        await fs.rm(full, { recursive: true, force: true });
      }
    }
  }
}

async function lstatOrNull(p: Buffer): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
