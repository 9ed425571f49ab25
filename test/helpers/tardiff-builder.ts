/**
 * Hand-assembles tar-diffs for round-trip tests (spec oci-delta §2.1–2.2): ops are encoded with the
 * project's `encodeOp` (itself pinned to upstream vectors in test/tardiff), the outer stream is
 * compressed with zstd-napi, and ZstdDict payloads come from the `zstd --patch-from` CLI, so
 * nothing here depends on our applier or creator.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compress as zstdCompress } from 'zstd-napi';
import { OpCode, encodeOp } from '../../src/tardiff/ops.js';

export class TarDiffBuilder {
  private readonly ops: Buffer[] = [];
  private v2 = false;

  data(bytes: Uint8Array): this {
    if (bytes.length > 0) this.ops.push(encodeOp(OpCode.Data, bytes));
    return this;
  }
  open(name: string | Buffer): this {
    this.ops.push(encodeOp(OpCode.Open, Buffer.isBuffer(name) ? name : Buffer.from(name)));
    return this;
  }
  copy(n: number): this {
    this.ops.push(encodeOp(OpCode.Copy, n));
    return this;
  }
  seek(pos: number): this {
    this.ops.push(encodeOp(OpCode.Seek, pos));
    return this;
  }
  /** AddData whose result is `target`, given the `source` bytes at the current position. */
  addDataFor(target: Uint8Array, source: Uint8Array): this {
    const d = Buffer.alloc(target.length);
    for (let i = 0; i < d.length; i++) d[i] = (target[i]! - source[i]!) & 0xff;
    this.ops.push(encodeOp(OpCode.AddData, d));
    return this;
  }
  /** ZstdDict op reproducing `target` from the whole current source `source` (zstd --patch-from). */
  zstdDictFor(target: Uint8Array, source: Uint8Array): this {
    this.v2 = true;
    const dir = mkdtempSync(path.join(tmpdir(), 'odh-patch-'));
    try {
      const [src, dst, patch] = ['old', 'new', 'patch'].map((n) => path.join(dir, n)) as [
        string,
        string,
        string,
      ];
      writeFileSync(src, source);
      writeFileSync(dst, target);
      execFileSync('zstd', ['-q', '-f', '-19', `--patch-from=${src}`, dst, '-o', patch]);
      this.ops.push(encodeOp(OpCode.ZstdDict, readFileSync(patch)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return this;
  }
  /** The tar-diff file: magic (v2 when a ZstdDict op was added) + one zstd stream of the ops. */
  build(): Buffer {
    const magic = Buffer.from(this.v2 ? 'tardf2\n\0' : 'tardf1\n\0', 'latin1');
    return Buffer.concat([magic, zstdCompress(Buffer.concat(this.ops))]);
  }
}
