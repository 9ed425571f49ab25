import { OdhError } from '../../util/errors.js';
import { DigestHasher, checkDigest, parseDigest } from '../digest.js';
import type { Descriptor } from '../types.js';
import { discard } from '../../net/request.js';
import type { RegistryHttp } from './http.js';

/** Where a blob's bytes come from for an upload: opened again for each attempt. */
export type BlobOpener = () => Promise<AsyncIterable<Uint8Array>> | AsyncIterable<Uint8Array>;

export type BlobPushResult = 'skipped' | 'mounted' | 'uploaded';

/**
 * One upload session (OCI distribution-spec "Pushing blobs"): POST (with `mount=&from=` when
 * asked), then either one monolithic PUT (blobs up to the chunk size, held in memory) or PATCH
 * chunks read from `open()` and a closing PUT with `?digest=`. The bytes are hashed on the way and
 * the commit is sent only when they match the descriptor. Callers retry by starting a new session.
 */
export async function uploadBlobSession(
  http: RegistryHttp,
  blob: {
    repo: string;
    desc: Descriptor;
    open: BlobOpener;
    /** A repository of the same registry to mount the blob from instead of uploading it. */
    mountFrom?: string | undefined;
  },
): Promise<BlobPushResult> {
  const { repo, desc, open, mountFrom } = blob;
  const what = http.where(repo, `blob ${desc.digest}`);
  const mount =
    mountFrom && mountFrom !== repo
      ? `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(mountFrom)}`
      : '';
  const start = await http.send({
    method: 'POST',
    url: `/v2/${repo}/blobs/uploads/${mount}`,
    headers: { 'content-length': '0' },
    scope: { repository: repo, push: true, ...(mount ? { alsoPull: mountFrom } : {}) },
  });
  if (start.status === 201 && mount) {
    await discard(start);
    return 'mounted';
  }
  if (start.status !== 202) await http.fail(start, repo, `blob ${desc.digest} upload start`);
  await discard(start);
  let location = start.headers.get('location');
  if (!location) throw new OdhError('FORMAT', `${what}: upload start sent no Location`);

  const hasher = new DigestHasher(parseDigest(desc.digest).algorithm);
  const chunk = http.chunkSize;
  let buffered: Buffer[] = [];
  let bufferedBytes = 0;
  let sent = 0;
  const flush = async () => {
    const body = Buffer.concat(buffered, bufferedBytes);
    buffered = [];
    bufferedBytes = 0;
    const res = await http.send({
      method: 'PATCH',
      url: location!,
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${sent}-${sent + body.length - 1}`,
        'content-length': String(body.length),
      },
      body,
      scope: { repository: repo, push: true },
    });
    if (res.status !== 202) await http.fail(res, repo, `blob ${desc.digest} PATCH at ${sent}`);
    await discard(res);
    sent += body.length;
    http.stats.bytesUploaded += body.length;
    location = res.headers.get('location') ?? location;
  };
  for await (const c of await open()) {
    hasher.update(c);
    if (hasher.size > desc.size)
      throw new OdhError('DIGEST_MISMATCH', `${what}: source has more than ${desc.size} bytes`);
    buffered.push(Buffer.from(c.buffer, c.byteOffset, c.length));
    bufferedBytes += c.length;
    // Small blobs stay in one monolithic PUT; large ones leave in chunks.
    if (bufferedBytes >= chunk && desc.size > chunk) await flush();
  }
  checkDigest(desc, { digest: hasher.digest(), size: hasher.size }, {});
  if (sent > 0 && bufferedBytes > 0) await flush();
  const body = bufferedBytes > 0 ? Buffer.concat(buffered, bufferedBytes) : Buffer.alloc(0);
  const url = new URL(http.resolve(location));
  url.searchParams.set('digest', desc.digest);
  const res = await http.send({
    method: 'PUT',
    url: url.toString(),
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
    body,
    scope: { repository: repo, push: true },
  });
  if (res.status !== 201) await http.fail(res, repo, `blob ${desc.digest} commit`);
  await discard(res);
  http.stats.bytesUploaded += body.length;
  return 'uploaded';
}
