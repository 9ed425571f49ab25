import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeErofs } from '../../src/composefs/format/erofs/write.js';
import { expectedView, randomTree, type Format } from './erofs-writer-random-tree.js';
import { compareView } from './erofs-writer-view.js';
import { hasTool, isRoot } from '../helpers/tools.js';

const haveFsck = hasTool('fsck.erofs', 'erofs-utils');
// Only when fsck.erofs exists: a file whose tests all skip never runs its hooks (no cleanup).
const work = haveFsck ? mkdtempSync(path.join(tmpdir(), 'odh-fsck-')) : '';
afterAll(() => (work ? rmSync(work, { recursive: true, force: true }) : undefined));

function fsck(image: Buffer, name: string, extractTo?: string): { status: number | null; output: string } {
  const file = path.join(work, `${name}.img`);
  writeFileSync(file, image);
  const args = extractTo ? [`--extract=${extractTo}`, file] : [file];
  const r = spawnSync('fsck.erofs', args, { encoding: 'utf8' });
  rmSync(file);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const SEEDS = Array.from({ length: 12 }, (_, i) => i + 1);

describe.each(['v1', 'v2'] as Format[])(
  'fsck.erofs (erofs-utils 1.5) accepts %s images of random trees',
  (format) => {
    it.skipIf(!haveFsck).each(SEEDS)('seed %d', (seed) => {
      const tree = randomTree(seed, { format, acl: true, bigFiles: seed % 4 === 0 });
      const img = writeErofs(tree, { format });
      const r = fsck(img, `${format}-${seed}`);
      expect(r.output).toBe('');
      expect(r.status).toBe(0);
    });

    // Extraction makes fsck read every inode's data, names and targets; compare with the tree.
    it.skipIf(!haveFsck || !isRoot).each(SEEDS.filter((s) => s % 4 !== 0))('seed %d, extracted', (seed) => {
      const tree = randomTree(seed, { format, acl: true });
      const out = path.join(work, `${format}-${seed}-x`);
      const r = fsck(writeErofs(tree, { format }), `${format}-${seed}-x`, out);
      expect(r.status, r.output).toBe(0);
      const errors = compareView(out, expectedView(tree, format), {
        owner: true,
        mtime: true,
        nlinkAndHardlinks: false,
        externalSizes: false,
        xattrs: false,
      });
      rmSync(out, { recursive: true, force: true });
      expect(errors).toEqual([]);
    });
  },
);

describe('fsck.erofs is a real check', () => {
  it.skipIf(!haveFsck)('rejects an image whose root inode has an invalid type', () => {
    const img = writeErofs(randomTree(1, { format: 'v1' }), { format: 'v1' });
    const rootOffset = img.readUInt16LE(1024 + 14) * 32;
    img.writeUInt16LE(0o170755, rootOffset + 4);
    expect(fsck(img, 'corrupt').status).not.toBe(0);
  });
});
