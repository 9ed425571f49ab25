import { OdhError, isOdhError, type ErrorContext } from '../util/errors.js';
import { UvarintDecoder, encodeUvarint } from './varint.js';

/**
 * tar-diff op records (spec oci-delta §2.2): `op:u8, size:uvarint, data[size]` where only Data, Open,
 * AddData and ZstdDict carry `data`; Copy and Seek use `size` itself as their operand.
 */
export const OpCode = {
  Data: 0,
  Open: 1,
  Copy: 2,
  AddData: 3,
  Seek: 4,
  ZstdDict: 5,
} as const;
export type OpName = keyof typeof OpCode;
export type OpCodeValue = (typeof OpCode)[OpName];

/** Op names indexed by code. */
export const OP_NAMES: readonly OpName[] = ['Data', 'Open', 'Copy', 'AddData', 'Seek', 'ZstdDict'];

export function opHasPayload(code: number): boolean {
  return code === OpCode.Data || code === OpCode.Open || code === OpCode.AddData || code === OpCode.ZstdDict;
}

/**
 * Encodes one op record. Payload ops take their bytes (the size is their length); Copy and Seek take
 * their numeric operand.
 */
export function encodeOp(code: OpCodeValue, operand: Uint8Array | bigint | number): Buffer {
  if (opHasPayload(code)) {
    if (!(operand instanceof Uint8Array)) throw new TypeError(`${OP_NAMES[code]} needs payload bytes`);
    return Buffer.concat([Buffer.from([code]), encodeUvarint(operand.length), operand]);
  }
  if (operand instanceof Uint8Array) throw new TypeError(`${OP_NAMES[code]} takes a number, not bytes`);
  return Buffer.concat([Buffer.from([code]), encodeUvarint(operand)]);
}

/** One decoded op header; the payload (if any) is read from the OpReader before the next op. */
export interface OpHeader {
  /** 0-based position of the op in the stream. */
  index: number;
  code: OpCodeValue;
  name: OpName;
  /** The varint: payload length for payload ops, operand for Copy/Seek. */
  size: bigint;
  /** Offset of the op byte in the decompressed op stream. */
  offset: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * Streaming op decoder over the decompressed op stream. Memory stays bounded: payloads are handed out
 * as slices of the incoming chunks (`payload()`), and only read whole (`readPayload()`) where the
 * caller has checked a bound. `next()` skips whatever part of the previous payload was not read.
 */
export class OpReader {
  private readonly it: AsyncIterator<Buffer>;
  private readonly ctx: ErrorContext;
  private readonly varint = new UvarintDecoder();
  private cur: Buffer = EMPTY;
  private pos = 0;
  /** Decompressed offset of cur[0]. */
  private base = 0;
  private count = 0;
  private op: OpHeader | null = null;
  /** Unread payload bytes of `op`. */
  private remaining = 0n;

  constructor(chunks: AsyncIterable<Buffer>, ctx: ErrorContext = {}) {
    this.it = chunks[Symbol.asyncIterator]();
    this.ctx = ctx;
  }

  /** Offset in the decompressed op stream of the next unread byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Next op, or null at a clean end of stream (exactly at an op boundary). */
  async next(): Promise<OpHeader | null> {
    if (this.remaining > 0n) await this.skipPayload();
    this.op = null;
    // `pos < length` checks first: awaiting only when a chunk is exhausted keeps the per-op cost low.
    if (this.pos >= this.cur.length && !(await this.fill())) return null;
    const offset = this.offset;
    const index = this.count++;
    const code = this.cur[this.pos++]!;
    let size: bigint | undefined;
    this.varint.reset();
    try {
      do {
        if (this.pos >= this.cur.length && !(await this.fill())) {
          throw new OdhError('TRUNCATED', 'tar-diff op stream truncated inside a varint', {
            ...this.ctx,
            op: index,
            offset: this.offset,
          });
        }
        size = this.varint.push(this.cur[this.pos++]!);
      } while (size === undefined);
    } catch (e) {
      if (isOdhError(e) && e.code === 'FORMAT') {
        throw new OdhError('FORMAT', 'invalid varint in tar-diff op: overflows 64 bits', {
          ...this.ctx,
          op: index,
          offset,
        });
      }
      throw e;
    }
    if (code >= OP_NAMES.length) {
      throw new OdhError('FORMAT', `unexpected tar-diff op ${code}`, { ...this.ctx, op: index, offset });
    }
    const op: OpHeader = { index, code: code as OpCodeValue, name: OP_NAMES[code]!, size, offset };
    this.op = op;
    this.remaining = opHasPayload(code) ? size : 0n;
    return op;
  }

  /**
   * Streams the rest of the current op's payload as slices (valid indefinitely: the decoder never
   * reuses memory it handed out). Throws TRUNCATED if the stream ends first.
   */
  async *payload(): AsyncGenerator<Buffer> {
    while (this.remaining > 0n) {
      if (this.pos >= this.cur.length && !(await this.fill())) this.truncatedPayload();
      const avail = this.cur.length - this.pos;
      const take = this.remaining < BigInt(avail) ? Number(this.remaining) : avail;
      const slice = this.cur.subarray(this.pos, this.pos + take);
      this.pos += take;
      this.remaining -= BigInt(take);
      yield slice;
    }
  }

  /** Reads the whole remaining payload; the caller must have bounded its size. */
  async readPayload(): Promise<Buffer> {
    const n = Number(this.remaining);
    // Fast path, the common case for names and small Data: a slice of the current chunk.
    if (this.pos + n <= this.cur.length) {
      const slice = this.cur.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.remaining = 0n;
      return slice;
    }
    const parts: Buffer[] = [];
    for await (const part of this.payload()) parts.push(part);
    return Buffer.concat(parts, n);
  }

  /** Discards the rest of the current payload (still an error if the stream ends first). */
  async skipPayload(): Promise<void> {
    for await (const _ of this.payload());
  }

  private truncatedPayload(): never {
    const op = this.op!;
    throw new OdhError(
      'TRUNCATED',
      `tar-diff op stream truncated inside the ${op.name} payload (${this.remaining} of ${op.size} bytes missing)`,
      { ...this.ctx, op: op.index, offset: this.offset },
    );
  }

  /** Makes at least one unread byte available; false at end of stream. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.cur.length) {
      const r = await this.it.next();
      if (r.done) return false;
      this.base += this.cur.length;
      this.cur = r.value;
      this.pos = 0;
    }
    return true;
  }
}
