/**
 * Streaming one OCI layer's tar entries into an OciTreeBuilder (spec composefs-v2 §3.3–§3.4):
 * each entry's body is read once; regular files over 64 bytes are fs-verity hashed on the fly and
 * never buffered, smaller ones are kept inline.
 */
import { OdhError } from '../../util/errors.js';
import { FsVerityHasher, type FsVerityAlgorithm } from '../format/fsverity.js';
import {
  entryKind,
  INLINE_CONTENT_MAX,
  ociEntryPath,
  ociMode,
  ociRdev,
  ociStat,
  TYPE_BITS,
  whiteoutOf,
  type OciTarEntryFields,
} from './entry.js';
import type { OciNewNode, OciTreeBuilder } from './merge.js';
import { newInode, type Inode } from '../format/tree.js';

/**
 * Where a layer's items go: the tree builder itself, or (in a layer worker) a batch posted to the
 * thread that owns the builder, which applies it in layer order.
 */
export type OciEntrySink = Pick<OciTreeBuilder, 'apply'>;

export interface OciLayerEntry {
  entry: OciTarEntryFields;
  /** The entry's content (exactly `size` bytes); must be consumed or drained before the next entry. */
  body: AsyncIterable<Uint8Array>;
}

export interface ApplyLayerOptions {
  hash: FsVerityAlgorithm;
  /** Names the layer in errors (its digest). */
  layer?: string;
  /** Called with the number of content bytes read so far in this layer. */
  onBytes?: (n: number) => void;
}

async function drain(body: AsyncIterable<Uint8Array>, onBytes?: (n: number) => void): Promise<void> {
  for await (const chunk of body) onBytes?.(chunk.length);
}

/** spec composefs-v2 §3.3 "Regular file": > 64 bytes external (fs-verity object id), else inline. */
async function readRegular(
  body: AsyncIterable<Uint8Array>,
  size: bigint,
  opts: ApplyLayerOptions,
  where: string,
): Promise<Pick<Inode, 'content' | 'digest' | 'payload'>> {
  let got = 0n;
  if (size > BigInt(INLINE_CONTENT_MAX)) {
    const hasher = new FsVerityHasher(opts.hash);
    for await (const chunk of body) {
      hasher.update(chunk);
      got += BigInt(chunk.length);
      opts.onBytes?.(chunk.length);
    }
    if (got !== size) throw truncated(where, opts.layer, got, size);
    const digest = hasher.digest();
    // The backing path is the digest's object path (spec composefs-v2 §3.3); the builder derives it
    // when it finishes the tree (merge.ts), so a big tree does not hold it beside the digest.
    return { content: null, digest, payload: null };
  }
  const parts: Uint8Array[] = [];
  for await (const chunk of body) {
    got += BigInt(chunk.length);
    if (got > size) throw truncated(where, opts.layer, got, size);
    parts.push(chunk);
    opts.onBytes?.(chunk.length);
  }
  if (got !== size) throw truncated(where, opts.layer, got, size);
  // The tree model keeps an empty file as "no content" (spec composefs-v1 §2).
  return { content: size === 0n ? null : Buffer.concat(parts), digest: null, payload: null };
}

function truncated(where: string, layer: string | undefined, got: bigint, size: bigint): OdhError {
  return new OdhError('TRUNCATED', `tar entry content is ${got} bytes, header says ${size}`, {
    path: where,
    ...(layer !== undefined ? { layer } : {}),
  });
}

/** Applies every entry of one layer, in tar order. */
export async function applyLayerEntries(
  builder: OciEntrySink,
  entries: AsyncIterable<OciLayerEntry>,
  opts: ApplyLayerOptions,
): Promise<void> {
  for await (const { entry, body } of entries) {
    const where = entry.path.toString('latin1');
    const ctx = { path: where, ...(opts.layer !== undefined ? { layer: opts.layer } : {}) };
    // spec composefs-v2 §3.2: an empty final path is an error (a bare "/" or "." is the root entry).
    if (entry.path.length === 0) throw new OdhError('FORMAT', 'tar entry with an empty path', ctx);
    const kind = entryKind(entry, where);
    const path = ociEntryPath(entry.path, where);
    const size = entry.size;
    const isWhiteout = path.name !== null && whiteoutOf(path.name) !== null;
    let node: OciNewNode;
    if (kind === 'hardlink') {
      // spec composefs-v2 §3.3: the hardlink header's own stat and xattrs are ignored.
      const link = entry.linkpath;
      const targetDisplay = link.toString('latin1');
      node = { kind: 'hardlink', target: ociEntryPath(link, targetDisplay), targetDisplay };
      await drain(body, opts.onBytes);
    } else {
      const stat = ociStat(entry, where);
      // A whiteout is never added, so its mode cannot matter (no type-bit check for it).
      const mode = isWhiteout
        ? (stat.mode16 & 0o7777) | TYPE_BITS[kind]
        : ociMode(stat, TYPE_BITS[kind], where);
      const base = {
        uid: stat.uid,
        gid: stat.gid,
        mtimeSec: stat.mtimeSec,
        mtimeNsec: stat.mtimeNsec,
        xattrs: stat.xattrs,
      };
      if (kind === 'dir') {
        node = { kind: 'dir', stat: { mode, ...base } };
        await drain(body, opts.onBytes);
      } else if (kind === 'reg') {
        // A whiteout's content never reaches the tree: skip hashing it.
        const data = isWhiteout
          ? (await drain(body, opts.onBytes), { content: null, digest: null, payload: null })
          : await readRegular(body, size, opts, where);
        node = { kind: 'leaf', inode: newInode(mode, { ...base, size, ...data }) };
      } else if (kind === 'symlink') {
        // spec composefs-v2 §3.3: raw target bytes; absent target → empty.
        const target = entry.linkpath;
        node = {
          kind: 'leaf',
          inode: newInode(mode, { ...base, size: BigInt(target.length), payload: target }),
        };
        await drain(body, opts.onBytes);
      } else if (kind === 'chr' || kind === 'blk') {
        node = { kind: 'leaf', inode: newInode(mode, { ...base, rdev: ociRdev(entry, where) }) };
        await drain(body, opts.onBytes);
      } else {
        node = { kind: 'leaf', inode: newInode(mode, base) };
        await drain(body, opts.onBytes);
      }
    }
    try {
      builder.apply(path, node, opts.layer);
    } catch (e) {
      if (e instanceof OdhError) throw e;
      throw new OdhError('FORMAT', (e as Error).message, ctx, { cause: e });
    }
  }
}
