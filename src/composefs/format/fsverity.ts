/**
 * Userspace fs-verity file digest (spec composefs-v2 §1): 4096-byte Merkle blocks, no salt,
 * SHA-256 or SHA-512. The hasher is incremental and keeps only one partial block per Merkle
 * level, so memory stays bounded whatever the input size.
 */
import { hash as oneShotHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

import { OdhError } from '../../util/errors.js';

export type FsVerityAlgorithm = 'sha256' | 'sha512';

/** spec composefs-v2 §1: block size is fixed at 4096 (log2 12). */
export const FSVERITY_BLOCK_SIZE = 4096;
const LOG_BLOCK_SIZE = 12;
const DESCRIPTOR_SIZE = 256;

const ALG_ID: Record<FsVerityAlgorithm, number> = { sha256: 1, sha512: 2 };
const DIGEST_SIZE: Record<FsVerityAlgorithm, number> = { sha256: 32, sha512: 64 };

/** Digest length in bytes of an fs-verity algorithm. */
export function fsverityDigestSize(alg: FsVerityAlgorithm): number {
  return DIGEST_SIZE[alg];
}

/**
 * Spare 4 KiB blocks for hashers: one per file being hashed plus one per Merkle level, so a layer
 * of many small files would otherwise allocate (and zero, and collect) two blocks per file. Every
 * user writes a block before reading it (padding is zeroed explicitly), so reuse needs no clearing.
 */
const spareBlocks: Buffer[] = [];
const SPARE_BLOCKS_MAX = 64;

function takeBlock(): Buffer {
  return spareBlocks.pop() ?? Buffer.allocUnsafeSlow(FSVERITY_BLOCK_SIZE);
}

function giveBlock(b: Buffer): void {
  if (spareBlocks.length < SPARE_BLOCKS_MAX) spareBlocks.push(b);
}

/** One Merkle level: a single block being filled with hashes of the level below. */
interface Level {
  block: Buffer;
  fill: number;
}

export class FsVerityHasher {
  readonly algorithm: FsVerityAlgorithm;
  private readonly hashSize: number;
  private readonly data = takeBlock();
  private dataFill = 0;
  private total = 0n;
  /** levels[0] collects hashes of data blocks, levels[1] hashes of levels[0] blocks, … */
  private readonly levels: Level[] = [];
  private finished = false;

  constructor(algorithm: FsVerityAlgorithm = 'sha256') {
    if (!(algorithm in ALG_ID)) {
      throw new OdhError('UNSUPPORTED', `unsupported fs-verity hash algorithm ${String(algorithm)}`);
    }
    this.algorithm = algorithm;
    this.hashSize = DIGEST_SIZE[algorithm];
  }

  update(chunk: Uint8Array): this {
    if (this.finished) throw new OdhError('USAGE', 'fs-verity hasher used after digest()');
    this.total += BigInt(chunk.length);
    let off = 0;
    if (this.dataFill > 0) {
      const n = Math.min(FSVERITY_BLOCK_SIZE - this.dataFill, chunk.length);
      this.data.set(chunk.subarray(0, n), this.dataFill);
      this.dataFill += n;
      off = n;
      if (this.dataFill < FSVERITY_BLOCK_SIZE) return this;
      this.pushHash(0, this.hash(this.data));
      this.dataFill = 0;
    }
    // Whole blocks straight from the input, no copy: a plain Uint8Array view per block is the
    // cheapest object the one-shot hash accepts.
    const whole = off + Math.floor((chunk.length - off) / FSVERITY_BLOCK_SIZE) * FSVERITY_BLOCK_SIZE;
    const { buffer, byteOffset } = chunk;
    for (; off < whole; off += FSVERITY_BLOCK_SIZE) {
      this.pushHash(0, this.hash(new Uint8Array(buffer, byteOffset + off, FSVERITY_BLOCK_SIZE)));
    }
    if (off < chunk.length) {
      this.data.set(chunk.subarray(off), 0);
      this.dataFill = chunk.length - off;
    }
    return this;
  }

  /** The fs-verity file digest (32 or 64 bytes). The hasher cannot be used afterwards. */
  digest(): Buffer {
    if (this.finished) throw new OdhError('USAGE', 'fs-verity hasher digest() called twice');
    this.finished = true;
    if (this.dataFill > 0) {
      // spec composefs-v2 §1.1: the last data block is zero-padded.
      this.data.fill(0, this.dataFill);
      this.pushHash(0, this.hash(this.data));
      this.dataFill = 0;
    }
    const root = this.rootHash();
    giveBlock(this.data);
    for (const level of this.levels) giveBlock(level.block);
    const desc = Buffer.alloc(DESCRIPTOR_SIZE);
    desc[0] = 1;
    desc[1] = ALG_ID[this.algorithm];
    desc[2] = LOG_BLOCK_SIZE;
    desc[3] = 0;
    desc.writeBigUInt64LE(this.total, 8);
    root.copy(desc, 16);
    return Buffer.from(this.hash(desc), 'latin1');
  }

  /** spec composefs-v2 §1.1: levels are reduced until one hash remains; empty input → zeros. */
  private rootHash(): Buffer {
    if (this.levels.length === 0) return Buffer.alloc(this.hashSize);
    for (let i = 0; ; i++) {
      const level = this.levels[i];
      // Reducing level i pushed a hash into level i + 1, so it exists.
      if (level === undefined) throw new Error(`internal: fs-verity tree level ${i} missing`);
      const isTop = i === this.levels.length - 1;
      if (isTop && level.fill === this.hashSize) return Buffer.from(level.block.subarray(0, this.hashSize));
      level.block.fill(0, level.fill);
      const h = this.hash(level.block);
      level.fill = 0;
      this.pushHash(i + 1, h);
    }
  }

  /**
   * Appends a hash to a level. A full level block is hashed lazily (when the next hash arrives),
   * because a level whose single block holds exactly one hash is the root.
   */
  private pushHash(levelIndex: number, h: string): void {
    let level = this.levels[levelIndex];
    if (level === undefined) {
      level = { block: takeBlock(), fill: 0 };
      this.levels.push(level);
    }
    if (level.fill === FSVERITY_BLOCK_SIZE) {
      const up = this.hash(level.block);
      level.fill = 0;
      this.pushHash(levelIndex + 1, up);
    }
    level.block.write(h, level.fill, this.hashSize, 'latin1');
    level.fill += this.hashSize;
  }

  /**
   * One-shot hash (Node ≥ 20.12): one native call per 4 KiB block, where a Hash object per block
   * (createHash + update + digest) cost about as much again as the hashing itself. The digest comes
   * back as a latin1 string (bytes 1:1), a plain heap value: a Buffer per block would be an
   * ArrayBuffer per 4 KiB for the garbage collector to track.
   */
  private hash(bytes: Uint8Array): string {
    return oneShotHash(this.algorithm, bytes, 'binary');
  }
}

/** fs-verity digest of an in-memory buffer. */
export function fsverityDigest(bytes: Uint8Array, alg: FsVerityAlgorithm = 'sha256'): Buffer {
  return new FsVerityHasher(alg).update(bytes).digest();
}

/** fs-verity digest of a byte stream (e.g. a file read stream or a decompressor). */
export async function fsverityDigestStream(
  chunks: AsyncIterable<Uint8Array>,
  alg: FsVerityAlgorithm = 'sha256',
): Promise<Buffer> {
  const hasher = new FsVerityHasher(alg);
  for await (const chunk of chunks) hasher.update(chunk);
  return hasher.digest();
}

/** fs-verity digest of a file on disk, read as a stream. */
export async function fsverityDigestFile(file: string, alg: FsVerityAlgorithm = 'sha256'): Promise<Buffer> {
  try {
    return await fsverityDigestStream(createReadStream(file, { highWaterMark: 1 << 20 }), alg);
  } catch (e) {
    if (e instanceof OdhError) throw e;
    throw new OdhError('IO', `cannot read ${(e as Error).message}`, { file }, { cause: e });
  }
}

/** spec composefs-v2 §1.3: object pathname `xx/yyyy…` of a digest. */
export function digestObjectPath(digest: Uint8Array): string {
  const hex = Buffer.from(digest).toString('hex');
  return `${hex.slice(0, 2)}/${hex.slice(2)}`;
}
