import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync, gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { copyOriginal, rebuildFromTarDiff } from '../../src/delta/apply-layer.js';
import type { DataSource } from '../../src/tardiff/data-source.js';
import { encodeTarDiff } from '../helpers/delta-builder.js';

// spec oci-delta §8.1 "diff_id algorithms": these target bytes as tar, tar+gzip, tar+zstd and a v1
// tar-diff with one Data op; sha256/sha384/sha512 diff_ids are accepted, wrong content is refused.
const TARGET = Buffer.concat([
  Buffer.from('uncompressed layer bytes\0with binary content'),
  Buffer.from([0xff]),
]);
const ALGS = ['sha256', 'sha384', 'sha512'] as const;
const diffId = (alg: string, b: Buffer) => `${alg}:${createHash(alg).update(b).digest('hex')}`;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'odh-test-layer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => path.join(dir, `f${n++}`);
const noSource: DataSource = {
  open: () => Promise.reject(new Error('no source expected')),
};

describe('copyOriginal: digest, magic sniffing and diff_id', () => {
  const blobs = {
    none: TARGET,
    gzip: gzipSync(TARGET),
    zstd: zstdCompress(TARGET),
  };
  for (const [kind, blob] of Object.entries(blobs)) {
    for (const alg of ALGS) {
      it(`${kind} with a ${alg} diff_id`, async () => {
        const desc = {
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          digest: sha256(blob),
          size: blob.length,
        };
        const f = file();
        const s = await copyOriginal({
          blob: Readable.from([blob]),
          desc,
          diffId: diffId(alg, TARGET),
          file: f,
          ctx: { layer: 'L' },
        });
        expect(s.digest).toBe(desc.digest);
        expect(s.mediaType).toBe(
          {
            none: 'application/vnd.oci.image.layer.v1.tar',
            gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
            zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
          }[kind],
        );
        expect(readFileSync(f).equals(blob)).toBe(true);
      });
    }
    it(`${kind} with wrong content is a diff_id mismatch`, async () => {
      const desc = { mediaType: 'x', digest: sha256(blob), size: blob.length };
      const wrong = diffId('sha384', Buffer.from('other'));
      await expect(
        copyOriginal({ blob: Readable.from([blob]), desc, diffId: wrong, file: file(), ctx: { layer: 'L' } }),
      ).rejects.toThrow(`diff_id mismatch: expected ${wrong}, got ${diffId('sha384', TARGET)} (layer L)`);
    });
  }

  it('refuses a blob whose digest is not the descriptor’s', async () => {
    const desc = { mediaType: 'x', digest: sha256(Buffer.from('something else')), size: TARGET.length };
    await expect(
      copyOriginal({
        blob: Readable.from([TARGET]),
        desc,
        diffId: diffId('sha256', TARGET),
        file: file(),
        ctx: {},
      }),
    ).rejects.toThrow(/blob digest mismatch/);
  });

  it('refuses an unknown diff_id algorithm', async () => {
    const desc = { mediaType: 'x', digest: sha256(TARGET), size: TARGET.length };
    await expect(
      copyOriginal({ blob: Readable.from([TARGET]), desc, diffId: 'md5:00', file: file(), ctx: {} }),
    ).rejects.toThrow(/unsupported diff_id algorithm "md5"/);
  });
});

describe('rebuildFromTarDiff', () => {
  const td = encodeTarDiff([{ op: 'data', data: TARGET }]);
  for (const alg of ALGS) {
    it(`one Data op, ${alg} diff_id, gzip output`, async () => {
      const f = file();
      const s = await rebuildFromTarDiff({
        tarDiff: Readable.from([td]),
        source: noSource,
        diffId: diffId(alg, TARGET),
        compress: 'gzip',
        file: f,
        ctx: {},
      });
      expect(s.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
      const out = readFileSync(f);
      expect(gunzipSync(out).equals(TARGET)).toBe(true);
      expect(s.digest).toBe(sha256(out));
      expect(s.size).toBe(out.length);
      expect(s.ops?.Data).toBe(1);
    });
  }
  it('wrong content is a diff_id mismatch', async () => {
    const want = diffId('sha512', Buffer.from('x'));
    await expect(
      rebuildFromTarDiff({
        tarDiff: Readable.from([td]),
        source: noSource,
        diffId: want,
        compress: 'none',
        file: file(),
        ctx: { layer: 'L' },
      }),
    ).rejects.toThrow(
      /diff_id mismatch: expected sha512:[0-9a-f]{128}, got sha512:[0-9a-f]{128} \(layer L\)/,
    );
  });
});
