import type { Readable } from 'node:stream';
import { OdhError, isOdhError, type ErrorContext } from '../util/errors.js';
import { OpReader } from './ops.js';
import { decompressOuterStream } from './zstd.js';

/** spec oci-delta §2.1: the 8-byte header of each format version. */
export const TARDIFF_MAGIC_V1 = Buffer.from('tardf1\n\0', 'latin1');
export const TARDIFF_MAGIC_V2 = Buffer.from('tardf2\n\0', 'latin1');
export const TARDIFF_HEADER_SIZE = 8;

export type TarDiffInput = AsyncIterable<Buffer | Uint8Array> | Readable;

export interface TarDiffStream {
  /** 2 allows ZstdDict ops. */
  version: 1 | 2;
  ops: OpReader;
  /** Bytes of the delta file consumed so far (header included), for progress. */
  deltaBytesRead(): number;
}

/** Checks the header and sets up outer zstd decoding and op decoding (spec oci-delta §2.1). */
export async function openTarDiff(delta: TarDiffInput, ctx: ErrorContext = {}): Promise<TarDiffStream> {
  const it = (delta as AsyncIterable<Buffer | Uint8Array>)[Symbol.asyncIterator]();
  let read = 0;
  const pull = async (): Promise<Buffer | null> => {
    let r: IteratorResult<Buffer | Uint8Array>;
    try {
      r = await it.next();
    } catch (e) {
      if (isOdhError(e)) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new OdhError('IO', `cannot read tar-diff: ${msg}`, { ...ctx, offset: read }, { cause: e });
    }
    if (r.done) return null;
    const v = r.value;
    const buf = Buffer.isBuffer(v)
      ? v
      : typeof v === 'string'
        ? Buffer.from(v)
        : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    read += buf.length;
    return buf;
  };
  const head: Buffer[] = [];
  let headLen = 0;
  while (headLen < TARDIFF_HEADER_SIZE) {
    const b = await pull();
    if (!b) break;
    head.push(b);
    headLen += b.length;
  }
  const first = Buffer.concat(head);
  const magic = first.subarray(0, TARDIFF_HEADER_SIZE);
  let version: 1 | 2;
  if (magic.equals(TARDIFF_MAGIC_V1)) version = 1;
  else if (magic.equals(TARDIFF_MAGIC_V2)) version = 2;
  else {
    const shown = magic.length ? magic.toString('hex').replace(/(..)(?!$)/g, '$1 ') : 'empty file';
    throw new OdhError('FORMAT', `invalid tar-diff header (${shown}; expected tardf1 or tardf2)`, {
      ...ctx,
      offset: 0,
    });
  }
  const rest = first.subarray(TARDIFF_HEADER_SIZE);
  async function* compressed(): AsyncGenerator<Buffer> {
    if (rest.length) yield rest;
    for (let b = await pull(); b; b = await pull()) if (b.length) yield b;
  }
  const ops = new OpReader(decompressOuterStream(compressed(), ctx, TARDIFF_HEADER_SIZE), ctx);
  return { version, ops, deltaBytesRead: () => read };
}
