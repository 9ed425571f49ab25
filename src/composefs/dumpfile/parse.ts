/**
 * Dumpfile text → composefs tree (tree.ts), with either rule set:
 * - `{ rules: 'mkcomposefs', strict }`: C `mkcomposefs --from-file` 1.0.8 (spec composefs-v1 §4);
 * - `{ rules: 'composefs-rs' }`: composefs-rs `dumpfile_parse.rs` (spec composefs-v2 §7.4).
 * Input is a buffer or a stream of chunks (e.g. a gunzip stream); lines are parsed one at a time.
 * Every rejection is an OdhError('FORMAT' | 'LIMIT') naming the line.
 */
import { OdhError } from '../../util/errors.js';
import type { Inode } from '../format/tree.js';
import { dumpfileLineBatches, dumpfileLinesSync, type DumpLine } from './lines.js';
import { ComposefsRsDumpfileParser } from './parse-rs.js';
import { toInodeTree } from '../format/flat-tree.js';
import { Core, type CoreParseOptions } from '../format/core.js';

export type DumpfileRules =
  | {
      rules: 'mkcomposefs';
      strict: boolean;
      /**
       * Bytes of fs-verity digest a DIGEST field holds: 32 (C 1.0.8, SHA-256) or 64 (SHA-512 images,
       * `--hash sha512`; C cannot write those, composefs-rs V1 can). Default 32.
       */
      digestBytes?: 32 | 64;
    }
  | { rules: 'composefs-rs' };

export type ParseDumpfileOptions = DumpfileRules & {
  /** Name used in error messages. */
  file?: string;
};

interface LineParser<T> {
  line(bytes: Buffer, lineNo: number, terminated: boolean): void;
  finish(): T;
}

/** The composefs-rs line parser. (C rules run in the compiled core: format/core.ts.) */
function makeParser(options: ParseDumpfileOptions): LineParser<Inode> {
  if (options.rules === 'composefs-rs') return new ComposefsRsDumpfileParser();
  throw new OdhError('USAGE', `unknown dumpfile rules ${String((options as { rules: unknown }).rules)}`);
}

function coreOptions(options: Extract<ParseDumpfileOptions, { rules: 'mkcomposefs' }>): CoreParseOptions {
  return { strict: options.strict, digestBytes: options.digestBytes ?? 32, file: options.file };
}

/** Adds the file and line to an error thrown by a line parser (a line it names itself stays). */
function located(e: unknown, file: string | undefined, line: number | undefined): unknown {
  if (!(e instanceof OdhError)) return e;
  if (e.context.line !== undefined) {
    return e.context.file !== undefined || file === undefined
      ? e
      : new OdhError(e.code, stripContext(e), { ...e.context, file }, { cause: e });
  }
  return new OdhError(e.code, e.message, { ...e.context, file, line }, { cause: e });
}

/** The message without the " (…)" context suffix OdhError appended. */
function stripContext(e: OdhError): string {
  const i = e.message.lastIndexOf(' (');
  return i < 0 ? e.message : e.message.slice(0, i);
}

function feed<T>(parser: LineParser<T>, l: DumpLine, file: string | undefined): void {
  try {
    parser.line(l.bytes, l.number, l.terminated);
  } catch (e) {
    throw located(e, file, l.number);
  }
}

function finish<T>(parser: LineParser<T>, file: string | undefined): T {
  try {
    return parser.finish();
  } catch (e) {
    throw located(e, file, undefined);
  }
}

/** Parses a whole dumpfile held in memory. Returns the root directory inode. */
export function parseDumpfileSync(text: Uint8Array | string, options: ParseDumpfileOptions): Inode {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  if (options.rules === 'mkcomposefs') {
    const core = new Core();
    return toInodeTree(core.copyOut(core.parseBytes(bytes, coreOptions(options))));
  }
  const parser = makeParser(options);
  for (const l of dumpfileLinesSync(bytes, options.file)) feed(parser, l, options.file);
  return finish(parser, options.file);
}

/** Parses a dumpfile from a stream of chunks (or a buffer). Returns the root directory inode. */
export async function parseDumpfile(
  input: AsyncIterable<Uint8Array> | Uint8Array | string,
  options: ParseDumpfileOptions,
): Promise<Inode> {
  if (typeof input === 'string' || input instanceof Uint8Array) return parseDumpfileSync(input, options);
  if (options.rules === 'mkcomposefs') {
    const core = new Core();
    return toInodeTree(core.copyOut(await core.parseDumpfile(input, coreOptions(options))));
  }
  const parser = makeParser(options);
  for await (const batch of dumpfileLineBatches(input, options.file)) {
    for (const l of batch) feed(parser, l, options.file);
  }
  return finish(parser, options.file);
}
