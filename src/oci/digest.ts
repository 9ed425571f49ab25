import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OdhError, type ErrorContext } from '../util/errors.js';

/** Algorithms of blob digests (OCI image-spec "Digests": sha256 and sha512 are registered). */
export type BlobDigestAlgorithm = 'sha256' | 'sha512';

/** Every algorithm we hash with: diff_ids may also be sha384 (spec oci-delta §4.3). */
export type DigestAlgorithm = BlobDigestAlgorithm | 'sha384';

/** What `parseDigest` accepts by default: blob digests in layouts, manifests and indexes. */
export const BLOB_DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha512'];

/** What `parseDiffId` accepts: spec oci-delta §4.3 hashes a layer with its diff_id's sha256/sha384/sha512. */
export const DIFF_ID_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha384', 'sha512'];

/** Hex length of each algorithm's encoded part. */
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** A parsed `alg:hex` digest; `digest` is the canonical string form. */
export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  readonly digest: string;
}

/**
 * Parses and validates `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>` (or another of
 * `algorithms`, e.g. DIFF_ID_ALGORITHMS). Throws OdhError('FORMAT') naming `where` (e.g.
 * "index.json manifests[0].digest").
 */
export function parseDigest(
  s: unknown,
  where = 'digest',
  ctx: ErrorContext = {},
  algorithms: readonly DigestAlgorithm[] = BLOB_DIGEST_ALGORITHMS,
): ParsedDigest {
  if (typeof s !== 'string') {
    throw new OdhError('FORMAT', `${where}: digest must be a string, got ${typeName(s)}`, ctx);
  }
  const colon = s.indexOf(':');
  if (colon < 0)
    throw new OdhError('FORMAT', `${where}: digest ${JSON.stringify(s)} has no algorithm prefix`, ctx);
  const alg = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  if (!(algorithms as readonly string[]).includes(alg)) {
    throw new OdhError('FORMAT', `${where}: unsupported digest algorithm ${JSON.stringify(alg)}`, ctx);
  }
  const algorithm = alg as DigestAlgorithm;
  const want = HEX_LENGTH[algorithm];
  if (hex.length !== want || !/^[0-9a-f]+$/.test(hex)) {
    throw new OdhError(
      'FORMAT',
      `${where}: ${alg} digest must be ${want} lowercase hex characters, got ${JSON.stringify(hex.slice(0, 140))}`,
      ctx,
    );
  }
  return { algorithm, hex, digest: s };
}

/** Parses a diff_id: like `parseDigest`, but sha384 is accepted too (spec oci-delta §4.3). */
export function parseDiffId(s: unknown, where = 'diff_id', ctx: ErrorContext = {}): ParsedDigest {
  return parseDigest(s, where, ctx, DIFF_ID_ALGORITHMS);
}

/** True if `s` is a valid digest string (see `parseDigest`). */
export function isDigest(s: unknown): s is string {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** `alg:hex` digest of a whole buffer (for small blobs: manifests, configs). */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Incremental hasher that also counts bytes (sizes are checked alongside digests). */
export class DigestHasher {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private count = 0;
  private done: string | undefined;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): this {
    if (this.done !== undefined) throw new Error('DigestHasher.update after digest()');
    this.hash.update(chunk);
    this.count += chunk.length;
    return this;
  }

  /** Bytes hashed so far. */
  get size(): number {
    return this.count;
  }

  /** Final `alg:hex`; may be called more than once (the value is cached). */
  digest(): string {
    if (this.done === undefined) this.done = `${this.algorithm}:${this.hash.digest('hex')}`;
    return this.done;
  }
}

/**
 * Pass-through Transform that hashes and counts what flows through it. Read `.digest()` and
 * `.size` after the stream has ended.
 */
export class DigestStream extends Transform {
  readonly hasher: DigestHasher;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super();
    this.hasher = new DigestHasher(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hasher.update(chunk);
    cb(null, chunk);
  }

  get size(): number {
    return this.hasher.size;
  }

  digest(): string {
    return this.hasher.digest();
  }
}

/**
 * Checks a computed digest/size against an expected one; throws DIGEST_MISMATCH with the upstream
 * wording ("blob digest mismatch: expected …, got …", spec oci-delta §4.1 step 2).
 */
export function checkDigest(
  expected: { digest: string; size?: number },
  got: { digest: string; size: number },
  ctx: ErrorContext = {},
): void {
  if (expected.size !== undefined && expected.size !== got.size) {
    throw new OdhError(
      'DIGEST_MISMATCH',
      `blob size mismatch for ${expected.digest}: expected ${expected.size} bytes, got ${got.size}`,
      ctx,
    );
  }
  if (expected.digest !== got.digest) {
    throw new OdhError(
      'DIGEST_MISMATCH',
      `blob digest mismatch: expected ${expected.digest}, got ${got.digest}`,
      ctx,
    );
  }
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * Pass-through Transform that hashes what flows through and, at the end, fails the stream with
 * DIGEST_MISMATCH unless digest (and size, when given) match. Extra bytes beyond `size` fail at
 * once, so a lying source cannot make us read forever.
 */
export class VerifyingStream extends Transform {
  private readonly hasher: DigestHasher;

  constructor(
    private readonly expected: { digest: string; size?: number },
    private readonly ctx: ErrorContext = {},
  ) {
    super();
    this.hasher = new DigestHasher(parseDigest(expected.digest, 'expected digest', ctx).algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hasher.update(chunk);
    if (this.expected.size !== undefined && this.hasher.size > this.expected.size) {
      cb(
        new OdhError(
          'DIGEST_MISMATCH',
          `blob size mismatch for ${this.expected.digest}: more than the expected ${this.expected.size} bytes`,
          this.ctx,
        ),
      );
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      checkDigest(this.expected, { digest: this.hasher.digest(), size: this.hasher.size }, this.ctx);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}
