import { openOciImageSource, type OciImageSource } from '../image-source/oci-image.js';
import { inspectTarDiff } from '../tardiff/inspect.js';
import type { TargetLayer } from './artifact.js';
import type { ImageReader } from './image-reader.js';

/**
 * The data source over a source image: collects every Open name of the tar-diff layers first (the
 * caller has digest-checked their blobs), then materialises only those files. `image` is the
 * caller's opened reader (not reopened, so a remote manifest and config are not fetched again).
 */
export async function openImageSourceFor(
  image: ImageReader,
  delta: ImageReader,
  tarDiffs: TargetLayer[],
  signal?: AbortSignal,
): Promise<OciImageSource> {
  const names = new Set<string>();
  for (const l of tarDiffs) {
    const s = await inspectTarDiff(await delta.openBlob(l.delta!), {
      where: l.target.digest,
    });
    s.sources.forEach((n) => names.add(n));
  }
  signal?.throwIfAborted();
  return openOciImageSource(image, names);
}
