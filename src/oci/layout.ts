import { closeSync, openSync, promises as fs, readSync, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { OdhError, type ErrorContext } from '../util/errors.js';
import { indexTarFile, type TarEntry } from '../tar/index.js';
import { checkDigest, DigestHasher, parseDigest, VerifyingStream } from './digest.js';
import { parseIndex, type ImageIndex } from './types.js';

/** Largest index.json we read (it is JSON held in memory). */
export const MAX_INDEX_BYTES = 4 << 20;

/** A blob named by its digest, optionally with the size its descriptor promises. */
export type BlobRef = string | { digest: string; size?: number };

/** Where a blob's bytes live, for callers that want their own positional reads. */
export interface BlobLocation {
  /** The blob file (dir form) or the archive (archive form). */
  file: string;
  /** Byte offset of the blob inside `file`. */
  offset: number;
  size: number;
}

/**
 * Read access to an OCI image layout, as a directory (`oci:`) or a tar (`oci-archive:`). Every byte
 * handed out is verified against its digest (and descriptor size) — at the end of a stream, or
 * before returning a buffer.
 */
export interface OciLayoutReader {
  /** The directory or archive path, for messages. */
  readonly where: string;
  readonly kind: 'dir' | 'archive' | 'registry';
  /** index.json bytes and parsed value (cached). */
  index(): Promise<{ raw: Buffer; index: ImageIndex }>;
  hasBlob(d: BlobRef): Promise<boolean>;
  /** Stored size of a blob; NOT_FOUND when absent. */
  blobSize(d: BlobRef): Promise<number>;
  /** Where the blob's bytes are (unverified: callers reading this way verify themselves). */
  locateBlob(d: BlobRef): Promise<BlobLocation>;
  /**
   * Streams a blob. The stream fails with DIGEST_MISMATCH ("blob digest mismatch: expected …,
   * got …") at its end if the bytes are wrong; a descriptor size different from the stored size
   * fails at once. NOT_FOUND when absent.
   */
  openBlob(d: BlobRef): Promise<Readable>;
  /** Whole blob in memory, verified; LIMIT if larger than `maxBytes`. For manifests and configs. */
  readBlobBytes(d: BlobRef, maxBytes: number): Promise<Buffer>;
  /** Reads a blob once, discarding the bytes, to check digest and size (before positional use). */
  verifyBlob(d: BlobRef): Promise<void>;
  close(): Promise<void>;
}

/** A layout on this machine (a directory or an archive): blobs can also be read with blocking reads. */
export interface LocalLayoutReader extends OciLayoutReader {
  /**
   * A blob read with blocking positional reads (its own file descriptor, opened when iterated and
   * closed at the end), verified as `openBlob`'s stream is: the size at once, the digest at the end.
   * Each chunk is valid only until the next one is pulled (one buffer is read into again).
   * For a thread whose only job is this blob (a layer worker): a read through the thread pool
   * costs a round trip to another thread per chunk.
   */
  openBlobBlocking(d: BlobRef): Promise<Iterable<Buffer>>;
}

interface Member {
  fh: FileHandle;
  ownsHandle: boolean;
  file: string;
  offset: number;
  size: number;
}

function refOf(d: BlobRef): { digest: string; size?: number } {
  return typeof d === 'string' ? { digest: d } : d;
}

/**
 * Bytes per positional read. Every read is a fresh buffer (the consumer keeps it); reads of 1 MiB
 * left glibc's heap far larger than what was live: `odh composefs id` of the 1 GiB bench image
 * peaked at 204–212 MiB RSS with 1 MiB reads and 181–197 MiB with 256 KiB, its speed within this
 * machine's run-to-run spread.
 */
const READ_BYTES = 256 << 10;

/** A blob file shorter than its size: TRUNCATED at the offset where it ends. */
function blobEnds(done: number, size: number, ctx: ErrorContext): OdhError {
  return new OdhError('TRUNCATED', `blob ends after ${done} of ${size} bytes`, { ...ctx, offset: done });
}

function readFailed(e: unknown, ctx: ErrorContext): OdhError {
  return new OdhError('IO', `read failed: ${(e as Error).message}`, ctx);
}

/** Streams `size` bytes at `offset` with positional reads; closes the handle at the end if owned. */
function positionalStream(m: Member, ctx: ErrorContext): Readable {
  let done = 0;
  const release = () => (m.ownsHandle ? m.fh.close().catch(() => {}) : Promise.resolve());
  return new Readable({
    highWaterMark: READ_BYTES,
    read(want) {
      const n = Math.min(Math.max(want, 64 << 10), m.size - done);
      if (n <= 0) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafe(n);
      m.fh.read(buf, 0, n, m.offset + done).then(
        ({ bytesRead }) => {
          if (bytesRead === 0) {
            this.destroy(blobEnds(done, m.size, ctx));
            return;
          }
          done += bytesRead;
          this.push(buf.subarray(0, bytesRead));
        },
        (e: Error) => this.destroy(readFailed(e, ctx)),
      );
    },
    destroy(err, cb) {
      // release() drops close errors, so the second handler is only a guard: cb must run exactly once, or the
      // stream never finishes destroying and the caller's error is lost.
      release().then(
        () => cb(err),
        (e: Error) => cb(err ?? e),
      );
    },
  });
}

/**
 * The chunks of `openBlobBlocking`, DIGEST_MISMATCH at the end. Every chunk is read into the same
 * buffer: it is valid until the next one is pulled (fresh buffers cost a page fault per 4 KiB).
 */
function* blockingBlobChunks(
  m: Member,
  want: { digest: string; size: number },
  ctx: ErrorContext,
): Generator<Buffer, void, undefined> {
  let fd: number;
  try {
    fd = openSync(m.file, 'r');
  } catch (e) {
    throw new OdhError('IO', `cannot open: ${(e as Error).message}`, ctx);
  }
  try {
    const hasher = new DigestHasher(parseDigest(want.digest).algorithm);
    const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, want.size));
    while (hasher.size < want.size) {
      const done = hasher.size;
      let n: number;
      try {
        n = readSync(fd, buf, 0, Math.min(buf.length, want.size - done), m.offset + done);
      } catch (e) {
        throw readFailed(e, ctx);
      }
      if (n === 0) {
        throw blobEnds(done, want.size, ctx);
      }
      const chunk = buf.subarray(0, n);
      hasher.update(chunk);
      yield chunk;
    }
    checkDigest(want, { digest: hasher.digest(), size: hasher.size }, ctx);
  } finally {
    closeSync(fd);
  }
}

abstract class LayoutReaderBase implements LocalLayoutReader {
  abstract readonly where: string;
  abstract readonly kind: 'dir' | 'archive';
  private cachedIndex: { raw: Buffer; index: ImageIndex } | undefined;

  /** Opens a member by its layout-relative name; undefined when absent. */
  protected abstract member(name: string): Promise<Member | undefined>;
  abstract close(): Promise<void>;

  protected blobName(d: BlobRef): string {
    const p = parseDigest(refOf(d).digest, 'blob digest', { file: this.where });
    return `blobs/${p.algorithm}/${p.hex}`;
  }

  private async need(d: BlobRef): Promise<Member> {
    const name = this.blobName(d);
    const m = await this.member(name);
    if (!m)
      throw new OdhError('NOT_FOUND', `blob ${refOf(d).digest} not found in layout`, { file: this.where });
    return m;
  }

  private async release(m: Member) {
    if (m.ownsHandle) await m.fh.close();
  }

  async index(): Promise<{ raw: Buffer; index: ImageIndex }> {
    if (this.cachedIndex) return this.cachedIndex;
    const m = await this.member('index.json');
    if (!m) throw new OdhError('NOT_FOUND', 'index.json not found in layout', { file: this.where });
    try {
      if (m.size > MAX_INDEX_BYTES) {
        throw new OdhError('LIMIT', `index.json is ${m.size} bytes, limit ${MAX_INDEX_BYTES}`, {
          file: this.where,
        });
      }
      const raw = await readExact(m, { file: this.where });
      this.cachedIndex = { raw, index: parseIndex(raw, 'index.json', { file: this.where }) };
      return this.cachedIndex;
    } finally {
      await this.release(m);
    }
  }

  async hasBlob(d: BlobRef): Promise<boolean> {
    const m = await this.member(this.blobName(d));
    if (m) await this.release(m);
    return m !== undefined;
  }

  async blobSize(d: BlobRef): Promise<number> {
    const m = await this.need(d);
    await this.release(m);
    return m.size;
  }

  async locateBlob(d: BlobRef): Promise<BlobLocation> {
    const m = await this.need(d);
    await this.release(m);
    return { file: m.file, offset: m.offset, size: m.size };
  }

  private checkSize(d: BlobRef, m: Member, ctx: ErrorContext) {
    const want = refOf(d).size;
    if (want !== undefined && want !== m.size) {
      throw new OdhError(
        'DIGEST_MISMATCH',
        `blob size mismatch for ${refOf(d).digest}: descriptor says ${want} bytes, layout has ${m.size}`,
        ctx,
      );
    }
  }

  async openBlob(d: BlobRef): Promise<Readable> {
    const ctx = { file: this.where, path: this.blobName(d) };
    const m = await this.need(d);
    try {
      this.checkSize(d, m, ctx);
    } catch (e) {
      await this.release(m);
      throw e;
    }
    const verifier = new VerifyingStream({ digest: refOf(d).digest, size: m.size }, ctx);
    return pipeline(positionalStream(m, ctx), verifier, () => {});
  }

  async openBlobBlocking(d: BlobRef): Promise<Iterable<Buffer>> {
    const ctx = { file: this.where, path: this.blobName(d) };
    const m = await this.need(d);
    try {
      this.checkSize(d, m, ctx);
    } finally {
      await this.release(m);
    }
    const want = { digest: refOf(d).digest, size: m.size };
    return { [Symbol.iterator]: () => blockingBlobChunks(m, want, ctx) };
  }

  async verifyBlob(d: BlobRef): Promise<void> {
    const s = await this.openBlob(d);
    for await (const _ of s) void _;
  }

  async readBlobBytes(d: BlobRef, maxBytes: number): Promise<Buffer> {
    const ctx = { file: this.where, path: this.blobName(d) };
    const m = await this.need(d);
    try {
      this.checkSize(d, m, ctx);
      if (m.size > maxBytes) {
        throw new OdhError('LIMIT', `blob ${refOf(d).digest} is ${m.size} bytes, limit ${maxBytes}`, ctx);
      }
      const raw = await readExact(m, ctx);
      const h = new DigestHasher(parseDigest(refOf(d).digest).algorithm).update(raw);
      checkDigest(refOf(d), { digest: h.digest(), size: h.size }, ctx);
      return raw;
    } finally {
      await this.release(m);
    }
  }
}

async function readExact(m: Member, ctx: ErrorContext): Promise<Buffer> {
  const buf = Buffer.alloc(m.size);
  let got = 0;
  while (got < m.size) {
    const { bytesRead } = await m.fh.read(buf, got, m.size - got, m.offset + got);
    if (bytesRead === 0) throw new OdhError('TRUNCATED', `member ends after ${got} of ${m.size} bytes`, ctx);
    got += bytesRead;
  }
  return buf;
}

class DirLayoutReader extends LayoutReaderBase {
  readonly kind = 'dir' as const;
  constructor(readonly where: string) {
    super();
  }

  protected async member(name: string): Promise<Member | undefined> {
    const file = path.join(this.where, ...name.split('/'));
    let fh: FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new OdhError('IO', `cannot open ${name}: ${(e as Error).message}`, { file: this.where });
    }
    let st: Stats;
    try {
      st = await fh.stat();
      if (!st.isFile()) throw new OdhError('FORMAT', `${name} is not a regular file`, { file: this.where });
    } catch (e) {
      await fh.close();
      throw e;
    }
    return { fh, ownsHandle: true, file, offset: 0, size: st.size };
  }

  async close(): Promise<void> {}
}

/** spec oci-delta §4.1 "Reader leniency": accept names with and without a `./` prefix. */
export function normalizeArchiveName(name: Buffer): string {
  let s = name.toString('utf8');
  while (s.startsWith('./')) s = s.slice(2);
  return s;
}

class ArchiveLayoutReader extends LayoutReaderBase {
  readonly kind = 'archive' as const;
  constructor(
    readonly where: string,
    private readonly fh: FileHandle,
    private readonly members: Map<string, TarEntry>,
  ) {
    super();
  }

  protected async member(name: string): Promise<Member | undefined> {
    let e = this.members.get(name);
    // A hardlink member points at an earlier member (one level, as tar writes them).
    if (e?.type === 'hardlink') e = this.members.get(normalizeArchiveName(e.linkpath));
    if (!e) return undefined;
    if (e.type !== 'file' || e.sparse) {
      throw new OdhError('FORMAT', `archive member ${name} is not a regular file`, { file: this.where });
    }
    return {
      fh: this.fh,
      ownsHandle: false,
      file: this.where,
      offset: Number(e.dataOffset),
      size: Number(e.size),
    };
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** Opens an OCI layout directory (`oci:DIR`). */
export async function openLayoutDir(dir: string): Promise<LocalLayoutReader> {
  const st = await fs.stat(dir).catch(() => null);
  if (!st) throw new OdhError('NOT_FOUND', 'OCI layout directory not found', { file: dir });
  if (!st.isDirectory()) throw new OdhError('FORMAT', 'OCI layout path is not a directory', { file: dir });
  return new DirLayoutReader(dir);
}

/**
 * Opens an OCI layout tar (`oci-archive:PATH`): indexes it once (positional reads, content skipped),
 * then serves members by positional reads from one file handle. Later duplicates of a name win.
 */
export async function openLayoutArchive(tarPath: string): Promise<LocalLayoutReader> {
  const entries = await indexTarFile(tarPath);
  const members = new Map<string, TarEntry>();
  for (const e of entries) {
    if (e.type === 'file' || e.type === 'hardlink') members.set(normalizeArchiveName(e.path), e);
  }
  const fh = await fs.open(tarPath, 'r');
  try {
    await checkArchiveEnd(fh, entries, tarPath);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return new ArchiveLayoutReader(tarPath, fh, members);
}

/**
 * A cut inside a member is TRUNCATED already (tar reader); a cut exactly between two members leaves
 * a tar that reads cleanly but lacks the end-of-archive blocks every tar writer (Go archive/tar,
 * GNU tar, skopeo) ends with — the later members (often index.json) would then look merely absent.
 */
async function checkArchiveEnd(fh: FileHandle, entries: TarEntry[], file: string): Promise<void> {
  const size = BigInt((await fh.stat()).size);
  let end = 0n;
  for (const e of entries) {
    const after = e.dataOffset + ((e.size + 511n) / 512n) * 512n;
    if (after > end) end = after;
  }
  if (size === end) {
    const what = entries.length
      ? `after its last member ${JSON.stringify(entries.at(-1)!.path.toString())}`
      : 'before any member';
    throw new OdhError(
      'TRUNCATED',
      `oci-archive is truncated at offset ${size}: it ends ${what} without the end-of-archive blocks`,
      { file, offset: size },
    );
  }
}
