import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexOldImage, layerFile } from '../../src/tardiff/create/index.js';
import {
  bootcLayerEntries,
  buildLayerTar,
  flip64,
  ostreeObjectPath,
  seededBytes,
  type LayerEntry,
} from '../helpers/images.js';
import { opCounts, type CheckReport } from './create-checker.js';
import { cleanupTempDirs, oldImage, roundTrip, tempDir, type OldImage } from './create-roundtrip.js';

// Creator round trips over real OCI layers (spec oci-delta §5.2–5.7): every tar-diff must rebuild the
// new layer byte for byte through the applier and a DirectorySource over the extracted merged rootfs,
// and pass the reference checker (clean, qualifying, merged-rootfs Open names; limits).

afterAll(cleanupTempDirs);

/** Each ZstdDict op with the Open name current at that point. */
function zstdDictSources(r: CheckReport): string[] {
  let cur = '';
  const out: string[] = [];
  for (const o of r.ops) {
    if (o.op === 1) cur = o.payload!.toString();
    if (o.op === 5) out.push(cur);
  }
  return out;
}

/** Bytes of the new tar rebuilt by each op kind: how much came from the old image. */
function literalBytes(r: CheckReport): number {
  return r.ops.filter((o) => o.op === 0).reduce((n, o) => n + o.payload!.length, 0);
}

/** Applies `edits` small changes to a copy of `b` (an updated binary: a few patched regions). */
function patched(b: Buffer, seed: string, edits: number): Buffer {
  const out = Buffer.from(b);
  const noise = seededBytes(seed, edits * 48);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(((i + 0.5) * out.length) / edits);
    noise.copy(out, at, i * 48, i * 48 + 48);
  }
  return out;
}

const TOOL = seededBytes('usr/bin/tool', 300_000);
const CURL = seededBytes('libcurl', 180_000);
const README = Buffer.from('Read me. '.repeat(2000));
const DATA_XZ = seededBytes('data.xz', 60_000);
const SHADOW = seededBytes('shadow secret', 4000);
const REMOVED = seededBytes('removed file', 9000);
const OPAQUE_F = seededBytes('opaque f', 7000);
const CONFIG_OLD = Buffer.from('option = 1\n'.repeat(600));

describe('package update: old image with whiteouts, opaque dirs, unreadable and .xz files', () => {
  let old: OldImage;
  let newEntries: LayerEntry[];
  let newTar: Buffer;
  beforeAll(async () => {
    old = await oldImage([
      {
        compression: 'gzip',
        entries: [
          { type: 'dir', path: 'usr' },
          { type: 'file', path: 'usr/bin/tool', content: TOOL, mode: 0o755 },
          { type: 'file', path: 'usr/lib64/libcurl.so.4.7.0', content: CURL },
          { type: 'file', path: 'usr/share/doc/readme', content: README },
          { type: 'file', path: 'usr/share/data.xz', content: DATA_XZ },
          { type: 'file', path: 'etc/shadow', content: SHADOW, mode: 0o600 },
          { type: 'file', path: 'usr/share/removed', content: REMOVED },
          { type: 'file', path: 'usr/opaque/f', content: OPAQUE_F },
          { type: 'file', path: 'etc/config', content: Buffer.from('stale') },
        ],
      },
      {
        compression: 'zstd',
        entries: [
          { type: 'whiteout', path: 'usr/share/removed' },
          { type: 'opaque', path: 'usr/opaque' },
          { type: 'file', path: 'usr/opaque/g', content: Buffer.from('g') },
          { type: 'file', path: 'etc/config', content: CONFIG_OLD },
        ],
      },
    ]);
    newEntries = [
      { type: 'dir', path: 'usr' },
      { type: 'file', path: 'usr/bin/tool', content: patched(TOOL, 'tool-v2', 6), mode: 0o755 },
      { type: 'file', path: 'usr/lib64/libcurl.so.4.8.0', content: patched(CURL, 'curl-v2', 4) },
      { type: 'symlink', path: 'usr/lib64/libcurl.so.4', target: 'libcurl.so.4.8.0' },
      { type: 'file', path: 'usr/share/doc/readme', content: README },
      { type: 'hardlink', path: 'usr/share/doc/README.copy', target: 'usr/share/doc/readme' },
      { type: 'file', path: 'usr/share/data.xz', content: patched(DATA_XZ, 'xz-v2', 2) },
      { type: 'file', path: 'etc/shadow-copy', content: SHADOW },
      { type: 'file', path: 'usr/share/restored', content: REMOVED },
      { type: 'file', path: 'usr/opaque/f', content: OPAQUE_F },
      { type: 'file', path: 'etc/config', content: Buffer.from('option = 2\n'.repeat(600)) },
      { type: 'file', path: `usr/share/${'long-directory-name/'.repeat(8)}file`, content: README },
      { type: 'file', path: 'usr/share/tiny', content: 'tiny' },
    ];
    // trailing bytes after the end-of-archive blocks must survive as Data too
    newTar = Buffer.concat([await buildLayerTar(newEntries), Buffer.alloc(1024), Buffer.from('trailer')]);
  });

  it('zstd mode: ZstdDict for edited files, Copy for identical ones, never a hidden or unreadable source', async () => {
    const rt = await roundTrip(old, newTar, 'zstd');
    const ops = opCounts(rt.report);
    expect(zstdDictSources(rt.report).sort()).toEqual([
      'etc/config',
      'usr/bin/tool',
      'usr/lib64/libcurl.so.4.7.0', // picked by fuzzy basename prefix `libcurl.`
    ]);
    expect(ops.Copy).toBe(2); // readme, and the same content under a long PAX name
    expect(rt.result.sourcesUsed.sort()).toEqual([
      'etc/config',
      'usr/bin/tool',
      'usr/lib64/libcurl.so.4.7.0',
      'usr/share/doc/readme',
    ]);
    for (const hidden of ['etc/shadow', 'usr/share/removed', 'usr/opaque/f', 'usr/share/data.xz']) {
      expect(rt.report.opened).not.toContain(hidden);
    }
    // a package-update delta is far smaller than the compressed new layer
    const gz = gzipSync(newTar).length;
    expect(rt.delta.length).toBeLessThan(gz / 4);
    expect(rt.result.ops).toEqual(ops);
  });

  it('copy mode: tardf1, rollsum block copies of the edited files, no ZstdDict', async () => {
    const rt = await roundTrip(old, newTar, 'copy');
    const ops = opCounts(rt.report);
    expect(ops.ZstdDict).toBe(0);
    expect(ops.AddData).toBe(0);
    // etc/config changed every 11 bytes: no rollsum blob survives, so it stays literal (ratio ≤ 20)
    expect(rt.report.opened.sort()).toEqual([
      'usr/bin/tool',
      'usr/lib64/libcurl.so.4.7.0',
      'usr/share/doc/readme',
    ]);
    expect(ops.Copy).toBeGreaterThan(10);
    // most of tool and libcurl comes from the old image
    expect(literalBytes(rt.report)).toBeLessThan(newTar.length / 2);
    expect(rt.delta.length).toBeLessThan(gzipSync(newTar).length / 2);
  });
});

describe('bootc layout (spec oci-delta §3.1, §8.4)', () => {
  const libs = ['libc.so.6', 'libm.so.6', 'libssl.so.1', 'libcrypto.so.1', 'libz.so.1'];
  const content = (lib: string) => seededBytes(lib, 8192 + lib.length * 512);
  let old: OldImage;
  beforeAll(async () => {
    old = await oldImage([
      {
        entries: bootcLayerEntries(
          libs.slice(0, 3).map((l) => ({ path: `usr/lib64/${l}`, content: content(l) })),
        ),
      },
      {
        compression: 'zstd',
        entries: bootcLayerEntries(
          libs.slice(3).map((l) => ({ path: `usr/lib64/${l}`, content: content(l) })),
        ),
      },
    ]);
  });

  for (const mode of ['zstd', 'copy'] as const) {
    it(`${mode}: Open names are usr/… paths, never sysroot/ostree/ objects`, async () => {
      const updated = libs.map((l, i) => ({
        path: `usr/lib64/${l}`,
        content: flip64(content(l), 300 + 100 * i),
      }));
      const entries: LayerEntry[] = [
        ...bootcLayerEntries(updated),
        // an unchanged object re-shipped: identical content → Copy
        { type: 'file', path: ostreeObjectPath(content('libz.so.1')), content: content('libz.so.1') },
        { type: 'hardlink', path: 'usr/lib64/libz-again.so', target: ostreeObjectPath(content('libz.so.1')) },
      ];
      const rt = await roundTrip(old, entries, mode);
      expect(rt.report.opened.length).toBeGreaterThan(0);
      for (const n of rt.report.opened) expect(n).toMatch(/^usr\/lib64\/lib[a-z]+\.so\.\d$/);
      if (mode === 'zstd')
        expect(zstdDictSources(rt.report).sort()).toEqual(libs.map((l) => `usr/lib64/${l}`).sort());
      else expect(opCounts(rt.report).ZstdDict).toBe(0);
    });
  }
});

describe('ZstdDict source hazards', () => {
  it('a source starting with the zstd dictionary magic is never a ZstdDict source (rollsum instead)', async () => {
    const body = seededBytes('magic body', 200_000);
    const magic = Buffer.concat([Buffer.from([0x37, 0xa4, 0x30, 0xec]), body]);
    const old = await oldImage([{ entries: [{ type: 'file', path: 'usr/share/blob.bin', content: magic }] }]);
    const rt = await roundTrip(
      old,
      [{ type: 'file', path: 'usr/share/blob.bin', content: patched(magic, 'm2', 3) }],
      'zstd',
    );
    expect(opCounts(rt.report).ZstdDict).toBe(0);
    expect(opCounts(rt.report).Copy).toBeGreaterThan(2);
    expect(rt.report.opened).toEqual(['usr/share/blob.bin']);
  });

  it('fuzzy matching: same basename first, then prefix up to the first dot; other names only by content', async () => {
    const a = seededBytes('file1', 20_000);
    const old = await oldImage([
      {
        entries: [
          { type: 'file', path: 'x/file1.txt', content: a },
          { type: 'file', path: 'y/bar.txt', content: seededBytes('bar', 20_000) },
        ],
      },
    ]);
    const rt = await roundTrip(
      old,
      [
        { type: 'file', path: 'z/file2.txt', content: patched(a, 'f2', 2) }, // file1. ≠ file2.
        { type: 'file', path: 'z/bar.TXT', content: patched(seededBytes('bar', 20_000), 'b2', 2) },
      ],
      'zstd',
    );
    // file2.txt: no name pass (file1. ≠ file2.); the content fallback finds x/file1.txt
    expect(zstdDictSources(rt.report)).toEqual(['x/file1.txt', 'y/bar.txt']);
  });
});

describe('a shared OldImageIndex serves several new layers at once', () => {
  it('analyses the old layers once and diffs two layers concurrently', async () => {
    const old = await oldImage([
      { entries: [{ type: 'file', path: 'usr/bin/tool', content: TOOL }] },
      { compression: 'none', entries: [{ type: 'file', path: 'usr/lib64/libcurl.so.4.7.0', content: CURL }] },
    ]);
    const d = await tempDir();
    const oldIndex = await indexOldImage(old.blobPaths.map(layerFile), { tempDir: d });
    try {
      expect(oldIndex.files.map((f) => f.openName.toString())).toEqual([
        'usr/bin/tool',
        'usr/lib64/libcurl.so.4.7.0',
      ]);
      const [a, b] = await Promise.all([
        roundTrip(
          old,
          [{ type: 'file', path: 'usr/bin/tool', content: patched(TOOL, 'p', 3) }],
          'zstd',
          oldIndex,
        ),
        roundTrip(
          old,
          [{ type: 'file', path: 'usr/lib64/libcurl.so.4.9.9', content: patched(CURL, 'q', 3) }],
          'copy',
          oldIndex,
        ),
      ]);
      expect(zstdDictSources(a.report)).toEqual(['usr/bin/tool']);
      expect(b.report.opened).toEqual(['usr/lib64/libcurl.so.4.7.0']);
      // each used source was extracted once into the shared store
      expect(oldIndex.store.size).toBe(TOOL.length + CURL.length);
    } finally {
      await oldIndex.dispose();
    }
  });
});
