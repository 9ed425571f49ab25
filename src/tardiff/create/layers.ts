import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { decompressSniffed } from '../../oci/compression.js';
import { readTar, type TarItem } from '../../tar/index.js';
import { OdhError, isOdhError, type ErrorContext } from '../../util/errors.js';

/**
 * An old layer as the creator reads it: a function that opens a fresh byte stream each time (the
 * layer is read once for analysis and again when the contents of chosen sources are extracted).
 * The bytes may be gzip, zstd or plain tar; they are sniffed (spec oci-delta §5.2).
 */
export type LayerStreamFactory = () => AsyncIterable<Buffer> | Promise<AsyncIterable<Buffer>>;

/** A factory reading a (possibly compressed) layer tar file. */
export function layerFile(path: string): LayerStreamFactory {
  return () => createReadStream(path, { highWaterMark: 1 << 20 });
}

/** The decompressed bytes of one layer stream. */
export async function decompressedLayer(open: LayerStreamFactory, ctx: ErrorContext): Promise<Readable> {
  let raw: AsyncIterable<Buffer>;
  try {
    raw = await open();
  } catch (e) {
    if (isOdhError(e)) throw e;
    throw new OdhError('IO', `cannot open layer: ${(e as Error).message}`, ctx, { cause: e });
  }
  const input = raw instanceof Readable ? raw : Readable.from(raw, { objectMode: false });
  const plain = input.pipe(decompressSniffed(ctx));
  input.on('error', (e) => plain.destroy(wrapIo(e, ctx)));
  return plain;
}

function wrapIo(e: unknown, ctx: ErrorContext): Error {
  if (isOdhError(e)) return e;
  return new OdhError('IO', `cannot read layer: ${(e as Error).message}`, ctx, { cause: e });
}

/** Streams the entries of one old layer to `onEntry` (which may read `item.body`). */
export async function forEachLayerEntry(
  open: LayerStreamFactory,
  ctx: ErrorContext,
  onEntry: (item: TarItem) => Promise<void>,
): Promise<void> {
  const plain = await decompressedLayer(open, ctx);
  try {
    for await (const item of readTar(plain, { where: ctx })) await onEntry(item);
  } catch (e) {
    throw wrapIo(e, ctx);
  } finally {
    plain.destroy();
  }
}
