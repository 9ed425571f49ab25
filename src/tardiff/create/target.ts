import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { MergedRootfs } from '../merged-rootfs.js';
import { readTar } from '../../tar/index.js';
import type { ErrorContext } from '../../util/errors.js';
import { typedError } from './layer-stream.js';
import type { TargetFile } from './match.js';
import { SKETCH_MIN_FILE, Sketcher } from './sketch.js';

/**
 * First pass over the new layer (spec oci-delta §5.3 "Analyze the new layer tar the same way",
 * whiteouts irrelevant): where each qualifying file's content lies in the tar, its SHA-1, and its
 * names (entry path, then same-layer hardlink names, which only the complete scan knows).
 */

/** A qualifying regular file of the new layer. */
export interface NewFile extends TargetFile {
  /** Offset of the content in the uncompressed new tar. */
  readonly dataOffset: number;
}

export interface NewLayerScan {
  files: NewFile[];
  /** Size of the new tar file in bytes. */
  size: number;
}

export async function scanNewLayer(tarPath: string, size: number, ctx: ErrorContext): Promise<NewLayerScan> {
  const rootfs = new MergedRootfs({ ignorePrefixes: [] });
  const scan = rootfs.beginLayer();
  const found: Array<{
    ordinal: number;
    sha1: Buffer;
    sketch?: Int32Array;
    dataOffset: number;
    size: number;
  }> = [];
  const input = createReadStream(tarPath, { highWaterMark: 1 << 20 });
  try {
    for await (const { entry, body } of readTar(input, { where: ctx })) {
      if (scan.add(entry) !== 'candidate') continue;
      const h = createHash('sha1');
      const sk = entry.size >= BigInt(SKETCH_MIN_FILE) ? new Sketcher() : undefined;
      for await (const c of body) {
        h.update(c);
        sk?.push(c);
      }
      found.push({
        ordinal: scan.count - 1,
        sha1: h.digest(),
        sketch: sk?.finish(),
        dataOffset: Number(entry.dataOffset),
        size: Number(entry.size),
      });
    }
  } catch (e) {
    throw typedError(e, ctx, 'cannot read new layer');
  } finally {
    input.destroy();
  }
  scan.finish();
  const files = found.map((f) => ({ ...f, paths: scan.fileAt(f.ordinal)!.paths }));
  return { files, size };
}
