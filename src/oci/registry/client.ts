import { Readable } from 'node:stream';
import { OdhError } from '../../util/errors.js';
import { DigestHasher, checkDigest, digestOf, parseDigest } from '../digest.js';
import { MEDIA_TYPE_IMAGE_INDEX, MEDIA_TYPE_IMAGE_MANIFEST, type Descriptor } from '../types.js';
import { parseReferrersIndex, referrersTag } from './referrers.js';
import { uploadBlobSession, type BlobOpener, type BlobPushResult } from './upload.js';
import { bodyChunks, discard, readBody } from '../../net/request.js';
import { TransientError } from '../../net/retry.js';
import { RegistryHttp, errorText, type RegistryOptions, type RegistryStats } from './http.js';

export { referrersTag } from './referrers.js';

/** Docker media types we accept when reading (never written). */
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const MANIFEST_ACCEPT = [
  MEDIA_TYPE_IMAGE_MANIFEST,
  MEDIA_TYPE_IMAGE_INDEX,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_LIST,
].join(', ');

/** Largest manifest we pull (distribution's own default limit is 4 MiB). */
export const MAX_REGISTRY_MANIFEST_BYTES = 4 << 20;

/** A pulled manifest: verbatim bytes, their digest (verified) and the media type served. */
export interface PulledManifest {
  raw: Buffer;
  digest: string;
  mediaType: string;
  size: number;
}

export type { BlobOpener, BlobPushResult } from './upload.js';

/**
 * An OCI distribution client for one registry host (spec: OCI distribution-spec v1.1; oci-delta
 * §1.7 for referrers). Every byte pulled is digest-checked; uploads are verified before commit.
 */
export class RegistryClient {
  readonly http: RegistryHttp;

  constructor(
    readonly host: string,
    opts: RegistryOptions = {},
  ) {
    this.http = new RegistryHttp(host, opts);
  }

  get stats(): RegistryStats {
    return this.http.stats;
  }

  /** Checks the registry answers `/v2/` (authenticating if asked to). */
  async ping(repo: string): Promise<void> {
    await this.http.retrying(`${this.http.where(repo)} ping`, async (signal) => {
      const res = await this.http.send(
        {
          method: 'GET',
          url: '/v2/',
          scope: { repository: repo, push: false },
        },
        signal,
      );
      if (res.status !== 200) await this.http.fail(res, repo, 'GET /v2/');
      await discard(res);
    });
  }

  /** Size of a blob in `repo`, or undefined when absent (HEAD). */
  async blobSize(repo: string, digest: string): Promise<number | undefined> {
    return this.http.retrying(`${this.http.where(repo, `blob ${digest}`)} HEAD`, async (signal) => {
      const res = await this.http.send(
        {
          method: 'HEAD',
          url: `/v2/${repo}/blobs/${digest}`,
          scope: { repository: repo, push: false },
        },
        signal,
      );
      await discard(res);
      if (res.status === 404) return undefined;
      if (res.status !== 200) await this.http.fail(res, repo, `blob ${digest}`);
      const len = Number(res.headers.get('content-length'));
      return Number.isSafeInteger(len) ? len : undefined;
    });
  }

  /**
   * Streams a blob, verified against digest and size (DIGEST_MISMATCH at the end). A transfer
   * broken mid-body resumes with a Range request (bounded by `tries`); the whole blob, every try
   * included, has one deadline derived from its size (`RegistryHttp.deadline`).
   */
  openBlob(repo: string, desc: { digest: string; size?: number }): Readable {
    parseDigest(desc.digest, 'blob digest');
    const what = this.http.where(repo, `blob ${desc.digest}`);
    const http = this.http;
    async function* generate(): AsyncGenerator<Uint8Array> {
      const hasher = new DigestHasher(parseDigest(desc.digest).algorithm);
      let failures = 0;
      const deadline = http.deadline(`${what} GET`, desc.size);
      try {
        for (;;) {
          const offset = hasher.size;
          try {
            const res = await http.retrying(
              `${what} GET`,
              (signal) =>
                http.send(
                  {
                    method: 'GET',
                    url: `/v2/${repo}/blobs/${desc.digest}`,
                    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
                    scope: { repository: repo, push: false },
                  },
                  signal,
                ),
              { deadline },
            );
            if (res.status === 404) {
              await discard(res);
              throw new OdhError('NOT_FOUND', `${what}: not found`);
            }
            if (res.status !== 200 && res.status !== 206) {
              throw new OdhError('IO', `${what}: ${await errorText(res, http.timeoutMs)}`);
            }
            // A server ignoring Range sends everything again: skip what we already have.
            let skip = res.status === 200 ? offset : 0;
            for await (const chunk of bodyChunks(res, http.timeoutMs, what)) {
              let c = chunk;
              if (skip > 0) {
                const n = Math.min(skip, c.length);
                skip -= n;
                c = c.subarray(n);
                if (c.length === 0) continue;
              }
              hasher.update(c);
              if (desc.size !== undefined && hasher.size > desc.size) {
                throw new OdhError('DIGEST_MISMATCH', `${what}: more than the expected ${desc.size} bytes`);
              }
              yield c;
            }
            checkDigest(desc, { digest: hasher.digest(), size: hasher.size }, {});
            return;
          } catch (e) {
            if (deadline.signal.aborted) throw deadline.signal.reason;
            if (!(e instanceof TransientError) || ++failures >= http.tries) throw e;
            http.stats.retries++;
          }
        }
      } finally {
        deadline.dispose();
      }
    }
    return Readable.from(generate(), { objectMode: false });
  }

  /** A whole small blob (config, embedded manifest), verified; LIMIT beyond `maxBytes`. */
  async readBlob(repo: string, desc: { digest: string; size?: number }, maxBytes: number): Promise<Buffer> {
    if (desc.size !== undefined && desc.size > maxBytes) {
      throw new OdhError(
        'LIMIT',
        `${this.http.where(repo, `blob ${desc.digest}`)} is ${desc.size} bytes, limit ${maxBytes}`,
      );
    }
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of this.openBlob(repo, desc)) {
      n += (c as Buffer).length;
      if (n > maxBytes)
        throw new OdhError(
          'LIMIT',
          `${this.http.where(repo, `blob ${desc.digest}`)} exceeds ${maxBytes} bytes`,
        );
      parts.push(c as Buffer);
    }
    return Buffer.concat(parts);
  }

  /**
   * Pulls a manifest by tag or digest with OCI (and, for reading, Docker schema 2) Accept types.
   * By digest: the bytes must hash to it. By tag: to Docker-Content-Digest when sent.
   */
  async getManifest(repo: string, reference: string, accept = MANIFEST_ACCEPT): Promise<PulledManifest> {
    const what = this.http.where(repo, `manifest ${reference}`);
    return this.http.retrying(`${what} GET`, async (signal) => {
      const res = await this.http.send(
        {
          method: 'GET',
          url: `/v2/${repo}/manifests/${reference}`,
          headers: { accept },
          scope: { repository: repo, push: false },
        },
        signal,
      );
      if (res.status !== 200) await this.http.fail(res, repo, `manifest ${reference}`);
      const raw = await readBody(res, MAX_REGISTRY_MANIFEST_BYTES, this.http.timeoutMs, what);
      const expected = reference.includes(':') ? reference : res.headers.get('docker-content-digest');
      const alg = expected ? parseDigest(expected, `${what} digest`).algorithm : 'sha256';
      const digest = digestOf(raw, alg);
      if (expected && digest !== expected) {
        throw new OdhError(
          'DIGEST_MISMATCH',
          `${what}: manifest digest mismatch: expected ${expected}, got ${digest}`,
        );
      }
      const mediaType = manifestMediaType(raw, res.headers.get('content-type'));
      return { raw, digest, mediaType, size: raw.length };
    });
  }

  /** Digest of a manifest if `reference` exists (HEAD), else undefined. */
  async manifestExists(repo: string, reference: string): Promise<boolean> {
    return this.http.retrying(`${this.http.where(repo, `manifest ${reference}`)} HEAD`, async (signal) => {
      const res = await this.http.send(
        {
          method: 'HEAD',
          url: `/v2/${repo}/manifests/${reference}`,
          headers: { accept: MANIFEST_ACCEPT },
          scope: { repository: repo, push: false },
        },
        signal,
      );
      await discard(res);
      if (res.status === 404) return false;
      if (res.status !== 200) await this.http.fail(res, repo, `manifest ${reference}`);
      return true;
    });
  }

  /**
   * PUTs manifest bytes under `reference` (tag or digest) with `mediaType` as Content-Type.
   * Returns the digest and whether the registry reported handling `subject` (OCI-Subject header).
   */
  async putManifest(
    repo: string,
    reference: string,
    raw: Buffer,
    mediaType: string,
  ): Promise<{ digest: string; subjectHandled: boolean }> {
    const digest = digestOf(raw);
    const what = this.http.where(repo, `manifest ${reference}`);
    return this.http.retrying(`${what} PUT`, async (signal) => {
      const res = await this.http.send(
        {
          method: 'PUT',
          url: `/v2/${repo}/manifests/${reference}`,
          headers: { 'content-type': mediaType },
          body: raw,
          scope: { repository: repo, push: true },
        },
        signal,
      );
      if (res.status !== 201 && res.status !== 200)
        await this.http.fail(res, repo, `manifest ${reference} (${digest})`);
      await discard(res);
      const served = res.headers.get('docker-content-digest');
      if (served && served !== digest) {
        throw new OdhError('DIGEST_MISMATCH', `${what}: registry stored ${served}, we sent ${digest}`);
      }
      this.http.stats.manifestsPushed++;
      return { digest, subjectHandled: res.headers.has('oci-subject') };
    });
  }

  /**
   * Uploads a blob unless present (HEAD first). `mountFrom` tries a cross-repository mount. Small
   * blobs go in one POST + PUT; larger ones in PATCH chunks read from `open()` (never whole in
   * memory). Each attempt restarts the upload session; the bytes are hashed on the way and the
   * commit is only sent when they match. Verified with HEAD afterwards.
   */
  async pushBlob(
    repo: string,
    desc: Descriptor,
    open: BlobOpener,
    mountFrom?: string,
  ): Promise<BlobPushResult> {
    const have = await this.blobSize(repo, desc.digest);
    if (have !== undefined) {
      if (have !== desc.size) {
        throw new OdhError(
          'DIGEST_MISMATCH',
          `${this.http.where(repo, `blob ${desc.digest}`)}: registry has ${have} bytes, descriptor says ${desc.size}`,
        );
      }
      this.http.stats.blobsSkipped++;
      return 'skipped';
    }
    const what = this.http.where(repo, `blob ${desc.digest}`);
    const result = await this.http.retrying(
      `${what} upload`,
      () => uploadBlobSession(this.http, { repo, desc, open, mountFrom }),
      { size: desc.size },
    );
    const size = await this.blobSize(repo, desc.digest);
    if (size !== desc.size) {
      throw new OdhError(
        'IO',
        `${what}: after upload the registry reports ${size ?? 'no'} blob (want ${desc.size} bytes)`,
      );
    }
    if (result === 'mounted') this.http.stats.blobsMounted++;
    else this.http.stats.blobsUploaded++;
    return result;
  }

  /**
   * Referrers of `digest` (OCI distribution v1.1 Referrers API), filtered by `artifactType`; on
   * 404 from the API, the referrers tag schema `<alg>-<hex>` (an index, or nothing).
   */
  async referrers(
    repo: string,
    digest: string,
    artifactType?: string,
  ): Promise<{ descriptors: Descriptor[]; via: 'api' | 'tag' }> {
    const p = parseDigest(digest, 'subject digest');
    const what = this.http.where(repo, `referrers of ${digest}`);
    const api = await this.http.retrying(`${what} GET`, async (signal) => {
      const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
      const res = await this.http.send(
        {
          method: 'GET',
          url: `/v2/${repo}/referrers/${digest}${q}`,
          headers: { accept: MEDIA_TYPE_IMAGE_INDEX },
          scope: { repository: repo, push: false },
        },
        signal,
      );
      if (res.status === 404) {
        await discard(res);
        return undefined;
      }
      if (res.status !== 200) await this.http.fail(res, repo, `referrers of ${digest}`);
      return readBody(res, MAX_REGISTRY_MANIFEST_BYTES, this.http.timeoutMs, what);
    });
    let raw = api;
    const via = api ? 'api' : 'tag';
    if (!raw) {
      try {
        raw = (await this.getManifest(repo, referrersTag(p.digest))).raw;
      } catch (e) {
        if ((e as OdhError).code === 'NOT_FOUND') return { descriptors: [], via };
        throw e;
      }
    }
    const list = parseReferrersIndex(raw, what);
    return { descriptors: artifactType ? list.filter((d) => d.artifactType === artifactType) : list, via };
  }
}

/** The media type of manifest bytes: their own `mediaType`, else Content-Type, else OCI manifest. */
export function manifestMediaType(raw: Buffer, contentType: string | null): string {
  try {
    const o = JSON.parse(raw.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof o.mediaType === 'string' && o.mediaType !== '') return o.mediaType;
    if (Array.isArray(o.manifests)) return MEDIA_TYPE_IMAGE_INDEX;
  } catch {
    /* handled by the parser of the caller */
  }
  const ct = contentType?.split(';', 1)[0]?.trim();
  return ct || MEDIA_TYPE_IMAGE_MANIFEST;
}
