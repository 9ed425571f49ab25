import { whiteoutAt } from '../oci/whiteout.js';
import type { TarEntry } from '../tar/index.js';
import { cleanSourceName } from './path.js';

/**
 * Which old-image files may be named by a tar-diff Open op, and under which names (spec oci-delta
 * §3.1 and §5.2, upstream `AnalyzeSources` with whiteouts on and ignore-prefix `sysroot/ostree/`).
 *
 * Pure rules: the caller streams each old layer in order and feeds every entry header to a
 * `LayerScan`; no content is read here. The result maps each surviving name of the merged root
 * filesystem to the layer entry whose content it has.
 *
 * Upstream quirks kept on purpose (spec §9 [inferred]): across layers only qualifying regular files
 * and whiteouts remove earlier mappings — a later symlink, directory, empty or unreadable file, or a
 * cross-layer hardlink at the same path leaves the older mapping in place. Within one layer, any
 * later entry at a recorded file's path marks that file overwritten, which makes it unusable.
 */

/** The prefix oci-delta ignores when choosing names (spec oci-delta §3.1, §5.1 step 3). */
export const OSTREE_PREFIX = 'sysroot/ostree/';

/** The entry fields the rules look at (a `TarEntry` fits). */
export type MergeEntry = Pick<
  TarEntry,
  'type' | 'typeflag' | 'path' | 'linkpath' | 'mode' | 'size' | 'sparse' | 'dataOffset'
>;

/** A qualifying regular file of one old layer: where its content is, and all its names. */
export interface SourceEntry {
  /** Index of the old layer (manifest order). */
  readonly layer: number;
  /** Ordinal of the entry in that layer's tar (0-based, every entry counted). */
  readonly ordinal: number;
  /** Offset of the content in the layer's uncompressed tar, and its size. */
  readonly dataOffset: bigint;
  readonly size: bigint;
  /** Cleaned names: the entry's own path, then its same-layer hardlink names in tar order. */
  readonly paths: Buffer[];
}

/** What a fed entry turned out to be; `candidate` = a qualifying regular file (content may be wanted). */
export type EntryRole = 'candidate' | 'hardlink' | 'whiteout' | 'opaque' | 'other' | 'ignored';

const SLASH = 0x2f;
const SLASH_BYTE = Buffer.from('/');

/** Bytes as a Map key (latin1 is one char per byte, so distinct byte strings stay distinct). */
export function nameKey(name: Uint8Array): string {
  return Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
}

/**
 * Cleans a tar member name like upstream CleanPath (spec oci-delta §2.3): never above the root,
 * no leading `/`. Returns null for a name that cleans to nothing (`/`, `.`, `..`, ``).
 */
export function cleanMemberName(name: Buffer): Buffer | null {
  try {
    return cleanSourceName(name);
  } catch {
    return null;
  }
}

/**
 * spec oci-delta §3.1: a source must be a regular file (typeflag '0'; Go's reader also turns the
 * old '\0' flag into '0' unless the name ends in '/'), size > 0, not sparse, world-readable.
 */
export function qualifiesAsSource(e: MergeEntry): boolean {
  const regular = e.typeflag === '0' || (e.typeflag === '\0' && e.path[e.path.length - 1] !== SLASH);
  return regular && e.size > 0n && !e.sparse && (e.mode & 0o004) !== 0;
}

interface PendingHardlink {
  path: Buffer;
  target: Buffer;
}

interface LayerFile extends SourceEntry {
  overwritten: boolean;
}

/** One layer being scanned; call `add` for every entry in tar order, then `finish`. */
export class LayerScan {
  private ordinal = 0;
  private readonly files: LayerFile[] = [];
  private readonly fileByPath = new Map<string, LayerFile>();
  private readonly fileByOrdinal = new Map<number, LayerFile>();
  private readonly hardlinks: PendingHardlink[] = [];
  /** Whiteouts: exact paths (their descendants go too) and opaque directory prefixes (`dir/` or ``). */
  private readonly removed: Buffer[] = [];
  private readonly opaque: Buffer[] = [];
  private finished = false;

  constructor(
    private readonly rootfs: MergedRootfs,
    readonly layer: number,
  ) {}

  /** Entries added so far (the next entry's ordinal). */
  get count(): number {
    return this.ordinal;
  }

  /** Feeds the next entry; returns its role. The entry's ordinal is the number of earlier `add` calls. */
  add(e: MergeEntry): EntryRole {
    if (this.finished) throw new Error('LayerScan.add after finish');
    const ordinal = this.ordinal++;
    const path = cleanMemberName(e.path);
    if (path === null) return 'ignored';
    if (e.type === 'hardlink') {
      const target = cleanMemberName(e.linkpath);
      if (target === null) return 'ignored';
      this.hardlinks.push({ path, target });
      return 'hardlink';
    }
    // spec oci-delta §5.2: whiteouts are recorded, then skipped
    const wh = whiteoutAt(path);
    if (wh?.kind === 'opaque') {
      // the prefix of everything under the directory: `dir/`, or empty for the root
      this.opaque.push(wh.dir.length > 0 ? Buffer.concat([wh.dir, SLASH_BYTE]) : wh.dir);
      return 'opaque';
    }
    if (wh?.kind === 'remove') {
      this.removed.push(wh.path);
      return 'whiteout';
    }
    // spec oci-delta §5.2: a path seen again in the same tar marks the earlier file overwritten
    const key = nameKey(path);
    const earlier = this.fileByPath.get(key);
    if (earlier) earlier.overwritten = true;
    if (!qualifiesAsSource(e)) return 'other';
    const file: LayerFile = {
      layer: this.layer,
      ordinal,
      dataOffset: e.dataOffset,
      size: e.size,
      paths: [path],
      overwritten: false,
    };
    this.files.push(file);
    this.fileByPath.set(key, file);
    this.fileByOrdinal.set(ordinal, file);
    return 'candidate';
  }

  /**
   * Ordinals of the qualifying files in this layer whose names (own path or same-layer hardlink
   * names) include one accepted by `wanted`. Valid once every entry was added (hardlinks resolve
   * against the last recorded file at the target path, as upstream does after its scan).
   */
  wantedOrdinals(wanted: (name: Buffer) => boolean): Set<number> {
    const out = new Set<number>();
    for (const f of this.files) if (!f.overwritten && f.paths.some(wanted)) out.add(f.ordinal);
    for (const h of this.hardlinks) {
      const f = this.fileByPath.get(nameKey(h.target));
      if (f && !f.overwritten && wanted(h.path)) out.add(f.ordinal);
    }
    return out;
  }

  /** The qualifying file recorded at `ordinal`, if any (usable or not). */
  fileAt(ordinal: number): SourceEntry | undefined {
    return this.fileByOrdinal.get(ordinal);
  }

  /** Merges this layer into the rootfs: whiteouts first (they hide earlier layers), then the files. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const h of this.hardlinks) {
      const f = this.fileByPath.get(nameKey(h.target));
      if (f) f.paths.push(h.path);
    }
    this.rootfs.merge(this);
  }

  /** @internal */
  get whiteouts(): { removed: Buffer[]; opaque: Buffer[] } {
    return { removed: this.removed, opaque: this.opaque };
  }

  /** @internal the usable files, in tar order */
  get usableFiles(): SourceEntry[] {
    return this.files.filter((f) => !f.overwritten);
  }
}

export interface MergedRootfsOptions {
  /** Names under these prefixes are never Open names (default `[OSTREE_PREFIX]`). */
  ignorePrefixes?: string[];
}

/** The merged view over all old layers (spec oci-delta §5.2 "Merging layers in order"). */
export class MergedRootfs {
  private readonly byPath = new Map<string, SourceEntry>();
  private readonly ignore: Buffer[];
  private layers = 0;
  private open: LayerScan | null = null;

  constructor(opts: MergedRootfsOptions = {}) {
    this.ignore = (opts.ignorePrefixes ?? [OSTREE_PREFIX]).map((p) => Buffer.from(p));
  }

  /** Starts the next old layer (layers must be fed in manifest order, one at a time). */
  beginLayer(): LayerScan {
    if (this.open) throw new Error('MergedRootfs.beginLayer before the previous layer finished');
    this.open = new LayerScan(this, this.layers++);
    return this.open;
  }

  /** @internal called by LayerScan.finish */
  merge(scan: LayerScan): void {
    if (scan !== this.open) throw new Error('MergedRootfs.merge of a layer that is not the open one');
    this.open = null;
    const { removed, opaque } = scan.whiteouts;
    if (removed.length > 0 || opaque.length > 0) {
      // Keys are latin1, so '/' is one char: each mapped path is checked against its own ancestors
      // (O(paths × depth)), not against every whiteout.
      const gone = new Set(removed.map(nameKey));
      const opaqueDirs = new Set(opaque.map(nameKey)); // 'dir/' or '' for the root
      for (const key of [...this.byPath.keys()]) {
        if (hiddenBy(key, gone, opaqueDirs)) this.byPath.delete(key);
      }
    }
    for (const f of scan.usableFiles) for (const p of f.paths) this.byPath.set(nameKey(p), f);
  }

  /** True if `name` is an allowed Open name (not under an ignored prefix). */
  allowed(name: Buffer): boolean {
    return !this.ignore.some((p) => startsWith(name, p));
  }

  /** The source a surviving, allowed name maps to (any of its names, not only its Open name). */
  lookup(name: Buffer): SourceEntry | undefined {
    return this.allowed(name) ? this.byPath.get(nameKey(name)) : undefined;
  }

  /** True if `source` still owns `name` in the merged view. */
  survives(source: SourceEntry, name: Buffer): boolean {
    return this.byPath.get(nameKey(name)) === source;
  }

  /**
   * spec oci-delta §3.1: a source's Open name is its first surviving, allowed name (own path first,
   * then hardlink names in tar order); undefined when it has none (unusable).
   */
  openNameOf(source: SourceEntry): Buffer | undefined {
    return source.paths.find((p) => this.allowed(p) && this.survives(source, p));
  }

  /** Every usable source by its Open name (keys: `nameKey`), in no particular order. */
  openNames(): Map<string, SourceEntry> {
    const out = new Map<string, SourceEntry>();
    for (const s of new Set(this.byPath.values())) {
      const n = this.openNameOf(s);
      if (n) out.set(nameKey(n), s);
    }
    return out;
  }

  /** Every surviving, allowed name → its source (a superset of `openNames`: later hardlink names too). */
  names(): Map<string, SourceEntry> {
    const out = new Map<string, SourceEntry>();
    for (const [k, s] of this.byPath) if (this.allowed(Buffer.from(k, 'latin1'))) out.set(k, s);
    return out;
  }
}

/**
 * spec oci-delta §5.2: an opaque `dir/.wh..wh..opq` hides everything under `dir/` (the root's:
 * everything); a plain `.wh.name` hides the path and, if it was a directory, everything beneath it
 * (`boot/.wh..kernel` hides `boot/.kernel/…` but not `boot/.kernel-old/…`).
 */
function hiddenBy(key: string, gone: Set<string>, opaqueDirs: Set<string>): boolean {
  if (gone.has(key) || opaqueDirs.has('')) return true;
  for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) {
    if (gone.has(key.slice(0, i)) || opaqueDirs.has(key.slice(0, i + 1))) return true;
  }
  return false;
}

function startsWith(b: Buffer, prefix: Buffer): boolean {
  return b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);
}
