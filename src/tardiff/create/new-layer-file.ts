import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressSniffed, sniffCompression } from '../../oci/compression.js';
import { OdhError, isOdhError, type ErrorContext } from '../../util/errors.js';

/**
 * The new layer as an uncompressed tar file the creator can read twice and by position (spec
 * oci-delta §5.4 needs the decompressed bytes exactly). A plain tar file is used in place; a stream or
 * a compressed file is decompressed into a temp file first.
 */
export interface NewLayerFile {
  path: string;
  size: number;
  /** Removes the temp copy, if one was made. */
  release(): Promise<void>;
}

export async function materializeNewLayer(
  input: string | AsyncIterable<Buffer>,
  tempDir: string,
  ctx: ErrorContext,
): Promise<NewLayerFile> {
  if (typeof input === 'string') {
    const head = Buffer.alloc(4);
    let fh: FileHandle;
    try {
      fh = await open(input, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'IO';
      throw new OdhError(code, `cannot open new layer: ${(e as Error).message}`, { ...ctx, file: input });
    }
    try {
      const { bytesRead } = await fh.read(head, 0, 4, 0);
      if (sniffCompression(head.subarray(0, bytesRead)) === 'none') {
        const st = await fh.stat();
        return { path: input, size: st.size, release: async () => {} };
      }
    } finally {
      await fh.close();
    }
  }
  const spool = path.join(tempDir, `tar-diff-new-${randomBytes(6).toString('hex')}.tar`);
  const release = () => rm(spool, { force: true });
  try {
    const src =
      typeof input === 'string' ? createReadStream(input, { highWaterMark: 1 << 20 }) : Readable.from(input);
    await pipeline(src, decompressSniffed(ctx), createWriteStream(spool, { flags: 'wx', mode: 0o600 }));
    return { path: spool, size: (await stat(spool)).size, release };
  } catch (e) {
    await release();
    if (isOdhError(e)) throw e;
    throw new OdhError('IO', `cannot read new layer: ${(e as Error).message}`, ctx, { cause: e });
  }
}

/**
 * Positional reads through a 4 MiB window: the op generator walks the new tar front to back, reading
 * many small pieces (headers, padding) between the replaced contents.
 */
export class WindowedReader {
  private window: Buffer = Buffer.alloc(0);
  private windowAt = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly fileSize: number,
    private readonly where: ErrorContext,
    private readonly windowSize = 4 << 20,
  ) {}

  /** Exactly `length` bytes at `position`; the result may share memory with the window (copy to keep). */
  async read(position: number, length: number): Promise<Buffer> {
    if (position >= this.windowAt && position + length <= this.windowAt + this.window.length) {
      return this.window.subarray(position - this.windowAt, position - this.windowAt + length);
    }
    if (length > this.windowSize) return this.readDirect(position, length);
    const n = Math.min(this.windowSize, this.fileSize - position);
    this.window = await this.readDirect(position, Math.max(n, length));
    this.windowAt = position;
    return this.window.subarray(0, length);
  }

  /** Exactly `length` bytes at `position` in a fresh buffer. */
  async readDirect(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, position + done);
      if (bytesRead === 0) {
        throw new OdhError('TRUNCATED', 'new layer ended early (changed while read?)', {
          ...this.where,
          offset: position + done,
        });
      }
      done += bytesRead;
    }
    return buf;
  }
}
