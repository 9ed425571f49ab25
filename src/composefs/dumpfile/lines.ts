/**
 * Splits dumpfile text into LF-terminated lines (spec composefs-v1 §4.1), from a buffer or a
 * stream, with a bound on the line length so hostile input cannot grow memory without limit.
 */
import { OdhError } from '../../util/errors.js';

export interface DumpLine {
  /** Line bytes without the LF. May alias the input chunk: copy what you keep. */
  bytes: Buffer;
  /** 1-based line number. */
  number: number;
  /** false only for a last line that has no trailing LF. */
  terminated: boolean;
}

/**
 * Longest line held in memory. The dumpfile format has no line limit and neither C mkcomposefs
 * (getline) nor composefs-rs has one: a 5 MiB DIGEST field is a valid line (only its first 64 or
 * 128 hex digits count). This is a memory ceiling of ours, not a format rule; it sits far above any
 * line that can be meaningful (PATH and xattrs are bounded by the format, docs/composefs-decisions.md §2).
 */
export const MAX_LINE_BYTES = 1024 * 1024 * 1024;

function tooLong(number: number, file?: string): OdhError {
  return new OdhError(
    'LIMIT',
    `dumpfile line longer than ${MAX_LINE_BYTES} bytes: odh's memory ceiling per line (not a format limit)`,
    { file, line: number },
  );
}

export function* dumpfileLinesSync(input: Uint8Array, file?: string): Generator<DumpLine> {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  let number = 0;
  let start = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl < 0 ? buf.length : nl;
    number++;
    if (end - start > MAX_LINE_BYTES) throw tooLong(number, file);
    yield { bytes: buf.subarray(start, end), number, terminated: nl >= 0 };
    start = end + 1;
  }
}

export async function* dumpfileLines(
  input: AsyncIterable<Uint8Array>,
  file?: string,
): AsyncGenerator<DumpLine> {
  for await (const batch of dumpfileLineBatches(input, file)) yield* batch;
}

/**
 * The lines of each input chunk as one array: a consumer awaits once per chunk, not once per line
 * (per-line promise round trips were a visible share of `odh composefs mkfs` on a 64k-entry dump).
 */
export async function* dumpfileLineBatches(
  input: AsyncIterable<Uint8Array>,
  file?: string,
): AsyncGenerator<DumpLine[]> {
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let number = 0;
  for await (const raw of input) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const batch: DumpLine[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      number++;
      let bytes = chunk.subarray(start, nl);
      if (pendingLen > 0) {
        if (pendingLen + bytes.length > MAX_LINE_BYTES) throw tooLong(number, file);
        pending.push(bytes);
        bytes = Buffer.concat(pending, pendingLen + bytes.length);
        pending = [];
        pendingLen = 0;
      }
      if (bytes.length > MAX_LINE_BYTES) throw tooLong(number, file);
      batch.push({ bytes, number, terminated: true });
      start = nl + 1;
    }
    if (batch.length > 0) yield batch;
    if (start < chunk.length) {
      // Keep a copy: the producer may reuse its chunk buffer.
      const rest = Buffer.from(chunk.subarray(start));
      pending.push(rest);
      pendingLen += rest.length;
      if (pendingLen > MAX_LINE_BYTES) throw tooLong(number + 1, file);
    }
  }
  if (pendingLen > 0) {
    number++;
    yield [{ bytes: Buffer.concat(pending, pendingLen), number, terminated: false }];
  }
}
