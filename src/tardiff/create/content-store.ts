import { createHash, randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { displayName } from '../path.js';
import { OdhError } from '../../util/errors.js';
import { forEachLayerEntry, type LayerStreamFactory } from './layer-stream.js';
import { RollsumSplitter, type RollsumBlobs } from './rollsum.js';
import type { SourceEntry } from '../merged-rootfs.js';

/** What the store needs of an old file: where it lies (layer, tar ordinal) and what it must hash to. */
export interface StoredFile {
  readonly entry: Pick<SourceEntry, 'layer' | 'ordinal'>;
  /** For messages: the name the applier opens it by. */
  readonly openName: Buffer;
  readonly size: number;
  readonly sha1: Buffer;
}

/**
 * The contents of the old files a diff actually uses (spec oci-delta §5.3 step 3: "extracted from the
 * old tars into one temp file"), appended to a single store file and read back by position. Only the
 * layers holding a wanted file are re-read. Extraction is serialised, so tar-diffs of several new
 * layers can share one store concurrently.
 */
export class ContentStore {
  private fh: FileHandle | null = null;
  private readonly file: string;
  private end = 0;
  private readonly at = new Map<StoredFile, number>();
  private readonly blobs = new Map<StoredFile, RollsumBlobs>();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    private readonly layers: readonly LayerStreamFactory[],
    private readonly layerNames: readonly string[],
    tempDir: string,
  ) {
    this.file = path.join(tempDir, `tar-diff-sources-${randomBytes(6).toString('hex')}`);
  }

  /** Bytes extracted so far. */
  get size(): number {
    return this.end;
  }

  /** Makes the contents of `files` readable (a no-op for files already extracted). */
  ensure(files: Iterable<StoredFile>): Promise<void> {
    const wanted = [...files];
    const run = this.queue.then(() => this.extract(wanted));
    this.queue = run.catch(() => {});
    return run;
  }

  private async handle(): Promise<FileHandle> {
    if (this.disposed) throw new Error('ContentStore used after dispose');
    this.fh ??= await open(this.file, 'w+', 0o600);
    return this.fh;
  }

  private async extract(wanted: StoredFile[]): Promise<void> {
    const byLayer = new Map<number, Map<number, StoredFile>>();
    for (const f of wanted) {
      if (this.at.has(f)) continue;
      let m = byLayer.get(f.entry.layer);
      if (!m) byLayer.set(f.entry.layer, (m = new Map()));
      m.set(f.entry.ordinal, f);
    }
    if (byLayer.size === 0) return;
    const fh = await this.handle();
    for (const [layer, files] of [...byLayer].sort((a, b) => a[0] - b[0])) {
      const ctx = { layer: this.layerNames[layer] };
      let ordinal = 0;
      await forEachLayerEntry(this.layers[layer]!, ctx, async ({ entry, body }) => {
        const f = files.get(ordinal++);
        if (!f) return;
        const start = this.end;
        const h = createHash('sha1');
        let pos = start;
        for await (const c of body) {
          h.update(c);
          await writeAll(fh, c, pos);
          pos += c.length;
        }
        // The layer must be the same bytes the analysis saw.
        if (pos - start !== f.size || !h.digest().equals(f.sha1)) {
          throw new OdhError('SOURCE_MISMATCH', 'old layer changed between analysis and extraction', {
            ...ctx,
            path: displayName(entry.path),
          });
        }
        this.end = pos;
        this.at.set(f, start);
      });
      for (const f of files.values()) {
        if (!this.at.has(f)) {
          throw new OdhError('SOURCE_MISMATCH', 'old layer changed between analysis and extraction', {
            ...ctx,
            path: displayName(f.openName),
          });
        }
      }
    }
  }

  private offsetOf(f: StoredFile): number {
    const o = this.at.get(f);
    if (o === undefined) throw new Error(`source ${displayName(f.openName)} was not extracted`);
    return o;
  }

  /** Reads `length` bytes of `f` at `position` into the start of `buf` (the range must lie in the file). */
  async read(f: StoredFile, buf: Buffer, length: number, position: number): Promise<void> {
    const fh = await this.handle();
    const base = this.offsetOf(f);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, base + position + done);
      if (bytesRead === 0)
        throw new OdhError('TRUNCATED', 'source store shorter than expected', { file: this.file });
      done += bytesRead;
    }
  }

  /** The whole content of `f` (callers bound its size: ZstdDict sources ≤ 512 MiB). */
  async readAll(f: StoredFile): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(f.size);
    await this.read(f, buf, f.size, 0);
    return buf;
  }

  /** spec oci-delta §5.6: the rollsum blobs of `f`, computed once from the store. */
  async rollsum(f: StoredFile): Promise<RollsumBlobs> {
    const cached = this.blobs.get(f);
    if (cached) return cached;
    const s = new RollsumSplitter();
    const chunk = Buffer.allocUnsafe(Math.min(f.size, 4 << 20));
    for (let pos = 0; pos < f.size; pos += chunk.length) {
      const n = Math.min(chunk.length, f.size - pos);
      await this.read(f, chunk, n, pos);
      s.push(chunk.subarray(0, n));
    }
    const blobs = s.finish();
    this.blobs.set(f, blobs);
    return blobs;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.queue;
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
    await rm(this.file, { force: true });
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}
