/**
 * Layers streamed in worker threads (src/composefs/oci/layer-pool.ts): the tree and image ID equal
 * those of the one-thread path (itself pinned to composefs-rs / C vectors in oci-image-id and
 * cli-composefs-c-agreement), items are applied in layer order whatever order the workers finish
 * in, and a failing layer gives the error the one-thread path gives (the lowest failing layer).
 * Under vitest the worker runs from TypeScript sources through test/helpers/ts-loader.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composefsImage, erofsOptionsFor } from '../../src/composefs/oci/image-id.js';
import { writeErofs } from '../../src/composefs/format/erofs/write.js';
import { fsverityDigest } from '../../src/composefs/format/fsverity.js';
import { applyLayersInWorkers, layerWorkerEntry } from '../../src/composefs/oci/layer-pool.js';
import { OciTreeBuilder } from '../../src/composefs/oci/merge.js';
import { writeGzipLayout } from '../helpers/gzip-layout.js';
import { OdhError } from '../../src/util/errors.js';
import { buildLayerTar, seededBytes, type LayerEntry } from '../helpers/images.js';
import { nth } from '../helpers/must.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'odh-cfs-workers-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Layer tars exercising cross-layer rules: hardlinks, whiteouts, opaque dirs, multi-block files. */
function layerEntries(): LayerEntry[][] {
  const files = (dir: string, n: number, seed: string): LayerEntry[] =>
    Array.from({ length: n }, (_, i) => ({
      type: 'file' as const,
      path: `${dir}/f${i}`,
      content: seededBytes(`${seed}${i}`, (i * 977) % 9000),
    }));
  return [
    [
      { type: 'dir', path: 'usr', mode: 0o755 },
      { type: 'dir', path: 'usr/lib' },
      ...files('usr/lib', 40, 'a'),
      { type: 'file', path: 'usr/lib/big', content: seededBytes('big', 300_000) },
      { type: 'dir', path: 'etc' },
      { type: 'file', path: 'etc/gone', content: 'old' },
      { type: 'dir', path: 'opt' },
      ...files('opt', 5, 'o'),
    ],
    [
      { type: 'hardlink', path: 'usr/lib/big-link', target: 'usr/lib/big' },
      { type: 'whiteout', path: 'etc/gone' },
      { type: 'dir', path: 'usr/share' },
      ...files('usr/share', 30, 'b'),
    ],
    [
      { type: 'opaque', path: 'opt' },
      { type: 'file', path: 'opt/new', content: seededBytes('new', 5000) },
      { type: 'dir', path: 'usr/lib', mode: 0o700, pax: { 'SCHILY.xattr.security.capability': 'c' } },
      ...files('usr/lib', 10, 'c'),
    ],
    [{ type: 'symlink', path: 'usr/bin', target: 'lib' }, ...files('usr/share', 20, 'd')],
  ];
}

async function goodTars(): Promise<Buffer[]> {
  return Promise.all(layerEntries().map((e) => buildLayerTar(e)));
}

/** Gzip data cut short: a valid digest (recorded after the cut) over a corrupt stream. */
const cutGzip = (tar: Buffer) => {
  const gz = gzipSync(tar);
  return gz.subarray(0, gz.length >> 1);
};

describe('layers in worker threads', () => {
  it('the worker entry is the built .js beside the module, or the .ts source with the TS hooks', () => {
    const js = layerWorkerEntry('file:///x/dist/src/composefs/oci/layer-pool.js');
    expect(js.url.href).toBe('file:///x/dist/src/composefs/oci/layer-worker.js');
    expect(js.execArgv).toBeUndefined();
    const ts = layerWorkerEntry('file:///x/src/composefs/oci/layer-pool.ts');
    expect(ts.url.href).toBe('file:///x/src/composefs/oci/layer-worker.ts');
    expect(ts.execArgv).toEqual(['--import', 'file:///x/test/helpers/ts-loader/register.mjs']);
  });

  it('four layers in two workers give the bytes and ID of the one-thread path', async () => {
    const tars = await goodTars();
    const { dir, layers } = await writeGzipLayout(
      path.join(tmp, 'good'),
      tars.map((t) => gzipSync(t)),
      tars.map(sha256),
    );
    const one = await composefsImage(`oci:${dir}`, { workers: 1 });
    const two = await composefsImage(`oci:${dir}`, { workers: 2 });
    expect(two.image.equals(one.image)).toBe(true);
    expect(two.id).toBe(one.id);
    // The pool itself (not the automatic choice): same tree, so same bytes.
    const builder = new OciTreeBuilder();
    await applyLayersInWorkers(
      builder,
      layers.map((desc, i) => ({ desc, diffId: sha256(nth(tars, i)), index: i, layers: tars.length })),
      { layout: { transport: 'oci', path: dir }, hash: 'sha512', workers: 2 },
    );
    const image = writeErofs(builder.finish('capability'), erofsOptionsFor('v1', 'sha512'));
    expect(fsverityDigest(image, 'sha512').toString('hex')).toBe(one.id);
  });

  it('a corrupt gzip layer fails naming that layer, as on one thread', async () => {
    const tars = await goodTars();
    const blobs = tars.map((t) => gzipSync(t));
    blobs[2] = cutGzip(nth(tars, 2));
    const { dir } = await writeGzipLayout(path.join(tmp, 'badgz'), blobs, tars.map(sha256));
    const one = await composefsImage(`oci:${dir}`, { workers: 1 }).catch((e: unknown) => e);
    const two = await composefsImage(`oci:${dir}`, { workers: 2 }).catch((e: unknown) => e);
    expect(two).toBeInstanceOf(OdhError);
    expect((two as OdhError).message).toContain(`layer ${sha256(blobs[2])}`);
    expect((two as OdhError).message).toMatch(/gzip|unexpected end/i);
    expect([(two as OdhError).code, (two as OdhError).message]).toEqual([
      (one as OdhError).code,
      (one as OdhError).message,
    ]);
  });

  it('with two failing layers the lowest one is reported (a truncated tar before a corrupt gzip)', async () => {
    const tars = await goodTars();
    // Layer 1 is a truncated tar, layer 2 a corrupt gzip stream.
    const layerTars = tars.map((t, i) => (i === 1 ? t.subarray(0, 512 * 3 + 100) : t));
    const blobs = layerTars.map((t, i) => (i === 2 ? cutGzip(t) : gzipSync(t)));
    const { dir } = await writeGzipLayout(path.join(tmp, 'two-bad'), blobs, layerTars.map(sha256));
    const err = await composefsImage(`oci:${dir}`, { workers: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OdhError);
    expect((err as OdhError).code).toBe('TRUNCATED');
    expect((err as OdhError).context.layer).toBe(sha256(nth(blobs, 1)));
    const one = await composefsImage(`oci:${dir}`, { workers: 1 }).catch((e: unknown) => e);
    expect((err as OdhError).message).toBe((one as OdhError).message);
  });

  it('a tree error in a lower layer wins over a later corrupt layer', async () => {
    const tars = await goodTars();
    // Layer 1 hardlinks to a path that does not exist: a builder error on this thread.
    tars[1] = await buildLayerTar([{ type: 'hardlink', path: 'usr/x', target: 'usr/nope' }]);
    const blobs = tars.map((t, i) => (i === 2 ? cutGzip(t) : gzipSync(t)));
    const { dir } = await writeGzipLayout(path.join(tmp, 'tree-bad'), blobs, tars.map(sha256));
    const err = await composefsImage(`oci:${dir}`, { workers: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OdhError);
    expect((err as OdhError).message).toMatch(/hardlink target "usr\/nope" does not exist/);
    expect((err as OdhError).context.layer).toBe(sha256(nth(blobs, 1)));
  });

  it('a signal aborted mid-run stops the workers and throws its reason', async () => {
    const tars = await goodTars();
    const { dir } = await writeGzipLayout(
      path.join(tmp, 'abort'),
      tars.map((t) => gzipSync(t)),
      tars.map(sha256),
    );
    const ac = new AbortController();
    const reason = new OdhError('IO', 'interrupted by SIGINT; nothing was written');
    // Aborted from the first progress report, while the workers are streaming.
    const progress = { step: () => ac.abort(reason), bytes: () => {}, done: () => {} };
    const run = composefsImage(`oci:${dir}`, { workers: 2, signal: ac.signal, progress });
    await expect(run).rejects.toBe(reason);
  });
});
