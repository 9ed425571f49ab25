import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarDiff, layerFile } from '../../src/tardiff/create/index.js';
import { buildLayerTar, seededBytes } from '../helpers/images.js';
import { checkTarDiff, opCounts } from './create-checker.js';
import { cleanupTempDirs, oldImage, roundTrip, tempDir, type OldImage } from './create-roundtrip.js';

afterAll(cleanupTempDirs);

const BIG = seededBytes('big', 2_000_000);

let old: OldImage;
beforeAll(async () => {
  old = await oldImage([
    {
      entries: [
        { type: 'file', path: 'usr/share/big.bin', content: BIG },
        { type: 'file', path: 'usr/share/small.txt', content: 'tiny but identical\n' },
      ],
    },
  ]);
});

describe('op stream shape', () => {
  it('literal data leaves in Data ops of at most 4 MiB', async () => {
    const fresh = seededBytes('fresh', 9 * 1024 * 1024 + 123);
    const rt = await roundTrip(old, [{ type: 'file', path: 'usr/share/fresh.bin', content: fresh }], 'zstd');
    const data = rt.report.ops.filter((o) => o.op === 0).map((o) => o.payload!.length);
    expect(data.length).toBe(3);
    expect(Math.max(...data)).toBe(4 * 1024 * 1024);
    expect(rt.report.opened).toEqual([]);
  });

  it('above maxZstdDictSize a similar file falls back to rollsum copies', async () => {
    const neu = Buffer.from(BIG);
    neu.fill(7, 1_000_000, 1_000_100);
    const d = await tempDir();
    const newPath = path.join(d, 'new.tar');
    await fs.writeFile(
      newPath,
      await buildLayerTar([{ type: 'file', path: 'usr/share/big.bin', content: neu }]),
    );
    const out = path.join(d, 'out');
    const r = await createTarDiff({
      oldLayers: old.blobPaths.map(layerFile),
      newLayer: newPath,
      mode: 'zstd',
      tempDir: d,
      out,
      maxZstdDictSize: 1_000_000,
    });
    const report = checkTarDiff(readFileSync(out), old.rootfs);
    expect(report.problems).toEqual([]);
    expect(opCounts(report).ZstdDict).toBe(0);
    expect(r.ops.Copy).toBeGreaterThan(10);
    expect(r.bytes).toBeLessThan(100_000);
  });

  it('a tiny identical file is copied (upstream’s len(name)+4 literal rule is not applied)', async () => {
    const rt = await roundTrip(old, [{ type: 'file', path: 'x', content: 'tiny but identical\n' }], 'zstd');
    expect(rt.report.opened).toEqual(['usr/share/small.txt']);
    expect(opCounts(rt.report).Copy).toBe(1);
  });

  it('a sparse new entry is never matched (its stored bytes are not file content)', async () => {
    const rt = await roundTrip(
      old,
      [
        {
          type: 'file',
          path: 'usr/share/big.bin',
          content: BIG,
          pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' },
        },
      ],
      'copy',
    );
    expect(rt.report.opened).toEqual([]);
  });
});

describe('new layer inputs', () => {
  it('accepts a gzip-compressed new layer file and a byte stream', async () => {
    const tar = await buildLayerTar([{ type: 'file', path: 'usr/share/big.bin', content: BIG }]);
    const d = await tempDir();
    const gz = path.join(d, 'new.tar.gz');
    await fs.writeFile(gz, gzipSync(tar));
    for (const newLayer of [gz, Readable.from([tar.subarray(0, 1000), tar.subarray(1000)])]) {
      const out = path.join(d, `out-${typeof newLayer}`);
      const r = await createTarDiff({
        oldLayers: old.blobPaths.map(layerFile),
        newLayer,
        mode: 'copy',
        tempDir: d,
        out,
      });
      expect(r.newLayerBytes).toBe(tar.length);
      expect(r.ops).toMatchObject({ Open: 1, Copy: 1 });
    }
    // spooled copies are removed
    expect((await fs.readdir(d)).filter((n) => n.startsWith('tar-diff-'))).toEqual([]);
  });
});

describe('hostile inputs: typed errors, no output left behind', () => {
  it('a truncated new layer', async () => {
    const tar = await buildLayerTar([{ type: 'file', path: 'a', content: BIG }]);
    const d = await tempDir();
    const newPath = path.join(d, 'new.tar');
    await fs.writeFile(newPath, tar.subarray(0, 100_000));
    const out = path.join(d, 'out');
    await expect(
      createTarDiff({
        oldLayers: old.blobPaths.map(layerFile),
        newLayer: newPath,
        mode: 'zstd',
        tempDir: d,
        out,
      }),
    ).rejects.toMatchObject({ code: 'TRUNCATED', message: expect.stringContaining('new.tar') });
    expect(existsSync(out)).toBe(false);
    expect(await fs.readdir(d)).toEqual(['new.tar']);
  });

  it('a corrupt old layer names the layer', async () => {
    const d = await tempDir();
    const bad = path.join(d, 'bad.gz');
    const gz = readFileSync(old.blobPaths[0]!);
    await fs.writeFile(bad, gz.subarray(0, gz.length - 100));
    const newPath = path.join(d, 'new.tar');
    await fs.writeFile(newPath, await buildLayerTar([{ type: 'file', path: 'a', content: 'a' }]));
    const out = path.join(d, 'out');
    const err = await createTarDiff({
      oldLayers: [layerFile(bad)],
      newLayer: newPath,
      mode: 'zstd',
      tempDir: d,
      out,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: expect.stringMatching(/TRUNCATED|FORMAT/),
      message: expect.stringContaining('old layer #0'),
    });
    expect(existsSync(out)).toBe(false);
  });

  it('an old layer that changes between analysis and extraction', async () => {
    const d = await tempDir();
    const neu = Buffer.from(BIG);
    neu[5] = neu[5]! ^ 1;
    const newPath = path.join(d, 'new.tar');
    await fs.writeFile(
      newPath,
      await buildLayerTar([{ type: 'file', path: 'usr/share/big.bin', content: neu }]),
    );
    let reads = 0;
    const tarA = await buildLayerTar([{ type: 'file', path: 'usr/share/big.bin', content: BIG }]);
    const tarB = await buildLayerTar([{ type: 'file', path: 'usr/share/big.bin', content: neu.reverse() }]);
    const shifty = () => Readable.from([reads++ === 0 ? tarA : tarB]);
    const out = path.join(d, 'out');
    await expect(
      createTarDiff({ oldLayers: [shifty], newLayer: newPath, mode: 'zstd', tempDir: d, out }),
    ).rejects.toMatchObject({ code: 'SOURCE_MISMATCH' });
    expect(existsSync(out)).toBe(false);
  });
});
