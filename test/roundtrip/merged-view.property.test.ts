import { lstat, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { extractMergedRootfs, openOciImageSource } from '../../src/image-source/oci-image.js';
import { buildOciImage, seededBytes, type LayerEntry, type LayerSpec } from '../helpers/images.js';

// Two independent readings of the same random images must agree: the pure merged-rootfs index
// behind the OCI image source (spec oci-delta §5.2 rules) and a real extraction onto disk with
// whiteouts applied (§3.2 --directory). Files are leaves of a small fixed tree and every file
// qualifies as a source, which keeps clear of the upstream quirks (§9) where the two differ on purpose.

const DIRS = ['d0', 'd1', 'd2'];
const FILES = [...DIRS.flatMap((d) => [0, 1, 2].map((j) => `${d}/f${j}`)), 'top0', 'top1'];

type Op =
  | { kind: 'file'; path: string; seed: number; size: number }
  | { kind: 'whiteout'; path: string }
  | { kind: 'opaque'; dir: string }
  | { kind: 'hardlink'; path: string; target: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('file' as const),
      path: fc.constantFrom(...FILES),
      seed: fc.nat(1000),
      size: fc.integer({ min: 1, max: 64 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('whiteout' as const),
      path: fc.constantFrom(...FILES, ...DIRS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('opaque' as const), dir: fc.constantFrom(...DIRS, '') }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('hardlink' as const),
      path: fc.constantFrom(...FILES),
      target: fc.constantFrom(...FILES),
    }),
  },
);
const layerArb = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 7 }),
  compression: fc.constantFrom('gzip' as const, 'zstd' as const, 'none' as const),
});

/** Layer entries: one entry per path per layer; a hardlink only to a file written earlier in it. */
function toLayer(ops: Op[], compression: LayerSpec['compression'], layer: number): LayerSpec {
  const used = new Set<string>();
  const files = new Set<string>();
  const entries: LayerEntry[] = [];
  for (const op of ops) {
    if (op.kind === 'file' && !used.has(op.path)) {
      used.add(op.path);
      files.add(op.path);
      entries.push({ type: 'file', path: op.path, content: seededBytes(`${layer}/${op.seed}`, op.size) });
    } else if (op.kind === 'hardlink' && !used.has(op.path) && files.has(op.target)) {
      used.add(op.path);
      entries.push({ type: 'hardlink', path: op.path, target: op.target });
    } else if (op.kind === 'whiteout' && !used.has(`wh:${op.path}`)) {
      used.add(`wh:${op.path}`);
      entries.push({ type: 'whiteout', path: op.path });
    } else if (op.kind === 'opaque' && !used.has(`opq:${op.dir}`)) {
      used.add(`opq:${op.dir}`);
      entries.push({ type: 'opaque', path: op.dir });
    }
  }
  return { entries, compression };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('merged view: OCI image source index agrees with an extracted rootfs', () => {
  it('serves exactly the extracted regular files, with the same bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(layerArb, { minLength: 1, maxLength: 4 }), async (layers) => {
        const work = await mkdtemp(path.join(tmpdir(), 'odh-prop-'));
        dirs.push(work);
        const img = await buildOciImage(path.join(work, 'img'), {
          layers: layers.map((l, i) => toLayer(l.ops, l.compression, i)),
        });
        const dest = path.join(work, 'rootfs');
        await extractMergedRootfs(img.ociRef, dest);
        const src = await openOciImageSource(img.ociRef, 'all', { tempDir: work });
        try {
          for (const name of FILES) {
            const st = await lstat(path.join(dest, name)).catch(() => null);
            const served = await src.open(Buffer.from(name)).catch((e: { code?: string }) => {
              if (e.code !== 'NOT_FOUND') throw e;
              return null;
            });
            expect(served !== null, `${name} served vs extracted`).toBe(st?.isFile() ?? false);
            if (served) {
              const buf = Buffer.alloc(served.size);
              await served.readAt(buf, 0, served.size, 0);
              await served.close();
              expect(buf.equals(await readFile(path.join(dest, name))), name).toBe(true);
            }
          }
        } finally {
          await src.cleanup();
          await rm(work, { recursive: true, force: true });
        }
      }),
      { numRuns: 40, seed: 20261127 },
    );
  }, 240_000);
});
