import binding from 'zstd-napi/binding.js';
import { compress } from 'zstd-napi';
import { OdhError } from '../../src/util/errors.js';
import type { DataSource, DataSourceFile } from '../../src/tardiff/data-source.js';
import { applyTarDiff, type ApplyOptions, type ApplyResult } from '../../src/tardiff/apply.js';

/** Test-only in-memory data source: name (cleaned, '/'-separated) → bytes. */
export class MemorySource implements DataSource {
  readonly opened: string[] = [];
  constructor(private readonly files: Record<string, Uint8Array>) {}

  async open(name: Buffer): Promise<DataSourceFile> {
    const key = name.toString('utf8');
    this.opened.push(key);
    const data = this.files[key];
    if (!data) throw new OdhError('NOT_FOUND', 'source file not found', { path: key });
    return {
      name: key,
      size: data.length,
      async readAt(buf, offset, length, position) {
        const n = Math.max(0, Math.min(length, data.length - position));
        buf.set(data.subarray(position, position + n), offset);
        return n;
      },
      async close() {},
    };
  }
}

export const MAGIC_V1 = Buffer.from('tardf1\n\0', 'latin1');
export const MAGIC_V2 = Buffer.from('tardf2\n\0', 'latin1');

/** A tar-diff file: header + one zstd frame per entry of `frames` (each a list of encoded ops). */
export function makeDelta(version: 1 | 2, ...frames: Buffer[][]): Buffer {
  return Buffer.concat([
    version === 1 ? MAGIC_V1 : MAGIC_V2,
    ...frames.map((ops) => compress(Buffer.concat(ops))),
  ]);
}

/** Feeds `bytes` in pieces of `piece` bytes, to exercise every chunk boundary. */
export async function* chunked(bytes: Buffer, piece = 1 << 16): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
}

export async function applyToBuffer(
  delta: Buffer,
  source: DataSource,
  opts: ApplyOptions & { piece?: number } = {},
): Promise<{ out: Buffer; result: ApplyResult; chunks: number[] }> {
  const parts: Buffer[] = [];
  const result = await applyTarDiff(
    chunked(delta, opts.piece),
    source,
    async (c) => {
      parts.push(Buffer.from(c));
    },
    opts,
  );
  return { out: Buffer.concat(parts), result, chunks: parts.map((p) => p.length) };
}

export async function applyError(delta: Buffer, source: DataSource): Promise<OdhError> {
  try {
    await applyToBuffer(delta, source);
  } catch (e) {
    if (e instanceof OdhError) return e;
    throw e;
  }
  throw new Error('expected the tar-diff to fail');
}

/**
 * A zstd frame of `target` with `dict` as raw-content reference (what `zstd --patch-from` and
 * upstream's ZstdDict encoder make). `windowLog` forces the frame's window descriptor; with
 * `contentSize: false` the frame records no content size.
 */
export function zstdPatch(
  dict: Buffer,
  target: Buffer,
  opts: { level?: number; windowLog?: number; contentSize?: boolean; checksum?: boolean } = {},
): Buffer {
  const cctx = new binding.CCtx();
  cctx.setParameter(binding.CParameter.compressionLevel, opts.level ?? 3);
  if (opts.windowLog !== undefined) cctx.setParameter(binding.CParameter.windowLog, opts.windowLog);
  cctx.setParameter(binding.CParameter.contentSizeFlag, opts.contentSize === false ? 0 : 1);
  cctx.setParameter(binding.CParameter.checksumFlag, opts.checksum ? 1 : 0);
  cctx.loadDictionary(dict);
  const out = Buffer.alloc(target.length + 1024);
  if (opts.contentSize === false) {
    // Streaming with no pledged size: the frame gets a window descriptor and no content size.
    // The input goes in with `continue` first, so libzstd cannot see the total size and
    // must use a window descriptor instead of a single-segment frame.
    const [, first, consumed] = cctx.compressStream2(out, target, binding.EndDirective.continue);
    expectAll(consumed === target.length);
    const [left, second] = cctx.compressStream2(
      out.subarray(first),
      Buffer.alloc(0),
      binding.EndDirective.end,
    );
    expectAll(left === 0);
    return out.subarray(0, first + second);
  }
  return out.subarray(0, cctx.compress2(out, target));
}

function expectAll(ok: boolean): void {
  if (!ok) throw new Error('test encoder: output buffer too small');
}
