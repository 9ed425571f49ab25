/**
 * The blocking layer path of layer workers (streamLayerBlocking: blocking reads, blockingDecoder,
 * readTarBlocking, applyLayerEntriesBlocking) against the waiting path the main thread runs
 * (streamLayer): the same tree items, and the same error for a broken layer. The image IDs of the
 * waiting path are pinned to C mkcomposefs and composefs-rs elsewhere (oci-image-id,
 * cli-composefs-c-agreement); here the two paths must agree byte for byte.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { erofsOptionsFor } from '../../src/composefs/oci/image-id.js';
import { writeErofs } from '../../src/composefs/format/erofs/write.js';
import { applyLayerEntries, applyLayerEntriesBlocking } from '../../src/composefs/oci/layer.js';
import { streamLayer, streamLayerBlocking, type OciLayerTask } from '../../src/composefs/oci/layer-stream.js';
import { OciTreeBuilder } from '../../src/composefs/oci/merge.js';
import { readTar, readTarBlocking } from '../../src/tar/reader.js';
import { buildLayerTar, seededBytes, type LayerEntry } from '../helpers/images.js';
import { outcomeOf, reusedBuffer, shown } from '../helpers/outcome.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Inline files of every size up to the 64-byte limit and just above, big files, links, xattrs, whiteouts. */
function entries(): LayerEntry[] {
  const small = Array.from({ length: 70 }, (_, i) => ({
    type: 'file' as const,
    path: `usr/small/f${i}`,
    content: seededBytes(`s${i}`, i),
  }));
  return [
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/small' },
    ...small,
    { type: 'file', path: 'usr/big', content: seededBytes('big', 700_000) },
    { type: 'hardlink', path: 'usr/big-link', target: 'usr/big' },
    { type: 'symlink', path: 'usr/s', target: 'x'.repeat(150) },
    {
      type: 'file',
      path: `usr/${'n'.repeat(180)}`,
      content: 'long name',
      pax: { 'SCHILY.xattr.user.k': 'v' },
    },
    { type: 'fifo', path: 'usr/fifo' },
    { type: 'whiteout', path: 'usr/gone' },
    { type: 'dir', path: 'etc', pax: { 'SCHILY.xattr.security.selinux': 'system_u:object_r:etc_t:s0' } },
  ];
}

const image = (b: OciTreeBuilder) => writeErofs(b.finish('capability'), erofsOptionsFor('v1', 'sha512'));

const task = (blob: Buffer, diffId: string): OciLayerTask => ({
  desc: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(blob), size: blob.length },
  diffId,
  index: 0,
  layers: 1,
});

/** The image `run` builds, or how it fails (code, message, context). */
async function outcome(run: (b: OciTreeBuilder) => unknown): Promise<unknown> {
  return shown(
    await outcomeOf(async () => {
      const b = new OciTreeBuilder();
      await run(b);
      return image(b).toString('hex');
    }),
  );
}

describe('the blocking layer path gives what the waiting path gives', () => {
  it('entries read from one reused buffer make the same tree (nothing keeps a view into it)', async () => {
    const tar = await buildLayerTar(entries());
    const opts = { hash: 'sha512' as const, layer: 'sha256:test' };
    const waiting = new OciTreeBuilder();
    await applyLayerEntries(waiting, readTar(Readable.from([tar])), opts);
    for (const size of [100, 4096, 65_536]) {
      const blocking = new OciTreeBuilder();
      applyLayerEntriesBlocking(blocking, readTarBlocking(reusedBuffer([tar], size)), opts);
      expect(image(blocking).equals(image(waiting)), `${size}-byte pieces`).toBe(true);
    }
  });

  it('gzip blobs: the same image, and the same error for a wrong diff_id, a cut stream or a cut tar', async () => {
    const tar = await buildLayerTar(entries());
    const gz = gzipSync(tar);
    const cutTar = tar.subarray(0, 512 * 40 + 100);
    const cases: [string, Buffer, string][] = [
      ['good', gz, sha256(tar)],
      ['wrong diff_id', gz, sha256(Buffer.from('other'))],
      ['gzip cut short', gz.subarray(0, gz.length >> 1), sha256(tar)],
      ['tar cut short', gzipSync(cutTar), sha256(cutTar)],
      ['plain tar', tar, sha256(tar)],
    ];
    for (const [name, blob, diffId] of cases) {
      const t = task(blob, diffId);
      const opts = { hash: 'sha512' as const };
      const waiting = await outcome((b) => streamLayer(b, Readable.from([blob]), t, opts));
      const blocking = await outcome((b) => streamLayerBlocking(b, reusedBuffer([blob], 64 << 10), t, opts));
      expect(blocking, name).toEqual(waiting);
      if (name !== 'good' && name !== 'plain tar') expect(blocking, name).toHaveProperty('code');
    }
  });
});
