/**
 * One typed error for the whole project. `code` is stable (tests and --json match on it);
 * the message is one line and names where the fact was found (file, layer, op index, offset).
 */
export type ErrorCode =
  | 'USAGE'
  | 'IO'
  | 'FORMAT'
  | 'DIGEST_MISMATCH'
  | 'DIFF_ID_MISMATCH'
  | 'LIMIT'
  | 'UNSAFE_PATH'
  | 'NOT_FOUND'
  | 'SOURCE_MISMATCH'
  | 'TRUNCATED'
  | 'UNSUPPORTED'
  | 'EXISTS'
  | 'UNAVAILABLE'
  /** No embedded signature verified with --verify-key (spec oci-delta §1.6). */
  | 'SIGNATURE'
  /** An external upstream program (oci-delta) exited non-zero, was killed or timed out. */
  | 'UPSTREAM_FAILED';

export interface ErrorContext {
  file?: string;
  layer?: string;
  op?: number;
  offset?: number | bigint;
  line?: number;
  path?: string;
}

export class OdhError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(formatMessage(message, context), options);
    this.name = 'OdhError';
    this.code = code;
    this.context = context;
  }
}

function formatMessage(message: string, ctx: ErrorContext): string {
  const where: string[] = [];
  if (ctx.file !== undefined) where.push(`file ${ctx.file}`);
  if (ctx.layer !== undefined) where.push(`layer ${ctx.layer}`);
  if (ctx.path !== undefined) where.push(`path ${JSON.stringify(ctx.path)}`);
  if (ctx.line !== undefined) where.push(`line ${ctx.line}`);
  if (ctx.op !== undefined) where.push(`op #${ctx.op}`);
  if (ctx.offset !== undefined) where.push(`offset ${ctx.offset}`);
  const oneLine = message.replace(/\s*\n\s*/g, ' ');
  return where.length ? `${oneLine} (${where.join(', ')})` : oneLine;
}

export function isOdhError(e: unknown): e is OdhError {
  return e instanceof OdhError;
}
