import type { ErrorContext } from '../util/errors.js';
import { emptyOpHistogram } from './apply.js';
import { checkOp } from './op-rules.js';
import { OpCode, type OpName } from './ops.js';
import { cleanSourceName, displayName } from './path.js';
import { openTarDiff, type TarDiffInput } from './stream.js';
import { parseZstdFrameHeader } from './zstd.js';

export interface TarDiffSummary {
  version: 1 | 2;
  ops: Record<OpName, number>;
  /** Cleaned Open names in first-use order, each once (display form: UTF-8, else `\xNN` escapes). */
  sources: string[];
  /**
   * Output size: Data + Copy + AddData sizes plus the content size recorded in ZstdDict frames.
   * Exact only when `bytesOutExact` (a ZstdDict frame without content size needs the source).
   */
  bytesOut: bigint;
  bytesOutExact: boolean;
}

/** Largest zstd frame header (magic 4 + descriptor 1 + window 1 + dict id 4 + content size 8). */
const MAX_FRAME_HEADER = 18;

/**
 * Reads a tar-diff without a data source (for `odh inspect`): checks the structure with the same
 * rules as the applier (header, op codes, limits, ZstdDict only in v2, no op before Open) and
 * summarizes it. Payloads are skipped as they stream by.
 */
export async function inspectTarDiff(
  delta: TarDiffInput,
  opts: { where?: string } = {},
): Promise<TarDiffSummary> {
  const layerCtx: ErrorContext = opts.where !== undefined ? { layer: opts.where } : {};
  const stream = await openTarDiff(delta, layerCtx);
  const ops = emptyOpHistogram();
  const seen = new Set<string>();
  const sources: string[] = [];
  let bytesOut = 0n;
  let bytesOutExact = true;
  let open = false;
  for (let op = await stream.ops.next(); op; op = await stream.ops.next()) {
    ops[op.name]++;
    const ctx: ErrorContext = { ...layerCtx, op: op.index, offset: op.offset };
    checkOp(op, stream.version, open, ctx);
    switch (op.code) {
      case OpCode.Data:
      case OpCode.Copy:
        bytesOut += op.size;
        break;
      case OpCode.Open: {
        const name = displayName(cleanSourceName(await stream.ops.readPayload(), ctx));
        if (!seen.has(name)) {
          seen.add(name);
          sources.push(name);
        }
        open = true;
        break;
      }
      case OpCode.AddData:
        bytesOut += op.size;
        break;
      case OpCode.Seek:
        break;
      case OpCode.ZstdDict: {
        const head: Buffer[] = [];
        let len = 0;
        for await (const part of stream.ops.payload()) {
          head.push(part);
          len += part.length;
          if (len >= MAX_FRAME_HEADER) break;
        }
        const header = parseZstdFrameHeader(Buffer.concat(head), ctx);
        if (header.contentSize !== undefined) bytesOut += header.contentSize;
        else bytesOutExact = false;
        break;
      }
    }
  }
  return { version: stream.version, ops, sources, bytesOut, bytesOutExact };
}
