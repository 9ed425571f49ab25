import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootcLayerEntries, buildOciImage, seededBytes, sha256Hex } from '../helpers/images.js';
import { hasTool } from '../helpers/tools.js';

// The image builder is itself checked against independent tools, so tests built on it are sound.
describe('test image builder', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function build() {
    const dir = await mkdtemp(path.join(tmpdir(), 'odh-images-'));
    dirs.push(dir);
    return buildOciImage(dir, {
      refName: 'test',
      layers: [
        {
          compression: 'gzip',
          entries: [
            { type: 'dir', path: 'etc' },
            { type: 'file', path: 'etc/hello', content: 'hello\n', pax: { 'SCHILY.xattr.user.k': 'v' } },
            { type: 'symlink', path: 'etc/link', target: 'hello' },
            { type: 'fifo', path: 'etc/fifo' },
            { type: 'char-device', path: 'dev/null', major: 1, minor: 3 },
            { type: 'block-device', path: 'dev/sda', major: 8, minor: 0 },
            { type: 'file', path: `long/${'n'.repeat(150)}/file`, content: seededBytes('long', 700) },
          ],
        },
        {
          compression: 'zstd',
          entries: [
            { type: 'whiteout', path: 'etc/hello' },
            { type: 'opaque', path: 'long' },
          ],
        },
        {
          compression: 'none',
          entries: bootcLayerEntries([{ path: 'usr/lib64/libz.so.1', content: seededBytes('libz', 5120) }]),
        },
      ],
    });
  }

  it('records diff_ids that are the sha256 of the kept layer tars', async () => {
    const img = await build();
    for (const [i, l] of img.layers.entries()) {
      expect(l.diffId).toBe(`sha256:${sha256Hex(await readFile(l.tarPath))}`);
      expect(img.diffIds[i]).toBe(l.diffId);
    }
    expect(img.layers.map((l) => l.mediaType)).toEqual([
      'application/vnd.oci.image.layer.v1.tar+gzip',
      'application/vnd.oci.image.layer.v1.tar+zstd',
      'application/vnd.oci.image.layer.v1.tar',
    ]);
  });

  it('lays out entries that GNU tar reads back (whiteouts, PAX long names, hardlinks)', async () => {
    const img = await build();
    const list = (i: number) =>
      execFileSync('tar', ['-tvf', img.layers[i]!.tarPath], { encoding: 'utf8' }).trim().split('\n');
    const l0 = list(0).join('\n');
    expect(l0).toContain(`long/${'n'.repeat(150)}/file`);
    expect(l0).toMatch(/^p.* etc\/fifo$/m);
    expect(l0).toMatch(/^c.* 1,3 .* dev\/null$/m);
    expect(l0).toMatch(/^b.* 8,0 .* dev\/sda$/m);
    expect(l0).toMatch(/^l.* etc\/link -> hello$/m);
    expect(list(1).map((l) => l.split(/\s+/).pop())).toEqual(['etc/.wh.hello', 'long/.wh..wh..opq']);
    const l2 = list(2).join('\n');
    expect(l2).toMatch(
      /usr\/lib64\/libz\.so\.1 link to sysroot\/ostree\/repo\/objects\/[0-9a-f]{2}\/[0-9a-f]{62}\.file/,
    );
  });

  it.skipIf(!hasTool('skopeo', 'skopeo'))('is accepted by skopeo as oci: and oci-archive:', async () => {
    const img = await build();
    for (const ref of [img.ociRef, img.archiveRef]) {
      const out = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', ref], { encoding: 'utf8' }));
      expect(out.config.digest).toBe(img.configDigest);
      const cfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', ref], { encoding: 'utf8' }));
      expect(cfg.rootfs.diff_ids).toEqual(img.diffIds);
    }
    // skopeo copy decompresses and verifies every layer against its digest
    const dest = path.join(path.dirname(img.layoutDir), 'copy');
    execFileSync('skopeo', ['copy', '--quiet', img.archiveRef, `oci:${dest}:x`]);
  });
});
