/**
 * The compiled core: the C-rules dumpfile parser and the composefs V1 writer, written in C
 * (native/core/) and run as WebAssembly. The package carries the built module
 * (native/core/odh-core.wasm, rebuilt by `npm run core`); no compiler is needed to use it.
 *
 * Why compiled: in JavaScript each cold `mkfs` spent as much CPU warming up the parser and the writer
 * as C mkcomposefs spends on its whole run (docs/performance.md). One instance runs one job (parse
 * and write, or write a tree copied in) and is dropped; a failure inside the core is raised there as
 * an OdhError with the core's code, message, dumpfile line and tree path.
 */
import { readFileSync, readSync } from 'node:fs';
import { OdhError, type ErrorCode } from '../../util/errors.js';
import { ENTRY_COLUMNS, FlatTree, INODE_COLUMNS, XATTR_COLUMNS } from './flat-tree.js';
import type { HashAlgorithm } from './erofs/overlay.js';

/** The module beside the sources (vitest) or beside dist/ (the built package). */
function moduleUrl(self = import.meta.url): URL {
  const up = self.endsWith('.ts') ? '../../../' : '../../../../';
  return new URL(`${up}native/core/odh-core.wasm`, self);
}

let compiled: WebAssembly.Module | undefined;

function coreModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readFileSync(moduleUrl()));
  return compiled;
}

interface CoreExports {
  memory: WebAssembly.Memory;
  odh_alloc(n: number): number;
  odh_err_code(): number;
  odh_err_line(): number;
  odh_err_message(): number;
  odh_err_message_len(): number;
  odh_err_path(): number;
  odh_err_path_len(): number;
  odh_parser_new(strict: number, digestBytes: number, expected: number): number;
  odh_parser_feed(parser: number, data: number, n: number): void;
  odh_parser_finish(parser: number): number;
  odh_flat_new(inodes: number, entries: number, xattrs: number, bytes: number): number;
  odh_flat_counts(tree: number, which: number): number;
  odh_flat_column(tree: number, k: number): number;
  odh_v1_write(tree: number, minVersion: number, maxVersion: number, hash: number): number;
  odh_v1_layout(tree: number, minVersion: number, maxVersion: number, hash: number): number;
  odh_v1_layout_column(k: number): number;
  odh_v1_layout_value(k: number): number;
}

/** Where the V1 measuring pass put each inode, by BFS index (= ino). */
export interface CoreV1Layout {
  /** Byte offset of the inode (nid × 32). */
  offset: number[];
  xattrSize: number[];
  /** The inode's i_u field (block address, chunk format, rdev or 0). */
  iu: number[];
  /** Where the inodes end: the shared xattr table's offset. */
  inodesEnd: number;
  imageSize: number;
}

const CODES: Record<number, ErrorCode> = { 1: 'FORMAT', 2: 'LIMIT', 3: 'USAGE' };

/** The flat tree's columns in the core's order (native/core/core-exports.c odh_flat_column). */
const COLUMNS = [...INODE_COLUMNS, 'childIds', ...ENTRY_COLUMNS, ...XATTR_COLUMNS] as const;
type ColumnName = (typeof COLUMNS)[number];
/** Where each table's columns end in COLUMNS (childIds has one element per entry). */
const INODE_END = INODE_COLUMNS.length;
const ENTRY_END = INODE_END + 1 + ENTRY_COLUMNS.length;
const BYTES_COLUMN = COLUMNS.length;

const HASH_CODE: Record<HashAlgorithm, number> = { sha256: 1, sha512: 2 };

/** Input is copied into the core in pieces of at most this many bytes. */
const STAGING = 1 << 20;

export interface CoreV1Options {
  minVersion?: number;
  maxVersion?: number;
  hash?: HashAlgorithm;
}

export interface CoreParseOptions {
  strict: boolean;
  digestBytes: 32 | 64;
  /** Named in errors. */
  file?: string;
  /** Input bytes when known: room for its lines is made at once. */
  sizeHint?: number;
}

/** One instance of the core: one job. */
export class Core {
  private readonly x: CoreExports;
  private onOutput: (chunk: Buffer) => void = () => {};
  /** Named in errors raised by the core. */
  private file: string | undefined;

  constructor() {
    const instance = new WebAssembly.Instance(coreModule(), {
      odh: {
        fail: () => {
          throw this.failure();
        },
        output: (p: number, n: number) => {
          this.onOutput(Buffer.from(this.x.memory.buffer, p, n));
        },
      },
    });
    this.x = instance.exports as unknown as CoreExports;
  }

  private bytesAt(p: number, n: number): Buffer {
    return Buffer.from(this.x.memory.buffer, p, n);
  }

  private failure(): OdhError {
    const x = this.x;
    const code = CODES[x.odh_err_code()] ?? 'FORMAT';
    const message = this.bytesAt(x.odh_err_message(), x.odh_err_message_len()).toString('utf8');
    const line = x.odh_err_line();
    const pathAt = x.odh_err_path();
    const path = pathAt === 0 ? undefined : this.bytesAt(pathAt, x.odh_err_path_len()).toString('utf8');
    return new OdhError(code, message, {
      ...(this.file !== undefined && { file: this.file }),
      ...(path !== undefined && { path }),
      ...(line >= 0 && { line }),
    });
  }

  /** Parses a dumpfile with C mkcomposefs rules; returns the core's tree (a handle for writeV1). */
  async parseDumpfile(
    input: AsyncIterable<Uint8Array> | Uint8Array,
    opts: CoreParseOptions,
  ): Promise<number> {
    if (input instanceof Uint8Array) return this.parseBytes(input, opts);
    const parse = this.parser(opts);
    for await (const chunk of input) parse.feed(chunk);
    return parse.finish();
  }

  /**
   * parseDumpfile of a regular file, read straight into the core's memory (no buffer per chunk on
   * the JavaScript side). `fd` is an open descriptor of `file`, read from its current position.
   */
  parseFile(fd: number, opts: CoreParseOptions): number {
    const x = this.x;
    const parse = this.parser(opts);
    const staging = x.odh_alloc(STAGING);
    for (;;) {
      const n = readSync(fd, new Uint8Array(x.memory.buffer, staging, STAGING), 0, STAGING, null);
      if (n === 0) break;
      parse.feedInPlace(staging, n);
    }
    return parse.finish();
  }

  /** parseDumpfile of a dumpfile in memory. */
  parseBytes(input: Uint8Array, opts: CoreParseOptions): number {
    const parse = this.parser({ ...opts, sizeHint: input.length });
    for (let at = 0; at < input.length; at += STAGING) parse.feed(input.subarray(at, at + STAGING));
    return parse.finish();
  }

  /** A parser in the core: chunks are copied into one staging area and fed in order. */
  private parser(opts: CoreParseOptions): {
    feed(chunk: Uint8Array): void;
    /** Feeds n bytes already at `at` in the core's memory. */
    feedInPlace(at: number, n: number): void;
    finish(): number;
  } {
    const x = this.x;
    this.file = opts.file;
    const expected = Math.min(Math.ceil((opts.sizeHint ?? 0) / 100), 1 << 24);
    const parser = x.odh_parser_new(opts.strict ? 1 : 0, opts.digestBytes, expected);
    let staging = 0;
    let stagingSize = 0;
    return {
      feed: (chunk) => {
        for (let at = 0; at < chunk.length; at += STAGING) {
          const piece = chunk.subarray(at, at + STAGING);
          if (stagingSize === 0) {
            stagingSize = STAGING;
            staging = x.odh_alloc(stagingSize);
          }
          new Uint8Array(x.memory.buffer, staging, piece.length).set(piece);
          x.odh_parser_feed(parser, staging, piece.length);
        }
      },
      feedInPlace: (at, n) => x.odh_parser_feed(parser, at, n),
      finish: () => {
        const tree = x.odh_parser_finish(parser);
        this.file = undefined;
        return tree;
      },
    };
  }

  /** A copy of a TS flat tree in the core; returns its handle. */
  copyIn(tree: FlatTree): number {
    const x = this.x;
    const h = x.odh_flat_new(tree.inodeCount, tree.entryCount, tree.xattrTotal, tree.bytes.length);
    const counts = [tree.inodeCount, tree.entryCount, tree.xattrTotal];
    COLUMNS.forEach((name, k) => {
      const src = tree[name] as unknown as ArrayLike<number> & ArrayBufferView;
      const n = k < INODE_END ? counts[0]! : k < ENTRY_END ? counts[1]! : counts[2]!;
      const view = new Uint8Array(src.buffer, src.byteOffset, n * columnWidth(src));
      new Uint8Array(x.memory.buffer, x.odh_flat_column(h, k), view.length).set(view);
    });
    new Uint8Array(x.memory.buffer, x.odh_flat_column(h, BYTES_COLUMN), tree.bytes.length).set(
      tree.bytes.buf.subarray(0, tree.bytes.length),
    );
    return h;
  }

  /** A TS flat tree holding a copy of the core's tree h. */
  copyOut(h: number): FlatTree {
    const x = this.x;
    const counts = [0, 1, 2].map((w) => x.odh_flat_counts(h, w));
    const [inodes, entries, xattrs] = counts as [number, number, number];
    const bytes = x.odh_flat_counts(h, 3);
    const tree = new FlatTree();
    tree.inodeCount = inodes;
    tree.entryCount = entries;
    tree.xattrTotal = xattrs;
    const columns = tree as unknown as Record<ColumnName, ArrayBufferView & ArrayLike<number>>;
    COLUMNS.forEach((name, k) => {
      const n = k < INODE_END ? inodes : k < ENTRY_END ? entries : xattrs;
      const Type = columns[name].constructor as new (b: ArrayBuffer) => ArrayBufferView & ArrayLike<number>;
      const width = columnWidth(columns[name]);
      const copy = new Uint8Array(n * width);
      copy.set(new Uint8Array(x.memory.buffer, x.odh_flat_column(h, k), n * width));
      columns[name] = new Type(copy.buffer);
    });
    tree.bytes.buf = Buffer.from(this.bytesAt(x.odh_flat_column(h, BYTES_COLUMN), bytes));
    tree.bytes.length = bytes;
    return tree;
  }

  /** The measuring pass alone over tree h (rewritten in place): where everything goes. */
  layoutV1(h: number, opts: CoreV1Options): CoreV1Layout {
    const x = this.x;
    const n = x.odh_v1_layout(h, ...versionArgs(opts));
    const u64s = (k: number): number[] =>
      Array.from(new BigUint64Array(x.memory.buffer, x.odh_v1_layout_column(k), n), Number);
    return {
      offset: u64s(0),
      xattrSize: u64s(1),
      iu: Array.from(new Uint32Array(x.memory.buffer, x.odh_v1_layout_column(2), n)),
      inodesEnd: x.odh_v1_layout_value(0),
      imageSize: x.odh_v1_layout_value(1),
    };
  }

  /** writeV1 into one buffer (stdout output, library callers). */
  imageV1(h: number, opts: CoreV1Options): Buffer {
    const chunks: Buffer[] = [];
    this.writeV1(h, opts, (chunk) => chunks.push(Buffer.from(chunk)));
    return Buffer.concat(chunks);
  }

  /**
   * The V1 image of tree h (which the writer rewrites in place), streamed to onChunk: each chunk is
   * a view of the core's memory, valid only during the call. Returns the image size.
   */
  writeV1(h: number, opts: CoreV1Options, onChunk: (chunk: Buffer) => void): number {
    this.onOutput = onChunk;
    try {
      return this.x.odh_v1_write(h, ...versionArgs(opts));
    } finally {
      this.onOutput = () => {};
    }
  }
}

/**
 * The writer's arguments: versions −1 when not given. A version given must be 0 or 1 (spec
 * composefs-v1 §3.1); checked here, where a non-integer can still be seen, with the values the
 * writer's rule would use (either given: the other defaults to 0).
 */
function versionArgs(opts: CoreV1Options): [number, number, number] {
  const { minVersion, maxVersion } = opts;
  const ok = (v: number | undefined): boolean => v === undefined || (Number.isInteger(v) && v >= 0 && v <= 1);
  if (!ok(minVersion) || !ok(maxVersion)) {
    throw new OdhError(
      'USAGE',
      `composefs V1 version must be 0 or 1 (min ${minVersion ?? 0}, max ${maxVersion ?? 0})`,
    );
  }
  return [minVersion ?? -1, maxVersion ?? -1, opts.hash === undefined ? 0 : HASH_CODE[opts.hash]];
}

function columnWidth(a: ArrayBufferView): number {
  return (a as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
}
