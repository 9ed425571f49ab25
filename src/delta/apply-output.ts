import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createLayoutWriter, type OciLayoutWriter } from '../oci/writer.js';
import { parseRef } from '../oci/ref.js';
import { OdhError } from '../util/errors.js';
import { releaseTemp, tempBeside } from '../util/run.js';

/**
 * The output of an apply (spec oci-delta §4.1 outputs): H1's atomic layout writer plus a private
 * staging directory beside it, so the image appears only on commit.
 */
export interface ApplyOutput {
  readonly finalPath: string;
  readonly writer: OciLayoutWriter;
  /** `.odh-tmp-staging-*` beside the destination (same file system, so staged layers move cheaply). */
  readonly stagingDir: string;
  /** Removes the staging directory and, unless finished, everything written. Safe to call twice. */
  close(): Promise<void>;
}

/** Starts the output image; EXISTS if the destination exists (file or directory). */
export async function createApplyOutput(
  refText: string,
  opts: { overwrite?: boolean } = {},
): Promise<ApplyOutput> {
  const ref = parseRef(refText, { output: true });
  const writer = await createLayoutWriter({
    kind: ref.transport === 'oci' ? 'dir' : 'archive',
    path: ref.path,
    ...(ref.name !== undefined ? { refName: ref.name } : {}),
    overwrite: opts.overwrite,
  });
  const stagingDir = tempBeside(ref.path, 'staging');
  try {
    await fs.mkdir(stagingDir, { mode: 0o700 });
  } catch (e) {
    await releaseTemp(stagingDir);
    await writer.abort();
    throw new OdhError('IO', `cannot create a staging directory: ${(e as Error).message}`, {
      path: ref.path,
    });
  }
  return {
    finalPath: path.resolve(ref.path),
    writer,
    stagingDir,
    async close() {
      await writer.abort();
      await releaseTemp(stagingDir, { remove: true });
    },
  };
}
