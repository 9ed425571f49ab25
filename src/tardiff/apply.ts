import { OdhError, isOdhError, type ErrorContext } from '../util/errors.js';
import type { DataSource, DataSourceFile } from './data-source.js';
import { OP_NAMES, OpCode, type OpName, type OpReader } from './ops.js';
import { checkOp } from './op-rules.js';
import { OutputWriter, PIECE_MAX, type OutputWriterOptions, type TarDiffSink } from './output.js';
import { cleanSourceName } from './path.js';
import { openTarDiff, type TarDiffInput } from './stream.js';
import { DICT_SOURCE_MAX, ZstdDictDecoder } from './zstd.js';

export type { TarDiffSink } from './output.js';
export type { TarDiffInput } from './stream.js';

const SMALL_DATA = 256n << 10n;
const PROGRESS_EVERY = 8n << 20n;

export interface ApplyProgress {
  bytesOut: bigint;
  /** Bytes of the delta file consumed so far. */
  deltaBytesRead: number;
}

export interface ApplyOptions extends OutputWriterOptions {
  onProgress?: (p: ApplyProgress) => void;
  /** Names the layer (or file) in every error message. */
  where?: string;
}

export interface ApplyResult {
  bytesOut: bigint;
  /** How many ops of each kind were applied (all six names present). */
  ops: Record<OpName, number>;
}

export function emptyOpHistogram(): Record<OpName, number> {
  return Object.fromEntries(OP_NAMES.map((n) => [n, 0])) as Record<OpName, number>;
}

/** The current source file and read position (spec oci-delta §2.4 `cur`, `pos`). */
interface Cursor {
  file: DataSourceFile;
  pos: bigint;
}

/**
 * Applies a tar-diff (spec oci-delta §2.4): streams the reconstructed bytes to `out`, reading old bytes
 * from `source`. Memory stays bounded (Data/Copy/AddData stream in ≤ 1 MiB pieces; only a ZstdDict
 * source, ≤ 512 MiB, is held whole). `out` is not ended; a Writable's backpressure is respected.
 * Every failure is an OdhError naming the layer (`where`), op index and offset.
 */
export async function applyTarDiff(
  delta: TarDiffInput,
  source: DataSource,
  out: TarDiffSink,
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const layerCtx: ErrorContext = opts.where !== undefined ? { layer: opts.where } : {};
  const stream = await openTarDiff(delta, layerCtx);
  const writer = new OutputWriter(out, layerCtx, opts);
  const dict = new ZstdDictDecoder();
  const dictMemory = new DictionaryMemory();
  const histogram = emptyOpHistogram();
  let cur: Cursor | null = null;
  const recent = new RecentFiles();
  let nextProgress = PROGRESS_EVERY;
  try {
    for (let op = await stream.ops.next(); op; op = await stream.ops.next()) {
      histogram[op.name]++;
      const ctx: ErrorContext = { layer: opts.where, op: op.index, offset: op.offset };
      checkOp(op, stream.version, cur !== null, ctx);
      switch (op.code) {
        case OpCode.Data:
          // Small payloads (tar headers, small files) in one piece, large ones streamed.
          if (op.size < SMALL_DATA) await writer.write(await stream.ops.readPayload());
          else for await (const chunk of stream.ops.payload()) await writer.write(chunk);
          break;
        case OpCode.Open: {
          const name = cleanSourceName(await stream.ops.readPayload(), ctx);
          cur = null;
          cur = { file: await recent.open(source, name, ctx), pos: 0n };
          break;
        }
        case OpCode.Copy:
          await copyOp(current(cur), op.size, writer, ctx);
          break;
        case OpCode.AddData:
          await addDataOp(current(cur), op.size, { ops: stream.ops, writer }, ctx);
          break;
        case OpCode.Seek:
          // Past EOF is allowed; the next read fails (spec oci-delta §2.2).
          current(cur).pos = op.size;
          break;
        case OpCode.ZstdDict: {
          const c = current(cur);
          const whole = await readWholeSource(c.file, dictMemory, ctx);
          const output = dict.decode(stream.ops.payload(), whole, ctx, () => writer.piece());
          for await (const chunk of output) await writer.write(chunk);
          // spec oci-delta §9: the position is at end of file afterwards.
          c.pos = BigInt(whole.length);
          break;
        }
      }
      if (opts.onProgress && writer.written >= nextProgress) {
        nextProgress = writer.written + PROGRESS_EVERY;
        opts.onProgress({ bytesOut: writer.written, deltaBytesRead: stream.deltaBytesRead() });
      }
    }
    await writer.flush();
    opts.onProgress?.({ bytesOut: writer.written, deltaBytesRead: stream.deltaBytesRead() });
    return { bytesOut: writer.written, ops: histogram };
  } finally {
    writer.release();
    await recent.closeAll();
  }
}

/**
 * The last few source files opened, kept open. An Open costs a path resolution and an open(2)
 * (tens of µs) while its op takes 2–3 bytes of zstd-compressed delta, so a small delta of a million
 * Opens of one name (or of a few names in turn) would cost seconds of CPU; with this, a run pays one
 * open per distinct recent name. (Cycling through more names than kept still costs an open per
 * Open: bounded per op, like every op, not per compressed input byte, which zstd cannot give.)
 */
class RecentFiles {
  private readonly files = new Map<string, DataSourceFile>(); // Map order = least recently used first

  constructor(private readonly max = 8) {}

  async open(source: DataSource, name: Buffer, ctx: ErrorContext): Promise<DataSourceFile> {
    const key = name.toString('latin1');
    const hit = this.files.get(key);
    if (hit) {
      this.files.delete(key);
      this.files.set(key, hit);
      return hit;
    }
    const file = await openSource(source, name, ctx);
    this.files.set(key, file);
    if (this.files.size > this.max) {
      const [oldest, f] = this.files.entries().next().value as [string, DataSourceFile];
      this.files.delete(oldest);
      await f.close();
    }
    return file;
  }

  async closeAll(): Promise<void> {
    for (const f of this.files.values()) await f.close().catch(() => {});
    this.files.clear();
  }
}

/** The current file of an op `checkOp` let through (it refuses every file op before an Open). */
function current(cur: Cursor | null): Cursor {
  if (!cur) throw new Error('internal: a file op passed checkOp without a current file');
  return cur;
}

async function openSource(source: DataSource, name: Buffer, ctx: ErrorContext): Promise<DataSourceFile> {
  try {
    return await source.open(name);
  } catch (e) {
    // Keep the source's own message (it names the file) and add where in the delta it was asked for.
    if (isOdhError(e)) throw new OdhError(e.code, e.message, { layer: ctx.layer, op: ctx.op }, { cause: e });
    const msg = e instanceof Error ? e.message : String(e);
    throw new OdhError(
      'IO',
      `cannot open source file: ${msg}`,
      { ...ctx, file: name.toString() },
      { cause: e },
    );
  }
}

/** Reads exactly `length` bytes unless the file ends first; returns the count read. */
async function readFully(file: DataSourceFile, buf: Buffer, length: number, pos: bigint): Promise<number> {
  if (pos > BigInt(Number.MAX_SAFE_INTEGER)) return 0;
  let done = 0;
  let at = Number(pos);
  while (done < length) {
    const n = await file.readAt(buf, done, length - done, at);
    if (n <= 0) break;
    done += n;
    at += n;
  }
  return done;
}

/** A Copy or AddData that ran out of source bytes: `got` of the `wanted` bytes were there. */
function sourceEof(
  c: Cursor,
  read: { op: 'Copy' | 'AddData'; wanted: bigint; got: bigint },
  ctx: ErrorContext,
): never {
  throw new OdhError(
    'TRUNCATED',
    `unexpected EOF in source file: ${read.op} needs ${read.wanted} bytes at offset ${c.pos}, ` +
      `only ${read.got} available (file size ${c.file.size})`,
    { ...ctx, file: c.file.name, offset: c.pos },
  );
}

/** One Copy or AddData op reading the current source file from its position on. */
interface SourceRead {
  c: Cursor;
  writer: OutputWriter;
  op: 'Copy' | 'AddData';
  /** The op's size, for the EOF message. */
  wanted: bigint;
  /** Where the op started: the position is put back there when the source ends early. */
  startPos: bigint;
  ctx: ErrorContext;
}

/** Writes the next `n` source bytes, each plus `add[i]` mod 256 when given (AddData). */
async function emitSource(r: SourceRead, n: number, add?: Buffer): Promise<void> {
  const { c, writer } = r;
  const small = OutputWriter.isSmall(n);
  const buf = small ? await writer.reserve(n) : await writer.piece(n);
  const got = await readFully(c.file, buf, n, c.pos);
  if (got < n) {
    const have = c.pos - r.startPos + BigInt(got);
    c.pos = r.startPos;
    sourceEof(c, { op: r.op, wanted: r.wanted, got: have }, r.ctx);
  }
  if (add) for (let i = 0; i < n; i++) buf[i] = (buf[i]! + add[i]!) & 0xff;
  if (small) await writer.commit(n);
  else await writer.write(buf);
  c.pos += BigInt(n);
}

/** spec oci-delta §2.2 op 2: the next `size` source bytes, in ≤ 1 MiB pieces. */
async function copyOp(c: Cursor, size: bigint, writer: OutputWriter, ctx: ErrorContext): Promise<void> {
  const r: SourceRead = { c, writer, op: 'Copy', wanted: size, startPos: c.pos, ctx };
  for (let left = size; left > 0n;) {
    const n = left < BigInt(PIECE_MAX) ? Number(left) : PIECE_MAX;
    await emitSource(r, n);
    left -= BigInt(n);
  }
}

/** spec oci-delta §2.2 op 3: out[i] = (data[i] + source[i]) mod 256, streamed chunk by chunk. */
async function addDataOp(
  c: Cursor,
  size: bigint,
  io: { ops: OpReader; writer: OutputWriter },
  ctx: ErrorContext,
): Promise<void> {
  const r: SourceRead = { c, writer: io.writer, op: 'AddData', wanted: size, startPos: c.pos, ctx };
  for await (const data of io.ops.payload()) await emitSource(r, data.length, data);
}

/**
 * Largest dictionary memory kept for the next ZstdDict op: upstream's default `--max-zstd-diff-size`
 * (spec oci-delta §6), so layers applied side by side each keep at most this much between ops.
 */
const DICT_REUSE_MAX = 128 << 20;

/**
 * Memory for ZstdDict dictionaries, reused by the layer's next ZstdDict op: fresh pages for a
 * 128 MiB source cost about as much as reading it (measured: four 128 MiB reads 234 ms into fresh
 * buffers, 109 ms into one reused). libzstd copies the dictionary, so nothing refers to this memory
 * once an op is done; it lives as long as the layer's apply. Larger sources get memory of their own.
 */
class DictionaryMemory {
  private buf: Buffer | null = null;

  /** `size` bytes, valid until the next call. */
  take(size: number): Buffer {
    if (size > DICT_REUSE_MAX) return Buffer.allocUnsafe(size);
    if (this.buf === null || this.buf.length < size) this.buf = Buffer.allocUnsafe(size);
    return this.buf.subarray(0, size);
  }
}

/**
 * The whole current file as the ZstdDict dictionary (spec oci-delta §2.2: ≤ 1 << 29 bytes), read
 * into the layer's dictionary memory.
 */
async function readWholeSource(
  file: DataSourceFile,
  memory: DictionaryMemory,
  ctx: ErrorContext,
): Promise<Buffer> {
  if (file.size > DICT_SOURCE_MAX) {
    throw new OdhError(
      'LIMIT',
      `Source file too large for ZstdDict (${file.size} > ${DICT_SOURCE_MAX} bytes)`,
      {
        ...ctx,
        file: file.name,
      },
    );
  }
  const buf = memory.take(file.size);
  const got = await readFully(file, buf, file.size, 0n);
  if (got < file.size) {
    throw new OdhError(
      'TRUNCATED',
      `source file shrank while read for ZstdDict (${got} of ${file.size} bytes)`,
      {
        ...ctx,
        file: file.name,
      },
    );
  }
  return buf;
}
