import binding from 'zstd-napi/binding.js';
import { OP_NAMES, OpCode, type OpCodeValue, type OpName } from '../ops.js';
import { TARDIFF_MAGIC_V1, TARDIFF_MAGIC_V2 } from '../stream.js';
import { encodeUvarint } from '../varint.js';
// spec oci-delta §2.2: appliers refuse AddData ops longer than this, so the writer splits them.
import { ADD_DATA_MAX } from '../op-rules.js';

/**
 * Writes a tar-diff: the 8-byte header, then one zstd stream of op records (spec oci-delta §2.1–2.2).
 * Keeps the state upstream's writer keeps (spec §5.4 "Writer details"): literal bytes are buffered
 * and leave as one Data op when 4 MiB accumulate or before any other op; Open only when the name
 * changes; Seek only when the wanted offset differs from the tracked position.
 */

/** spec oci-delta §5.4: Data is flushed once this much is buffered. */
export const DATA_FLUSH = 4 * 1024 * 1024;
const OUT_CHUNK = 1 << 20;
const DIFF_PIECE = 1 << 20;
/** `ZSTD_c_srcSizeHint`, experimental (libzstd 1.5.x). */
const C_SRC_SIZE_HINT = 1004;

export type OpHistogram = Record<OpName, number>;

export class OpStreamWriter {
  readonly histogram: OpHistogram = Object.fromEntries(OP_NAMES.map((n) => [n, 0])) as OpHistogram;
  private readonly cctx = new binding.CCtx();
  private readonly pending = Buffer.allocUnsafe(DATA_FLUSH);
  private pendingLen = 0;
  private readonly out = Buffer.allocUnsafe(OUT_CHUNK);
  private readonly diffPiece = Buffer.allocUnsafe(DIFF_PIECE);
  private current: Buffer | null = null;
  private position = 0;
  /** Bytes handed to the sink (header included). */
  bytes = 0;
  /** Open names used, in first-use order. */
  readonly opened: Buffer[] = [];
  private readonly openedKeys = new Set<string>();
  private started = false;

  constructor(
    private readonly sink: (chunk: Buffer) => Promise<void>,
    readonly version: 1 | 2,
    level = 3,
    sizeHint?: number,
  ) {
    this.cctx.setParameter(binding.CParameter.compressionLevel, level);
    // without a size the high levels size their tables for any input (~100 MB per writer at 19);
    // the hint lets zstd pick the tables for the literal bytes expected (the output is the same)
    if (sizeHint !== undefined && sizeHint > 0) {
      this.cctx.setParameter(C_SRC_SIZE_HINT as binding.CParameter, Math.min(sizeHint, 0x7fffffff));
    }
    // spec oci-delta §2.1: any valid zstd stream; the checksum is optional and the layer digest
    // already covers the output, so its 4 bytes are saved
    this.cctx.setParameter(binding.CParameter.checksumFlag, 0);
  }

  /** The name of the current source file, if any. */
  get currentName(): Buffer | null {
    return this.current;
  }

  /** The tracked source position. */
  get sourcePosition(): number {
    return this.position;
  }

  private async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.emit(this.version === 2 ? TARDIFF_MAGIC_V2 : TARDIFF_MAGIC_V1);
  }

  private async emit(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    await this.sink(chunk);
  }

  /** Literal bytes of the new tar. */
  async data(bytes: Uint8Array): Promise<void> {
    let from = 0;
    while (from < bytes.length) {
      const n = Math.min(bytes.length - from, DATA_FLUSH - this.pendingLen);
      this.pending.set(bytes.subarray(from, from + n), this.pendingLen);
      this.pendingLen += n;
      from += n;
      if (this.pendingLen === DATA_FLUSH) await this.flushData();
    }
  }

  private async flushData(): Promise<void> {
    if (this.pendingLen === 0) return;
    const n = this.pendingLen;
    this.pendingLen = 0;
    this.histogram.Data++;
    await this.compress(Buffer.concat([Buffer.from([OpCode.Data]), encodeUvarint(n)]));
    await this.compress(this.pending.subarray(0, n));
  }

  private async op(code: OpCodeValue, operand: Uint8Array | number): Promise<void> {
    await this.flushData();
    this.histogram[OP_NAMES[code]!]++;
    if (operand instanceof Uint8Array) {
      await this.compress(Buffer.concat([Buffer.from([code]), encodeUvarint(operand.length)]));
      await this.compress(operand);
    } else {
      await this.compress(Buffer.concat([Buffer.from([code]), encodeUvarint(operand)]));
    }
  }

  /** Selects `name` unless it is already current (the position then restarts at 0). */
  async open(name: Buffer): Promise<void> {
    if (this.current?.equals(name)) return;
    await this.op(OpCode.Open, name);
    this.current = name;
    this.position = 0;
    const key = name.toString('latin1');
    if (!this.openedKeys.has(key)) {
      this.openedKeys.add(key);
      this.opened.push(name);
    }
  }

  async seek(position: number): Promise<void> {
    if (position === this.position) return;
    await this.op(OpCode.Seek, position);
    this.position = position;
  }

  /**
   * Seek emitted even when the position does not change: upstream's bsdiff encoding always writes
   * the Seek closing a triple (spec oci-delta §5.5).
   */
  async seekAlways(position: number): Promise<void> {
    await this.op(OpCode.Seek, position);
    this.position = position;
  }

  /**
   * AddData of new[newAt..+length) − old[oldAt..+length), computed and compressed in pieces so no
   * file-sized buffer is needed. Emitted even when `length` is 0 (spec oci-delta §5.5); longer
   * than the appliers' 100 MiB limit (§2.2) it is split into several ops (upstream does not split).
   */
  async addDiff(
    neu: Uint8Array,
    old: Uint8Array,
    span: { newAt: number; oldAt: number; length: number },
  ): Promise<void> {
    const { newAt, oldAt, length } = span;
    let done = 0;
    do {
      const n = Math.min(length - done, ADD_DATA_MAX);
      await this.flushData();
      this.histogram.AddData++;
      await this.compress(Buffer.concat([Buffer.from([OpCode.AddData]), encodeUvarint(n)]));
      for (let i = 0; i < n; i += DIFF_PIECE) {
        const k = Math.min(DIFF_PIECE, n - i);
        const piece = this.diffPiece;
        const a = newAt + done + i;
        const b = oldAt + done + i;
        for (let j = 0; j < k; j++) piece[j] = (neu[a + j]! - old[b + j]!) & 0xff;
        await this.compress(piece.subarray(0, k));
      }
      this.position += n;
      done += n;
    } while (done < length);
  }

  async copy(size: number): Promise<void> {
    if (size === 0) return;
    await this.op(OpCode.Copy, size);
    this.position += size;
  }

  /** A ZstdDict patch against the whole current source of `sourceSize` bytes (v2 only). */
  async zstdDict(patch: Buffer, sourceSize: number): Promise<void> {
    if (this.version !== 2) throw new Error('ZstdDict op in a tardf1 stream');
    await this.op(OpCode.ZstdDict, patch);
    // spec oci-delta §5.4: the applier leaves the position at the end of the source.
    this.position = sourceSize;
  }

  private async compress(src: Uint8Array, end = false): Promise<void> {
    await this.start();
    let input = src;
    for (;;) {
      const [ret, produced, consumed] = this.cctx.compressStream2(
        this.out,
        input,
        end ? binding.EndDirective.end : binding.EndDirective.continue,
      );
      input = input.subarray(consumed);
      if (produced > 0) {
        // a copy: the sink may keep the chunk while `out` is reused
        await this.emit(Buffer.from(this.out.subarray(0, produced)));
      }
      if (end ? ret === 0 : input.length === 0) return;
    }
  }

  /** Flushes buffered Data and ends the zstd stream. */
  async finish(): Promise<void> {
    await this.flushData();
    await this.compress(Buffer.alloc(0), true);
  }
}
