import { afterAll, describe, expect, it } from 'vitest';
import { Sketcher, sketchOf, sketchOverlap, SKETCH_SIZE } from '../../src/tardiff/create/sketch.js';
import { seededBytes } from '../helpers/images.js';
import { opCounts, type CheckReport } from './create-checker.js';
import { cleanupTempDirs, oldImage, roundTrip } from './create-roundtrip.js';

// The content-similarity fallback of matching (after the name passes of spec oci-delta §5.3): a
// renamed, slightly edited file is rebuilt from its old name; sources stay within the §5.2 rules.

afterAll(cleanupTempDirs);

const README = Buffer.from(
  Array.from({ length: 2500 }, (_, i) => `line ${(i * 7919) % 1009} of the readme\n`).join(''),
);
const CHANGES = Buffer.concat([Buffer.from('v2: fixes\n'), README]);

/** Each ZstdDict or Copy op with the Open name current at that point. */
function usesOf(r: CheckReport, op: number): string[] {
  let cur = '';
  const out: string[] = [];
  for (const o of r.ops) {
    if (o.op === 1) cur = o.payload!.toString();
    if (o.op === op) out.push(cur);
  }
  return out;
}

describe('content sketches', () => {
  it('an edited copy shares most sketch values, unrelated content none', () => {
    const a = seededBytes('sketch a', 50_000);
    const edited = Buffer.concat([Buffer.from('inserted'), a.subarray(0, 20_000), a.subarray(20_100)]);
    expect(sketchOf(a).length).toBe(SKETCH_SIZE);
    expect(sketchOverlap(sketchOf(a), sketchOf(edited))).toBeGreaterThanOrEqual(SKETCH_SIZE / 2);
    expect(sketchOverlap(sketchOf(a), sketchOf(seededBytes('sketch b', 50_000)))).toBe(0);
  });

  it('is the same however the content is chunked', () => {
    const a = seededBytes('chunks', 10_000);
    const s = new Sketcher();
    for (let p = 0; p < a.length; p += 777) s.push(a.subarray(p, p + 777));
    expect([...s.finish()]).toEqual([...sketchOf(a)]);
  });
});

describe('renamed files are found by content', () => {
  it('zstd: CHANGES (the old README plus a line) is a ZstdDict patch against README', async () => {
    const old = await oldImage([
      { entries: [{ type: 'file', path: 'usr/share/doc/app/README', content: README }] },
    ]);
    const rt = await roundTrip(
      old,
      [{ type: 'file', path: 'usr/share/doc/app/CHANGES', content: CHANGES }],
      'zstd',
    );
    expect(usesOf(rt.report, 5)).toEqual(['usr/share/doc/app/README']);
    expect(rt.delta.length).toBeLessThan(README.length / 20);
  });

  it('copy: the same rename is rebuilt with Copy ops from README', async () => {
    const old = await oldImage([
      { entries: [{ type: 'file', path: 'usr/share/doc/app/README', content: README }] },
    ]);
    const rt = await roundTrip(
      old,
      [{ type: 'file', path: 'usr/share/doc/app/CHANGES', content: CHANGES }],
      'copy',
    );
    expect(opCounts(rt.report).ZstdDict).toBe(0);
    expect(usesOf(rt.report, 2).length).toBeGreaterThan(0);
    expect(new Set(usesOf(rt.report, 2))).toEqual(new Set(['usr/share/doc/app/README']));
  });

  it('never a sysroot/ostree/ object, an unreadable file, or a .xz/.bz2 file', async () => {
    const old = await oldImage([
      {
        entries: [
          { type: 'file', path: 'sysroot/ostree/repo/objects/ab/cdef.file', content: README },
          { type: 'file', path: 'etc/secret.txt', content: README, mode: 0o600 },
          { type: 'file', path: 'usr/share/doc/readme.xz', content: README },
          { type: 'file', path: 'usr/share/doc/readme.bz2', content: README },
        ],
      },
    ]);
    for (const mode of ['zstd', 'copy'] as const) {
      const rt = await roundTrip(
        old,
        [{ type: 'file', path: 'usr/share/doc/app/CHANGES', content: CHANGES }],
        mode,
      );
      expect(rt.report.opened).toEqual([]);
    }
  });
});
