import { OdhError, type ErrorContext } from '../util/errors.js';
import { OpCode, type OpHeader } from './ops.js';

/** spec oci-delta §2.2: DoS limits every applier enforces. */
export const OPEN_NAME_MAX = 4 * 1024;
export const ADD_DATA_MAX = 100 * 1024 * 1024;

/**
 * The rules one op header must meet before its payload is read (spec oci-delta §2.2), shared by the
 * applier and by `inspect`, which checks a delta without a source: the Open name and AddData
 * limits, ZstdDict only in tardf2, and no Copy/AddData/Seek/ZstdDict before an Open (`hasFile`).
 * The order of the checks is the §2.4 applier's: an op's own limit or version first, then the
 * current file.
 */
export function checkOp(op: OpHeader, version: 1 | 2, hasFile: boolean, ctx: ErrorContext): void {
  switch (op.code) {
    case OpCode.Data:
      return;
    case OpCode.Open:
      if (op.size > BigInt(OPEN_NAME_MAX)) {
        throw new OdhError(
          'LIMIT',
          `Open name of ${op.size} bytes exceeds the limit of ${OPEN_NAME_MAX}`,
          ctx,
        );
      }
      return;
    case OpCode.AddData:
      if (op.size > BigInt(ADD_DATA_MAX)) {
        throw new OdhError('LIMIT', `AddData of ${op.size} bytes exceeds the limit of ${ADD_DATA_MAX}`, ctx);
      }
      break;
    case OpCode.ZstdDict:
      if (version !== 2) throw new OdhError('FORMAT', 'ZstdDict op requires a tardf2 delta', ctx);
      break;
    case OpCode.Copy:
    case OpCode.Seek:
      break;
  }
  if (!hasFile)
    throw new OdhError('FORMAT', `${op.name} op with no current file set (no Open before it)`, ctx);
}
