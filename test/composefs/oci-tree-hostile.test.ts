/**
 * Hostile layers: damaged tar bytes (with a matching diff_id, so the tree code really runs) must
 * give either a tree or a one-line OdhError — never another exception, a hang or a crash.
 * Also: the tree of a rich image survives the composefs-rs dumpfile round trip unchanged
 * (printer → composefs-rs parser → the same V2 image bytes).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDumpfileSync } from '../../src/composefs/dumpfile/parse.js';
import { printDumpfile } from '../../src/composefs/dumpfile/print.js';
import { writeErofs } from '../../src/composefs/format/erofs/write.js';
import { treeFromOciImage, type OciImageLayers } from '../../src/composefs/oci/image-tree.js';
import type { Descriptor } from '../../src/oci/types.js';
import { OdhError } from '../../src/util/errors.js';
import { buildLayerTar, seededBytes } from '../helpers/images.js';
import { nth } from '../helpers/must.js';
import { hasTool } from '../helpers/tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An in-memory image of uncompressed or gzip layer blobs (digests are not re-verified here). */
function memoryImage(tars: Buffer[], gzip = false): OciImageLayers {
  const blobs = new Map<string, Buffer>();
  const layers: Descriptor[] = tars.map((t) => {
    const blob = gzip ? gzipSync(t) : t;
    const digest = sha256(blob);
    blobs.set(digest, blob);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: blob.length };
  });
  return {
    where: 'memory',
    // The config descriptor is never opened here: any descriptor does.
    manifest: { schemaVersion: 2, config: nth(layers, 0), layers },
    config: { rootfs: { type: 'layers', diff_ids: tars.map(sha256) } },
    openBlob: async (d) =>
      (async function* () {
        const b = blobs.get(d.digest)!;
        for (let o = 0; o < b.length; o += 700) yield b.subarray(o, o + 700);
      })(),
  };
}

async function richLayers(): Promise<Buffer[]> {
  return [
    await buildLayerTar([
      { type: 'dir', path: 'usr', pax: { 'SCHILY.xattr.user.u': 'x' } },
      { type: 'dir', path: 'usr/bin' },
      {
        type: 'file',
        path: 'usr/bin/big',
        content: seededBytes('b', 5000),
        pax: { 'SCHILY.xattr.security.capability': 'c' },
      },
      { type: 'hardlink', path: 'usr/bin/big2', target: 'usr/bin/big' },
      { type: 'file', path: 'usr/bin/small', content: 'small' },
      { type: 'symlink', path: 'usr/bin/sl', target: 'small' },
      { type: 'char-device', path: 'usr/cdev', major: 4, minor: 64 },
      { type: 'block-device', path: 'usr/bdev', major: 8, minor: 1 },
      { type: 'fifo', path: 'usr/fifo' },
      { type: 'dir', path: 'etc' },
      { type: 'file', path: 'etc/a', content: 'a' },
      { type: 'dir', path: 'run' },
    ]),
    await buildLayerTar([
      { type: 'whiteout', path: 'etc/a' },
      { type: 'opaque', path: 'usr/bin' },
      { type: 'file', path: 'usr/bin/after', content: seededBytes('after', 100) },
    ]),
  ];
}

describe('hostile layer bytes', () => {
  it('any single damaged byte range gives a writable tree or an OdhError', async () => {
    const layers = await richLayers();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: nth(layers, 0).length - 1 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 0, max: 255 }),
        async (at, len, value) => {
          const bad = Buffer.from(nth(layers, 0));
          bad.fill(value, at, Math.min(bad.length, at + len));
          try {
            const tree = await treeFromOciImage(memoryImage([bad, nth(layers, 1)]), {
              hash: 'sha256',
              xattrs: 'all',
            });
            // Whatever tree results must also be writable in both formats.
            writeErofs(tree, { format: 'v1', minVersion: 1, maxVersion: 1, hash: 'sha256' });
            writeErofs(tree, { format: 'v2', hash: 'sha256' });
          } catch (e) {
            expect(e).toBeInstanceOf(OdhError);
            expect((e as Error).message).not.toMatch(/\n/);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a truncated layer is a TRUNCATED/FORMAT error naming the layer', async () => {
    const layers = await richLayers();
    const cut = nth(layers, 0).subarray(0, 2000);
    const img = memoryImage([cut]);
    const err = await treeFromOciImage(img, { hash: 'sha256', xattrs: 'all' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OdhError);
    expect((err as OdhError).message).toContain(nth(img.manifest.layers, 0).digest);
  });

  it('a gzip layer cut short is a TRUNCATED error naming the layer and where the cut is', async () => {
    const gz = gzipSync(nth(await richLayers(), 0));
    const cut = gz.subarray(0, gz.length >> 1);
    const img = memoryImage([cut]);
    img.config.rootfs.diff_ids = [sha256(cut)];
    const err = await treeFromOciImage(img, { hash: 'sha256', xattrs: 'all' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OdhError);
    expect((err as OdhError).code).toBe('TRUNCATED');
    expect((err as OdhError).message).toMatch(/^gzip: unexpected end of file/);
    expect((err as OdhError).message).toContain(nth(img.manifest.layers, 0).digest);
    expect((err as OdhError).context.offset).toBe(cut.length);
  });

  it('garbage after a gzip magic is a one-line FORMAT error', async () => {
    const garbage = Buffer.concat([Buffer.from([0x1f, 0x8b]), seededBytes('junk', 3000)]);
    const img = memoryImage([garbage]);
    img.config.rootfs.diff_ids = [sha256(garbage)];
    const err = await treeFromOciImage(img, { hash: 'sha256', xattrs: 'all' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OdhError);
    expect((err as OdhError).code).toBe('FORMAT');
    expect((err as OdhError).message).toMatch(/^gzip: unknown compression method/);
    expect((err as OdhError).message).toContain(nth(img.manifest.layers, 0).digest);
  });
});

describe('zstd layers beyond the window cap', () => {
  const haveZstd = hasTool('zstd', 'zstd');
  it.skipIf(!haveZstd)(
    'a frame asking for a 2^28 window (zstd CLI --long=28) is a LIMIT error naming the layer',
    async () => {
      const tar = nth(await richLayers(), 0);
      // Streamed through stdin the CLI cannot shrink the window to the content size.
      const blob = execFileSync('zstd', ['-q', '-c', '--long=28'], { input: tar });
      expect(nth([...blob], 5) >> 3).toBe(28 - 10); // frame header window descriptor: exponent 18 → 2^28 (RFC 8878 §3.1.1.1.2)
      const img = memoryImage([blob]);
      img.config.rootfs.diff_ids = [sha256(tar)];
      const err = await treeFromOciImage(img, { hash: 'sha256', xattrs: 'all' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OdhError);
      expect((err as OdhError).code).toBe('LIMIT');
      expect((err as OdhError).message).toContain(nth(img.manifest.layers, 0).digest);
      expect((err as OdhError).message).toMatch(/exceeds the 2\^27-byte limit/);
    },
  );
});

describe('composefs-rs dumpfile round trip of an OCI tree', () => {
  it('printing and re-parsing the tree gives the same V2 image (SHA-256 and SHA-512 objects)', async () => {
    for (const hash of ['sha256', 'sha512'] as const) {
      // Every xattr kept, so the printer and parser see user.* and security.* alike.
      const tree = await treeFromOciImage(memoryImage(await richLayers(), true), { hash, xattrs: 'all' });
      const text = printDumpfile(tree, { format: 'composefs-rs' });
      const back = parseDumpfileSync(text, { rules: 'composefs-rs' });
      expect(writeErofs(back, { format: 'v2', hash }).equals(writeErofs(tree, { format: 'v2', hash }))).toBe(
        true,
      );
    }
  });
});
