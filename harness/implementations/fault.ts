/**
 * Test-only fault injection (`odh conformance --inject-fault flip-byte`): wraps an applier and
 * flips one byte of file data inside a reconstructed layer of its output, recompressing the layer
 * so the image stays readable. The config keeps the true diff_ids, so a correct verifier must
 * report the cell as a mismatch. Proves that the matrix can fail.
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import path from 'node:path';
import { compressStream, decompressSniffed } from '../../src/oci/compression.js';
import { openImage } from '../../src/oci/image.js';
import { MEDIA_TYPE_LAYER_TAR_GZIP } from '../../src/oci/types.js';
import { OdhError } from '../../src/util/errors.js';
import { rewriteImage } from './image-rewrite.js';
import { goTarDiffCreator } from './go-tardiff.js';
import type { DeltaApplier, DeltaCreator } from './types.js';

/** `flip-byte`: applier outputs; `flip-delta-byte`: tar-diffs written by the Go tar-diff. */
export type Fault = 'flip-byte' | 'flip-delta-byte';

export const FAULTS: readonly Fault[] = ['flip-byte', 'flip-delta-byte'];

const BLOCK = 512;

/**
 * Passes a tar stream through, inverting the first data byte of the first non-empty regular file
 * (typeflag '0' or NUL); a tar without one gets its last byte inverted instead (end-block padding).
 */
export class FlipFirstFileByte extends Transform {
  private pos = 0;
  private nextHeader = 0;
  private header = Buffer.alloc(BLOCK);
  private headerLen = 0;
  private flipAt = -1;
  private done = false;
  private last: Buffer | undefined;

  override _transform(input: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const chunk = Buffer.from(input);
    let i = 0;
    while (!this.done && i < chunk.length) {
      const abs = this.pos + i;
      if (this.flipAt >= 0) {
        if (this.flipAt < this.pos + chunk.length) {
          chunk[this.flipAt - this.pos]! ^= 0xff;
          this.done = true;
        }
        break;
      }
      if (abs < this.nextHeader) {
        i = Math.min(chunk.length, this.nextHeader - this.pos);
        continue;
      }
      const take = Math.min(BLOCK - this.headerLen, chunk.length - i);
      chunk.copy(this.header, this.headerLen, i, i + take);
      this.headerLen += take;
      i += take;
      if (this.headerLen < BLOCK) break;
      this.headerLen = 0;
      if (this.header.every((b) => b === 0)) {
        // End of archive without a file to flip: the flush fallback applies.
        this.nextHeader = Number.MAX_SAFE_INTEGER;
        break;
      }
      const size = parseInt(
        this.header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0',
        8,
      );
      const type = this.header[156];
      const dataStart = this.nextHeader + BLOCK;
      if ((type === 0x30 || type === 0) && size > 0) this.flipAt = dataStart;
      else this.nextHeader = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    }
    this.pos += chunk.length;
    // Hold back one chunk so the fallback can still change the stream's last byte.
    if (this.last) this.push(this.last);
    this.last = chunk;
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.last) {
      if (!this.done && this.last.length > 0) this.last[this.last.length - 1]! ^= 0xff;
      this.push(this.last);
    }
    cb();
  }
}

/** Rewrites `inputRef` into `outputRef` with one byte flipped in its first layer not taken from `oldRef`. */
export async function flipByteInImage(inputRef: string, oldRef: string, outputRef: string): Promise<void> {
  const old = await openImage(oldRef);
  const oldDigests = new Set(old.manifest.layers.map((d) => d.digest));
  await old.reader.close();
  const input = await openImage(inputRef);
  const layers = input.manifest.layers;
  await input.reader.close();
  if (layers.length === 0)
    throw new OdhError('USAGE', 'flip-byte: the image has no layer', { file: inputRef });
  const fresh = layers.findIndex((d) => !oldDigests.has(d.digest));
  const target = fresh >= 0 ? fresh : layers.length - 1;
  await rewriteImage(inputRef, outputRef, async (i, desc, _diffId, img) => {
    if (i !== target) return undefined;
    const blob = await img.reader.openBlob(desc);
    // pipeline() destroys every stage, the returned last one included, on the first error.
    const out = pipeline(
      blob,
      decompressSniffed({ layer: desc.digest }),
      new FlipFirstFileByte(),
      compressStream('gzip'),
      () => {},
    );
    return { stream: out, mediaType: MEDIA_TYPE_LAYER_TAR_GZIP };
  });
}

/**
 * The creator `inner` with its tar-diffs corrupted by `fault`: only the Go creator is wrapped (it
 * is rebuilt with the fault inside its tar-diff writer, so the artifact stays digest-consistent);
 * our own creators are left alone (their outputs are corrupted on the applier side instead).
 */
export function faultyCreator(inner: DeltaCreator, fault: Fault, jobs?: number): DeltaCreator {
  if (inner.name !== 'go-tardiff' || fault !== 'flip-delta-byte') return inner;
  return goTarDiffCreator({ fault: 'flip-byte', ...(jobs !== undefined ? { jobs } : {}) });
}

/** The applier `inner` with its output corrupted by `fault`. */
export function faultyApplier(inner: DeltaApplier, fault: Fault): DeltaApplier {
  if (fault !== 'flip-byte') return inner;
  return {
    name: inner.name,
    readsTarDiff: (v) => inner.readsTarDiff(v),
    available: () => inner.available(),
    async apply(delta, oldArchive, outDir, workDir) {
      const r = await inner.apply(delta, oldArchive, outDir, workDir);
      if (!r.outputImage || fault !== 'flip-byte') return r;
      const corrupted = `oci-archive:${path.join(workDir, 'corrupted.oci-archive')}`;
      await flipByteInImage(r.outputImage, oldArchive, corrupted);
      return { ...r, outputImage: corrupted };
    },
  };
}
