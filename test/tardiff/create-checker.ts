/**
 * A reference checker for tar-diffs we create (spec oci-delta §2.2, §5.7): decodes every op with
 * zstd-napi's one-shot decoder and the pinned varint codec, and reports what an upstream applier
 * would refuse or what a compatible creator must never emit.
 */
import { lstatSync } from 'node:fs';
import path from 'node:path';
import binding from 'zstd-napi/binding.js';
import { decompress as zstdDecompress } from 'zstd-napi';
import { decodeUvarint } from '../../src/tardiff/varint.js';
import { parseZstdFrameHeader } from '../../src/tardiff/zstd.js';

export interface CheckedOp {
  op: number;
  /** Payload (Data, Open, AddData, ZstdDict) or operand (Copy, Seek). */
  payload?: Buffer;
  operand?: number;
}

export interface CheckReport {
  version: 1 | 2;
  ops: CheckedOp[];
  opened: string[];
  problems: string[];
}

/**
 * `rootfs`: the extracted merged root filesystem; every Open name must be a world-readable regular
 * file there and not under `sysroot/ostree/`.
 */
export function checkTarDiff(delta: Buffer, rootfs?: string): CheckReport {
  const problems: string[] = [];
  const magic = delta.subarray(0, 8).toString('latin1');
  const version = magic === 'tardf2\n\0' ? 2 : magic === 'tardf1\n\0' ? 1 : 0;
  if (version === 0) throw new Error(`bad magic ${JSON.stringify(magic)}`);
  const stream = Buffer.from(zstdDecompress(delta.subarray(8)));
  const ops: CheckedOp[] = [];
  const opened = new Set<string>();
  let p = 0;
  while (p < stream.length) {
    const op = stream[p++]!;
    const v = decodeUvarint(stream, p);
    if (!v) throw new Error(`truncated varint at ${p}`);
    p += v.length;
    const n = Number(v.value);
    if (op === 2 || op === 4) {
      ops.push({ op, operand: n });
      continue;
    }
    if (op > 5) throw new Error(`unknown op ${op}`);
    const payload = stream.subarray(p, p + n);
    if (payload.length !== n) throw new Error(`truncated payload of op ${op}`);
    p += n;
    ops.push({ op, payload });
    if (op === 0 && n > 4 * 1024 * 1024) problems.push(`Data op of ${n} bytes > 4 MiB`);
    if (op === 1) {
      const name = payload.toString();
      opened.add(name);
      if (n > 4096) problems.push(`Open name of ${n} bytes`);
      if (name.startsWith('sysroot/ostree/')) problems.push(`Open under sysroot/ostree/: ${name}`);
      if (name.startsWith('/') || name.split('/').some((c) => c === '' || c === '.' || c === '..')) {
        problems.push(`Open name not clean: ${name}`);
      }
      if (rootfs) {
        const st = lstatSync(path.join(rootfs, name), { throwIfNoEntry: false });
        if (!st?.isFile()) problems.push(`Open name is not a regular file of the merged rootfs: ${name}`);
        else if ((st.mode & 0o004) === 0) problems.push(`Open of a non-world-readable file: ${name}`);
      }
    }
    if (op === 3 && n > 100 * 1024 * 1024) problems.push(`AddData of ${n} bytes`);
    if (op === 5) {
      if (version !== 2) problems.push('ZstdDict in a tardf1 stream');
      const h = parseZstdFrameHeader(payload);
      if (h.windowSize > 1n << 29n) problems.push(`ZstdDict window ${h.windowSize} > 2^29`);
      if (h.dictId !== 0) problems.push(`ZstdDict frame names dictionary ${h.dictId}`);
      if (binding.findFrameCompressedSize(payload) !== payload.length) {
        problems.push('ZstdDict payload is not exactly one frame');
      }
    }
  }
  return { version, ops, opened: [...opened], problems };
}

/** Op counts by name. */
export function opCounts(r: CheckReport): Record<string, number> {
  const names = ['Data', 'Open', 'Copy', 'AddData', 'Seek', 'ZstdDict'];
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const o of r.ops) out[names[o.op]!]!++;
  return out;
}
