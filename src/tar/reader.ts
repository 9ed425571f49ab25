import { OdhError, type ErrorContext } from '../util/errors.js';
import {
  IteratorByteSource,
  StreamByteSource,
  type BlockingTarByteSource,
  type TarByteSource,
} from './bytesource.js';
import { entryTypeOf, type TarEntry, type TarXattr } from './entry.js';
import {
  BLOCK_SIZE,
  decodeHeader,
  isZeroBlock,
  paddingFor,
  parsePaxRecords,
  type RawHeader,
} from './header.js';

/** Largest PAX extended header we buffer. */
export const MAX_PAX_HEADER = 1 << 20;
/** Largest GNU 'L'/'K' long name or link we buffer. */
export const MAX_LONG_NAME = 1 << 20;

const B = BigInt(BLOCK_SIZE);
const U64_MAX = (1n << 64n) - 1n;
const XATTR_PREFIX = 'SCHILY.xattr.';

/** An entry and its content. Reading `body` is optional: unread content is skipped. */
export interface TarItem {
  entry: TarEntry;
  /** The entry's `size` stored bytes, streamed; valid only until the next entry is requested. */
  body: AsyncIterable<Buffer>;
}

export interface ReadTarOptions {
  /** Names the input in error messages (file path or layer digest). */
  where?: ErrorContext;
}

/**
 * Streams the entries of an uncompressed tar. Memory is bounded: content is streamed in source
 * chunks; only PAX headers (≤ MAX_PAX_HEADER) and long names (≤ MAX_LONG_NAME) are buffered.
 * Ends at two zero blocks or at a clean EOF on a block boundary; what follows the end blocks is read
 * and discarded (not parsed) so a hashing stream feeding us sees all bytes. Errors: TRUNCATED (input ends
 * inside a header or content), FORMAT (bad checksum, bad number, bad PAX), LIMIT; all name the offset.
 */
export async function* readTar(
  source: AsyncIterable<Buffer> | NodeJS.ReadableStream,
  opts: ReadTarOptions = {},
): AsyncGenerator<TarItem> {
  yield* readTarFrom(new StreamByteSource(source as AsyncIterable<unknown>), opts);
}

/** `readTar` over any byte source (file sources use positional reads). Closes the source at the end. */
export async function* readTarFrom(src: TarByteSource, opts: ReadTarOptions = {}): AsyncGenerator<TarItem> {
  const where = opts.where ?? {};
  let generation = 0;
  try {
    while (true) {
      const entry = await runSteps(entrySteps(src, where), src);
      if (entry === null) {
        await src.drain();
        return;
      }
      const gen = ++generation;
      let remaining = entry.size;
      const body = async function* (): AsyncGenerator<Buffer> {
        if (gen !== generation) throw bodyAfterNext();
        for await (const c of src.chunks(remaining)) {
          remaining -= BigInt(c.length);
          yield c;
          if (gen !== generation) throw bodyAfterNext();
        }
        if (remaining > 0n) throw truncated('entry content', src.position, where);
      };
      yield { entry, body: { [Symbol.asyncIterator]: body } };
      generation++;
      const rest = remaining + paddingFor(entry.size);
      if ((await src.skip(rest)) !== rest) throw truncated('entry content', src.position, where);
    }
  } finally {
    await src.close();
  }
}

/** A `TarItem` of `readTarBlocking`: the body is read without waiting. */
export interface BlockingTarItem {
  entry: TarEntry;
  body: Iterable<Buffer>;
}

/**
 * `readTar` without waiting, over chunks at hand: for a thread whose input is read and decoded on
 * the spot (a layer worker). The same parser and the same errors; the source is closed at the end.
 */
export function* readTarBlocking(
  source: Iterable<Buffer>,
  opts: ReadTarOptions = {},
): Generator<BlockingTarItem> {
  const src: BlockingTarByteSource = new IteratorByteSource(source[Symbol.iterator]());
  const where = opts.where ?? {};
  let generation = 0;
  try {
    while (true) {
      const entry = runStepsBlocking(entrySteps(src, where), src);
      if (entry === null) {
        src.drain();
        return;
      }
      const gen = ++generation;
      let remaining = entry.size;
      const body = function* (): Generator<Buffer> {
        if (gen !== generation) throw bodyAfterNext();
        for (const c of src.chunks(remaining)) {
          remaining -= BigInt(c.length);
          yield c;
          if (gen !== generation) throw bodyAfterNext();
        }
        if (remaining > 0n) throw truncated('entry content', src.position, where);
      };
      yield { entry, body: { [Symbol.iterator]: body } };
      generation++;
      const rest = remaining + paddingFor(entry.size);
      if (src.skip(rest) !== rest) throw truncated('entry content', src.position, where);
    }
  } finally {
    src.close();
  }
}

function bodyAfterNext(): Error {
  return new Error('tar entry body read after moving to the next entry');
}

/**
 * What the entry parser needs next from its source: bytes to read (fewer only at the end of the
 * input) or bytes to skip. The parser (`entrySteps`) yields these and is resumed with the bytes
 * read or the count skipped, so one parser serves a waiting source and a blocking one.
 */
type Need = { read: number } | { skip: bigint };
type Steps<T> = Generator<Need, T, Buffer | bigint>;

async function runSteps<T>(steps: Steps<T>, src: TarByteSource): Promise<T> {
  let r = steps.next();
  while (r.done !== true) {
    const need = r.value;
    r = steps.next('read' in need ? await src.read(need.read) : await src.skip(need.skip));
  }
  return r.value;
}

function runStepsBlocking<T>(steps: Steps<T>, src: BlockingTarByteSource): T {
  let r = steps.next();
  while (r.done !== true) {
    const need = r.value;
    r = steps.next('read' in need ? src.read(need.read) : src.skip(need.skip));
  }
  return r.value;
}

function* read(n: number): Steps<Buffer> {
  return (yield { read: n }) as Buffer;
}

function* skip(n: bigint): Steps<bigint> {
  return (yield { skip: n }) as bigint;
}

function truncated(what: string, offset: bigint, where: ErrorContext): OdhError {
  return new OdhError('TRUNCATED', `tar truncated inside ${what}`, { ...where, offset });
}

/** Where the parser stands in its source (bytes consumed so far), for offsets in errors and entries. */
interface Position {
  readonly position: bigint;
}

/** Reads one block; null at a clean EOF, TRUNCATED for a partial block. */
function* readBlock(src: Position, where: ErrorContext): Steps<Buffer | null> {
  const at = src.position;
  const b = yield* read(BLOCK_SIZE);
  if (b.length === 0) return null;
  if (b.length < BLOCK_SIZE) throw truncated('a header block', at, where);
  return b;
}

/** The special entries whose content is buffered, each with its size limit. */
const SPECIAL = {
  x: { what: 'PAX extended header', max: MAX_PAX_HEADER },
  g: { what: 'PAX global header', max: MAX_PAX_HEADER },
  L: { what: 'GNU long name', max: MAX_LONG_NAME },
  K: { what: 'GNU long link name', max: MAX_LONG_NAME },
} as const;

/**
 * Reads a buffered special entry's content (PAX header, long name) plus its padding; `ctx` is the
 * tar's `where` with the header's offset.
 */
function* readSpecial(
  src: Position,
  h: RawHeader,
  kind: keyof typeof SPECIAL,
  ctx: ErrorContext,
): Steps<Buffer> {
  const { what, max } = SPECIAL[kind];
  if (h.size > BigInt(max)) {
    throw new OdhError('LIMIT', `${what} of ${h.size} bytes exceeds the ${max}-byte limit`, ctx);
  }
  const data = yield* read(Number(h.size));
  if (BigInt(data.length) !== h.size) throw truncated(what, src.position, ctx);
  const pad = paddingFor(h.size);
  if ((yield* skip(pad)) !== pad) throw truncated(what, src.position, ctx);
  return data;
}

/** Strips exactly one trailing NUL (GNU long names; spec composefs-v2 §3.2). */
function stripOneNul(b: Buffer): Buffer {
  return b.length > 0 && b[b.length - 1] === 0 ? b.subarray(0, b.length - 1) : b;
}

/** Parses the entries' prelude (PAX 'x'/'g', GNU 'L'/'K', stray zero block) and header; null at the end. */
function* entrySteps(src: Position, where: ErrorContext): Steps<TarEntry | null> {
  const headerOffset = src.position;
  const pax = new Map<string, Buffer>();
  const xattrs: TarXattr[] = [];
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  let pending = false; // a prelude record was read: the archive must not end here
  while (true) {
    const at = src.position;
    let block = yield* readBlock(src, where);
    if (block === null) {
      if (pending) throw truncated('an entry (after its extended header)', at, where);
      return null;
    }
    if (isZeroBlock(block)) {
      // Two zero blocks (or a zero block at EOF) end the archive; one zero block then data is skipped.
      const next = yield* readBlock(src, where);
      if (next === null || isZeroBlock(next)) {
        if (pending) throw truncated('an entry (after its extended header)', at, where);
        return null;
      }
      block = next;
    }
    const hAt = src.position - B;
    const h = decodeHeader(block, hAt, where);
    const ctx = { ...where, offset: hAt };
    switch (h.typeflag) {
      case 'x': {
        const data = yield* readSpecial(src, h, 'x', ctx);
        for (const r of parsePaxRecords(data, hAt, where)) {
          pax.set(r.key, r.value);
          if (r.key.startsWith(XATTR_PREFIX)) {
            const key = Buffer.from(r.key.slice(XATTR_PREFIX.length), 'utf8');
            const i = xattrs.findIndex((x) => x.key.equals(key));
            if (i >= 0) xattrs[i] = { key, value: r.value };
            else xattrs.push({ key, value: r.value });
          }
        }
        pending = true;
        continue;
      }
      case 'g':
        // spec composefs-v2 §3.2: global PAX records do not apply to later entries; validate, drop.
        parsePaxRecords(yield* readSpecial(src, h, 'g', ctx), hAt, where);
        continue;
      case 'L':
        longName = stripOneNul(yield* readSpecial(src, h, 'L', ctx));
        pending = true;
        continue;
      case 'K':
        longLink = stripOneNul(yield* readSpecial(src, h, 'K', ctx));
        pending = true;
        continue;
    }
    if (h.gnuSparseExtended) {
      // Old GNU sparse: extension blocks follow until one has isextended (byte 504) clear.
      while (true) {
        const ext = yield* readBlock(src, where);
        if (ext === null) throw truncated('GNU sparse extension header', src.position, where);
        if (ext[504] === 0) break;
      }
    }
    // An empty PAX value still overrides (as Go archive/tar and tar-core do; empty numbers are errors).
    const paxPath = pax.get('path');
    const paxLink = pax.get('linkpath');
    const size = paxNumber(pax, 'size', ctx) ?? h.size;
    const uid = paxNumber(pax, 'uid', ctx) ?? h.uid;
    const gid = paxNumber(pax, 'gid', ctx) ?? h.gid;
    const mtime = paxMtime(pax, ctx) ?? h.mtime;
    let sparse = h.typeflag === 'S';
    for (const k of pax.keys()) if (k.startsWith('GNU.sparse.')) sparse = true;
    return {
      type: entryTypeOf(h.typeflag),
      typeflag: h.typeflag,
      format: h.format,
      path: paxPath ?? longName ?? h.name,
      linkpath: paxLink ?? longLink ?? h.linkname,
      mode: h.mode,
      uid: safeNumber(uid, 'uid', ctx),
      gid: safeNumber(gid, 'gid', ctx),
      uname: pax.get('uname') ?? h.uname,
      gname: pax.get('gname') ?? h.gname,
      size,
      mtime,
      devmajor: safeNumber(h.devmajor ?? 0n, 'devmajor', ctx),
      devminor: safeNumber(h.devminor ?? 0n, 'devminor', ctx),
      xattrs,
      pax,
      sparse,
      headerOffset,
      dataOffset: src.position,
    };
  }
}

function paxNumber(pax: Map<string, Buffer>, key: string, ctx: ErrorContext): bigint | undefined {
  const v = pax.get(key);
  if (v === undefined) return undefined;
  const s = v.toString('latin1');
  if (!/^[0-9]{1,20}$/.test(s) || BigInt(s) > U64_MAX) {
    throw new OdhError('FORMAT', `PAX ${key} ${JSON.stringify(s)} is not a decimal u64`, ctx);
  }
  return BigInt(s);
}

/** spec composefs-v2 §3.2: only the part before the first '.' is used; negative is an error. */
function paxMtime(pax: Map<string, Buffer>, ctx: ErrorContext): bigint | undefined {
  const v = pax.get('mtime');
  if (v === undefined) return undefined;
  const s = v.toString('latin1');
  const dot = s.indexOf('.');
  const whole = dot < 0 ? s : s.slice(0, dot);
  if (!/^[0-9]{1,20}$/.test(whole) || BigInt(whole) > U64_MAX) {
    throw new OdhError('FORMAT', `PAX mtime ${JSON.stringify(s)} is not a non-negative decimal`, ctx);
  }
  return BigInt(whole);
}

function safeNumber(v: bigint, what: string, ctx: ErrorContext): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new OdhError('FORMAT', `tar ${what} ${v} is out of range`, ctx);
  }
  return Number(v);
}
