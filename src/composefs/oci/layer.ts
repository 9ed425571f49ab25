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

/** An `OciLayerEntry` whose body is read without waiting. */
export interface OciBlockingLayerEntry {
  entry: OciTarEntryFields;
  body: Iterable<Uint8Array>;
}

export interface ApplyLayerOptions {
  hash: FsVerityAlgorithm;
  /** Names the layer in errors (its digest). */
  layer?: string;
  /** Called with the number of content bytes read so far in this layer. */
  onBytes?: (n: number) => void;
}

/**
 * One entry's work, shared by the waiting and the blocking drivers: its body's chunks go to `take`
 * in order, then `end` applies the tree item to the sink.
 */
interface EntryWork {
  take(chunk: Uint8Array): void;
  end(): void;
}

/** spec composefs-v2 §3.3 "Regular file": > 64 bytes external (fs-verity object id), else inline. */
class RegularFile {
  private got = 0;
  private readonly hasher: FsVerityHasher | null;
  private readonly parts: Uint8Array[] = [];

  constructor(
    private readonly size: bigint,
    opts: ApplyLayerOptions,
    private readonly where: string,
    private readonly layer: string | undefined,
  ) {
    this.hasher = size > BigInt(INLINE_CONTENT_MAX) ? new FsVerityHasher(opts.hash) : null;
  }

  take(chunk: Uint8Array): void {
    this.got += chunk.length;
    if (this.hasher !== null) this.hasher.update(chunk);
    else if (BigInt(this.got) > this.size) throw truncated(this.where, this.layer, this.got, this.size);
    // Copied: a chunk may be valid only until the next is read (readTarBlocking).
    else this.parts.push(Buffer.from(chunk));
  }

  content(): Pick<Inode, 'content' | 'digest' | 'payload'> {
    if (BigInt(this.got) !== this.size) throw truncated(this.where, this.layer, this.got, this.size);
    // The backing path is the digest's object path (spec composefs-v2 §3.3); the builder derives it
    // when it finishes the tree (merge.ts), so a big tree does not hold it beside the digest.
    if (this.hasher !== null) return { content: null, digest: this.hasher.digest(), payload: null };
    // The tree model keeps an empty file as "no content" (spec composefs-v1 §2).
    return { content: this.got === 0 ? null : Buffer.concat(this.parts), digest: null, payload: null };
  }
}

function truncated(where: string, layer: string | undefined, got: number, size: bigint): OdhError {
  return new OdhError('TRUNCATED', `tar entry content is ${got} bytes, header says ${size}`, {
    path: where,
    ...(layer !== undefined ? { layer } : {}),
  });
}

/** The tree item of one entry, made once its body has been read (`file`: its content, for 'reg'). */
type NodeOf = (file: RegularFile | null) => OciNewNode;

/** Starts one entry: checks its path and kind and returns the work its body goes through. */
function beginEntry(builder: OciEntrySink, entry: OciTarEntryFields, opts: ApplyLayerOptions): EntryWork {
  const where = entry.path.toString('latin1');
  const ctx = { path: where, ...(opts.layer !== undefined ? { layer: opts.layer } : {}) };
  // spec composefs-v2 §3.2: an empty final path is an error (a bare "/" or "." is the root entry).
  if (entry.path.length === 0) throw new OdhError('FORMAT', 'tar entry with an empty path', ctx);
  const kind = entryKind(entry, where);
  const path = ociEntryPath(entry.path, where);
  const isWhiteout = path.name !== null && whiteoutOf(path.name) !== null;
  const nodeOf = nodeMaker(entry, kind, isWhiteout, where);
  // A whiteout's content never reaches the tree: it is not hashed.
  const file = kind === 'reg' && !isWhiteout ? new RegularFile(entry.size, opts, where, opts.layer) : null;
  return {
    take(chunk) {
      file?.take(chunk);
      opts.onBytes?.(chunk.length);
    },
    end() {
      const node = nodeOf(file);
      try {
        builder.apply(path, node, opts.layer);
      } catch (e) {
        if (e instanceof OdhError) throw e;
        throw new OdhError('FORMAT', (e as Error).message, ctx, { cause: e });
      }
    },
  };
}

/** How an entry of `kind` becomes a tree item (spec composefs-v2 §3.3). */
function nodeMaker(
  entry: OciTarEntryFields,
  kind: ReturnType<typeof entryKind>,
  isWhiteout: boolean,
  where: string,
): NodeOf {
  if (kind === 'hardlink') {
    // spec composefs-v2 §3.3: the hardlink header's own stat and xattrs are ignored.
    const link = entry.linkpath;
    const targetDisplay = link.toString('latin1');
    const node: OciNewNode = { kind: 'hardlink', target: ociEntryPath(link, targetDisplay), targetDisplay };
    return () => node;
  }
  const stat = ociStat(entry, where);
  // A whiteout is never added, so its mode cannot matter (no type-bit check for it).
  const mode = isWhiteout ? (stat.mode16 & 0o7777) | TYPE_BITS[kind] : ociMode(stat, TYPE_BITS[kind], where);
  const base = {
    uid: stat.uid,
    gid: stat.gid,
    mtimeSec: stat.mtimeSec,
    mtimeNsec: stat.mtimeNsec,
    xattrs: stat.xattrs,
  };
  switch (kind) {
    case 'dir':
      return () => ({ kind: 'dir', stat: { mode, ...base } });
    case 'reg': {
      const size = entry.size;
      const none = { content: null, digest: null, payload: null };
      return (file) => ({
        kind: 'leaf',
        inode: newInode(mode, { ...base, size, ...(file?.content() ?? none) }),
      });
    }
    case 'symlink': {
      // spec composefs-v2 §3.3: raw target bytes; absent target → empty.
      const target = entry.linkpath;
      const inode = newInode(mode, { ...base, size: BigInt(target.length), payload: target });
      return () => ({ kind: 'leaf', inode });
    }
    case 'chr':
    case 'blk': {
      const rdev = ociRdev(entry, where);
      return () => ({ kind: 'leaf', inode: newInode(mode, { ...base, rdev }) });
    }
    default:
      return () => ({ kind: 'leaf', inode: newInode(mode, base) });
  }
}

/** Applies every entry of one layer, in tar order. */
export async function applyLayerEntries(
  builder: OciEntrySink,
  entries: AsyncIterable<OciLayerEntry>,
  opts: ApplyLayerOptions,
): Promise<void> {
  for await (const { entry, body } of entries) {
    const work = beginEntry(builder, entry, opts);
    for await (const chunk of body) work.take(chunk);
    work.end();
  }
}

/** `applyLayerEntries` without waiting, over entries read on the spot (a layer worker). */
export function applyLayerEntriesBlocking(
  builder: OciEntrySink,
  entries: Iterable<OciBlockingLayerEntry>,
  opts: ApplyLayerOptions,
): void {
  for (const { entry, body } of entries) {
    const work = beginEntry(builder, entry, opts);
    for (const chunk of body) work.take(chunk);
    work.end();
  }
}
