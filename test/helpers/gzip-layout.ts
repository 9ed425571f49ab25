/**
 * An oci: layout of already compressed gzip layer blobs (possibly broken on purpose), with the
 * diff_ids given rather than computed: what the layer-worker tests feed `composefs id`.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Descriptor } from '../../src/oci/types.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function writeGzipLayout(
  dir: string,
  blobs: Buffer[],
  diffIds: string[],
): Promise<{ dir: string; layers: Descriptor[] }> {
  const dirBlobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(dirBlobs, { recursive: true });
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await writeFile(path.join(dirBlobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const layers: Descriptor[] = [];
  for (const b of blobs)
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(b)) });
  const config = await put(
    Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }),
    ),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers,
      }),
    ),
  );
  await writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }],
    }),
  );
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { dir, layers };
}
