import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarDiff, layerFile } from '../../src/tardiff/create/index.js';
import { buildLayerTar, seededBytes } from '../helpers/images.js';
import { hasOracle, oraclePath } from '../helpers/oracles.js';
import { binaryLike, relinked } from './binary-like.js';
import { checkTarDiff, opCounts, type CheckedOp } from './create-checker.js';
import { cleanupTempDirs, oldImage, roundTrip, tempDir, type OldImage } from './create-roundtrip.js';

// bsdiff and auto modes (spec oci-delta §5.4 rules 3–4, §5.5), checked against Go tar-diff/tar-patch.

afterAll(cleanupTempDirs);

const LIB_OLD = binaryLike('libfoo', 300_000);
const LIB_NEW = relinked(LIB_OLD, 'libfoo', 6);
const TEXT_OLD = Buffer.from(
  Array.from({ length: 3000 }, (_, i) => `line ${i}: the quick brown fox ${i % 7}\n`).join(''),
);
const TEXT_NEW = Buffer.from(TEXT_OLD.toString().replace(/fox 3/g, 'cat 3').replace('line 10:', 'LINE 10:'));

const oldEntries = [
  { type: 'dir' as const, path: 'usr/' },
  { type: 'file' as const, path: 'usr/lib/libfoo.so.1', content: LIB_OLD },
  { type: 'file' as const, path: 'usr/share/doc.txt', content: TEXT_OLD },
  { type: 'file' as const, path: 'usr/share/same.bin', content: seededBytes('same', 70_000) },
];
const newEntries = [
  { type: 'dir' as const, path: 'usr/' },
  { type: 'file' as const, path: 'usr/lib/libfoo.so.1', content: LIB_NEW },
  { type: 'file' as const, path: 'usr/share/doc.txt', content: TEXT_NEW },
  { type: 'file' as const, path: 'usr/share/same.bin', content: seededBytes('same', 70_000) },
];

let old: OldImage;
let work: string;
let oldTar: string;
let newTar: string;
beforeAll(async () => {
  old = await oldImage([{ entries: oldEntries, compression: 'none' }]);
  work = await tempDir();
  oldTar = path.join(work, 'old.tar');
  newTar = path.join(work, 'new.tar');
  await fs.writeFile(oldTar, await buildLayerTar(oldEntries));
  await fs.writeFile(newTar, await buildLayerTar(newEntries));
});

async function ours(mode: 'bsdiff' | 'auto', extra: Record<string, number> = {}): Promise<Buffer> {
  const out = path.join(work, `ours-${mode}-${Object.values(extra).join('-')}.tardiff`);
  await createTarDiff({
    oldLayers: [layerFile(oldTar)],
    newLayer: newTar,
    mode,
    tempDir: work,
    out,
    ...extra,
  });
  return fs.readFile(out);
}

function comparable(ops: CheckedOp[]) {
  return ops.map((o) => ({ op: o.op, operand: o.operand, payload: o.payload?.toString('hex') }));
}

describe('bsdiff mode', () => {
  it('round-trips through our applier as tardf1 with AddData, Data and Seek triples', async () => {
    const rt = await roundTrip(old, newEntries, 'bsdiff');
    expect(rt.delta.subarray(0, 8).toString('latin1')).toBe('tardf1\n\0');
    const ops = opCounts(rt.report);
    expect(ops.AddData).toBeGreaterThan(2);
    expect(ops.Seek).toBeGreaterThan(2);
    expect(ops.ZstdDict).toBe(0);
    expect(rt.result.sourcesUsed.sort()).toEqual([
      'usr/lib/libfoo.so.1',
      'usr/share/doc.txt',
      'usr/share/same.bin',
    ]);
  });

  it.skipIf(!hasOracle('tar-diff'))(
    'emits the same op stream as Go tar-diff for the same tars (only the outer zstd differs)',
    async () => {
      const goOut = path.join(work, 'go.tardiff');
      const r = spawnSync(oraclePath('tar-diff'), [oldTar, newTar, goOut]);
      expect(r.status, r.stderr.toString()).toBe(0);
      const go = checkTarDiff(await fs.readFile(goOut));
      const mine = checkTarDiff(await ours('bsdiff'));
      expect(go.version).toBe(1);
      expect(opCounts(go).AddData).toBeGreaterThan(2);
      expect(comparable(mine.ops)).toEqual(comparable(go.ops));
    },
  );

  it.skipIf(!hasOracle('tar-patch'))('Go tar-patch rebuilds the new tar from our bsdiff delta', async () => {
    const delta = path.join(work, 'ours-for-go.tardiff');
    await fs.writeFile(delta, await ours('bsdiff'));
    const rebuilt = path.join(work, 'go-rebuilt.tar');
    const r = spawnSync(oraclePath('tar-patch'), [delta, old.rootfs, rebuilt]);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect((await fs.readFile(rebuilt)).equals(await fs.readFile(newTar))).toBe(true);
  });

  it('above --max-bsdiff-size a file falls back to rollsum or literal data (no AddData)', async () => {
    const d = checkTarDiff(await ours('bsdiff', { maxBsdiffSize: 50_000 }));
    // the library (300 kB) and the text file (≈ 100 kB) are over the cap: nothing is bsdiffed
    expect(opCounts(d).AddData).toBe(0);
    const unlimited = checkTarDiff(await ours('bsdiff', { maxBsdiffSize: 0 }));
    expect(opCounts(unlimited).AddData).toBeGreaterThan(0);
  });

  it('splits an AddData longer than the appliers’ 100 MiB limit', async () => {
    const { OpStreamWriter } = await import('../../src/tardiff/create/op-writer.js');
    const chunks: Buffer[] = [];
    const w = new OpStreamWriter(async (c) => void chunks.push(c), 1, 1);
    const size = 100 * 1024 * 1024 + 5;
    const a = Buffer.alloc(size, 3);
    const b = Buffer.alloc(size, 1);
    await w.open(Buffer.from('f'));
    await w.addDiff(a, b, { newAt: 0, oldAt: 0, length: size });
    await w.finish();
    const r = checkTarDiff(Buffer.concat(chunks));
    expect(r.problems).toEqual([]);
    const adds = r.ops.filter((o) => o.op === 3);
    expect(adds.map((o) => o.payload!.length)).toEqual([100 * 1024 * 1024, 5]);
    expect(adds.every((o) => o.payload!.every((x) => x === 2))).toBe(true);
  });
});

describe('auto mode (upstream rule: ZstdDict within the zstd cap, bsdiff above it)', () => {
  it('uses ZstdDict under the cap and writes tardf2', async () => {
    const rt = await roundTrip(old, newEntries, 'auto');
    const ops = opCounts(rt.report);
    expect(ops.ZstdDict).toBe(2);
    expect(ops.AddData).toBe(0);
  });

  it('uses bsdiff for files over the zstd cap, still tardf2', async () => {
    const d = checkTarDiff(await ours('auto', { maxZstdDictSize: 200_000 }));
    expect(d.version).toBe(2);
    // the 300 kB library is over the cap (bsdiff), the 110 kB text under it (ZstdDict)
    expect(opCounts(d).ZstdDict).toBe(1);
    expect(opCounts(d).AddData).toBeGreaterThan(0);
  });
});
