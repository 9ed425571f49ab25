import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage, openManifest, selectManifest } from '../../src/oci/image.js';
import { openLayoutArchive, openLayoutDir } from '../../src/oci/layout.js';
import { hasTool } from '../helpers/tools.js';
import { collect, sha256, writeLayoutDir, type HandMadeLayout } from './layout-fixture.js';
import { nth, xorByte } from '../helpers/must.js';
import type { OdhError } from '../../src/util/errors.js';

/** A blob read with blocking reads; each chunk is copied at once (the reader reads into one buffer). */
function collectBlocking(chunks: Iterable<Buffer>, each?: (c: Buffer) => void): Buffer {
  const parts: Buffer[] = [];
  for (const c of chunks) {
    each?.(c);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

let tmp: string;
let lay: string;
let made: HandMadeLayout;
const LAYER = Buffer.alloc(3000, 0x42);
const BIG = Buffer.alloc(20 << 20);
for (let i = 0; i < BIG.length; i += 4096) BIG[i] = i & 0xff;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-layout-'));
  lay = path.join(tmp, 'lay');
  made = await writeLayoutDir(lay, [LAYER, BIG], { refName: 'v1' });
});
afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('oci: directory layout', () => {
  it('openImage verifies and returns raw manifest and config', async () => {
    const img = await openImage(`oci:${lay}`);
    try {
      expect(img.manifestDescriptor.digest).toBe(made.manifestDigest);
      expect(img.manifestRaw.equals(made.manifestRaw)).toBe(true);
      expect(img.configRaw.equals(made.configRaw)).toBe(true);
      expect(img.config.rootfs.diff_ids).toEqual(made.layers.map((l) => l.digest));
      await img.reader.verifyBlob(nth(img.manifest.layers, 1));
      const body = await collect(await img.reader.openBlob(nth(img.manifest.layers, 0)));
      expect(body.equals(LAYER)).toBe(true);
    } finally {
      await img.reader.close();
    }
  });

  it('a flipped byte in a layer fails the stream at its end with DIGEST_MISMATCH', async () => {
    const dir = path.join(tmp, 'flip');
    const m = await writeLayoutDir(dir, [LAYER]);
    const f = path.join(dir, 'blobs', 'sha256', nth(m.layers, 0).digest.slice(7));
    const bad = Buffer.from(LAYER);
    xorByte(bad, 1234, 0x01);
    await fs.writeFile(f, bad);
    const r = await openLayoutDir(dir);
    await expect(collect(await r.openBlob(nth(m.layers, 0).digest))).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
      message: expect.stringContaining(
        `blob digest mismatch: expected ${nth(m.layers, 0).digest}, got ${sha256(bad)}`,
      ),
    });
    await expect(r.readBlobBytes(nth(m.layers, 0).digest, 1 << 20)).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    // A descriptor promising another size fails before any byte is read.
    await expect(r.openBlob({ digest: nth(m.layers, 0).digest, size: 1 })).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    // The blocking read (layer workers) fails the same way.
    const streamed = await collect(await r.openBlob(nth(m.layers, 0).digest)).catch((e: unknown) => e);
    const blocking = await r
      .openBlobBlocking(nth(m.layers, 0).digest)
      .then(collectBlocking)
      .catch((e: unknown) => e);
    expect(blocking).toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect([(blocking as Error).message, (blocking as OdhError).context]).toEqual([
      (streamed as Error).message,
      (streamed as OdhError).context,
    ]);
    await expect(r.openBlobBlocking({ digest: nth(m.layers, 0).digest, size: 1 })).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    await r.close();
  });

  it('a tampered manifest is refused by openImage', async () => {
    const dir = path.join(tmp, 'badman');
    const m = await writeLayoutDir(dir, [LAYER]);
    await fs.writeFile(
      path.join(dir, 'blobs', 'sha256', m.manifestDigest.slice(7)),
      Buffer.from(m.manifestRaw).fill(0x20, 0, 1),
    );
    await expect(openImage(`oci:${dir}`)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  it('missing blobs and layouts are NOT_FOUND', async () => {
    const r = await openLayoutDir(lay);
    const absent = `sha256:${'0'.repeat(64)}`;
    expect(await r.hasBlob(absent)).toBe(false);
    expect(await r.hasBlob(nth(made.layers, 0).digest)).toBe(true);
    expect(await r.blobSize(nth(made.layers, 1).digest)).toBe(BIG.length);
    await expect(r.openBlob(absent)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(r.openBlobBlocking(absent)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(r.blobSize(absent)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(r.openBlob('sha256:../../etc/passwd')).rejects.toMatchObject({ code: 'FORMAT' });
    await expect(openLayoutDir(path.join(tmp, 'nope'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(openLayoutArchive(path.join(tmp, 'nope.tar'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('readBlobBytes refuses blobs above the cap', async () => {
    const r = await openLayoutDir(lay);
    await expect(r.readBlobBytes(nth(made.layers, 1).digest, 1 << 20)).rejects.toMatchObject({
      code: 'LIMIT',
    });
  });
});

describe('selectManifest (spec oci-delta §1.2)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp, 'sel');
    const other = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'1'.repeat(64)}`,
      size: 5,
    };
    const nested = {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: `sha256:${'2'.repeat(64)}`,
      size: 5,
    };
    await writeLayoutDir(dir, [LAYER], {
      refName: 'b',
      extraIndexEntries: [
        { ...other, annotations: { 'org.opencontainers.image.ref.name': 'a' } },
        { ...nested, annotations: { 'org.opencontainers.image.ref.name': 'n' } },
      ],
    });
  });
  it('by name, by @N, default first; errors otherwise', async () => {
    const r = await openLayoutDir(dir);
    expect((await selectManifest(r, { name: 'b' })).position).toBe(2);
    expect((await selectManifest(r, { name: 'a' })).descriptor.digest).toBe(`sha256:${'1'.repeat(64)}`);
    expect((await selectManifest(r, { index: 2 })).position).toBe(2);
    expect((await selectManifest(r)).position).toBe(0);
    await expect(selectManifest(r, { name: 'zz' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(selectManifest(r, { index: 3 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(selectManifest(r, { name: 'n' })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    const img = await openImage(`oci:${dir}:@2`);
    expect(img.config.rootfs.diff_ids).toHaveLength(1);
    await img.reader.close();
    await expect(openManifest(`oci:${dir}`)).rejects.toMatchObject({ code: 'NOT_FOUND' }); // entry 0 has no blob
  });
});

describe.skipIf(!hasTool('skopeo', 'skopeo'))('oci-archive written by skopeo', () => {
  let archive: string;
  let skopeoManifestDigest: string;
  beforeAll(async () => {
    archive = path.join(tmp, 'sk.tar');
    execFileSync(
      'skopeo',
      [
        'copy',
        '-q',
        '--preserve-digests',
        '--dest-oci-accept-uncompressed-layers',
        `oci:${lay}:v1`,
        `oci-archive:${archive}:v1`,
      ],
      { stdio: 'pipe' },
    );
    const raw = execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${archive}:v1`]);
    skopeoManifestDigest = sha256(raw);
    expect(skopeoManifestDigest).toBe(made.manifestDigest); // layers kept as they are
  });

  it('opens by name and by default, with the manifest digest skopeo reports', async () => {
    for (const ref of [`oci-archive:${archive}:v1`, archive, `oci-archive:${archive}:@0`]) {
      const img = await openImage(ref);
      expect(img.manifestDescriptor.digest).toBe(skopeoManifestDigest);
      expect(img.config.rootfs.diff_ids).toEqual(made.layers.map((l) => l.digest));
      await img.reader.close();
    }
  });

  it('streams a 20 MiB layer in bounded chunks and verifies it', async () => {
    const img = await openImage(archive);
    const s = await img.reader.openBlob(nth(img.manifest.layers, 1));
    let total = 0;
    let largest = 0;
    const h = (await import('node:crypto')).createHash('sha256');
    for await (const c of s as AsyncIterable<Buffer>) {
      total += c.length;
      largest = Math.max(largest, c.length);
      h.update(c);
    }
    expect(total).toBe(BIG.length);
    expect(largest).toBeLessThanOrEqual(1 << 20);
    expect(`sha256:${h.digest('hex')}`).toBe(nth(made.layers, 1).digest);
    // Read with blocking reads (layer workers): the same bytes, each chunk at most 256 KiB.
    const archiveReader = await openLayoutArchive(archive);
    let blockingLargest = 0;
    const blocking = collectBlocking(await archiveReader.openBlobBlocking(nth(made.layers, 1)), (c) => {
      blockingLargest = Math.max(blockingLargest, c.length);
    });
    expect(blocking.equals(BIG)).toBe(true);
    expect(blockingLargest).toBeLessThanOrEqual(256 << 10);
    await archiveReader.close();
    const loc = await img.reader.locateBlob(nth(made.layers, 0).digest);
    const fh = await fs.open(archive);
    const b = Buffer.alloc(loc.size);
    await fh.read(b, 0, b.length, loc.offset);
    await fh.close();
    expect(b.equals(LAYER)).toBe(true);
    await img.reader.close();
  });

  it('accepts member names with a ./ prefix', async () => {
    const x = path.join(tmp, 'x');
    await fs.mkdir(x);
    execFileSync('tar', ['-xf', archive, '-C', x]);
    const dotted = path.join(tmp, 'dotted.tar');
    execFileSync('tar', ['-cf', dotted, '-C', x, '.']);
    expect(execFileSync('tar', ['-tf', dotted]).toString()).toContain('./index.json');
    const img = await openImage(`oci-archive:${dotted}:v1`);
    expect(img.manifestDescriptor.digest).toBe(skopeoManifestDigest);
    expect((await collect(await img.reader.openBlob(nth(made.layers, 0).digest))).equals(LAYER)).toBe(true);
    await img.reader.close();
  });

  it('a flipped byte inside the archive is DIGEST_MISMATCH', async () => {
    const r0 = await openLayoutArchive(archive);
    const loc = await r0.locateBlob(nth(made.layers, 0).digest);
    await r0.close();
    const bad = path.join(tmp, 'bad.tar');
    const bytes = await fs.readFile(archive);
    xorByte(bytes, loc.offset + 100, 0xff);
    await fs.writeFile(bad, bytes);
    const r = await openLayoutArchive(bad);
    await expect(collect(await r.openBlob(nth(made.layers, 0).digest))).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    const blocking = await r.openBlobBlocking(nth(made.layers, 0).digest);
    expect(() => collectBlocking(blocking)).toThrow(/blob digest mismatch/);
    await r.close();
  });
});

describe('hostile layouts', () => {
  it('bad or missing index.json', async () => {
    const dir = path.join(tmp, 'badidx');
    await writeLayoutDir(dir, [LAYER]);
    await fs.writeFile(path.join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[{"mediaType":"x"}]}');
    await expect(openImage(`oci:${dir}`)).rejects.toMatchObject({
      code: 'FORMAT',
      message: expect.stringMatching(/index\.json manifests\[0\].*digest/),
    });
    await fs.writeFile(path.join(dir, 'index.json'), '{');
    await expect(openImage(`oci:${dir}`)).rejects.toMatchObject({ code: 'FORMAT' });
    await fs.rm(path.join(dir, 'index.json'));
    await expect(openImage(`oci:${dir}`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it.skipIf(!hasTool('tar', 'tar'))(
    'archive: a hardlinked blob member is followed; a garbage tail is FORMAT',
    async () => {
      const dir = path.join(tmp, 'hl');
      const m = await writeLayoutDir(dir, [LAYER]);
      // Store the layer under a second name and make its blob name a hardlink to it.
      const blob = path.join(dir, 'blobs', 'sha256', nth(m.layers, 0).digest.slice(7));
      await fs.rename(blob, path.join(dir, 'aaa-original'));
      await fs.link(path.join(dir, 'aaa-original'), blob);
      const t = path.join(tmp, 'hl.tar');
      execFileSync('tar', ['-cf', t, '-C', dir, 'aaa-original', 'blobs', 'index.json', 'oci-layout']);
      const img = await openImage(t);
      expect((await collect(await img.reader.openBlob(nth(m.layers, 0).digest))).equals(LAYER)).toBe(true);
      await img.reader.close();
      const bytes = await fs.readFile(t);
      const junk = path.join(tmp, 'junk.tar');
      await fs.writeFile(junk, Buffer.concat([bytes.subarray(0, 512 * 3), Buffer.alloc(512, 0x37)]));
      await expect(openLayoutArchive(junk)).rejects.toMatchObject({
        code: expect.stringMatching(/FORMAT|TRUNCATED/),
      });
    },
  );

  it.skipIf(!hasTool('tar', 'tar'))(
    'archive cut inside a member or between members is TRUNCATED at the cut, naming the file',
    async () => {
      const dir = path.join(tmp, 'cut');
      await writeLayoutDir(dir, [LAYER]);
      const t = path.join(tmp, 'cut.tar');
      // index.json and oci-layout last, as the members a cut loses first.
      execFileSync('tar', ['-cf', t, '-C', dir, 'blobs', 'index.json', 'oci-layout']);
      const listing = execFileSync('tar', ['-tvR', '-f', t]).toString();
      const block = Number(/block (\d+): \S+ \S+ +\d+ \S+ \S+ index\.json/.exec(listing)![1]);
      const bytes = await fs.readFile(t);
      for (const cut of [block * 512, block * 512 + 700, 512 * 3 + 100, 0]) {
        const f = path.join(tmp, `cut-${cut}.tar`);
        await fs.writeFile(f, bytes.subarray(0, cut));
        await expect(openLayoutArchive(f)).rejects.toMatchObject({
          code: 'TRUNCATED',
          context: { file: f, offset: BigInt(cut) },
          message: expect.stringContaining(`file ${f}`),
        });
      }
      // The complete archive still opens.
      const r = await openLayoutArchive(t);
      expect((await r.index()).index.manifests).toHaveLength(1);
      await r.close();
    },
  );
});
