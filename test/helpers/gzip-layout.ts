/**
 * An oci: layout of already compressed gzip layer blobs (possibly broken on purpose), with the
 * diff_ids given rather than computed: what the layer-worker tests feed `composefs id`. Written by
 * the project's own layout writer (src/oci/writer.ts), which does not look inside the blobs.
 */
import type { Descriptor } from '../../src/oci/types.js';
import { createLayoutWriter } from '../../src/oci/writer.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Writes the layout at `dir` (which must not exist yet). */
export async function writeGzipLayout(
  dir: string,
  blobs: Buffer[],
  diffIds: string[],
): Promise<{ dir: string; layers: Descriptor[] }> {
  const w = await createLayoutWriter({ kind: 'dir', path: dir });
  const layers: Descriptor[] = [];
  try {
    for (const b of blobs)
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await w.addBlob(b)) });
    const config = await w.addJsonBlob(
      Buffer.from(
        JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }),
      ),
    );
    const manifest = await w.addJsonBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers,
        }),
      ),
    );
    await w.finish({ mediaType: MANIFEST, ...manifest });
  } catch (e) {
    await w.abort();
    throw e;
  }
  return { dir, layers };
}
