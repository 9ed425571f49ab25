import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Digests computed here with node:crypto directly, independent of src/oci. */
export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface HandMadeLayout {
  manifestRaw: Buffer;
  manifestDigest: string;
  configRaw: Buffer;
  configDigest: string;
  layers: { bytes: Buffer; digest: string }[];
}

/** Writes an OCI layout directory by hand (no project code involved). */
export async function writeLayoutDir(
  dir: string,
  layerBlobs: Buffer[],
  opts: { refName?: string; extraIndexEntries?: object[] } = {},
): Promise<HandMadeLayout> {
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await fs.writeFile(path.join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const layers = [];
  for (const bytes of layerBlobs) layers.push({ bytes, digest: await put(bytes) });
  const configRaw = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const configDigest = await put(configRaw);
  const manifestRaw = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: configRaw.length,
      },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: l.digest,
        size: l.bytes.length,
      })),
    }),
  );
  const manifestDigest = await put(manifestRaw);
  const entry: Record<string, unknown> = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: manifestDigest,
    size: manifestRaw.length,
  };
  if (opts.refName) entry.annotations = { 'org.opencontainers.image.ref.name': opts.refName };
  await fs.writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [...(opts.extraIndexEntries ?? []), entry] }),
  );
  await fs.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return { manifestRaw, manifestDigest, configRaw, configDigest, layers };
}

export async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}
