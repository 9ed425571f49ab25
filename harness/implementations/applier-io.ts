/**
 * What every applier adapter shares: where its result goes, and the old image's merged root
 * filesystem that the directory-based appliers (ts-dir, go-tarpatch, upstream) read.
 */
import path from 'node:path';
import { extractMergedRootfs } from '../../src/image-source/rootfs-extract.js';

/** The applier's output image inside the matrix's `outDir`. */
export function outputImageIn(outDir: string): string {
  return `oci-archive:${path.join(outDir, 'image.oci-archive')}`;
}

/**
 * Extracts the old image's merged rootfs into `workDir/rootfs` and returns its path. This prepares
 * the source, it is not the apply: callers start their clock after it.
 */
export async function extractOldRootfs(oldArchive: string, workDir: string): Promise<string> {
  const rootfs = path.join(workDir, 'rootfs');
  await extractMergedRootfs(oldArchive, rootfs);
  return rootfs;
}
