/**
 * Dumpfile text → flat tree (format/flat-tree.ts) with the rules of C `mkcomposefs --from-file` 1.0.8
 * (spec composefs-v1 §4): what the V1 writer reads. Lines are visited in place, without a view or
 * object per line. Every rejection is an OdhError('FORMAT' | 'LIMIT') naming the file and line.
 */
import { OdhError } from '../../util/errors.js';
import { eachDumpLine, eachDumpLineSync, type LineVisitor } from './lines.js';
import { MkcomposefsDumpfileParser } from './parse-c.js';
import type { FlatTree } from '../format/flat-tree.js';

/** Adds the file and line to an error thrown by a field parser. */
export function located(e: unknown, file: string | undefined, line: number | undefined): unknown {
  if (!(e instanceof OdhError)) return e;
  if (e.context.line !== undefined) {
    return e.context.file !== undefined || file === undefined
      ? e
      : new OdhError(e.code, stripContext(e), { ...e.context, file }, { cause: e });
  }
  return new OdhError(e.code, e.message, { ...e.context, file, line }, { cause: e });
}

/** The message without the " (line N)" suffix formatMessage appended. */
function stripContext(e: OdhError): string {
  const i = e.message.lastIndexOf(' (');
  return i < 0 ? e.message : e.message.slice(0, i);
}

/**
 * A dumpfile with the C mkcomposefs rules as a flat tree (what the V1 writer reads), from a stream
 * of chunks or a buffer.
 */
export async function parseDumpfileFlat(
  input: AsyncIterable<Uint8Array> | Uint8Array,
  options: {
    strict: boolean;
    digestBytes?: 32 | 64;
    file?: string;
    /** Input bytes, when known: room for its lines is made at once (about 100 bytes a line). */
    sizeHint?: number;
  },
): Promise<FlatTree> {
  const bytes = input instanceof Uint8Array ? input.length : (options.sizeHint ?? 0);
  const parser = new MkcomposefsDumpfileParser(
    options.strict,
    options.digestBytes ?? 32,
    Math.ceil(bytes / 100),
  );
  const file = options.file;
  const visit: LineVisitor = (line) => {
    try {
      parser.lineAt(line);
    } catch (e) {
      throw located(e, file, line.number);
    }
  };
  if (input instanceof Uint8Array) eachDumpLineSync(input, visit, file);
  else await eachDumpLine(input, visit, file);
  try {
    return parser.finish();
  } catch (e) {
    throw located(e, file, undefined);
  }
}
