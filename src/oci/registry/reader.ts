import { Readable } from 'node:stream';
import { OdhError } from '../../util/errors.js';
import type { BlobLocation, BlobRef, OciLayoutReader } from '../layout.js';
import { MEDIA_TYPE_IMAGE_INDEX, parseIndex, type ImageIndex } from '../types.js';
import { RegistryClient, type PulledManifest } from './client.js';
import { formatDockerRef, manifestReference, type DockerRef } from './docker-ref.js';
import type { RegistryOptions } from './http.js';

/** Options for reading `docker://` references (tests and `--tls-verify=false`). */
let defaultOptions: RegistryOptions = {};

/** Sets the registry options used when `docker://` refs are opened through `openImage`/`openManifest`. */
export function setRegistryDefaults(opts: RegistryOptions): void {
  defaultOptions = { ...opts };
}

/** The options currently used for `docker://` refs; loopback hosts default to plain HTTP. */
export function registryOptionsFor(host: string): RegistryOptions {
  const loopback = /^(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?$/.test(host);
  return { ...(loopback ? { tlsVerify: false } : {}), ...defaultOptions };
}

function refOf(d: BlobRef): { digest: string; size?: number } {
  return typeof d === 'string' ? { digest: d } : d;
}

/**
 * A registry image seen through the OCI layout reader interface: `index()` is a one-entry index
 * naming the manifest the reference resolves to, and blob reads go to the registry, digest-checked.
 * The manifest itself is served from the bytes pulled (verified) when asked for by digest.
 */
export class RegistryReader implements OciLayoutReader {
  readonly kind = 'registry' as const;
  readonly where: string;

  constructor(
    readonly client: RegistryClient,
    readonly ref: DockerRef,
    readonly manifest: PulledManifest,
  ) {
    this.where = formatDockerRef(ref);
  }

  async index(): Promise<{ raw: Buffer; index: ImageIndex }> {
    const entry = {
      mediaType: this.manifest.mediaType,
      digest: this.manifest.digest,
      size: this.manifest.size,
    };
    const raw = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_IMAGE_INDEX, manifests: [entry] }),
    );
    return { raw, index: parseIndex(raw, `index of ${this.where}`) };
  }

  async hasBlob(d: BlobRef): Promise<boolean> {
    if (refOf(d).digest === this.manifest.digest) return true;
    return (await this.client.blobSize(this.ref.repository, refOf(d).digest)) !== undefined;
  }

  async blobSize(d: BlobRef): Promise<number> {
    if (refOf(d).digest === this.manifest.digest) return this.manifest.size;
    const n = await this.client.blobSize(this.ref.repository, refOf(d).digest);
    if (n === undefined)
      throw new OdhError('NOT_FOUND', `blob ${refOf(d).digest} not found in ${this.where}`);
    return n;
  }

  async locateBlob(d: BlobRef): Promise<BlobLocation> {
    throw new OdhError(
      'UNSUPPORTED',
      `blob ${refOf(d).digest} of ${this.where} is remote: no positional reads`,
    );
  }

  async openBlob(d: BlobRef): Promise<Readable> {
    const r = refOf(d);
    if (r.digest === this.manifest.digest) {
      return Readable.from([await this.readBlobBytes(d, this.manifest.size)]);
    }
    return this.client.openBlob(this.ref.repository, r);
  }

  async readBlobBytes(d: BlobRef, maxBytes: number): Promise<Buffer> {
    const r = refOf(d);
    if (r.digest === this.manifest.digest) {
      if (r.size !== undefined && r.size !== this.manifest.size) {
        throw new OdhError(
          'DIGEST_MISMATCH',
          `manifest size mismatch for ${r.digest}: descriptor says ${r.size} bytes, registry sent ${this.manifest.size}`,
        );
      }
      if (this.manifest.size > maxBytes) {
        throw new OdhError(
          'LIMIT',
          `manifest ${r.digest} of ${this.where} is ${this.manifest.size} bytes, limit ${maxBytes}`,
        );
      }
      return this.manifest.raw;
    }
    return this.client.readBlob(this.ref.repository, r, maxBytes);
  }

  async verifyBlob(d: BlobRef): Promise<void> {
    for await (const _ of await this.openBlob(d)) void _;
  }

  async close(): Promise<void> {}
}

/** Opens `docker://HOST/REPO[:TAG|@DIGEST]`: resolves and pulls (verifies) its manifest. */
export async function openRegistryReader(ref: DockerRef, opts?: RegistryOptions): Promise<RegistryReader> {
  const client = new RegistryClient(ref.host, opts ?? registryOptionsFor(ref.host));
  const manifest = await client.getManifest(ref.repository, manifestReference(ref));
  return new RegistryReader(client, ref, manifest);
}
