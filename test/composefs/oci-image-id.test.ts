/**
 * End-to-end OCI → composefs image ID on the deterministic layout of composefs-rs `cli.rs`
 * (spec composefs-v2 §8.4(a), composefs-v1 §13.3): pinned SHA-512 IDs for V2 and V1, through the
 * library; the layout is written by test/composefs/oci-layout-fixture.ts, independent of src/oci.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composefsImage, composefsImageId } from '../../src/composefs/oci/image-id.js';
import { S_IFDIR, S_IFREG } from '../../src/composefs/format/tree.js';
import {
  composefsTestLayer,
  gnuTar,
  HELLO,
  PINNED,
  writeOciArchive,
  writeOciLayout,
} from './oci-layout-fixture.js';
import { must, nth } from '../helpers/must.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'odh-cfs-id-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('pinned OCI layout image IDs (SHA-512)', () => {
  it('V2: spec composefs-v2 §8.4(a) OCI_LAYOUT_COMPOSEFS_ID, and the resulting tree', async () => {
    const l = await writeOciLayout(path.join(tmp, 'v2'), [composefsTestLayer(false)]);
    const r = await composefsImage(`oci:${l.dir}`, { format: 'v2', hash: 'sha512' });
    expect(r.id).toBe(PINNED.v2);
    expect(r.image.length).toBe(4096);
    // root copied from /usr; /hello.txt inline 22 bytes; /usr empty.
    expect([r.tree.mode, r.tree.uid, r.tree.gid, r.tree.mtimeSec]).toEqual([
      S_IFDIR | 0o755,
      0,
      0,
      1234567890n,
    ]);
    expect(r.tree.entries!.map((e) => e.name.toString())).toEqual(['hello.txt', 'usr']);
    const [hello, usr] = must(r.tree.entries, 'root entries').map((e) => e.inode);
    expect([hello?.mode, hello?.content]).toEqual([S_IFREG | 0o644, HELLO]);
    expect(usr?.entries).toEqual([]);
  });

  it('V1: spec composefs-v1 §13.3 OCI_LAYOUT_COMPOSEFS_V1_ID (layer with the hardlink)', async () => {
    const l = await writeOciLayout(path.join(tmp, 'v1'), [composefsTestLayer(true)]);
    const r = await composefsImage(`oci:${l.dir}`, { format: 'v1', hash: 'sha512' });
    expect(r.id).toBe(PINNED.v1);
    expect(r.image.length).toBe(16384);
  });

  it('defaults are V1 + SHA-512 (current cfsctl for a new repository)', async () => {
    const l = await writeOciLayout(path.join(tmp, 'dflt'), [composefsTestLayer(true)]);
    expect(await composefsImageId(`oci:${l.dir}`)).toBe(PINNED.v1);
  });

  it('the ID does not depend on layer compression nor on dir vs archive form', async () => {
    for (const compression of ['gzip', 'zstd'] as const) {
      const l = await writeOciLayout(path.join(tmp, `c-${compression}`), [composefsTestLayer(false)], {
        compression,
      });
      expect(await composefsImageId(`oci:${l.dir}`, { format: 'v2', hash: 'sha512' })).toBe(PINNED.v2);
      const archive = path.join(tmp, `c-${compression}.tar`);
      await writeOciArchive(l, archive);
      expect(await composefsImageId(`oci-archive:${archive}`, { format: 'v2', hash: 'sha512' })).toBe(
        PINNED.v2,
      );
    }
  });

  it('the same image with SHA-256 gives the derived (unpinned upstream) ID of spec v2 §8.4(a)', async () => {
    const l = await writeOciLayout(path.join(tmp, 'v2-256'), [composefsTestLayer(false)]);
    expect(await composefsImageId(`oci:${l.dir}`, { format: 'v2', hash: 'sha256' })).toBe(
      '9eb81436ceecafae870794fbe29d18ce001d7db5d6f8f0a7db9a645c78a1a53b',
    );
  });
});

describe('bad images', () => {
  it('refuses a layer whose blob does not match its digest', async () => {
    const l = await writeOciLayout(path.join(tmp, 'corrupt'), [composefsTestLayer(false)], {
      corruptLayer: 0,
    });
    await expect(composefsImageId(`oci:${l.dir}`)).rejects.toThrow(/digest mismatch/);
  });

  it('refuses a gzip layer whose compressed data is corrupt (digest recomputed to match)', async () => {
    const l = await writeOciLayout(path.join(tmp, 'badgz'), [composefsTestLayer(false)], {
      compression: 'gzip',
    });
    // Rewrite the layout around a truncated gzip blob with a correct digest.
    const blob = await readFile(path.join(l.dir, 'blobs', 'sha256', nth(l.layerDigests, 0).slice(7)));
    const bad = blob.subarray(0, blob.length - 12);
    const d = createHash('sha256').update(bad).digest('hex');
    await writeFile(path.join(l.dir, 'blobs', 'sha256', d), bad);
    const mPath = path.join(l.dir, 'blobs', 'sha256', l.manifestDigest.slice(7));
    const m = JSON.parse((await readFile(mPath)).toString());
    m.layers[0] = { ...m.layers[0], digest: `sha256:${d}`, size: bad.length };
    const mBytes = Buffer.from(JSON.stringify(m));
    const md = createHash('sha256').update(mBytes).digest('hex');
    await writeFile(path.join(l.dir, 'blobs', 'sha256', md), mBytes);
    const idx = JSON.parse((await readFile(path.join(l.dir, 'index.json'))).toString());
    idx.manifests[0] = { ...idx.manifests[0], digest: `sha256:${md}`, size: mBytes.length };
    await writeFile(path.join(l.dir, 'index.json'), JSON.stringify(idx));
    await expect(composefsImageId(`oci:${l.dir}`)).rejects.toThrow(/gzip|truncated|unexpected end/i);
  });

  it('refuses a layer whose content does not match its diff_id', async () => {
    const wrong = `sha256:${'00'.repeat(32)}`;
    const l = await writeOciLayout(path.join(tmp, 'diffid'), [composefsTestLayer(false)], {
      diffIds: [wrong],
    });
    await expect(composefsImageId(`oci:${l.dir}`)).rejects.toThrow(/diff_id mismatch/);
  });

  it('refuses an image without /usr, and a missing layout', async () => {
    const tar = gnuTar([{ name: 'etc/', typeflag: '5', mode: 0o755, mtime: 0 }]);
    const l = await writeOciLayout(path.join(tmp, 'nousr'), [tar]);
    await expect(composefsImageId(`oci:${l.dir}`)).rejects.toThrow(/no \/usr/);
    await expect(composefsImageId(`oci:${path.join(tmp, 'nope')}`)).rejects.toThrow();
  });

  it('refuses a layer with a bad tar header checksum', async () => {
    const tar = composefsTestLayer(false);
    tar[148] = 0x37; // checksum field of the first header
    tar[149] = 0x37;
    const l = await writeOciLayout(path.join(tmp, 'badsum'), [tar]);
    await expect(composefsImageId(`oci:${l.dir}`)).rejects.toThrow(/checksum/i);
  });
});
