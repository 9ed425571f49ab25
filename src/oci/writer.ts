import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AtomicOutput } from '../util/atomic.js';
import { OdhError } from '../util/errors.js';
import { BLOCK_SIZE, encodeGoHeaders } from '../tar/header.js';
import { checkDigest, DigestHasher, parseDigest } from './digest.js';
import { goJsonString } from './gojson.js';
import { ANNOTATION_REF_NAME, MEDIA_TYPE_IMAGE_INDEX, OCI_LAYOUT_FILE } from './types.js';

/** Bytes for a blob: in memory, or streamed (Node stream or any async iterable of chunks). */
export type BlobSource = Uint8Array | AsyncIterable<Uint8Array> | NodeJS.ReadableStream;

/** What a written blob is. */
export interface WrittenBlob {
  digest: string;
  size: number;
}

/** The manifest `finish` points index.json at. */
export interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
}

export interface LayoutWriterOptions {
  /** 'archive' → oci-archive tar; 'dir' → oci layout directory. */
  kind: 'archive' | 'dir';
  /** Final path; must not exist. */
  path: string;
  /** Adds `org.opencontainers.image.ref.name` to the index entry (spec oci-delta §1.2). */
  refName?: string;
  /** Replace an existing file at `path` (`--force`); an existing directory is always refused. */
  overwrite?: boolean;
}

/**
 * Deterministic OCI layout writer (spec oci-delta §4.1 "Output tar"). Entry order: `oci-layout`,
 * then `blobs/` and `blobs/sha256/` just before the first blob, blobs in call order, `index.json`
 * last. Output appears at its path only after `finish`; `abort` (or any failure) removes it.
 * Calls are serialized; a blob whose digest was already written is not written twice.
 */
export interface OciLayoutWriter {
  readonly kind: 'archive' | 'dir';
  /** Writes a blob, hashing it (sha256) on the way; DIGEST_MISMATCH if `expectedDigest`/`expectedSize` differ. */
  addBlob(src: BlobSource, opts?: { expectedDigest?: string; expectedSize?: number }): Promise<WrittenBlob>;
  /** Writes exact JSON bytes (manifest, config) as a blob. */
  addJsonBlob(bytes: Uint8Array): Promise<WrittenBlob>;
  /** Writes index.json → `manifest`, ends the archive, and moves the output into place. */
  finish(manifest: IndexEntry): Promise<void>;
  /** Removes everything written so far. Safe to call more than once. */
  abort(): Promise<void>;
}

/** index.json bytes exactly as upstream writes them (spec oci-delta §1.2). */
export function encodeIndexJson(manifest: IndexEntry, refName?: string): Buffer {
  parseDigest(manifest.digest, 'index.json manifest digest');
  if (!Number.isSafeInteger(manifest.size) || manifest.size < 0) {
    throw new OdhError('USAGE', `index.json manifest size ${manifest.size} is not a non-negative integer`);
  }
  let d = `{"mediaType":${goJsonString(manifest.mediaType)},"digest":${goJsonString(manifest.digest)},"size":${manifest.size}`;
  if (refName !== undefined)
    d += `,"annotations":{${goJsonString(ANNOTATION_REF_NAME)}:${goJsonString(refName)}}`;
  d += '}';
  return Buffer.from(
    `{"schemaVersion":2,"mediaType":${goJsonString(MEDIA_TYPE_IMAGE_INDEX)},"manifests":[${d}]}`,
    'utf8',
  );
}

/** Hashes `src` into `file` (created exclusively); returns digest and size. */
async function stageBlob(src: BlobSource, file: string): Promise<WrittenBlob> {
  const fh = await fs.open(file, 'wx', 0o644);
  const h = new DigestHasher('sha256');
  try {
    const it: AsyncIterable<unknown> | Iterable<unknown> =
      src instanceof Uint8Array ? [src] : (src as AsyncIterable<unknown>);
    for await (const c of it) {
      const b = Buffer.isBuffer(c)
        ? c
        : typeof c === 'string'
          ? Buffer.from(c)
          : Buffer.from(c as Uint8Array);
      h.update(b);
      await writeAll(fh, b);
    }
  } finally {
    await fh.close();
  }
  return { digest: h.digest(), size: h.size };
}

async function writeAll(fh: FileHandle, b: Uint8Array, position?: number): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const { bytesWritten } = await fh.write(
      b,
      off,
      b.length - off,
      position === undefined ? null : position + off,
    );
    off += bytesWritten;
  }
}

function verifyExpected(got: WrittenBlob, opts: { expectedDigest?: string; expectedSize?: number }): void {
  if (opts.expectedDigest !== undefined || opts.expectedSize !== undefined) {
    checkDigest({ digest: opts.expectedDigest ?? got.digest, size: opts.expectedSize }, got);
  }
}

abstract class WriterBase implements OciLayoutWriter {
  abstract readonly kind: 'archive' | 'dir';
  protected readonly written = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();
  private state: 'open' | 'done' | 'failed' = 'open';

  constructor(
    protected readonly out: AtomicOutput,
    protected readonly refName: string | undefined,
  ) {}

  /** Runs `fn` after earlier calls; any failure aborts the whole output. */
  protected serial<T>(fn: () => Promise<T>, abortOnError = true): Promise<T> {
    const run = async () => {
      if (this.state !== 'open')
        throw new OdhError(
          'USAGE',
          `layout writer is already ${this.state === 'done' ? 'finished' : 'aborted'}`,
        );
      try {
        return await fn();
      } catch (e) {
        if (abortOnError) await this.abortNow();
        throw e;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  addBlob(
    src: BlobSource,
    opts: { expectedDigest?: string; expectedSize?: number } = {},
  ): Promise<WrittenBlob> {
    return this.serial(() => this.writeBlob(src, opts));
  }

  addJsonBlob(bytes: Uint8Array): Promise<WrittenBlob> {
    return this.addBlob(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  finish(manifest: IndexEntry): Promise<void> {
    return this.serial(async () => {
      await this.writeIndex(encodeIndexJson(manifest, this.refName));
      await this.out.commit();
      this.state = 'done';
    });
  }

  async abort(): Promise<void> {
    if (this.state === 'done') return;
    await this.abortNow();
  }

  private async abortNow(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'failed';
    await this.cleanup();
    await this.out.abort();
  }

  protected abstract writeBlob(
    src: BlobSource,
    opts: { expectedDigest?: string; expectedSize?: number },
  ): Promise<WrittenBlob>;
  protected abstract writeIndex(bytes: Buffer): Promise<void>;
  protected abstract cleanup(): Promise<void>;
}

/** oci-archive: a USTAR tar written sequentially; streamed blobs are staged next to it first. */
class ArchiveWriter extends WriterBase {
  readonly kind = 'archive' as const;
  private dirsWritten = false;

  private constructor(
    out: AtomicOutput,
    refName: string | undefined,
    private readonly fh: FileHandle,
  ) {
    super(out, refName);
  }

  static async create(out: AtomicOutput, refName: string | undefined): Promise<ArchiveWriter> {
    const fh = await fs.open(out.tempPath, 'wx', 0o644);
    const w = new ArchiveWriter(out, refName, fh);
    await w.serial(() => w.appendFile('oci-layout', OCI_LAYOUT_FILE));
    return w;
  }

  private async appendHeader(name: string, size: number, typeflag: '0' | '5'): Promise<void> {
    // spec oci-delta §4.1: uid/gid 0, empty uname/gname, mtime 0, dirs 0755, files 0644.
    await writeAll(
      this.fh,
      encodeGoHeaders({ name, mode: typeflag === '5' ? 0o755 : 0o644, size, typeflag }),
    );
  }

  private async appendPadding(size: number): Promise<void> {
    const pad = (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
    if (pad) await writeAll(this.fh, Buffer.alloc(pad));
  }

  private async appendFile(name: string, bytes: Buffer): Promise<void> {
    await this.appendHeader(name, bytes.length, '0');
    await writeAll(this.fh, bytes);
    await this.appendPadding(bytes.length);
  }

  private async blobDirs(): Promise<void> {
    if (this.dirsWritten) return;
    await this.appendHeader('blobs/', 0, '5');
    await this.appendHeader('blobs/sha256/', 0, '5');
    this.dirsWritten = true;
  }

  protected async writeBlob(
    src: BlobSource,
    opts: { expectedDigest?: string; expectedSize?: number },
  ): Promise<WrittenBlob> {
    if (src instanceof Uint8Array) {
      const bytes = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
      const got = { digest: new DigestHasher().update(bytes).digest(), size: bytes.length };
      verifyExpected(got, opts);
      if (!this.written.has(got.digest)) {
        await this.blobDirs();
        await this.appendFile(`blobs/sha256/${got.digest.slice(7)}`, bytes);
        this.written.add(got.digest);
      }
      return got;
    }
    // The tar header needs the size first: stage the stream in a temp file beside the output.
    const stage = `${this.out.tempPath}.stage-${randomBytes(4).toString('hex')}`;
    try {
      const got = await stageBlob(src, stage);
      verifyExpected(got, opts);
      if (!this.written.has(got.digest)) {
        await this.blobDirs();
        await this.appendHeader(`blobs/sha256/${got.digest.slice(7)}`, got.size, '0');
        const in_ = await fs.open(stage, 'r');
        try {
          const buf = Buffer.allocUnsafe(1 << 20);
          for (let pos = 0; pos < got.size;) {
            const { bytesRead } = await in_.read(buf, 0, Math.min(buf.length, got.size - pos), pos);
            if (bytesRead === 0)
              throw new OdhError('IO', 'staged blob shrank while copying', { file: stage });
            await writeAll(this.fh, buf.subarray(0, bytesRead));
            pos += bytesRead;
          }
        } finally {
          await in_.close();
        }
        await this.appendPadding(got.size);
        this.written.add(got.digest);
      }
      return got;
    } finally {
      await fs.rm(stage, { force: true });
    }
  }

  protected async writeIndex(bytes: Buffer): Promise<void> {
    await this.appendFile('index.json', bytes);
    // Two zero blocks end the archive; no padding to a 10 KiB record (Go archive/tar).
    await writeAll(this.fh, Buffer.alloc(2 * BLOCK_SIZE));
    await this.fh.sync();
    await this.fh.close();
  }

  protected async cleanup(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** oci: the same names written into a directory (dirs 0755, files 0644). */
class DirWriter extends WriterBase {
  readonly kind = 'dir' as const;
  private blobDir: string | undefined;

  static async create(out: AtomicOutput, refName: string | undefined): Promise<DirWriter> {
    await fs.mkdir(out.tempPath, { mode: 0o755 });
    await fs.chmod(out.tempPath, 0o755);
    const w = new DirWriter(out, refName);
    await w.serial(() => w.putFile('oci-layout', OCI_LAYOUT_FILE));
    return w;
  }

  private async putFile(name: string, bytes: Buffer): Promise<void> {
    const file = path.join(this.out.tempPath, name);
    await fs.writeFile(file, bytes, { flag: 'wx', mode: 0o644 });
    await fs.chmod(file, 0o644);
  }

  private async ensureBlobDir(): Promise<string> {
    if (!this.blobDir) {
      for (const d of ['blobs', 'blobs/sha256']) {
        await fs.mkdir(path.join(this.out.tempPath, d), { mode: 0o755 });
        await fs.chmod(path.join(this.out.tempPath, d), 0o755);
      }
      this.blobDir = path.join(this.out.tempPath, 'blobs', 'sha256');
    }
    return this.blobDir;
  }

  protected async writeBlob(
    src: BlobSource,
    opts: { expectedDigest?: string; expectedSize?: number },
  ): Promise<WrittenBlob> {
    const dir = await this.ensureBlobDir();
    const stage = path.join(dir, `.stage-${randomBytes(4).toString('hex')}`);
    try {
      const got = await stageBlob(src, stage);
      verifyExpected(got, opts);
      if (!this.written.has(got.digest)) {
        await fs.chmod(stage, 0o644);
        await fs.rename(stage, path.join(dir, got.digest.slice(7)));
        this.written.add(got.digest);
      }
      return got;
    } finally {
      await fs.rm(stage, { force: true });
    }
  }

  protected async writeIndex(bytes: Buffer): Promise<void> {
    await this.putFile('index.json', bytes);
  }

  protected async cleanup(): Promise<void> {}
}

/** Creates a layout writer; EXISTS if `path` exists, NOT_FOUND if its directory does not. */
export async function createLayoutWriter(opts: LayoutWriterOptions): Promise<OciLayoutWriter> {
  const out = await AtomicOutput.create(opts.path, { overwrite: opts.overwrite });
  try {
    return opts.kind === 'archive'
      ? await ArchiveWriter.create(out, opts.refName)
      : await DirWriter.create(out, opts.refName);
  } catch (e) {
    await out.abort();
    throw e;
  }
}
